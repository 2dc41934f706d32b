//! The ledger's rules and types, free of HTTP and SQL.

use time::OffsetDateTime;
use uuid::Uuid;

/// The most points one award may carry.
pub const MAX_AWARD_POINTS: i64 = 100_000_000;
const MAX_REASON_CHARS: usize = 500;

/// Why a number of points was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PointsError {
    #[error("points must be at least 1, not {0}")]
    TooFew(i64),
    #[error("points must be at most {max}, not {points}")]
    TooMany { points: i64, max: i64 },
}

/// Why an award was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AwardError {
    #[error(transparent)]
    Points(#[from] PointsError),
    #[error("reason must not be empty")]
    EmptyReason,
    #[error("reason must be at most {max} characters")]
    ReasonTooLong { max: usize },
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

/// An award to credit once, whoever delivers it (event or admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAward {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: Points,
    pub reason: String,
    pub connection_id: Option<Uuid>,
}

impl NewAward {
    pub fn new(
        award_id: Uuid,
        user_id: Uuid,
        points: i64,
        reason: &str,
        connection_id: Option<Uuid>,
    ) -> Result<Self, AwardError> {
        let points = Points::new(points, MAX_AWARD_POINTS)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AwardError::EmptyReason);
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(AwardError::ReasonTooLong {
                max: MAX_REASON_CHARS,
            });
        }
        Ok(NewAward {
            award_id,
            user_id,
            points,
            reason: reason.to_owned(),
            connection_id,
        })
    }
}

/// A credited award as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub reason: String,
    pub created_at: OffsetDateTime,
}

impl Award {
    /// Whether `other` is the same award delivered again (as opposed to a
    /// different award reusing the id).
    pub fn is_same_as(&self, other: &NewAward) -> bool {
        self.user_id == other.user_id
            && self.points == other.points.get()
            && self.reason == other.reason
    }
}

/// What crediting an award did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwardOutcome {
    Credited(Award),
    /// Delivered before with the same fields: nothing changed.
    AlreadyCredited(Award),
    /// The id was used before for another award: nothing changed.
    Conflict(Award),
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
    fn an_award_needs_positive_bounded_points_and_a_reason() {
        let id = Uuid::new_v4();
        assert_eq!(
            NewAward::new(id, id, 0, "x", None),
            Err(AwardError::Points(PointsError::TooFew(0)))
        );
        assert_eq!(
            NewAward::new(id, id, -5, "x", None),
            Err(AwardError::Points(PointsError::TooFew(-5)))
        );
        assert_eq!(
            NewAward::new(id, id, MAX_AWARD_POINTS + 1, "x", None),
            Err(AwardError::Points(PointsError::TooMany {
                points: MAX_AWARD_POINTS + 1,
                max: MAX_AWARD_POINTS
            }))
        );
        assert_eq!(
            NewAward::new(id, id, 10, "   ", None),
            Err(AwardError::EmptyReason)
        );
        assert_eq!(
            NewAward::new(id, id, 10, &"r".repeat(501), None),
            Err(AwardError::ReasonTooLong { max: 500 })
        );
        let award = NewAward::new(id, id, 10, " helped ", None).expect("valid award");
        assert_eq!(award.reason, "helped");
        assert_eq!(award.points.get(), 10);
    }
}
