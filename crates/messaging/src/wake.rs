//! How a relay learns that outbox rows were written, without `NOTIFY`.
//!
//! A `NOTIFY` in the writing transaction would wake the relay exactly at
//! its commit, but PostgreSQL serialises the commits of notifying
//! transactions, fsync included: measured here, eight writers' one-row
//! commits fell from about 8,000/s to about 2,450/s with it. Every
//! service writes its outbox rows in the process that runs its relay, so
//! the write announces itself in-process instead ([`written`]), before its
//! transaction commits; a relay woken so looks again every millisecond or
//! so over the next [`SETTLE`] until the rows show up, and a slow fallback
//! poll covers a commit later than that and rows written by another
//! process. Where the commit is in this crate's hands (the consumer
//! runner), the rows are announced again right after it.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::watch;

/// How long after a write's announcement a relay keeps looking for its
/// rows: longer than a transaction takes from its last write to its
/// commit, which is the fsync.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The pause between looks after an announcement, for the first
/// [`STEADY_LOOKS`] looks (a commit's fsync takes a millisecond or a few);
/// after that each pause is twice the last.
pub const LOOK_AGAIN: Duration = Duration::from_millis(1);

/// How many looks [`LOOK_AGAIN`] apart follow an announcement before the
/// pauses grow.
pub const STEADY_LOOKS: u32 = 8;

/// Counts announcements; every relay of the process watches it.
static WRITTEN: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Announces outbox rows written in a transaction that has not committed
/// yet. Cheap: relays that are busy see one change however many writes
/// came meanwhile.
pub fn written() {
    WRITTEN.send_modify(|count| *count = count.wrapping_add(1));
}

/// What a relay waits on.
pub fn announcements() -> watch::Receiver<u64> {
    WRITTEN.subscribe()
}

/// How many announcements were made so far: a caller that commits a
/// transaction itself (the consumer runner) compares it before and after
/// and, when rows were announced meanwhile, announces again after the
/// commit, when the relay finds them at its first look.
pub fn announced() -> u64 {
    *WRITTEN.borrow()
}
