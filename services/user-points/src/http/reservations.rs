//! `POST /v1/points/reservations` and `DELETE /v1/points/reservations/{id}`
//! (service role): checkout holds points for an order while it checks out,
//! and gives them back when the checkout fails. One reservation per
//! `order_id` makes a repeated request safe without an `Idempotency-Key`.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use job_queue::Clock;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{NewReservation, Reservation, ReservationError};
use crate::ledger::reservations::{self, Cancelled};
use service_host::ServiceState;

pub fn router() -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new()
        .routes(routes!(reserve))
        .routes(routes!(cancel))
}

/// Points to hold for an order being checked out.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReservationRequest {
    user_id: Uuid,
    /// One reservation per order: asking again returns the first.
    order_id: Uuid,
    checkout_id: Uuid,
    /// 1 to 1 000 000 000 000; at most what the user has available.
    points: i64,
    /// How long the points stay held while the checkout is unfinished:
    /// 1 to 86 400 seconds.
    ttl_seconds: i64,
}

impl TryFrom<ReservationRequest> for NewReservation {
    type Error = ReservationError;

    fn try_from(request: ReservationRequest) -> Result<Self, ReservationError> {
        NewReservation::new(
            request.user_id,
            request.order_id,
            request.checkout_id,
            request.points,
            request.ttl_seconds,
        )
    }
}

/// A reservation: the points stay held until `expires_at` unless the order
/// is submitted first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationBody {
    pub reservation_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<Reservation> for ReservationBody {
    fn from(reservation: Reservation) -> Self {
        ReservationBody {
            reservation_id: reservation.reservation_id,
            expires_at: reservation.expires_at,
        }
    }
}

/// Hold points for an order (service); the same order again → the first reservation.
#[utoipa::path(
    post,
    path = "/v1/points/reservations",
    tag = "points",
    request_body = ReservationRequest,
    responses(
        (status = CREATED, description = "Held, now or before", body = ReservationBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = CONFLICT, description = "More points than are available"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid points or ttl_seconds"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn reserve(
    caller: AuthUser,
    State(pool): State<PgPool>,
    State(clock): State<Arc<dyn Clock>>,
    Json(request): Json<ReservationRequest>,
) -> Result<(StatusCode, Json<ReservationBody>), ApiError> {
    caller.require_role(&[Role::Service])?;
    let request = NewReservation::try_from(request)?;
    let mut tx = pool.begin().await?;
    let reservation = reservations::reserve(&mut tx, &request, clock.now()).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(reservation.into())))
}

/// Give the points back (service), unless the reservation is bound to its order.
#[utoipa::path(
    delete,
    path = "/v1/points/reservations/{reservation_id}",
    tag = "points",
    params(("reservation_id" = Uuid, Path, description = "The reservation")),
    responses(
        (status = NO_CONTENT, description = "Released, now or before"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = NOT_FOUND, description = "No such reservation"),
        (status = CONFLICT, description = "Bound to its order; only the order's commands change it"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), reservation_id = %reservation_id))]
async fn cancel(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(reservation_id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    caller.require_role(&[Role::Service])?;
    let mut tx = pool.begin().await?;
    let cancelled = reservations::cancel(&mut tx, reservation_id).await?;
    tx.commit().await?;
    match cancelled {
        Cancelled::Released => Ok(StatusCode::NO_CONTENT),
        Cancelled::NotFound => Err(ApiError::ReservationNotFound(reservation_id)),
        Cancelled::Bound(bound) => Err(ApiError::ReservationBound(bound)),
    }
}
