//! Awards, credited once per `award_id`.

use shared_events::points::{PointsCredited, PointsEvent, PointsSource};
use shared_events::Envelope;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{Award, AwardOutcome, EntryKind, Movement, NewAward};

/// Credits `award` unless its `award_id` was credited before.
#[tracing::instrument(skip_all, fields(award_id = %award.award_id, user_id = %award.user_id))]
pub async fn credit(
    conn: &mut PgConnection,
    award: &NewAward,
) -> Result<AwardOutcome, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO awards (award_id, user_id, points, reason, connection_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (award_id) DO NOTHING
         RETURNING created_at",
    )
    .bind(award.award_id)
    .bind(award.user_id)
    .bind(award.points.get())
    .bind(&award.reason)
    .bind(award.connection_id)
    .fetch_optional(&mut *conn)
    .await?;

    let Some(row) = inserted else {
        let existing = find_award(conn, award.award_id).await?;
        return Ok(if existing.is_same_as(award) {
            AwardOutcome::AlreadyCredited(existing)
        } else {
            AwardOutcome::Conflict(existing)
        });
    };

    super::apply(
        conn,
        &Movement {
            user_id: award.user_id,
            kind: EntryKind::Awarded,
            points: award.points.get(),
            order_id: None,
            reference: award.award_id.to_string(),
        },
    )
    .await?;
    let credited = PointsEvent::PointsCredited(PointsCredited {
        user_id: award.user_id,
        points: award.points.get(),
        source: PointsSource::Award,
        reference: award.award_id.to_string(),
    });
    messaging::outbox::enqueue(conn, &Envelope::new(credited, award.award_id)).await?;

    Ok(AwardOutcome::Credited(Award {
        award_id: award.award_id,
        user_id: award.user_id,
        points: award.points.get(),
        reason: award.reason.clone(),
        created_at: row.get("created_at"),
    }))
}

async fn find_award(conn: &mut PgConnection, award_id: Uuid) -> Result<Award, sqlx::Error> {
    let row = sqlx::query(
        "SELECT award_id, user_id, points, reason, created_at FROM awards WHERE award_id = $1",
    )
    .bind(award_id)
    .fetch_one(conn)
    .await?;
    Ok(Award {
        award_id: row.get("award_id"),
        user_id: row.get("user_id"),
        points: row.get("points"),
        reason: row.get("reason"),
        created_at: row.get("created_at"),
    })
}
