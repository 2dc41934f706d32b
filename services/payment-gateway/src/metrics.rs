//! What payment-gateway adds to `/metrics`: refunds the provider kept
//! refusing, each one for an operator to settle by hand.

use prometheus::{IntCounter, Registry};

/// Cheap to clone.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// `payment_refund_failed` published: a refund that was never made.
    pub refund_failures: IntCounter,
}

impl GatewayMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let refund_failures = IntCounter::new(
            "payment_refund_failures_total",
            "Refunds given up on (payment_refund_failed published); each needs an operator",
        )?;
        registry.register(Box::new(refund_failures.clone()))?;
        Ok(GatewayMetrics { refund_failures })
    }
}
