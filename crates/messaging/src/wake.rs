//! How the relay learns that outbox rows were written, without `NOTIFY`:
//! [`OUTBOX`] is announced by [`crate::outbox::enqueue`] (and again by the
//! consumer runner after its commit), and watched by the relay. The
//! mechanism and its trade-offs are `write-signal`'s.

/// Outbox rows written in this process.
pub use write_signal::OUTBOX;
pub use write_signal::{hold, Held, Looks, Signal, SETTLE};
