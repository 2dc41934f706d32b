//! Donations: an officer gives points to a registered charity, in one
//! transfer.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Points, PointsError, MAX_MOVED_POINTS};

/// A donation an officer asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDonation {
    pub donation_id: Uuid,
    pub officer_id: Uuid,
    pub charity_id: Uuid,
    pub points: Points,
}

impl NewDonation {
    pub fn new(officer_id: Uuid, charity_id: Uuid, points: i64) -> Result<Self, PointsError> {
        Ok(NewDonation {
            donation_id: Uuid::now_v7(),
            officer_id,
            charity_id,
            points: Points::new(points, MAX_MOVED_POINTS)?,
        })
    }
}

/// A donation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    pub donation_id: Uuid,
    pub officer_id: Uuid,
    pub charity_id: Uuid,
    pub points: i64,
    pub created_at: OffsetDateTime,
}
