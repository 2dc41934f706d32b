//! What the connection capability publishes on `heyblue.connection.v1`. It
//! lives outside this system; this module is our reading of its contract.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{EventFamily, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum ConnectionEvent {
    PointsAwarded(PointsAwarded),
}

impl EventFamily for ConnectionEvent {
    const TOPIC: Topic = Topic::Connection;
    const PRODUCER: &'static str = "connection";
    const EVENT_TYPES: &'static [&'static str] = &["points_awarded"];

    fn event_type(&self) -> &'static str {
        match self {
            ConnectionEvent::PointsAwarded(_) => "points_awarded",
        }
    }

    fn partition_key(&self) -> String {
        match self {
            ConnectionEvent::PointsAwarded(e) => e.user_id.to_string(),
        }
    }
}

/// A user earned points for a connection. `award_id` makes crediting
/// idempotent: the same award seen twice is credited once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsAwarded {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub reason: String,
    pub connection_id: Uuid,
}

crate::impl_from_events!(ConnectionEvent: PointsAwarded);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<ConnectionEvent>(&[include_str!(
            "../tests/fixtures/connection/points_awarded.json"
        )]);
    }
}
