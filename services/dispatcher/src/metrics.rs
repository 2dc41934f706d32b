//! What dispatcher adds to `/metrics`: what an operator looks at — parts
//! declined because their plugin could not place them or their business did
//! not confirm in time, and withdrawals no business could be told of.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Cheap to clone.
#[derive(Clone)]
pub struct DispatchMetrics {
    /// Parts declined as `dispatch_failed`, by plugin.
    pub dispatch_failed: IntCounterVec,
    /// Parts declined as `timeout`.
    pub confirmation_timeouts: IntCounter,
    /// Withdrawn parts whose business could not be told, by plugin.
    pub withdrawal_notices_failed: IntCounterVec,
}

impl DispatchMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let dispatch_failed = IntCounterVec::new(
            Opts::new(
                "dispatch_failed_total",
                "Parts declined because their plugin could not place them after its tries",
            ),
            &["plugin"],
        )?;
        let confirmation_timeouts = IntCounter::new(
            "dispatch_confirmation_timeouts_total",
            "Parts declined because their business did not confirm them in time",
        )?;
        let withdrawal_notices_failed = IntCounterVec::new(
            Opts::new(
                "dispatch_withdrawal_notices_failed_total",
                "Withdrawn parts whose business could not be told after every try",
            ),
            &["plugin"],
        )?;
        registry.register(Box::new(dispatch_failed.clone()))?;
        registry.register(Box::new(confirmation_timeouts.clone()))?;
        registry.register(Box::new(withdrawal_notices_failed.clone()))?;
        Ok(DispatchMetrics {
            dispatch_failed,
            confirmation_timeouts,
            withdrawal_notices_failed,
        })
    }
}
