//! The flat envelope every event travels in, and the trait that ties a
//! producer's event enum to its topic and partition key.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Topic;

/// One producer's family of events: an enum internally tagged by
/// `event_type` (`#[serde(tag = "event_type", rename_all = "snake_case")]`).
pub trait EventFamily: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic this family is published on.
    const TOPIC: Topic;
    /// The `producer` written into the envelope.
    const PRODUCER: &'static str;
    /// Every `event_type` of this family. A consumer skips other types
    /// (newer producers may add some) instead of dead-lettering them.
    const EVENT_TYPES: &'static [&'static str];

    /// This event's `event_type`.
    fn event_type(&self) -> &'static str;

    /// The Kafka key, which keeps all events about one thing in order:
    /// `order_id` for order events, `offering_id` for `offering_changed`,
    /// `user_id` for points events and `points_awarded`.
    fn partition_key(&self) -> String;

    /// The schema version of this event's fields.
    fn event_version(&self) -> u32 {
        1
    }
}

/// The envelope fields alone, readable from any event of any family. A
/// consumer reads these first to tell an unknown `event_type` (skipped) from
/// a known one that fails to decode (dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub event_timestamp: OffsetDateTime,
    pub producer: String,
    pub correlation_id: Uuid,
}

/// An event with its envelope, serialized as one flat JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    pub event_id: Uuid,
    pub event_version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub event_timestamp: OffsetDateTime,
    pub producer: String,
    pub correlation_id: Uuid,
    /// The event's own fields, and its `event_type` tag.
    #[serde(flatten)]
    pub event: E,
}

impl<E: EventFamily> Envelope<E> {
    /// Wraps `event` with a fresh `event_id` and the current time.
    /// `correlation_id` ties together everything caused by one request
    /// (for an order's events, usually the checkout that started it).
    pub fn new(event: E, correlation_id: Uuid) -> Self {
        Envelope {
            event_id: Uuid::new_v4(),
            event_version: event.event_version(),
            event_timestamp: OffsetDateTime::now_utc(),
            producer: E::PRODUCER.to_owned(),
            correlation_id,
            event,
        }
    }

    pub fn event_type(&self) -> &'static str {
        self.event.event_type()
    }

    pub fn partition_key(&self) -> String {
        self.event.partition_key()
    }

    /// The JSON bytes that go on the wire. An event that cannot be written
    /// (say, an amount with no decimal form) is an error for the caller's
    /// transaction, never an empty message.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}
