//! Registered charities.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{Charity, CharityOutcome, NewCharity};

/// Registers `charity` (and opens its account) unless its id is taken.
#[tracing::instrument(skip_all, fields(charity_id = %charity.charity_id))]
pub async fn register(
    conn: &mut PgConnection,
    charity: &NewCharity,
) -> Result<CharityOutcome, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO charities (charity_id, name) VALUES ($1, $2)
         ON CONFLICT (charity_id) DO NOTHING
         RETURNING charity_id, name, created_at",
    )
    .bind(charity.charity_id)
    .bind(&charity.name)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = inserted {
        sqlx::query("INSERT INTO accounts (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING")
            .bind(charity.charity_id)
            .execute(&mut *conn)
            .await?;
        return Ok(CharityOutcome::Registered(from_row(&row)));
    }
    let row =
        sqlx::query("SELECT charity_id, name, created_at FROM charities WHERE charity_id = $1")
            .bind(charity.charity_id)
            .fetch_one(conn)
            .await?;
    let existing = from_row(&row);
    Ok(if existing.name == charity.name {
        CharityOutcome::AlreadyRegistered(existing)
    } else {
        CharityOutcome::Conflict(existing)
    })
}

/// The key the charity list is sorted and paged by.
pub type CharityKey = (String, Uuid);

/// Up to `limit` charities after `after` in (name, id) order, each with its
/// key.
#[tracing::instrument(skip(conn))]
pub async fn page(
    conn: &mut PgConnection,
    after: Option<&CharityKey>,
    limit: i64,
) -> Result<Vec<(CharityKey, Charity)>, sqlx::Error> {
    let (after_name, after_id) = after.cloned().unzip();
    let rows = sqlx::query(
        "SELECT charity_id, name, created_at FROM charities
         WHERE $1::TEXT IS NULL OR (name, charity_id) > ($1, $2)
         ORDER BY name, charity_id
         LIMIT $3",
    )
    .bind(after_name)
    .bind(after_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let charity = from_row(row);
            ((charity.name.clone(), charity.charity_id), charity)
        })
        .collect())
}

fn from_row(row: &PgRow) -> Charity {
    Charity {
        charity_id: row.get("charity_id"),
        name: row.get("name"),
        created_at: row.get("created_at"),
    }
}
