//! The order's queries. Each takes the caller's connection (a transaction
//! where it writes), so an order's change, its history, its refunds and the
//! events it publishes commit together. Rows are read into domain types
//! here and nowhere else.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use shared_events::order::OrderEvent;
use shared_events::{Address, Envelope};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, Row};
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::domain::{
    CancellationReason, Fulfillment, FulfillmentStatus, HistoryEntry, Line, Order, OrderStatus,
    Payment, PaymentState, PointsHold, PointsState, Refund, RefundState, StockHold, Tracking,
};

/// An order's row with its lines, parts, refunds and history, in one
/// statement (an order is read on every step of its saga and every time its
/// page is polled): the children come as JSON arrays of their rows, each in
/// its order, null when there are none.
const ORDER_SQL: &str = "
    SELECT id, seq, customer_id, customer_email, checkout_id, currency, subtotal_minor,
           discount_minor, total_minor, points_applied, shipping_address, status,
           cancellation_reason, stock, authorization_id, payment_provider, transaction_id,
           payment_state, reservation_id, points_state, created_at, updated_at,
           (SELECT json_agg(line ORDER BY line.position)
              FROM order_lines line WHERE line.order_id = orders.id) AS lines,
           (SELECT json_agg(part ORDER BY part.position)
              FROM fulfillments part WHERE part.order_id = orders.id) AS parts,
           (SELECT json_agg(refund ORDER BY refund.made)
              FROM refunds refund WHERE refund.order_id = orders.id) AS refunds,
           (SELECT json_agg(entry ORDER BY entry.position)
              FROM order_history entry WHERE entry.order_id = orders.id) AS history
      FROM orders";

/// The order `id`, locked until the caller's transaction ends: the saga's
/// steps for one order never interleave.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    // Locked first and read by a statement of its own: one statement's
    // snapshot is taken before it waits for the lock, so it would miss the
    // children the transaction that held the lock wrote.
    let locked = sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match locked {
        Some(_) => get(conn, id).await,
        None => Ok(None),
    }
}

/// The order `id` as it stands.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let row = sqlx::query(&format!("{ORDER_SQL} WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(|row| order(&row).map(|(_, order)| order))
        .transpose()
}

/// Which orders a list shows.
#[derive(Debug, Clone, Copy)]
pub struct OrderFilter {
    /// `None`: everyone's (an admin).
    pub customer_id: Option<Uuid>,
    pub status: Option<OrderStatus>,
}

/// A page of orders, newest first, keyed by their sequence number.
#[tracing::instrument(skip_all)]
pub async fn list(
    conn: &mut PgConnection,
    filter: OrderFilter,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, Order)>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{ORDER_SQL}
         WHERE ($1::uuid IS NULL OR customer_id = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::bigint IS NULL OR seq < $3)
         ORDER BY seq DESC
         LIMIT $4"
    ))
    .bind(filter.customer_id)
    .bind(filter.status.map(OrderStatus::as_str))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(order).collect()
}

/// Writes a new order with its lines, parts and first history entry, in one
/// statement.
#[tracing::instrument(skip_all, fields(order_id = %order.id))]
pub async fn insert(conn: &mut PgConnection, order: &Order) -> Result<(), sqlx::Error> {
    let address = serde_json::to_value(&order.shipping_address)
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let lines = LineColumns::of(order);
    let query = format!(
        "WITH {HISTORY_CTE}, {PARTS_CTE},
         lines AS (
             INSERT INTO order_lines (order_id, position, offering_id, business_id, title,
                 quantity, unit_price_minor, points_applied, discount_minor, amount_due_minor)
             SELECT $1, line.* FROM unnest($13::int[], $14::uuid[], $15::uuid[], $16::text[],
                 $17::int[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[]) AS line)
         INSERT INTO orders (id, updated_at, customer_id, customer_email, checkout_id, currency,
             subtotal_minor, discount_minor, total_minor, points_applied, shipping_address, status,
             cancellation_reason, stock, authorization_id, payment_provider, transaction_id,
             payment_state, reservation_id, points_state, created_at)
         VALUES ($1, $2, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34, $35,
             $36, $37, $38, $39, $40)"
    );
    let (history, parts) = (HistoryColumns::of(order, 0), PartColumns::of(order));
    bind_order(sqlx::query(&query), order, history, parts)
        .bind(lines.positions)
        .bind(lines.offering_ids)
        .bind(lines.business_ids)
        .bind(lines.titles)
        .bind(lines.quantities)
        .bind(lines.unit_prices)
        .bind(lines.points)
        .bind(lines.discounts)
        .bind(lines.amounts_due)
        .bind(order.customer_id)
        .bind(&order.customer_email)
        .bind(order.checkout_id)
        .bind(&order.currency)
        .bind(order.subtotal_minor)
        .bind(order.discount_minor)
        .bind(order.total_minor)
        .bind(order.points_applied)
        .bind(address)
        .bind(order.status.as_str())
        .bind(order.cancellation_reason.map(CancellationReason::as_str))
        .bind(order.stock.as_str())
        .bind(order.payment.as_ref().map(|p| p.authorization_id))
        .bind(order.payment.as_ref().map(|p| p.provider.clone()))
        .bind(
            order
                .payment
                .as_ref()
                .and_then(|p| p.transaction_id.clone()),
        )
        .bind(order.payment.as_ref().map(|p| p.state.as_str()))
        .bind(order.points.map(|p| p.reservation_id))
        .bind(order.points.map(|p| p.state.as_str()))
        .bind(order.created_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes what the saga changed from `before` to `after`, in one statement:
/// the order's row, its parts, refunds new or settled, and the new history
/// entries.
#[tracing::instrument(skip_all, fields(order_id = %after.id))]
pub async fn update(
    conn: &mut PgConnection,
    before: &Order,
    after: &Order,
) -> Result<(), sqlx::Error> {
    let history = HistoryColumns::of(after, before.history.len());
    let parts = if before.fulfillments == after.fulfillments {
        PartColumns::default()
    } else {
        PartColumns::of(after)
    };
    let refunds = RefundColumns::of(
        after
            .refunds
            .iter()
            .filter(|refund| before.refund(refund.refund_id) != Some(*refund)),
    );
    let query = format!(
        "WITH {HISTORY_CTE}, {PARTS_CTE},
         refunds AS (
             INSERT INTO refunds (refund_id, order_id, business_id, amount_minor, points, reason,
                 state, failure, at)
             SELECT refund.id, $1, refund.business_id, refund.amount_minor, refund.points,
                 refund.reason, refund.state, refund.failure, refund.at
             FROM unnest($13::uuid[], $14::uuid[], $15::bigint[], $16::bigint[], $17::text[],
                 $18::text[], $19::text[], $20::timestamptz[]) WITH ORDINALITY
                 AS refund(id, business_id, amount_minor, points, reason, state, failure, at, n)
             ORDER BY refund.n
             ON CONFLICT (refund_id) DO UPDATE SET state = EXCLUDED.state, failure = EXCLUDED.failure)
         UPDATE orders SET updated_at = $2, status = $21, cancellation_reason = $22, stock = $23,
             transaction_id = $24, payment_state = $25, points_state = $26
         WHERE id = $1"
    );
    bind_order(sqlx::query(&query), after, history, parts)
        .bind(refunds.refund_ids)
        .bind(refunds.business_ids)
        .bind(refunds.amounts)
        .bind(refunds.points)
        .bind(refunds.reasons)
        .bind(refunds.states)
        .bind(refunds.failures)
        .bind(refunds.ats)
        .bind(after.status.as_str())
        .bind(after.cancellation_reason.map(CancellationReason::as_str))
        .bind(after.stock.as_str())
        .bind(
            after
                .payment
                .as_ref()
                .and_then(|p| p.transaction_id.clone()),
        )
        .bind(after.payment.as_ref().map(|p| p.state.as_str()))
        .bind(after.points.map(|p| p.state.as_str()))
        .execute(conn)
        .await?;
    Ok(())
}

/// The history entries of an order from `$3`..`$6`, one row per element.
const HISTORY_CTE: &str = "history AS (
    INSERT INTO order_history (order_id, position, status, reason, at)
    SELECT $1, entry.* FROM unnest($3::int[], $4::text[], $5::text[], $6::timestamptz[]) AS entry)";

/// The parts of an order from `$7`..`$12`, dated `$2`; a part is written
/// only where it changed.
const PARTS_CTE: &str = "parts AS (
    INSERT INTO fulfillments (order_id, business_id, position, status, carrier, tracking_number,
        reason, updated_at)
    SELECT $1, part.*, $2 FROM unnest($7::uuid[], $8::int[], $9::text[], $10::text[],
        $11::text[], $12::text[]) AS part
    ON CONFLICT (order_id, business_id) DO UPDATE
    SET status = EXCLUDED.status, carrier = EXCLUDED.carrier,
        tracking_number = EXCLUDED.tracking_number, reason = EXCLUDED.reason,
        updated_at = EXCLUDED.updated_at
    WHERE (fulfillments.status, fulfillments.carrier, fulfillments.tracking_number, fulfillments.reason)
          IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.carrier, EXCLUDED.tracking_number, EXCLUDED.reason))";

/// Binds `$1`..`$12` of [`insert`]'s and [`update`]'s statements: the
/// order, its date, the history entries and the parts to write.
fn bind_order<'q>(
    query: Query<'q, Postgres, PgArguments>,
    order: &Order,
    history: HistoryColumns,
    parts: PartColumns,
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(order.id)
        .bind(order.updated_at)
        .bind(history.positions)
        .bind(history.statuses)
        .bind(history.reasons)
        .bind(history.ats)
        .bind(parts.business_ids)
        .bind(parts.positions)
        .bind(parts.statuses)
        .bind(parts.carriers)
        .bind(parts.tracking_numbers)
        .bind(parts.reasons)
}

// An order's child rows as one array per column, so that one statement
// writes them however many there are (`unnest` makes rows of them again).
// Empty columns write nothing.

#[derive(Debug, Default)]
struct HistoryColumns {
    positions: Vec<i32>,
    statuses: Vec<&'static str>,
    reasons: Vec<Option<String>>,
    ats: Vec<OffsetDateTime>,
}

impl HistoryColumns {
    /// `order`'s history entries from `from` on.
    fn of(order: &Order, from: usize) -> Self {
        let mut columns = Self::default();
        for (position, entry) in order.history.iter().enumerate().skip(from) {
            columns.positions.push(position as i32);
            columns.statuses.push(entry.status.as_str());
            columns.reasons.push(entry.reason.clone());
            columns.ats.push(entry.at);
        }
        columns
    }
}

#[derive(Debug, Default)]
struct PartColumns {
    business_ids: Vec<Uuid>,
    positions: Vec<i32>,
    statuses: Vec<&'static str>,
    carriers: Vec<Option<String>>,
    tracking_numbers: Vec<Option<String>>,
    reasons: Vec<Option<String>>,
}

impl PartColumns {
    fn of(order: &Order) -> Self {
        let mut columns = Self::default();
        for (position, part) in order.fulfillments.iter().enumerate() {
            let tracking = part.tracking.as_ref();
            columns.business_ids.push(part.business_id);
            columns.positions.push(position as i32);
            columns.statuses.push(part.status.as_str());
            columns.carriers.push(tracking.map(|t| t.carrier.clone()));
            columns
                .tracking_numbers
                .push(tracking.map(|t| t.tracking_number.clone()));
            columns.reasons.push(part.reason.clone());
        }
        columns
    }
}

#[derive(Debug, Default)]
struct LineColumns {
    positions: Vec<i32>,
    offering_ids: Vec<Uuid>,
    business_ids: Vec<Uuid>,
    titles: Vec<String>,
    quantities: Vec<i32>,
    unit_prices: Vec<i64>,
    points: Vec<i64>,
    discounts: Vec<i64>,
    amounts_due: Vec<i64>,
}

impl LineColumns {
    fn of(order: &Order) -> Self {
        let mut columns = Self::default();
        for (position, line) in order.lines.iter().enumerate() {
            columns.positions.push(position as i32);
            columns.offering_ids.push(line.offering_id);
            columns.business_ids.push(line.business_id);
            columns.titles.push(line.title.clone());
            columns.quantities.push(line.quantity as i32);
            columns.unit_prices.push(line.unit_price_minor);
            columns.points.push(line.points_applied);
            columns.discounts.push(line.discount_minor);
            columns.amounts_due.push(line.amount_due_minor);
        }
        columns
    }
}

#[derive(Debug, Default)]
struct RefundColumns {
    refund_ids: Vec<Uuid>,
    business_ids: Vec<Option<Uuid>>,
    amounts: Vec<i64>,
    points: Vec<i64>,
    reasons: Vec<String>,
    states: Vec<&'static str>,
    failures: Vec<Option<String>>,
    ats: Vec<OffsetDateTime>,
}

impl RefundColumns {
    fn of<'a>(refunds: impl Iterator<Item = &'a Refund>) -> Self {
        let mut columns = Self::default();
        for refund in refunds {
            columns.refund_ids.push(refund.refund_id);
            columns.business_ids.push(refund.business_id);
            columns.amounts.push(refund.amount_minor);
            columns.points.push(refund.points);
            columns.reasons.push(refund.reason.clone());
            columns.states.push(refund.state.as_str());
            columns.failures.push(refund.failure.clone());
            columns.ats.push(refund.at);
        }
        columns
    }
}

/// Puts what the order publishes into the outbox, and keeps each command
/// with the status it was issued for, so a re-drive can send it again: two
/// statements however many commands.
#[tracing::instrument(skip_all, fields(order_id = %order.id, commands = commands.len()))]
pub async fn publish(
    conn: &mut PgConnection,
    order: &Order,
    commands: Vec<OrderEvent>,
    correlation_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut refund_ids = Vec::with_capacity(commands.len());
    let mut payloads = Vec::with_capacity(commands.len());
    let mut envelopes = Vec::with_capacity(commands.len());
    for command in commands {
        refund_ids.push(match &command {
            OrderEvent::PaymentRefundRequested(refund) => Some(refund.refund_id),
            OrderEvent::PointsRefundRequested(refund) => Some(refund.refund_id),
            _ => None,
        });
        payloads.push(
            serde_json::to_value(&command).map_err(|error| sqlx::Error::Encode(Box::new(error)))?,
        );
        envelopes.push(Envelope::new(command, correlation_id));
    }
    messaging::outbox::enqueue_all(conn, &envelopes).await?;
    let event_ids: Vec<Uuid> = envelopes.iter().map(|envelope| envelope.event_id).collect();
    let event_types: Vec<&str> = envelopes.iter().map(Envelope::event_type).collect();
    sqlx::query(
        "INSERT INTO order_commands (order_id, event_id, event_type, status_after, refund_id,
             correlation_id, payload, issued_at)
         SELECT $1, command.event_id, command.event_type, $2, command.refund_id, $3,
             command.payload, $4
         FROM unnest($5::uuid[], $6::text[], $7::uuid[], $8::jsonb[]) WITH ORDINALITY
             AS command(event_id, event_type, refund_id, payload, n)
         ORDER BY command.n",
    )
    .bind(order.id)
    .bind(order.status.as_str())
    .bind(correlation_id)
    .bind(now)
    .bind(event_ids)
    .bind(event_types)
    .bind(refund_ids)
    .bind(payloads)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Orders waiting on one of our services since before `before`, oldest
/// first, that were not re-driven since then either: orders unchanged since
/// in a status a command of ours should have moved on, and orders
/// (cancelled ones too) with a refund nobody has answered. Orders waiting
/// on a business (`dispatched` and on) have nothing to re-send: the
/// dispatcher's confirmation deadline looks after them.
#[tracing::instrument(skip_all)]
pub async fn stuck(
    conn: &mut PgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<(Uuid, OrderStatus)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, status FROM orders
         WHERE ((status IN ('pending', 'payment_processing', 'processing') AND updated_at < $1)
                OR EXISTS (SELECT 1 FROM refunds r
                           WHERE r.order_id = orders.id AND r.state = 'requested' AND r.at < $1))
           AND (redriven_at IS NULL OR redriven_at < $1)
         ORDER BY updated_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get("id")?, status(&row, "status")?)))
        .collect()
}

/// Open orders unchanged since `before`, counted by status and by how long
/// ago they last changed (`[(status, updated_at)]`).
#[tracing::instrument(skip_all)]
pub async fn open_since(
    conn: &mut PgConnection,
    before: OffsetDateTime,
) -> Result<Vec<(OrderStatus, OffsetDateTime)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT status, updated_at FROM orders
         WHERE status NOT IN ('delivered', 'cancelled') AND updated_at < $1",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| Ok((status(&row, "status")?, row.try_get("updated_at")?)))
        .collect()
}

/// The commands a stuck order still waits on: those issued on entering its
/// current status, and the refunds nobody has answered. Each comes back as
/// it was issued (same business ids) with its correlation id.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn pending_commands(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: OrderStatus,
) -> Result<Vec<(OrderEvent, Uuid)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.payload, c.correlation_id FROM order_commands c
         LEFT JOIN refunds r ON r.refund_id = c.refund_id
         WHERE c.order_id = $1
           AND c.event_type NOT IN ('order_status_changed', 'order_cancelled')
           AND ((c.status_after = $2 AND c.refund_id IS NULL) OR r.state = 'requested')
         ORDER BY c.id",
    )
    .bind(order_id)
    .bind(status.as_str())
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let payload: serde_json::Value = row.try_get("payload")?;
            let command = serde_json::from_value(payload)
                .map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
            Ok((command, row.try_get("correlation_id")?))
        })
        .collect()
}

/// Remembers that `order_id` was re-driven at `now`, so it is re-driven
/// again only after another full wait.
pub async fn mark_redriven(
    conn: &mut PgConnection,
    order_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE orders SET redriven_at = $2 WHERE id = $1")
        .bind(order_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Refunds the provider refused, across all orders, for `/metrics`.
pub async fn failed_refunds(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM refunds WHERE state = 'failed'")
        .fetch_one(conn)
        .await
}

/// A part as [`ORDER_SQL`] returns it.
#[derive(Deserialize)]
struct PartRow {
    business_id: Uuid,
    status: String,
    carrier: Option<String>,
    tracking_number: Option<String>,
    reason: Option<String>,
}

/// A refund as [`ORDER_SQL`] returns it. JSON writes its time in the
/// session's time zone; it is read back in UTC, as a column is.
#[derive(Deserialize)]
struct RefundRow {
    refund_id: Uuid,
    business_id: Option<Uuid>,
    amount_minor: i64,
    points: i64,
    reason: String,
    state: String,
    failure: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// A history entry as [`ORDER_SQL`] returns it.
#[derive(Deserialize)]
struct HistoryRow {
    status: String,
    reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// The children of kind `column` of a row of [`ORDER_SQL`].
fn children<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<Vec<T>, sqlx::Error> {
    let children: Option<Json<Vec<T>>> = row.try_get(column)?;
    Ok(children.map(|Json(children)| children).unwrap_or_default())
}

/// The order a row of [`ORDER_SQL`] holds, with its `seq`.
fn order(row: &PgRow) -> Result<(i64, Order), sqlx::Error> {
    let lines = children::<Line>(row, "lines")?;
    let fulfillments = children::<PartRow>(row, "parts")?
        .into_iter()
        .map(|part| {
            Ok(Fulfillment {
                business_id: part.business_id,
                status: known(
                    "fulfillments.status",
                    &part.status,
                    FulfillmentStatus::parse,
                )?,
                tracking: part.carrier.zip(part.tracking_number).map(
                    |(carrier, tracking_number)| Tracking {
                        carrier,
                        tracking_number,
                    },
                ),
                reason: part.reason,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let refunds = children::<RefundRow>(row, "refunds")?
        .into_iter()
        .map(|refund| {
            Ok(Refund {
                refund_id: refund.refund_id,
                business_id: refund.business_id,
                amount_minor: refund.amount_minor,
                points: refund.points,
                reason: refund.reason,
                state: known("refunds.state", &refund.state, RefundState::parse)?,
                failure: refund.failure,
                at: refund.at.to_offset(UtcOffset::UTC),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let history = children::<HistoryRow>(row, "history")?
        .into_iter()
        .map(|entry| {
            Ok(HistoryEntry {
                status: known("order_history.status", &entry.status, OrderStatus::parse)?,
                at: entry.at.to_offset(UtcOffset::UTC),
                reason: entry.reason,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;

    let address: serde_json::Value = row.try_get("shipping_address")?;
    let shipping_address: Address =
        serde_json::from_value(address).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let authorization_id: Option<Uuid> = row.try_get("authorization_id")?;
    let payment = match authorization_id {
        Some(authorization_id) => Some(Payment {
            authorization_id,
            provider: row.try_get("payment_provider")?,
            transaction_id: row.try_get("transaction_id")?,
            state: parse(row, "payment_state", PaymentState::parse)?,
        }),
        None => None,
    };
    let reservation_id: Option<Uuid> = row.try_get("reservation_id")?;
    let points = match reservation_id {
        Some(reservation_id) => Some(PointsHold {
            reservation_id,
            state: parse(row, "points_state", PointsState::parse)?,
        }),
        None => None,
    };
    let reason: Option<String> = row.try_get("cancellation_reason")?;
    let order = Order {
        id: row.try_get("id")?,
        checkout_id: row.try_get("checkout_id")?,
        customer_id: row.try_get("customer_id")?,
        customer_email: row.try_get("customer_email")?,
        currency: row.try_get("currency")?,
        lines,
        subtotal_minor: row.try_get("subtotal_minor")?,
        discount_minor: row.try_get("discount_minor")?,
        total_minor: row.try_get("total_minor")?,
        points_applied: row.try_get("points_applied")?,
        shipping_address,
        status: status(row, "status")?,
        cancellation_reason: reason
            .map(|text| known("cancellation_reason", &text, CancellationReason::parse))
            .transpose()?,
        stock: parse(row, "stock", StockHold::parse)?,
        payment,
        points,
        fulfillments,
        refunds,
        history,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    };
    Ok((row.try_get("seq")?, order))
}

fn status(row: &PgRow, column: &str) -> Result<OrderStatus, sqlx::Error> {
    parse(row, column, OrderStatus::parse)
}

fn parse<T>(row: &PgRow, column: &str, from: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    let text: String = row.try_get(column)?;
    known(column, &text, from)
}

/// `text` read by `from`, or an error naming `column` when it is no value
/// the service knows.
fn known<T>(column: &str, text: &str, from: fn(&str) -> Option<T>) -> Result<T, sqlx::Error> {
    from(text).ok_or_else(|| unknown(column, text))
}

fn unknown(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("unknown value {value:?}").into(),
    }
}
