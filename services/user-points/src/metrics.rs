//! What user-points adds to `/metrics`: reservations that released
//! themselves, and points an order counted on that could not be collected.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// Cheap to clone.
#[derive(Clone)]
pub struct PointsMetrics {
    pub reservations_expired: IntCounter,
    /// Points missing when a reservation was held again after expiry
    /// (`stage="reheld"`) or spent (`stage="spent"`): the order's discount
    /// exceeds what the customer paid in points. An operator looks at each.
    pub shortfall_points: IntCounterVec,
}

impl PointsMetrics {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let reservations_expired = IntCounter::new(
            "points_reservations_expired_total",
            "Reservations of unfinished checkouts released at their expiry",
        )?;
        let shortfall_points = IntCounterVec::new(
            Opts::new(
                "points_shortfall_points_total",
                "Points an order counted on that the balance no longer covered",
            ),
            &["stage"],
        )?;
        registry.register(Box::new(reservations_expired.clone()))?;
        registry.register(Box::new(shortfall_points.clone()))?;
        Ok(PointsMetrics {
            reservations_expired,
            shortfall_points,
        })
    }
}
