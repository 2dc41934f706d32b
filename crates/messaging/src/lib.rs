//! Reliable messaging for the fleet; the only crate that talks to Kafka.
//!
//! - [`outbox`]: a service writes its state change and the event row in one
//!   database transaction ([`outbox::enqueue`]).
//! - [`relay`]: woken by that write ([`wake`], in-process, so commits do not
//!   queue behind `NOTIFY`), publishes the rows in id order with an
//!   idempotent producer and marks them sent.
//! - [`consumer`]: decodes, dedupes by `event_id` in an inbox table inside the
//!   handler's transaction, stores the offset only after that commit, retries
//!   transient failures and dead-letters the rest to `<topic>.dlq`.
//!
//! Services only write handlers and register them; the loop, dedupe, retry,
//! dead letters and shutdown live here once.

pub mod consumer;
pub mod embedded;
pub mod inspect;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod produce_rate;
pub mod producer;
pub mod relay;
pub mod schema;
pub mod wake;

pub use consumer::{
    ConsumerConfig, ConsumerReadiness, ConsumerRunner, Handler, HandlerError, RetryPolicy,
};
pub use metrics::MessagingMetrics;
pub use relay::{Relay, RelayConfig};
pub use trace_context::TraceParent;
