//! The ledger's queries. Each takes the caller's connection (usually a
//! transaction), so a change, its ledger entry and its outbox event commit
//! together.

use shared_events::points::{PointsCredited, PointsEvent, PointsSource};
use shared_events::Envelope;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{Award, AwardOutcome, Balance, EntryKind, LedgerEntry, NewAward};

/// Credits `award` unless its `award_id` was credited before.
#[tracing::instrument(skip_all, fields(award_id = %award.award_id, user_id = %award.user_id))]
pub async fn credit_award(
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

    sqlx::query(
        "INSERT INTO accounts (user_id, available, awarded) VALUES ($1, $2, $2)
         ON CONFLICT (user_id) DO UPDATE
         SET available = accounts.available + EXCLUDED.available,
             awarded = accounts.awarded + EXCLUDED.awarded,
             updated_at = now()",
    )
    .bind(award.user_id)
    .bind(award.points.get())
    .execute(&mut *conn)
    .await?;
    append_entry(
        conn,
        award.user_id,
        EntryKind::Awarded,
        award.points.get(),
        None,
        &award.award_id.to_string(),
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

async fn append_entry(
    conn: &mut PgConnection,
    user_id: Uuid,
    kind: EntryKind,
    points: i64,
    order_id: Option<Uuid>,
    reference: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ledger_entries (id, user_id, kind, points, order_id, reference)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(kind_to_row(kind))
    .bind(points)
    .bind(order_id)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// The user's balance; all zeros for a user the ledger has never seen.
#[tracing::instrument(skip(conn))]
pub async fn balance(conn: &mut PgConnection, user_id: Uuid) -> Result<Balance, sqlx::Error> {
    let row = sqlx::query(
        "SELECT available, reserved, awarded + received AS earned, spent - refunded AS net_spent
         FROM accounts WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        Some(row) => Balance {
            user_id,
            available: row.get("available"),
            reserved: row.get("reserved"),
            lifetime_earned: row.get("earned"),
            lifetime_spent: row.get("net_spent"),
        },
        None => Balance {
            user_id,
            available: 0,
            reserved: 0,
            lifetime_earned: 0,
            lifetime_spent: 0,
        },
    })
}

/// Up to `limit` of the user's ledger entries before `before_seq`, newest
/// first, each with its `seq` (the key the ledger pages by).
#[tracing::instrument(skip(conn))]
pub async fn ledger_page(
    conn: &mut PgConnection,
    user_id: Uuid,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, LedgerEntry)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, id, kind, points, order_id, reference, created_at FROM ledger_entries
         WHERE user_id = $1 AND ($2::BIGINT IS NULL OR seq < $2)
         ORDER BY seq DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let kind: String = row.get("kind");
            Ok((
                row.get("seq"),
                LedgerEntry {
                    id: row.get("id"),
                    kind: kind_from_row(&kind)?,
                    points: row.get("points"),
                    order_id: row.get("order_id"),
                    reference: row.get("reference"),
                    created_at: row.get("created_at"),
                },
            ))
        })
        .collect()
}

/// The `kind` column's spelling of each entry kind; its CHECK lists the same.
fn kind_to_row(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Awarded => "awarded",
        EntryKind::Reserved => "reserved",
        EntryKind::Released => "released",
        EntryKind::Spent => "spent",
        EntryKind::Refunded => "refunded",
        EntryKind::Donated => "donated",
        EntryKind::Received => "received",
    }
}

fn kind_from_row(kind: &str) -> Result<EntryKind, sqlx::Error> {
    Ok(match kind {
        "awarded" => EntryKind::Awarded,
        "reserved" => EntryKind::Reserved,
        "released" => EntryKind::Released,
        "spent" => EntryKind::Spent,
        "refunded" => EntryKind::Refunded,
        "donated" => EntryKind::Donated,
        "received" => EntryKind::Received,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown ledger entry kind {other:?}").into(),
            ))
        }
    })
}
