//! The ledger's rules and types, free of HTTP and SQL: how each kind of
//! entry changes an account (here), awards, reservations for checkout,
//! charities and donations (one module each).

mod award;
mod charity;
mod donation;
mod reservation;

pub use award::{Award, AwardError, AwardOutcome, NewAward};
pub use charity::{Charity, CharityError, CharityOutcome, NewCharity};
pub use donation::{Donation, NewDonation};
pub use reservation::{
    Binding, Bound, CommandRefused, Move, NewReservation, ReleasedBy, Reservation,
    ReservationError, ReservationState, MAX_TTL_SECONDS,
};

use time::OffsetDateTime;
use uuid::Uuid;

/// The most points one award may carry.
pub const MAX_AWARD_POINTS: i64 = 100_000_000;
/// The most points one reservation or donation may move: far above any
/// balance, far below where sums of them could overflow.
pub const MAX_MOVED_POINTS: i64 = 1_000_000_000_000;

/// Why a number of points was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error("points must be at least 1, not {0}")]
    TooFew(i64),
    #[error("points must be at most {max}, not {points}")]
    TooMany { points: i64, max: i64 },
}

/// A positive number of points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Points(i64);

impl Points {
    pub fn new(points: i64, max: i64) -> Result<Self, PointsError> {
        if points < 1 {
            Err(PointsError::TooFew(points))
        } else if points > max {
            Err(PointsError::TooMany { points, max })
        } else {
            Ok(Points(points))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A user's points, as `GET /v1/points/balance` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub user_id: Uuid,
    pub available: i64,
    pub reserved: i64,
    /// Awarded plus received.
    pub lifetime_earned: i64,
    /// Spent minus refunded.
    pub lifetime_spent: i64,
}

/// Why a ledger entry changed the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Awarded,
    Reserved,
    Released,
    Spent,
    Refunded,
    Donated,
    Received,
}

impl EntryKind {
    /// How an entry of this kind for `points` changes the account's totals.
    /// Every kind keeps `available + reserved = awarded + received −
    /// (spent − refunded) − donated`; the database checks it as well.
    pub fn change(self, points: i64) -> AccountChange {
        let none = AccountChange::default();
        match self {
            EntryKind::Awarded => AccountChange {
                available: points,
                awarded: points,
                ..none
            },
            EntryKind::Reserved => AccountChange {
                available: -points,
                reserved: points,
                ..none
            },
            EntryKind::Released => AccountChange {
                available: points,
                reserved: -points,
                ..none
            },
            EntryKind::Spent => AccountChange {
                reserved: -points,
                spent: points,
                ..none
            },
            EntryKind::Refunded => AccountChange {
                available: points,
                refunded: points,
                ..none
            },
            EntryKind::Donated => AccountChange {
                available: -points,
                donated: points,
                ..none
            },
            EntryKind::Received => AccountChange {
                available: points,
                received: points,
                ..none
            },
        }
    }
}

/// What one entry adds to each of an account's running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountChange {
    pub available: i64,
    pub reserved: i64,
    pub awarded: i64,
    pub received: i64,
    pub spent: i64,
    pub refunded: i64,
    pub donated: i64,
}

/// A change to make to one account: the entry that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub user_id: Uuid,
    pub kind: EntryKind,
    /// Always positive; `kind` says which way the points go.
    pub points: i64,
    pub order_id: Option<Uuid>,
    /// The id of what caused it: award, reservation, refund or donation.
    pub reference: String,
}

/// One change to an account, as the ledger explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub kind: EntryKind,
    pub points: i64,
    pub order_id: Option<Uuid>,
    pub reference: Option<String>,
    pub created_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_kind_keeps_the_balance_identity() {
        for kind in [
            EntryKind::Awarded,
            EntryKind::Reserved,
            EntryKind::Released,
            EntryKind::Spent,
            EntryKind::Refunded,
            EntryKind::Donated,
            EntryKind::Received,
        ] {
            let c = kind.change(7);
            assert_eq!(
                c.available + c.reserved,
                c.awarded + c.received - (c.spent - c.refunded) - c.donated,
                "{kind:?}"
            );
            assert_ne!(c, AccountChange::default(), "{kind:?} changes something");
        }
    }
}
