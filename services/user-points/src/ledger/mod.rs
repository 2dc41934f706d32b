//! What moves points besides awards: reservations for checkout and the
//! order's commands on them (`reservations`), and officers' donations
//! (`donations`).
//!
//! Each operation runs in the caller's transaction: the domain rule decides,
//! `store` writes the reservation, the account change and its ledger entry,
//! and the event that announces each movement goes into the outbox. So a
//! balance, its ledger and `heyblue.points.v1` never disagree.

pub mod donations;
pub mod reservations;
