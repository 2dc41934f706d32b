//! What user-points publishes on `heyblue.points.v1`: every movement of a
//! user's points. All of them are keyed by `user_id`, so one user's balance
//! changes arrive in the order they happened.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{EventFamily, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum PointsEvent {
    PointsReserved(PointsReserved),
    PointsSpent(PointsSpent),
    PointsReleased(PointsReleased),
    PointsRefunded(PointsRefunded),
    PointsDonated(PointsDonated),
    PointsCredited(PointsCredited),
}

impl PointsEvent {
    /// The user whose balance changed (for a donation, the officer who gave).
    pub fn user_id(&self) -> Uuid {
        match self {
            PointsEvent::PointsReserved(e) => e.user_id,
            PointsEvent::PointsSpent(e) => e.user_id,
            PointsEvent::PointsReleased(e) => e.user_id,
            PointsEvent::PointsRefunded(e) => e.user_id,
            PointsEvent::PointsDonated(e) => e.user_id,
            PointsEvent::PointsCredited(e) => e.user_id,
        }
    }

    /// The order this movement belongs to; donations and credits have none.
    pub fn order_id(&self) -> Option<Uuid> {
        match self {
            PointsEvent::PointsReserved(e) => Some(e.order_id),
            PointsEvent::PointsSpent(e) => Some(e.order_id),
            PointsEvent::PointsReleased(e) => Some(e.order_id),
            PointsEvent::PointsRefunded(e) => Some(e.order_id),
            PointsEvent::PointsDonated(_) | PointsEvent::PointsCredited(_) => None,
        }
    }
}

impl EventFamily for PointsEvent {
    const TOPIC: Topic = Topic::Points;
    const PRODUCER: &'static str = "user-points";
    const EVENT_TYPES: &'static [&'static str] = &[
        "points_reserved",
        "points_spent",
        "points_released",
        "points_refunded",
        "points_donated",
        "points_credited",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            PointsEvent::PointsReserved(_) => "points_reserved",
            PointsEvent::PointsSpent(_) => "points_spent",
            PointsEvent::PointsReleased(_) => "points_released",
            PointsEvent::PointsRefunded(_) => "points_refunded",
            PointsEvent::PointsDonated(_) => "points_donated",
            PointsEvent::PointsCredited(_) => "points_credited",
        }
    }

    fn partition_key(&self) -> String {
        self.user_id().to_string()
    }
}

/// Points are held for an order being checked out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReserved {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub points: i64,
}

/// The held points paid for the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsSpent {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub points: i64,
}

/// The held points are available again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReleased {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub reservation_id: Uuid,
    pub points: i64,
}

/// Spent points came back for a declined part; `refund_id` is the one order
/// sent in `points_refund_requested`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsRefunded {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub refund_id: Uuid,
    pub points: i64,
}

/// An officer gave points to a charity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsDonated {
    /// The officer who donated.
    pub user_id: Uuid,
    pub charity_id: Uuid,
    pub points: i64,
}

/// A user's balance grew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsCredited {
    pub user_id: Uuid,
    pub points: i64,
    pub source: PointsSource,
    /// The `award_id` of an award, or the id of the donation received.
    pub reference: String,
}

/// Where credited points came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointsSource {
    Award,
    Donation,
}

crate::impl_from_events!(
    PointsEvent: PointsReserved,
    PointsSpent,
    PointsReleased,
    PointsRefunded,
    PointsDonated,
    PointsCredited,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<PointsEvent>(&[
            include_str!("../tests/fixtures/user-points/points_reserved.json"),
            include_str!("../tests/fixtures/user-points/points_spent.json"),
            include_str!("../tests/fixtures/user-points/points_released.json"),
            include_str!("../tests/fixtures/user-points/points_refunded.json"),
            include_str!("../tests/fixtures/user-points/points_donated.json"),
            include_str!("../tests/fixtures/user-points/points_credited.json"),
        ]);
    }
}
