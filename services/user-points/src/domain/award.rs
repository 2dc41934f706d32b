//! Awards: points credited once per `award_id`, whoever delivers them (the
//! connection capability's event or an admin).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Points, PointsError, MAX_AWARD_POINTS};

const MAX_REASON_CHARS: usize = 500;

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
