//! `POST /v1/points/awards` (admin or service): credit an award once per
//! `award_id`, the same path the connection capability's events take.

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
use crate::domain::{Award, AwardError, AwardOutcome, NewAward};
use crate::store;
use service_host::ServiceState;

pub fn router(state: &ServiceState) -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .route_layer(axum::middleware::from_fn_with_state(
            state.idempotency(),
            idempotency::middleware,
        ))
}

/// An award to credit; `award_id` makes crediting it idempotent.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AwardRequest {
    award_id: Uuid,
    user_id: Uuid,
    /// 1 to 100 000 000.
    points: i64,
    /// Why the points are awarded; at most 500 characters.
    reason: String,
}

impl TryFrom<AwardRequest> for NewAward {
    type Error = AwardError;

    fn try_from(request: AwardRequest) -> Result<Self, AwardError> {
        NewAward::new(
            request.award_id,
            request.user_id,
            request.points,
            &request.reason,
            None,
        )
    }
}

/// A credited award.
#[derive(Debug, Serialize, ToSchema)]
pub struct AwardBody {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Award> for AwardBody {
    fn from(award: Award) -> Self {
        AwardBody {
            award_id: award.award_id,
            user_id: award.user_id,
            points: award.points,
            reason: award.reason,
            created_at: award.created_at,
        }
    }
}

/// Credit an award once per `award_id` (admin or service).
#[utoipa::path(
    post,
    path = "/v1/points/awards",
    tag = "points",
    request_body = AwardRequest,
    responses(
        (status = CREATED, description = "Credited, now or before", body = AwardBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not admin or service"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid award, or award_id reused with other fields"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn create(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Json(request): Json<AwardRequest>,
) -> Result<(StatusCode, Json<AwardBody>), ApiError> {
    caller.require_role(&[Role::Admin, Role::Service])?;
    let award = NewAward::try_from(request)?;
    let mut tx = pool.begin().await?;
    let outcome = store::awards::credit(&mut tx, &award).await?;
    tx.commit().await?;
    match outcome {
        // The first answer again for the same award.
        AwardOutcome::Credited(award) | AwardOutcome::AlreadyCredited(award) => {
            Ok((StatusCode::CREATED, Json(award.into())))
        }
        AwardOutcome::Conflict(_) => Err(ApiError::AwardIdReused(award.award_id)),
    }
}
