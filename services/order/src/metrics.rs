//! What order adds to `/metrics`: refunds the provider refused, inputs the
//! saga refused, and orders stuck in a status (by status and age).

use prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Cheap to clone.
#[derive(Clone)]
pub struct OrderMetrics {
    /// `payment_refund_failed` applied to an order: an operator looks at each.
    pub refund_failures: IntCounter,
    /// Events the saga did not apply (duplicates, late or out-of-contract), by type.
    pub refusals: IntCounterVec,
    /// Open orders unchanged past the stuck limit, by `status` and `age`:
    /// `1x` (past the limit), `4x` and `96x` (past four and ninety-six times
    /// it; with the default 15 min: 1 h and 24 h). Reset at every sweep.
    pub stuck_orders: IntGaugeVec,
    /// Commands published again by the stuck-order job.
    pub redriven_commands: IntCounter,
}

impl OrderMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let refund_failures = IntCounter::new(
            "order_refund_failures_total",
            "Refunds payment-gateway reported as failed (payment_refund_failed)",
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "order_saga_refusals_total",
                "Events the order saga refused to apply, by event type",
            ),
            &["event_type"],
        )?;
        let stuck_orders = IntGaugeVec::new(
            Opts::new(
                "order_stuck_orders",
                "Open orders unchanged for longer than the stuck limit, by status and age",
            ),
            &["status", "age"],
        )?;
        let redriven_commands = IntCounter::new(
            "order_redriven_commands_total",
            "Commands of stuck orders published again",
        )?;
        registry.register(Box::new(refund_failures.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(stuck_orders.clone()))?;
        registry.register(Box::new(redriven_commands.clone()))?;
        Ok(OrderMetrics {
            refund_failures,
            refusals,
            stuck_orders,
            redriven_commands,
        })
    }
}
