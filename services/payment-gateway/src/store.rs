//! The gateway's queries. Each takes the caller's connection (usually a
//! transaction), so a change, the job that calls the provider about it and
//! its outbox event commit together. Rows are read into the domain types of
//! `domain`; the column spellings live here alone.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{
    Authorization, AuthorizationId, AuthorizationState, CallState, Capture, Currency, CustomerId,
    Money, Refund, RefundId,
};
use crate::providers::CustomerVerdict;

const AUTHORIZATION_COLUMNS: &str = "authorization_id, order_id, checkout_id, customer_id, \
     provider, payment_method, provider_reference, amount_minor, currency, return_url, \
     redirect_url, state, decline_code, created_at, updated_at";

/// What came of recording a new authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationInsert {
    Inserted,
    /// The order was voided: nothing was recorded, and nothing may be.
    OrderVoided,
    /// The order has an authorization already: nothing was recorded.
    OrderHasOne,
}

/// Records an authorization about to be asked of its provider (`pending`),
/// unless its order was voided or has one already. The void mark is read
/// (key share locked, so it stays while the statement's transaction lasts)
/// and the row inserted in one statement: recording needs no transaction of
/// its own.
#[tracing::instrument(skip_all, fields(authorization_id = %authorization.authorization_id, order_id = %authorization.order_id))]
pub async fn insert_authorization_unless_voided(
    conn: &mut PgConnection,
    authorization: &Authorization,
) -> Result<AuthorizationInsert, sqlx::Error> {
    let (voided, inserted): (bool, bool) = sqlx::query_as(
        "WITH voided AS (
             SELECT order_id FROM order_voids WHERE order_id = $2 FOR KEY SHARE
         ), inserted AS (
             INSERT INTO authorizations (authorization_id, order_id, checkout_id, customer_id,
                 provider, payment_method, provider_reference, amount_minor, currency,
                 return_url, redirect_url, state, decline_code)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13
             WHERE NOT EXISTS (SELECT 1 FROM voided)
             ON CONFLICT (order_id) DO NOTHING
             RETURNING authorization_id
         )
         SELECT EXISTS (SELECT 1 FROM voided), EXISTS (SELECT 1 FROM inserted)",
    )
    .bind(authorization.authorization_id.0)
    .bind(authorization.order_id)
    .bind(authorization.checkout_id)
    .bind(authorization.customer_id.0)
    .bind(&authorization.provider)
    .bind(&authorization.payment_method)
    .bind(&authorization.provider_reference)
    .bind(authorization.amount.amount_minor())
    .bind(authorization.amount.currency().as_str())
    .bind(&authorization.return_url)
    .bind(&authorization.redirect_url)
    .bind(authorization.state.as_str())
    .bind(&authorization.decline_code)
    .fetch_one(conn)
    .await?;
    Ok(match (voided, inserted) {
        (true, _) => AuthorizationInsert::OrderVoided,
        (false, true) => AuthorizationInsert::Inserted,
        (false, false) => AuthorizationInsert::OrderHasOne,
    })
}

/// The authorization, if it exists.
#[tracing::instrument(skip(conn))]
pub async fn authorization(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<Authorization>, sqlx::Error> {
    authorization_where(conn, "authorization_id = $1", authorization_id.0).await
}

/// The authorization, locked until the transaction ends.
#[tracing::instrument(skip(conn))]
pub async fn lock_authorization(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<Authorization>, sqlx::Error> {
    authorization_where(conn, "authorization_id = $1 FOR UPDATE", authorization_id.0).await
}

/// The order's authorization, locked until the transaction ends.
#[tracing::instrument(skip(conn))]
pub async fn lock_authorization_of_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Authorization>, sqlx::Error> {
    authorization_where(conn, "order_id = $1 FOR UPDATE", order_id).await
}

/// The authorization, locked until the transaction ends, and whether this
/// call recorded its capture (`pending`, of `amount_minor`): `false` when
/// one was recorded before, or when the authorization is not `order_id`'s
/// (nothing is recorded then). The authorization's lock is taken before
/// the capture's, as everywhere both are taken.
#[tracing::instrument(skip(conn))]
pub async fn lock_authorization_recording_capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    order_id: Uuid,
    amount_minor: i64,
) -> Result<Option<(Authorization, bool)>, sqlx::Error> {
    let Some(row) = sqlx::query(&format!(
        "WITH target AS (
             SELECT {AUTHORIZATION_COLUMNS} FROM authorizations
             WHERE authorization_id = $1 FOR UPDATE
         ), recorded AS (
             INSERT INTO captures (authorization_id, amount_minor)
             SELECT authorization_id, $3 FROM target WHERE order_id = $2
             ON CONFLICT (authorization_id) DO NOTHING
             RETURNING authorization_id
         )
         SELECT target.*, EXISTS (SELECT 1 FROM recorded) AS capture_recorded FROM target"
    ))
    .bind(authorization_id.0)
    .bind(order_id)
    .bind(amount_minor)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let recorded = row.try_get("capture_recorded")?;
    Ok(Some((authorization_from_row(row)?, recorded)))
}

/// The authorization with its capture, if it has one, read together.
#[tracing::instrument(skip(conn))]
pub async fn authorization_with_capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<(Authorization, Option<Capture>)>, sqlx::Error> {
    // The capture's columns are renamed (`capture_state`, …) so that the
    // authorization's, unqualified, name the authorization's alone.
    let Some(row) = sqlx::query(&format!(
        "SELECT {AUTHORIZATION_COLUMNS}, capture.*
         FROM authorizations
         LEFT JOIN LATERAL (
             SELECT authorization_id AS capture_authorization_id,
                 amount_minor AS capture_amount_minor, state AS capture_state,
                 transaction_id AS capture_transaction_id, attempts AS capture_attempts,
                 last_error AS capture_last_error, updated_at AS capture_updated_at
             FROM captures WHERE captures.authorization_id = authorizations.authorization_id
         ) capture ON true
         WHERE authorization_id = $1"
    ))
    .bind(authorization_id.0)
    .fetch_optional(conn)
    .await?
    else {
        return Ok(None);
    };
    let capture_state: Option<String> = row.try_get("capture_state")?;
    let capture = match capture_state {
        Some(_) => Some(capture_from_columns(&row, "capture_")?),
        None => None,
    };
    Ok(Some((authorization_from_row(row)?, capture)))
}

/// The authorization whose provider handle is `reference`.
#[tracing::instrument(skip(conn))]
pub async fn lock_authorization_by_reference(
    conn: &mut PgConnection,
    provider: &str,
    reference: &str,
) -> Result<Option<Authorization>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {AUTHORIZATION_COLUMNS} FROM authorizations
         WHERE provider = $1 AND provider_reference = $2 FOR UPDATE"
    ))
    .bind(provider)
    .bind(reference)
    .fetch_optional(conn)
    .await?
    .map(authorization_from_row)
    .transpose()
}

async fn authorization_where(
    conn: &mut PgConnection,
    condition: &str,
    id: Uuid,
) -> Result<Option<Authorization>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {AUTHORIZATION_COLUMNS} FROM authorizations WHERE {condition}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(authorization_from_row)
    .transpose()
}

/// Writes back the provider's answer and the state it leads to.
#[tracing::instrument(skip_all, fields(authorization_id = %authorization.authorization_id, state = authorization.state.as_str()))]
pub async fn save_authorization(
    conn: &mut PgConnection,
    authorization: &Authorization,
) -> Result<(), sqlx::Error> {
    write_authorization(conn, authorization, "").await?;
    Ok(())
}

/// Writes back the provider's answer and the state it leads to, unless the
/// order was voided: `false` then, and nothing is written. Call it with the
/// authorization locked: the statement then sees an order void committed
/// while the lock was awaited (a check made in the statement that took the
/// lock would not). The void mark is key share locked, as at insertion.
#[tracing::instrument(skip_all, fields(authorization_id = %authorization.authorization_id, state = authorization.state.as_str()))]
pub async fn save_authorization_unless_order_voided(
    conn: &mut PgConnection,
    authorization: &Authorization,
) -> Result<bool, sqlx::Error> {
    let saved = write_authorization(
        conn,
        authorization,
        "AND NOT EXISTS (
             SELECT 1 FROM order_voids WHERE order_voids.order_id = authorizations.order_id
             FOR KEY SHARE
         )",
    )
    .await?;
    Ok(saved == 1)
}

/// Writes the authorization's answer and state where `condition` (SQL
/// after its id's match) holds; returns how many rows were written.
async fn write_authorization(
    conn: &mut PgConnection,
    authorization: &Authorization,
    condition: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(&format!(
        "UPDATE authorizations
         SET provider_reference = $2, redirect_url = $3, state = $4, decline_code = $5,
             updated_at = now()
         WHERE authorization_id = $1 {condition}"
    ))
    .bind(authorization.authorization_id.0)
    .bind(&authorization.provider_reference)
    .bind(&authorization.redirect_url)
    .bind(authorization.state.as_str())
    .bind(&authorization.decline_code)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Forgets an authorization whose provider could not be reached: nothing
/// was held, and the order may ask again.
#[tracing::instrument(skip(conn))]
pub async fn delete_pending_authorization(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM authorizations WHERE authorization_id = $1 AND state = 'pending'")
        .bind(authorization_id.0)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records that `authorization_id`'s provider call went out and its answer
/// was lost: the authorization stays pending until a job has the answer.
#[tracing::instrument(skip(conn, detail))]
pub async fn insert_unanswered(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO unanswered_authorizations (authorization_id, detail) VALUES ($1, $2)
         ON CONFLICT (authorization_id) DO NOTHING",
    )
    .bind(authorization_id.0)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether `authorization_id`'s provider answer was lost once (and a job
/// asks the provider for it until it is settled).
#[tracing::instrument(skip(conn))]
pub async fn is_unanswered(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM unanswered_authorizations WHERE authorization_id = $1)",
    )
    .bind(authorization_id.0)
    .fetch_one(conn)
    .await
}

/// Leaves the mark that voids whatever authorization the order has, now or
/// when it arrives.
#[tracing::instrument(skip(conn))]
pub async fn mark_order_voided(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO order_voids (order_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the void of an authorization, once: `false` when it was recorded
/// before.
#[tracing::instrument(skip(conn))]
pub async fn insert_void(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO voids (authorization_id) VALUES ($1) ON CONFLICT (authorization_id) DO NOTHING",
    )
    .bind(authorization_id.0)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether the provider call of the authorization's void is still to make;
/// `None` when no void was recorded. The row is locked.
#[tracing::instrument(skip(conn))]
pub async fn lock_void_pending(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<bool>, sqlx::Error> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM voids WHERE authorization_id = $1 FOR UPDATE")
            .bind(authorization_id.0)
            .fetch_optional(conn)
            .await?;
    Ok(state.map(|state| state == "pending"))
}

/// Counts a void call that failed, with why.
#[tracing::instrument(skip(conn))]
pub async fn void_attempt_failed(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE voids SET attempts = attempts + 1, last_error = $2, updated_at = now()
         WHERE authorization_id = $1",
    )
    .bind(authorization_id.0)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The provider released the authorization.
#[tracing::instrument(skip(conn))]
pub async fn void_done(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE voids SET state = 'done', attempts = attempts + 1, updated_at = now()
         WHERE authorization_id = $1",
    )
    .bind(authorization_id.0)
    .execute(conn)
    .await?;
    Ok(())
}

const CAPTURE_COLUMNS: &str =
    "authorization_id, amount_minor, state, transaction_id, attempts, last_error, updated_at";

/// The authorization's capture, if any.
#[tracing::instrument(skip(conn))]
pub async fn capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<Capture>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {CAPTURE_COLUMNS} FROM captures WHERE authorization_id = $1"
    ))
    .bind(authorization_id.0)
    .fetch_optional(conn)
    .await?
    .map(capture_from_row)
    .transpose()
}

/// Counts a capture call, before it is made.
#[tracing::instrument(skip(conn))]
pub async fn count_capture_attempt(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE captures SET attempts = attempts + 1, updated_at = now()
         WHERE authorization_id = $1",
    )
    .bind(authorization_id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records why a capture call failed.
#[tracing::instrument(skip(conn))]
pub async fn capture_attempt_failed(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE captures SET last_error = $2, updated_at = now() WHERE authorization_id = $1",
    )
    .bind(authorization_id.0)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the provider took `amount_minor` (recording the capture if
/// none was) and marks the authorization captured, unless the capture
/// succeeded before: `false` then, and nothing is written. Call it with the
/// authorization locked.
#[tracing::instrument(skip(conn))]
pub async fn record_capture_succeeded(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    amount_minor: i64,
    transaction_id: &str,
) -> Result<bool, sqlx::Error> {
    let captured = sqlx::query(
        "WITH succeeded AS (
             INSERT INTO captures (authorization_id, amount_minor, state, transaction_id)
             VALUES ($1, $2, 'succeeded', $3)
             ON CONFLICT (authorization_id) DO UPDATE
             SET amount_minor = EXCLUDED.amount_minor, state = EXCLUDED.state,
                 transaction_id = EXCLUDED.transaction_id, last_error = NULL,
                 updated_at = now()
             WHERE captures.state <> 'succeeded'
             RETURNING authorization_id
         )
         UPDATE authorizations SET state = 'captured', updated_at = now()
         WHERE authorization_id IN (SELECT authorization_id FROM succeeded)",
    )
    .bind(authorization_id.0)
    .bind(amount_minor)
    .bind(transaction_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(captured == 1)
}

/// Marks a pending capture failed, with why: `false` when there is no
/// capture or it is not pending (nothing is written then).
#[tracing::instrument(skip(conn))]
pub async fn fail_pending_capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let failed = sqlx::query(
        "UPDATE captures SET state = 'failed', last_error = $2, updated_at = now()
         WHERE authorization_id = $1 AND state = 'pending'",
    )
    .bind(authorization_id.0)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(failed == 1)
}

const REFUND_COLUMNS: &str = "refund_id, authorization_id, order_id, business_id, amount_minor, \
     currency, reason, state, attempts, last_error, updated_at";

/// Records a refund, once per `refund_id`: `false` when it was recorded
/// before.
#[tracing::instrument(skip_all, fields(refund_id = %refund.refund_id))]
pub async fn insert_refund(conn: &mut PgConnection, refund: &Refund) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO refunds (refund_id, authorization_id, order_id, business_id, amount_minor,
             currency, reason, state, attempts, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (refund_id) DO NOTHING",
    )
    .bind(refund.refund_id.0)
    .bind(refund.authorization_id.0)
    .bind(refund.order_id)
    .bind(refund.business_id)
    .bind(refund.amount_minor)
    .bind(&refund.currency)
    .bind(&refund.reason)
    .bind(refund.state.as_str())
    .bind(refund.attempts)
    .bind(&refund.last_error)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The refund, locked until the transaction ends.
#[tracing::instrument(skip(conn))]
pub async fn lock_refund(
    conn: &mut PgConnection,
    refund_id: RefundId,
) -> Result<Option<Refund>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE refund_id = $1 FOR UPDATE"
    ))
    .bind(refund_id.0)
    .fetch_optional(conn)
    .await?
    .map(refund_from_row)
    .transpose()
}

/// Counts a refund call, before it is made.
#[tracing::instrument(skip(conn))]
pub async fn count_refund_attempt(
    conn: &mut PgConnection,
    refund_id: RefundId,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refunds SET attempts = attempts + 1, updated_at = now() WHERE refund_id = $1",
    )
    .bind(refund_id.0)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records why a refund call failed.
#[tracing::instrument(skip(conn))]
pub async fn refund_attempt_failed(
    conn: &mut PgConnection,
    refund_id: RefundId,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refunds SET last_error = $2, updated_at = now() WHERE refund_id = $1")
        .bind(refund_id.0)
        .bind(error)
        .execute(conn)
        .await?;
    Ok(())
}

/// The authorization's refunds, oldest first.
#[tracing::instrument(skip(conn))]
pub async fn refunds_of(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Vec<Refund>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE authorization_id = $1
         ORDER BY created_at, refund_id"
    ))
    .bind(authorization_id.0)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(refund_from_row)
    .collect()
}

/// Writes back how the refund stands.
#[tracing::instrument(skip_all, fields(refund_id = %refund.refund_id, state = refund.state.as_str()))]
pub async fn save_refund(conn: &mut PgConnection, refund: &Refund) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE refunds SET state = $2, attempts = $3, last_error = $4, updated_at = now()
         WHERE refund_id = $1",
    )
    .bind(refund.refund_id.0)
    .bind(refund.state.as_str())
    .bind(refund.attempts)
    .bind(&refund.last_error)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a verified webhook once per (provider, provider event id):
/// `false` when it was delivered before.
#[tracing::instrument(skip(conn, event))]
pub async fn insert_webhook_event(
    conn: &mut PgConnection,
    provider: &str,
    provider_event_id: &str,
    event_type: &str,
    event: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_events (provider, provider_event_id, event_type, event)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT ON CONSTRAINT webhook_events_once_per_provider_event DO NOTHING",
    )
    .bind(provider)
    .bind(provider_event_id)
    .bind(event_type)
    .bind(event)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// A stored webhook not processed yet, locked; `None` once processed.
#[tracing::instrument(skip(conn))]
pub async fn lock_unprocessed_webhook(
    conn: &mut PgConnection,
    provider: &str,
    provider_event_id: &str,
) -> Result<Option<serde_json::Value>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT event FROM webhook_events
         WHERE provider = $1 AND provider_event_id = $2 AND processed_at IS NULL
         FOR UPDATE",
    )
    .bind(provider)
    .bind(provider_event_id)
    .fetch_optional(conn)
    .await
}

#[tracing::instrument(skip(conn))]
pub async fn webhook_processed(
    conn: &mut PgConnection,
    provider: &str,
    provider_event_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_events SET processed_at = now()
         WHERE provider = $1 AND provider_event_id = $2",
    )
    .bind(provider)
    .bind(provider_event_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records (or changes) what the customer answered on the sandbox page.
#[tracing::instrument(skip(conn))]
pub async fn record_verdict(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    verdict: CustomerVerdict,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sandbox_verdicts (authorization_id, verdict) VALUES ($1, $2)
         ON CONFLICT (authorization_id) DO UPDATE SET verdict = EXCLUDED.verdict, created_at = now()",
    )
    .bind(authorization_id.0)
    .bind(match verdict {
        CustomerVerdict::Approved => "approved",
        CustomerVerdict::Failed => "failed",
    })
    .execute(conn)
    .await?;
    Ok(())
}

/// What the customer answered on the sandbox page, if they did.
#[tracing::instrument(skip(conn))]
pub async fn verdict(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Option<CustomerVerdict>, sqlx::Error> {
    let verdict: Option<String> =
        sqlx::query_scalar("SELECT verdict FROM sandbox_verdicts WHERE authorization_id = $1")
            .bind(authorization_id.0)
            .fetch_optional(conn)
            .await?;
    Ok(match verdict.as_deref() {
        Some("approved") => Some(CustomerVerdict::Approved),
        Some("failed") => Some(CustomerVerdict::Failed),
        Some(other) => return Err(decode_error("sandbox_verdicts.verdict", other)),
        None => None,
    })
}

fn authorization_from_row(row: PgRow) -> Result<Authorization, sqlx::Error> {
    let state: String = row.try_get("state")?;
    let currency: String = row.try_get("currency")?;
    let currency = Currency::new(&currency).map_err(|e| decode_error("currency", &e))?;
    let amount = Money::new(row.try_get("amount_minor")?, currency)
        .map_err(|e| decode_error("amount_minor", &e))?;
    Ok(Authorization {
        authorization_id: AuthorizationId(row.try_get("authorization_id")?),
        order_id: row.try_get("order_id")?,
        checkout_id: row.try_get("checkout_id")?,
        customer_id: CustomerId(row.try_get("customer_id")?),
        provider: row.try_get("provider")?,
        payment_method: row.try_get("payment_method")?,
        provider_reference: row.try_get("provider_reference")?,
        amount,
        return_url: row.try_get("return_url")?,
        redirect_url: row.try_get("redirect_url")?,
        state: AuthorizationState::parse(&state)
            .ok_or_else(|| decode_error("authorizations.state", &state))?,
        decline_code: row.try_get("decline_code")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn capture_from_row(row: PgRow) -> Result<Capture, sqlx::Error> {
    capture_from_columns(&row, "")
}

/// The capture in `row`'s columns named as the table's with `prefix`.
fn capture_from_columns(row: &PgRow, prefix: &str) -> Result<Capture, sqlx::Error> {
    let column = |name: &str| format!("{prefix}{name}");
    let state: String = row.try_get(column("state").as_str())?;
    Ok(Capture {
        authorization_id: AuthorizationId(row.try_get(column("authorization_id").as_str())?),
        amount_minor: row.try_get(column("amount_minor").as_str())?,
        state: CallState::parse(&state).ok_or_else(|| decode_error("captures.state", &state))?,
        transaction_id: row.try_get(column("transaction_id").as_str())?,
        attempts: row.try_get(column("attempts").as_str())?,
        last_error: row.try_get(column("last_error").as_str())?,
        updated_at: row.try_get(column("updated_at").as_str())?,
    })
}

fn refund_from_row(row: PgRow) -> Result<Refund, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(Refund {
        refund_id: RefundId(row.try_get("refund_id")?),
        authorization_id: AuthorizationId(row.try_get("authorization_id")?),
        order_id: row.try_get("order_id")?,
        business_id: row.try_get("business_id")?,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
        reason: row.try_get("reason")?,
        state: CallState::parse(&state).ok_or_else(|| decode_error("refunds.state", &state))?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn decode_error(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unexpected {column} {value:?}").into())
}
