//! What notification adds to `/metrics`: emails sent and failed, and the
//! facts still waiting for their order's customer. Facts that wait long mean
//! an order whose own events never arrived: an operator looks at them.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// Cheap to clone.
#[derive(Clone)]
pub struct NotificationMetrics {
    /// Email attempts by `outcome`: `sent`, `failed` (retried later) or
    /// `abandoned` (retrying cannot help).
    pub emails: IntCounterVec,
    /// Facts parked until their order's customer is known.
    pub parked: IntGauge,
    /// How long the oldest of them has waited, in seconds (0 when none).
    pub parked_oldest_seconds: IntGauge,
}

impl NotificationMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let emails = IntCounterVec::new(
            Opts::new(
                "notification_emails_total",
                "Attempts to email a notification, by outcome",
            ),
            &["outcome"],
        )?;
        let parked = IntGauge::new(
            "notification_parked_notifications",
            "Notifications waiting for their order's customer to be known",
        )?;
        let parked_oldest_seconds = IntGauge::new(
            "notification_parked_oldest_seconds",
            "How long the oldest parked notification has waited",
        )?;
        registry.register(Box::new(emails.clone()))?;
        registry.register(Box::new(parked.clone()))?;
        registry.register(Box::new(parked_oldest_seconds.clone()))?;
        Ok(NotificationMetrics {
            emails,
            parked,
            parked_oldest_seconds,
        })
    }
}
