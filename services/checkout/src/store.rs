//! checkout's queries. Each takes the caller's connection (usually a
//! transaction), so a checkout's change, the event it publishes and the
//! compensation jobs it needs commit together.
//!
//! A status only moves out of `in_progress` or `requires_action`: every
//! update that finishes a checkout says which state it expects, so a confirm
//! racing the expiry sweep (or a second confirm) finds it already finished.

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    CartLine, Checkout, CheckoutStatus, PaymentChoice, PricedLine, Quantity, Quote,
    ShippingAddress, UnitPrice,
};

/// A priced line as stored in `checkouts.lines`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLine {
    offering_id: Uuid,
    business_id: Uuid,
    title: String,
    quantity: u32,
    unit_price_minor: i64,
    points_price: i64,
    points_applied: i64,
    discount_minor: i64,
    amount_due_minor: i64,
}

/// A shipping address as stored in `checkouts.shipping_address`.
#[derive(Debug, Serialize, Deserialize)]
struct StoredAddress {
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    country: String,
}

const COLUMNS: &str = "id, order_id, customer_id, customer_email, status, currency, lines,
    subtotal_minor, discount_minor, total_minor, points_applied, available_points,
    shipping_address, provider, payment_method, return_url, reservation_id, expires_at,
    authorization_id, next_action_url, failure_code, created_at";

/// Writes a new checkout.
#[tracing::instrument(skip_all, fields(checkout_id = %checkout.id, order_id = %checkout.order_id))]
pub async fn insert(
    conn: &mut PgConnection,
    checkout: &Checkout,
    key: &str,
) -> Result<(), sqlx::Error> {
    let lines: Vec<StoredLine> = checkout
        .quote
        .lines
        .iter()
        .map(|priced| StoredLine {
            offering_id: priced.line.offering_id,
            business_id: priced.line.business_id,
            title: priced.line.title.clone(),
            quantity: priced.line.quantity.get(),
            unit_price_minor: priced.line.unit_price_minor.get(),
            points_price: priced.line.points_price.get(),
            points_applied: priced.points_applied,
            discount_minor: priced.discount_minor,
            amount_due_minor: priced.amount_due_minor,
        })
        .collect();
    let a = &checkout.shipping_address;
    let address = StoredAddress {
        name: a.name.clone(),
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
    };
    sqlx::query(
        "INSERT INTO checkouts (id, order_id, customer_id, customer_email, status, currency, lines,
             subtotal_minor, discount_minor, total_minor, points_applied, available_points,
             shipping_address, provider, payment_method, return_url, reservation_id, expires_at,
             authorization_id, next_action_url, failure_code, created_at, updated_at,
             idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                 $19, $20, $21, $22, $22, $23)",
    )
    .bind(checkout.id)
    .bind(checkout.order_id)
    .bind(checkout.customer_id)
    .bind(&checkout.customer_email)
    .bind(checkout.status.as_str())
    .bind(&checkout.currency)
    .bind(Json(lines))
    .bind(checkout.quote.subtotal_minor)
    .bind(checkout.quote.discount_minor)
    .bind(checkout.quote.total_minor)
    .bind(checkout.quote.points_applied)
    .bind(checkout.available_points)
    .bind(Json(address))
    .bind(checkout.payment.as_ref().map(|p| p.provider.as_str()))
    .bind(checkout.payment.as_ref().map(|p| p.payment_method.as_str()))
    .bind(&checkout.return_url)
    .bind(checkout.reservation_id)
    .bind(checkout.expires_at)
    .bind(checkout.authorization_id)
    .bind(&checkout.next_action_url)
    .bind(&checkout.failure_code)
    .bind(checkout.created_at)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}

/// The checkout the customer began with `key`, if any.
#[tracing::instrument(skip(conn))]
pub async fn find_by_key(
    conn: &mut PgConnection,
    customer_id: Uuid,
    key: &str,
) -> Result<Option<Checkout>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM checkouts WHERE customer_id = $1 AND idempotency_key = $2"
    ))
    .bind(customer_id)
    .bind(key)
    .fetch_optional(conn)
    .await?
    .map(|row| checkout(&row))
    .transpose()
}

/// The checkout `id`, locked for the rest of the transaction when `lock`.
#[tracing::instrument(skip(conn))]
pub async fn find(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<Checkout>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM checkouts WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(|row| checkout(&row))
    .transpose()
}

/// Records the points held for the checkout and when they are released.
#[tracing::instrument(skip(conn))]
pub async fn set_reservation(
    conn: &mut PgConnection,
    id: Uuid,
    reservation_id: Uuid,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE checkouts SET reservation_id = $2, expires_at = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(reservation_id)
    .bind(expires_at)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the authorization the gateway made, whatever became of it.
#[tracing::instrument(skip(conn))]
pub async fn set_authorization(
    conn: &mut PgConnection,
    id: Uuid,
    authorization_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE checkouts SET authorization_id = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(authorization_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

/// `in_progress` → `requires_action`, waiting for the customer at `url`.
#[tracing::instrument(skip(conn))]
pub async fn await_action(
    conn: &mut PgConnection,
    id: Uuid,
    url: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE checkouts SET status = 'requires_action', next_action_url = $2, updated_at = $3
         WHERE id = $1 AND status IN ('in_progress', 'requires_action')",
    )
    .bind(id)
    .bind(url)
    .bind(now)
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// Finishes an unfinished checkout as `status`; `None` when it was
/// finished before (by a concurrent confirm or the expiry sweep).
#[tracing::instrument(skip(conn))]
pub async fn finish(
    conn: &mut PgConnection,
    id: Uuid,
    status: CheckoutStatus,
    failure_code: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<Checkout>, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE checkouts SET status = $2, failure_code = $3, updated_at = $4
         WHERE id = $1 AND status IN ('in_progress', 'requires_action')
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(status.as_str())
    .bind(failure_code)
    .bind(now)
    .fetch_optional(conn)
    .await?
    .map(|row| checkout(&row))
    .transpose()
}

/// Unfinished checkouts that can no longer be finished at `deadline`,
/// locked so that two sweeps never take the same one.
#[tracing::instrument(skip(conn))]
pub async fn due_for_expiry(
    conn: &mut PgConnection,
    deadline: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Checkout>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM checkouts
         WHERE status IN ('in_progress', 'requires_action') AND expires_at <= $1
         ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
    ))
    .bind(deadline)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(checkout)
    .collect()
}

fn decode(error: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(error))
}

#[derive(Debug, thiserror::Error)]
#[error("stored status {0:?} is unknown")]
struct UnknownStatus(String);

fn checkout(row: &PgRow) -> Result<Checkout, sqlx::Error> {
    let Json(lines): Json<Vec<StoredLine>> = row.try_get("lines")?;
    let Json(address): Json<StoredAddress> = row.try_get("shipping_address")?;
    let status: String = row.try_get("status")?;
    // The rows were written from these same domain types: a value that no
    // longer parses is a corrupt row, reported as a decode error.
    let lines = lines
        .into_iter()
        .map(|l| {
            Ok(PricedLine {
                line: CartLine {
                    offering_id: l.offering_id,
                    business_id: l.business_id,
                    title: l.title,
                    quantity: Quantity::new(l.quantity).map_err(decode)?,
                    unit_price_minor: UnitPrice::new("unit_price_minor", l.unit_price_minor)
                        .map_err(decode)?,
                    points_price: UnitPrice::new("points_price", l.points_price).map_err(decode)?,
                },
                points_applied: l.points_applied,
                discount_minor: l.discount_minor,
                amount_due_minor: l.amount_due_minor,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let provider: Option<String> = row.try_get("provider")?;
    let payment_method: Option<String> = row.try_get("payment_method")?;
    Ok(Checkout {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        customer_id: row.try_get("customer_id")?,
        customer_email: row.try_get("customer_email")?,
        status: CheckoutStatus::parse(&status).ok_or_else(|| decode(UnknownStatus(status)))?,
        currency: row.try_get("currency")?,
        quote: Quote {
            lines,
            subtotal_minor: row.try_get("subtotal_minor")?,
            points_applied: row.try_get("points_applied")?,
            discount_minor: row.try_get("discount_minor")?,
            total_minor: row.try_get("total_minor")?,
        },
        available_points: row.try_get("available_points")?,
        shipping_address: ShippingAddress {
            name: address.name,
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            postal_code: address.postal_code,
            country: address.country,
        },
        payment: provider
            .zip(payment_method)
            .map(|(provider, payment_method)| PaymentChoice {
                provider,
                payment_method,
            }),
        return_url: row.try_get("return_url")?,
        reservation_id: row.try_get("reservation_id")?,
        expires_at: row.try_get("expires_at")?,
        authorization_id: row.try_get("authorization_id")?,
        next_action_url: row.try_get("next_action_url")?,
        failure_code: row.try_get("failure_code")?,
        created_at: row.try_get("created_at")?,
    })
}
