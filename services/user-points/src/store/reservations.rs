//! Reservations and the refunds of what they spent.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{ReleasedBy, Reservation, ReservationState};

const COLUMNS: &str = "reservation_id, user_id, order_id, checkout_id, points, held, spent, \
     refunded, shortfall, state, released_by, bound_at, expires_at";

/// Stores a new reservation unless its order has one already; `false` then
/// (after waiting for a concurrent insert for the same order to finish).
#[tracing::instrument(skip_all, fields(reservation_id = %reservation.reservation_id, order_id = %reservation.order_id))]
pub async fn insert(
    conn: &mut PgConnection,
    reservation: &Reservation,
) -> Result<bool, sqlx::Error> {
    let (state, released_by) = state_to_row(reservation.state);
    let inserted = sqlx::query(
        "INSERT INTO reservations (reservation_id, user_id, order_id, checkout_id, points, held,
             spent, refunded, shortfall, state, released_by, bound_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(reservation.reservation_id)
    .bind(reservation.user_id)
    .bind(reservation.order_id)
    .bind(reservation.checkout_id)
    .bind(reservation.points)
    .bind(reservation.held)
    .bind(reservation.spent)
    .bind(reservation.refunded)
    .bind(reservation.shortfall)
    .bind(state)
    .bind(released_by)
    .bind(reservation.bound_at)
    .bind(reservation.expires_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// The reservation of `order_id`, if checkout made one.
#[tracing::instrument(skip(conn))]
pub async fn for_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    one_where(conn, "order_id = $1", order_id).await
}

/// The reservation, locked until the transaction ends.
#[tracing::instrument(skip(conn))]
pub async fn lock(
    conn: &mut PgConnection,
    reservation_id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    one_where(conn, "reservation_id = $1 FOR UPDATE", reservation_id).await
}

/// The reservation of `order_id`, locked until the transaction ends.
#[tracing::instrument(skip(conn))]
pub async fn lock_for_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    one_where(conn, "order_id = $1 FOR UPDATE", order_id).await
}

/// The one reservation `condition` (on `$1` = `id`) picks, if any.
async fn one_where(
    conn: &mut PgConnection,
    condition: &str,
    id: Uuid,
) -> Result<Option<Reservation>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reservations WHERE {condition}"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?
    .map(from_row)
    .transpose()
}

/// Up to `limit` unbound reservations still held past `expires_at` at
/// `now`, locked; rows another transaction holds are skipped (their turn
/// comes next sweep).
#[tracing::instrument(skip(conn))]
pub async fn lock_expired(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Reservation>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM reservations
         WHERE state = 'held' AND bound_at IS NULL AND expires_at <= $1
         ORDER BY expires_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(from_row)
    .collect()
}

/// Writes back what a step changed.
#[tracing::instrument(skip_all, fields(reservation_id = %reservation.reservation_id))]
pub async fn save(conn: &mut PgConnection, reservation: &Reservation) -> Result<(), sqlx::Error> {
    let (state, released_by) = state_to_row(reservation.state);
    sqlx::query(
        "UPDATE reservations
         SET held = $2, spent = $3, refunded = $4, shortfall = $5, state = $6,
             released_by = $7, bound_at = $8, updated_at = now()
         WHERE reservation_id = $1",
    )
    .bind(reservation.reservation_id)
    .bind(reservation.held)
    .bind(reservation.spent)
    .bind(reservation.refunded)
    .bind(reservation.shortfall)
    .bind(state)
    .bind(released_by)
    .bind(reservation.bound_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a refund once per `refund_id`; `false` when it was recorded
/// before (and nothing is written).
#[tracing::instrument(skip(conn, reservation))]
pub async fn record_refund(
    conn: &mut PgConnection,
    refund_id: Uuid,
    reservation: &Reservation,
    business_id: Uuid,
    requested: i64,
    points: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO refunds (refund_id, reservation_id, order_id, user_id, business_id, requested, points)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (refund_id) DO NOTHING",
    )
    .bind(refund_id)
    .bind(reservation.reservation_id)
    .bind(reservation.order_id)
    .bind(reservation.user_id)
    .bind(business_id)
    .bind(requested)
    .bind(points)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Whether a refund with this id was applied before.
pub async fn refund_exists(conn: &mut PgConnection, refund_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM refunds WHERE refund_id = $1)")
        .bind(refund_id)
        .fetch_one(conn)
        .await
}

fn state_to_row(state: ReservationState) -> (&'static str, Option<&'static str>) {
    match state {
        ReservationState::Held => ("held", None),
        ReservationState::Spent => ("spent", None),
        ReservationState::Released(by) => (
            "released",
            Some(match by {
                ReleasedBy::Checkout => "checkout",
                ReleasedBy::Expiry => "expiry",
                ReleasedBy::Order => "order",
            }),
        ),
    }
}

fn state_from_row(state: &str, released_by: Option<&str>) -> Result<ReservationState, sqlx::Error> {
    Ok(match (state, released_by) {
        ("held", None) => ReservationState::Held,
        ("spent", None) => ReservationState::Spent,
        ("released", Some("checkout")) => ReservationState::Released(ReleasedBy::Checkout),
        ("released", Some("expiry")) => ReservationState::Released(ReleasedBy::Expiry),
        ("released", Some("order")) => ReservationState::Released(ReleasedBy::Order),
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown reservation state {other:?}").into(),
            ))
        }
    })
}

fn from_row(row: PgRow) -> Result<Reservation, sqlx::Error> {
    let state: String = row.get("state");
    let released_by: Option<String> = row.get("released_by");
    Ok(Reservation {
        reservation_id: row.get("reservation_id"),
        user_id: row.get("user_id"),
        order_id: row.get("order_id"),
        checkout_id: row.get("checkout_id"),
        points: row.get("points"),
        held: row.get("held"),
        spent: row.get("spent"),
        refunded: row.get("refunded"),
        shortfall: row.get("shortfall"),
        state: state_from_row(&state, released_by.as_deref())?,
        bound_at: row.get("bound_at"),
        expires_at: row.get("expires_at"),
    })
}
