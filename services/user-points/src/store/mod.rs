//! The ledger's queries. Each takes the caller's connection (usually a
//! transaction), so a change, its ledger entry and its outbox event commit
//! together. Accounts and the ledger are here; each other table has its
//! module.

pub mod awards;
pub mod charities;
pub mod donations;
pub mod reservations;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{Balance, EntryKind, LedgerEntry, Movement};

/// Writes `movement`: its change to the user's account totals (opening the
/// account on first use) and its ledger entry. A movement that would overdraw
/// the account breaks `accounts_available_not_negative`.
#[tracing::instrument(skip_all, fields(user_id = %movement.user_id, kind = ?movement.kind, points = movement.points))]
pub async fn apply(conn: &mut PgConnection, movement: &Movement) -> Result<(), sqlx::Error> {
    if change_account(conn, movement).await? {
        return Ok(());
    }
    // Not one upsert: PostgreSQL checks an upsert's proposed row before it
    // finds the conflict, so a debit (a negative proposed row) would fail
    // even against an account that covers it. An empty account, opened
    // first, leaves the decision to the same update and its constraint.
    sqlx::query("INSERT INTO accounts (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING")
        .bind(movement.user_id)
        .execute(&mut *conn)
        .await?;
    if change_account(conn, movement).await? {
        Ok(())
    } else {
        Err(sqlx::Error::RowNotFound)
    }
}

/// Changes the user's account totals by `movement` and appends its ledger
/// entry, in one statement: the entry is inserted from the updated row, so
/// an account and the entries that explain it never disagree. `false` (and
/// nothing written) when the user has no account yet.
async fn change_account(conn: &mut PgConnection, movement: &Movement) -> Result<bool, sqlx::Error> {
    let change = movement.kind.change(movement.points);
    let written = sqlx::query(
        "WITH account AS (
             UPDATE accounts
             SET available = available + $2, reserved = reserved + $3, awarded = awarded + $4,
                 received = received + $5, spent = spent + $6, refunded = refunded + $7,
                 donated = donated + $8, updated_at = now()
             WHERE user_id = $1
             RETURNING user_id
         )
         INSERT INTO ledger_entries (id, user_id, kind, points, order_id, reference)
         SELECT $9, user_id, $10, $11, $12, $13 FROM account",
    )
    .bind(movement.user_id)
    .bind(change.available)
    .bind(change.reserved)
    .bind(change.awarded)
    .bind(change.received)
    .bind(change.spent)
    .bind(change.refunded)
    .bind(change.donated)
    .bind(Uuid::now_v7())
    .bind(kind_to_row(movement.kind))
    .bind(movement.points)
    .bind(movement.order_id)
    .bind(&movement.reference)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written == 1)
}

/// The user's available points, with their account locked until the
/// transaction ends (0 for a user without an account).
pub async fn lock_available(conn: &mut PgConnection, user_id: Uuid) -> Result<i64, sqlx::Error> {
    let available: Option<i64> =
        sqlx::query_scalar("SELECT available FROM accounts WHERE user_id = $1 FOR UPDATE")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(available.unwrap_or(0))
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
