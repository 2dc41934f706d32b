//! The wire contract between the services: every Kafka topic, the flat event
//! envelope, and one event enum per producing service.
//!
//! Only `serde`, `uuid` and `time` live here, so that any service (or a
//! consumer outside this workspace) can depend on the contract without pulling
//! in a broker client or a database driver.
//!
//! An event on the wire is one flat JSON object: the envelope fields
//! (`event_id`, `event_type`, `event_version`, `event_timestamp`, `producer`,
//! `correlation_id`) followed by the event's own fields. [`Envelope<E>`] is
//! that object; `E` is a producer's event enum, internally tagged by
//! `event_type`.

mod envelope;
mod topic;

pub use envelope::{Envelope, EnvelopeHeader, EventFamily};
pub use topic::Topic;
