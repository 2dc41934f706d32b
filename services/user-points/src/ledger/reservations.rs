//! Reservations: checkout reserves and cancels, the expiry sweep releases
//! what unfinished checkouts left behind, `order_submitted` binds, and the
//! order's commands spend, release and refund.

use shared_events::points::{
    PointsEvent, PointsRefunded, PointsReleased, PointsReserved, PointsSpent,
};
use shared_events::Envelope;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{
    Binding, Bound, CommandRefused, EntryKind, Move, Movement, NewReservation, Reservation,
};
use crate::store;

/// Why one of the order's or checkout's events cannot be applied. Every
/// variant but `Database` is permanent: the event contradicts what we know.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no reservation {0} exists")]
    UnknownReservation(Uuid),
    #[error("order {0} has no reservation")]
    UnknownOrder(Uuid),
    #[error("reservation {reservation_id} is for user {user_id} and order {order_id}, not what the event names")]
    Mismatch {
        reservation_id: Uuid,
        user_id: Uuid,
        order_id: Uuid,
    },
    #[error(transparent)]
    Refused(#[from] CommandRefused),
    #[error("failed to update the ledger")]
    Database(#[from] sqlx::Error),
}

/// Reserves points for an order, or returns the reservation the order has
/// already. More than is available breaks `accounts_available_not_negative`.
#[tracing::instrument(skip_all, fields(order_id = %request.order_id, user_id = %request.user_id))]
pub async fn reserve(
    conn: &mut PgConnection,
    request: &NewReservation,
    now: OffsetDateTime,
) -> Result<Reservation, sqlx::Error> {
    let reservation = request.start(now);
    if !store::reservations::insert(conn, &reservation).await? {
        // A repeated request, or a concurrent one for the same order that
        // got there first: the one per order is the answer.
        return store::reservations::for_order(conn, request.order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound);
    }
    write(
        conn,
        &reservation,
        &[Move::Reserved(reservation.points)],
        reservation.order_id,
    )
    .await?;
    Ok(reservation)
}

/// What checkout's cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Released now, or released before.
    Released,
    NotFound,
    Bound(Bound),
}

/// Checkout gives the points back (a failed checkout).
#[tracing::instrument(skip(conn))]
pub async fn cancel(
    conn: &mut PgConnection,
    reservation_id: Uuid,
) -> Result<Cancelled, sqlx::Error> {
    let Some(mut reservation) = store::reservations::lock(conn, reservation_id).await? else {
        return Ok(Cancelled::NotFound);
    };
    match reservation.cancel() {
        Err(bound) => Ok(Cancelled::Bound(bound)),
        Ok(moves) => {
            store::reservations::save(conn, &reservation).await?;
            write(conn, &reservation, &moves, reservation.order_id).await?;
            Ok(Cancelled::Released)
        }
    }
}

/// Releases up to `limit` reservations of unfinished checkouts whose time
/// ran out at `now`; returns them.
#[tracing::instrument(skip(conn))]
pub async fn expire_due(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let mut expired = store::reservations::lock_expired(conn, now, limit).await?;
    for reservation in &mut expired {
        let moves = reservation.expire(now);
        store::reservations::save(conn, reservation).await?;
        write(conn, reservation, &moves, reservation.order_id).await?;
    }
    Ok(expired)
}

/// Binds the reservation to its order (`order_submitted`): it never
/// expires from now on, and is held again if it expired first.
#[tracing::instrument(skip(conn))]
pub async fn bind(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
    now: OffsetDateTime,
    correlation_id: Uuid,
) -> Result<(Reservation, Binding), CommandError> {
    let mut reservation = lock_named(conn, reservation_id, user_id, order_id).await?;
    let available = lock_available_to_hold_again(conn, &reservation).await?;
    let (binding, moves) = reservation.bind(available, now);
    if binding != Binding::AlreadyBound {
        store::reservations::save(conn, &reservation).await?;
        write(conn, &reservation, &moves, correlation_id).await?;
    }
    Ok((reservation, binding))
}

/// Spends the held points (`points_spend_requested`), once per reservation.
#[tracing::instrument(skip(conn))]
pub async fn spend(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
    requested: i64,
    now: OffsetDateTime,
    correlation_id: Uuid,
) -> Result<Reservation, CommandError> {
    let mut reservation = lock_named(conn, reservation_id, user_id, order_id).await?;
    let available = lock_available_to_hold_again(conn, &reservation).await?;
    let moves = reservation.spend(requested, available, now)?;
    store::reservations::save(conn, &reservation).await?;
    write(conn, &reservation, &moves, correlation_id).await?;
    Ok(reservation)
}

/// Gives the held points back (`points_release_requested`), once per
/// reservation.
#[tracing::instrument(skip(conn))]
pub async fn release(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
    now: OffsetDateTime,
    correlation_id: Uuid,
) -> Result<Reservation, CommandError> {
    let mut reservation = lock_named(conn, reservation_id, user_id, order_id).await?;
    let moves = reservation.release(now)?;
    store::reservations::save(conn, &reservation).await?;
    write(conn, &reservation, &moves, correlation_id).await?;
    Ok(reservation)
}

/// What a refund command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// Applied before under this `refund_id`: nothing changed.
    AlreadyApplied,
    /// `points` of the `requested` came back; fewer when the order's spent
    /// points ran out.
    Applied { requested: i64, points: i64 },
}

/// Gives back spent points of the order's declined part
/// (`points_refund_requested`), once per `refund_id`.
#[tracing::instrument(skip(conn))]
pub async fn refund(
    conn: &mut PgConnection,
    refund_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
    business_id: Uuid,
    requested: i64,
    correlation_id: Uuid,
) -> Result<Refund, CommandError> {
    let Some(mut reservation) = store::reservations::lock_for_order(conn, order_id).await? else {
        return Err(CommandError::UnknownOrder(order_id));
    };
    check_named(&reservation, user_id, order_id)?;
    // Checked under the reservation's lock, so a concurrent copy of this
    // command waits here and then sees the first one's row.
    if store::reservations::refund_exists(conn, refund_id).await? {
        return Ok(Refund::AlreadyApplied);
    }
    let points = reservation.refund(requested)?;
    store::reservations::record_refund(
        conn,
        refund_id,
        &reservation,
        business_id,
        requested,
        points,
    )
    .await?;
    store::reservations::save(conn, &reservation).await?;
    if points > 0 {
        let movement = Movement {
            reference: refund_id.to_string(),
            ..reservation.movement(EntryKind::Refunded, points)
        };
        store::apply(conn, &movement).await?;
        let refunded = PointsEvent::PointsRefunded(PointsRefunded {
            user_id,
            order_id,
            refund_id,
            points,
        });
        messaging::outbox::enqueue(conn, &Envelope::new(refunded, correlation_id)).await?;
    }
    Ok(Refund::Applied { requested, points })
}

async fn lock_named(
    conn: &mut PgConnection,
    reservation_id: Uuid,
    user_id: Uuid,
    order_id: Uuid,
) -> Result<Reservation, CommandError> {
    let reservation = store::reservations::lock(conn, reservation_id)
        .await?
        .ok_or(CommandError::UnknownReservation(reservation_id))?;
    check_named(&reservation, user_id, order_id)?;
    Ok(reservation)
}

/// The user's available points, locked, when binding `reservation` holds
/// its points again: the lock keeps another step from spending them
/// between this read and the hold. Any other binding reads no balance, so
/// nothing is locked and 0, which `bind` does not look at, is returned.
async fn lock_available_to_hold_again(
    conn: &mut PgConnection,
    reservation: &Reservation,
) -> Result<i64, sqlx::Error> {
    if reservation.binding_holds_again() {
        store::lock_available(conn, reservation.user_id).await
    } else {
        Ok(0)
    }
}

/// An event naming another user or order than the reservation's is not
/// about this reservation at all.
fn check_named(
    reservation: &Reservation,
    user_id: Uuid,
    order_id: Uuid,
) -> Result<(), CommandError> {
    if reservation.user_id == user_id && reservation.order_id == order_id {
        Ok(())
    } else {
        Err(CommandError::Mismatch {
            reservation_id: reservation.reservation_id,
            user_id: reservation.user_id,
            order_id: reservation.order_id,
        })
    }
}

/// Writes each move to the ledger and announces them all on
/// `heyblue.points.v1`, in the order they happened.
async fn write(
    conn: &mut PgConnection,
    reservation: &Reservation,
    moves: &[Move],
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let mut events = Vec::with_capacity(moves.len());
    for &movement in moves {
        store::apply(
            conn,
            &reservation.movement(movement.kind(), movement.points()),
        )
        .await?;
        let (user_id, order_id, reservation_id, points) = (
            reservation.user_id,
            reservation.order_id,
            reservation.reservation_id,
            movement.points(),
        );
        let event = match movement {
            Move::Reserved(_) => PointsEvent::PointsReserved(PointsReserved {
                user_id,
                order_id,
                reservation_id,
                points,
            }),
            Move::Released(_) => PointsEvent::PointsReleased(PointsReleased {
                user_id,
                order_id,
                reservation_id,
                points,
            }),
            Move::Spent(_) => PointsEvent::PointsSpent(PointsSpent {
                user_id,
                order_id,
                reservation_id,
                points,
            }),
        };
        events.push(Envelope::new(event, correlation_id));
    }
    messaging::outbox::enqueue_all(conn, &events).await
}
