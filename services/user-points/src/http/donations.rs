//! `POST /v1/points/donations` (officer): give points to a registered
//! charity in one transfer. An `Idempotency-Key` is honoured when sent.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::idempotency;
use http_service::problem::Json;
use http_service::{routes, OpenApiRouter};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{Donation, NewDonation};
use crate::ledger;
use service_host::ServiceState;

pub fn router(state: &ServiceState) -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new()
        .routes(routes!(donate))
        .route_layer(axum::middleware::from_fn_with_state(
            state.idempotency(),
            idempotency::middleware,
        ))
}

/// Points for a charity.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DonationRequest {
    /// A registered charity.
    charity_id: Uuid,
    /// 1 to 1 000 000 000 000; at most what the officer has available.
    points: i64,
}

/// A donation made.
#[derive(Debug, Serialize, ToSchema)]
pub struct DonationBody {
    pub donation_id: Uuid,
    /// The officer who gave.
    pub user_id: Uuid,
    pub charity_id: Uuid,
    pub points: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Donation> for DonationBody {
    fn from(donation: Donation) -> Self {
        DonationBody {
            donation_id: donation.donation_id,
            user_id: donation.officer_id,
            charity_id: donation.charity_id,
            points: donation.points,
            created_at: donation.created_at,
        }
    }
}

/// Donate points to a charity (officer).
#[utoipa::path(
    post,
    path = "/v1/points/donations",
    tag = "points",
    request_body = DonationRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeats answer the first request's answer")),
    responses(
        (status = CREATED, description = "Donated", body = DonationBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not an officer"),
        (status = CONFLICT, description = "More points than are available"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid points, unregistered charity, or a reused Idempotency-Key"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn donate(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Json(request): Json<DonationRequest>,
) -> Result<(StatusCode, Json<DonationBody>), ApiError> {
    caller.require_role(&[Role::Officer])?;
    let donation = NewDonation::new(caller.id(), request.charity_id, request.points)?;
    let mut tx = pool.begin().await?;
    let donation = ledger::donations::donate(&mut tx, &donation).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(donation.into())))
}
