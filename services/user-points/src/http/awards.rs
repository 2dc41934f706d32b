//! `POST /v1/points/awards` (admin or service): credit an award once per
//! `award_id`, the same path the connection capability's events take.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Problem};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{Award, AwardOutcome, NewAward};
use crate::store;
use service_host::ServiceState;

pub fn router() -> Router<ServiceState> {
    Router::new().route("/v1/points/awards", post(create))
}

#[derive(Debug, Deserialize)]
struct AwardRequest {
    award_id: Uuid,
    user_id: Uuid,
    points: i64,
    reason: String,
}

impl TryFrom<AwardRequest> for NewAward {
    type Error = Problem;

    fn try_from(request: AwardRequest) -> Result<Self, Problem> {
        NewAward::new(
            request.award_id,
            request.user_id,
            request.points,
            &request.reason,
            None,
        )
        .map_err(|reason| Problem::unprocessable("invalid_body", reason))
    }
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn create(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Json(request): Json<AwardRequest>,
) -> Result<(StatusCode, Json<Award>), ApiError> {
    caller.require_role(&[Role::Admin, Role::Service])?;
    let award = NewAward::try_from(request)?;
    let mut tx = pool.begin().await?;
    let outcome = store::credit_award(&mut tx, &award).await?;
    tx.commit().await?;
    match outcome {
        // The first answer again for the same award.
        AwardOutcome::Credited(award) | AwardOutcome::AlreadyCredited(award) => {
            Ok((StatusCode::CREATED, Json(award)))
        }
        AwardOutcome::Conflict(_) => Err(Problem::unprocessable(
            "idempotency_key_reused",
            format!(
                "award {} was credited before with other fields",
                award.award_id
            ),
        )
        .into()),
    }
}
