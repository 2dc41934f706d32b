//! The dispatcher's queries. Each takes `&mut PgConnection`, so the caller
//! decides the transaction: a state change, its outbox event and any job it
//! needs commit together. Rows are converted into domain types here.

use shared_events::{Address, Line};
use sqlx::types::Json;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Dispatch, NewDispatch, Status};

const COLUMNS: &str =
    "dispatch_id, order_id, business_id, customer_id, correlation_id, plugin, status, \
     lines, shipping_address, reference, carrier, tracking_number, reason, delivery_attempts, \
     confirm_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct DispatchRow {
    dispatch_id: Uuid,
    order_id: Uuid,
    business_id: Uuid,
    customer_id: Uuid,
    correlation_id: Uuid,
    plugin: String,
    status: String,
    lines: Json<Vec<Line>>,
    shipping_address: Json<Address>,
    reference: Option<String>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    reason: Option<String>,
    delivery_attempts: i32,
    confirm_by: OffsetDateTime,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<DispatchRow> for Dispatch {
    type Error = sqlx::Error;

    fn try_from(row: DispatchRow) -> Result<Self, sqlx::Error> {
        let status = row
            .status
            .parse::<Status>()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        Ok(Dispatch {
            dispatch_id: row.dispatch_id,
            order_id: row.order_id,
            business_id: row.business_id,
            customer_id: row.customer_id,
            correlation_id: row.correlation_id,
            plugin: row.plugin,
            status,
            lines: row.lines.0,
            shipping_address: row.shipping_address.0,
            reference: row.reference,
            carrier: row.carrier,
            tracking_number: row.tracking_number,
            reason: row.reason,
            delivery_attempts: row.delivery_attempts,
            confirm_by: row.confirm_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn convert(rows: Vec<DispatchRow>) -> Result<Vec<Dispatch>, sqlx::Error> {
    rows.into_iter().map(Dispatch::try_from).collect()
}

/// What is known of an order besides its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderMark {
    pub withdrawn: bool,
}

/// Records that the order's parts arrived, holding the order's row lock to
/// the end of the transaction; says whether it was withdrawn first.
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn mark_arrived(
    conn: &mut PgConnection,
    order_id: Uuid,
    now: OffsetDateTime,
) -> Result<OrderMark, sqlx::Error> {
    let withdrawn_at: Option<OffsetDateTime> = sqlx::query_scalar(
        "INSERT INTO orders (order_id, arrived_at) VALUES ($1, $2)
         ON CONFLICT (order_id) DO UPDATE SET arrived_at = COALESCE(orders.arrived_at, EXCLUDED.arrived_at)
         RETURNING withdrawn_at",
    )
    .bind(order_id)
    .bind(now)
    .fetch_one(conn)
    .await?;
    Ok(OrderMark {
        withdrawn: withdrawn_at.is_some(),
    })
}

/// Leaves the mark that the order is withdrawn (kept if it was already),
/// holding the order's row lock to the end of the transaction.
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn mark_withdrawn(
    conn: &mut PgConnection,
    order_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO orders (order_id, withdrawn_at) VALUES ($1, $2)
         ON CONFLICT (order_id) DO UPDATE SET withdrawn_at = COALESCE(orders.withdrawn_at, EXCLUDED.withdrawn_at)",
    )
    .bind(order_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores a new part; `None` when the order's part for that business exists
/// already (the event came again).
#[tracing::instrument(skip_all, fields(order_id = %part.order_id, business_id = %part.business_id))]
pub async fn insert(
    conn: &mut PgConnection,
    part: &NewDispatch,
    plugin: &str,
    status: Status,
    confirm_by: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<Option<Dispatch>, sqlx::Error> {
    let row: Option<DispatchRow> = sqlx::query_as(&format!(
        "INSERT INTO dispatches (dispatch_id, order_id, business_id, customer_id, correlation_id,
             plugin, status, lines, shipping_address, confirm_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
         ON CONFLICT ON CONSTRAINT dispatches_one_per_order_and_business DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(part.order_id)
    .bind(part.business_id)
    .bind(part.customer_id)
    .bind(part.correlation_id)
    .bind(plugin)
    .bind(status.as_str())
    .bind(Json(&part.lines))
    .bind(Json(&part.shipping_address))
    .bind(confirm_by)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(Dispatch::try_from).transpose()
}

/// The business's part of the order, locked for a change.
#[tracing::instrument(skip_all, fields(%order_id, %business_id))]
pub async fn part_for_update(
    conn: &mut PgConnection,
    order_id: Uuid,
    business_id: Uuid,
) -> Result<Option<Dispatch>, sqlx::Error> {
    let row: Option<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches WHERE order_id = $1 AND business_id = $2 FOR UPDATE"
    ))
    .bind(order_id)
    .bind(business_id)
    .fetch_optional(conn)
    .await?;
    row.map(Dispatch::try_from).transpose()
}

/// A part by its id, locked for a change.
#[tracing::instrument(skip_all, fields(%dispatch_id))]
pub async fn by_id_for_update(
    conn: &mut PgConnection,
    dispatch_id: Uuid,
) -> Result<Option<Dispatch>, sqlx::Error> {
    let row: Option<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches WHERE dispatch_id = $1 FOR UPDATE"
    ))
    .bind(dispatch_id)
    .fetch_optional(conn)
    .await?;
    row.map(Dispatch::try_from).transpose()
}

/// A part by its id.
#[tracing::instrument(skip_all, fields(%dispatch_id))]
pub async fn by_id(
    conn: &mut PgConnection,
    dispatch_id: Uuid,
) -> Result<Option<Dispatch>, sqlx::Error> {
    let row: Option<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches WHERE dispatch_id = $1"
    ))
    .bind(dispatch_id)
    .fetch_optional(conn)
    .await?;
    row.map(Dispatch::try_from).transpose()
}

/// Every part of the order, locked for a change, in a fixed order so that
/// two transactions locking them cannot deadlock.
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn parts_of_order_for_update(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Vec<Dispatch>, sqlx::Error> {
    let rows: Vec<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches WHERE order_id = $1 ORDER BY dispatch_id FOR UPDATE"
    ))
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    convert(rows)
}

/// Writes a part's status and what came with it.
#[tracing::instrument(skip_all, fields(dispatch_id = %part.dispatch_id, status = %part.status))]
pub async fn update(conn: &mut PgConnection, part: &Dispatch) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE dispatches
         SET status = $2, reference = $3, carrier = $4, tracking_number = $5, reason = $6,
             delivery_attempts = $7, updated_at = $8
         WHERE dispatch_id = $1",
    )
    .bind(part.dispatch_id)
    .bind(part.status.as_str())
    .bind(&part.reference)
    .bind(&part.carrier)
    .bind(&part.tracking_number)
    .bind(&part.reason)
    .bind(part.delivery_attempts)
    .bind(part.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Remembers a failed delivery try.
#[tracing::instrument(skip_all, fields(%dispatch_id, attempts))]
pub async fn record_failed_attempt(
    conn: &mut PgConnection,
    dispatch_id: Uuid,
    attempts: i32,
    error: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE dispatches SET delivery_attempts = $2, last_error = $3, updated_at = $4
         WHERE dispatch_id = $1",
    )
    .bind(dispatch_id)
    .bind(attempts)
    .bind(error)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// A business's parts, newest first, after the cursor `(created_at, dispatch_id)`.
#[tracing::instrument(skip_all, fields(%business_id, status = status.map(Status::as_str)))]
pub async fn list_for_business(
    conn: &mut PgConnection,
    business_id: Uuid,
    status: Option<Status>,
    after: Option<&(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<Dispatch>, sqlx::Error> {
    let rows: Vec<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches
         WHERE business_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::timestamptz IS NULL OR (created_at, dispatch_id) < ($3, $4))
         ORDER BY created_at DESC, dispatch_id DESC
         LIMIT $5"
    ))
    .bind(business_id)
    .bind(status.map(Status::as_str))
    .bind(after.map(|(at, _)| *at))
    .bind(after.map(|(_, id)| *id))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    convert(rows)
}

/// Parts whose confirmation deadline passed, locked; those another sweep
/// holds are skipped.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn overdue_for_update(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Dispatch>, sqlx::Error> {
    let rows: Vec<DispatchRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM dispatches
         WHERE status IN ('queued', 'sent') AND confirm_by <= $1
         ORDER BY confirm_by
         LIMIT $2
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    convert(rows)
}

/// A business's chosen plugin and its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationRow {
    pub business_id: Uuid,
    pub plugin: String,
    pub config: serde_json::Value,
    pub updated_at: OffsetDateTime,
}

#[tracing::instrument(skip_all, fields(%business_id))]
pub async fn integration(
    conn: &mut PgConnection,
    business_id: Uuid,
) -> Result<Option<IntegrationRow>, sqlx::Error> {
    let row: Option<(String, Json<serde_json::Value>, OffsetDateTime)> = sqlx::query_as(
        "SELECT plugin, config, updated_at FROM integrations WHERE business_id = $1",
    )
    .bind(business_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(plugin, config, updated_at)| IntegrationRow {
        business_id,
        plugin,
        config: config.0,
        updated_at,
    }))
}

#[tracing::instrument(skip_all, fields(%business_id, plugin))]
pub async fn put_integration(
    conn: &mut PgConnection,
    business_id: Uuid,
    plugin: &str,
    config: &serde_json::Value,
    now: OffsetDateTime,
) -> Result<IntegrationRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO integrations (business_id, plugin, config, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (business_id) DO UPDATE
         SET plugin = EXCLUDED.plugin, config = EXCLUDED.config, updated_at = EXCLUDED.updated_at",
    )
    .bind(business_id)
    .bind(plugin)
    .bind(Json(config))
    .bind(now)
    .execute(conn)
    .await?;
    Ok(IntegrationRow {
        business_id,
        plugin: plugin.to_owned(),
        config: config.clone(),
        updated_at: now,
    })
}

/// Marks an action link used; `false` when it was used before.
#[tracing::instrument(skip_all, fields(%link_id, %dispatch_id))]
pub async fn use_link(
    conn: &mut PgConnection,
    link_id: Uuid,
    dispatch_id: Uuid,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO used_action_links (link_id, dispatch_id, used_at) VALUES ($1, $2, $3)
         ON CONFLICT (link_id) DO NOTHING",
    )
    .bind(link_id)
    .bind(dispatch_id)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether an action link was used.
#[tracing::instrument(skip_all, fields(%link_id))]
pub async fn link_used(conn: &mut PgConnection, link_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM used_action_links WHERE link_id = $1)")
        .bind(link_id)
        .fetch_one(conn)
        .await
}

/// The secret called `name`, generated by `generate` and kept on first use;
/// every replica reads the same one.
#[tracing::instrument(skip_all, fields(name))]
pub async fn generated_secret(
    conn: &mut PgConnection,
    name: &str,
    generate: impl FnOnce() -> String,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "INSERT INTO generated_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(generate())
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT value FROM generated_secrets WHERE name = $1")
        .bind(name)
        .fetch_one(conn)
        .await
}
