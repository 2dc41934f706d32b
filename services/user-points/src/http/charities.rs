//! `POST /v1/points/charities` (admin) registers a charity's account under
//! its user's `sub`; `GET /v1/points/charities` (anyone signed in) lists
//! them, by name, for the officers' donation form.
//!
//! Registering the same charity again with the same name answers the first
//! registration; with another name it is `409 charity_already_registered`:
//! `charity_id` names an account that exists, not a request to repeat.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::Json;
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{Charity, CharityError, CharityOutcome, NewCharity};
use crate::store;
use service_host::ServiceState;

pub fn router() -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new().routes(routes!(register, list))
}

/// A charity to register.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CharityRequest {
    /// The charity user's `sub`.
    charity_id: Uuid,
    /// 1 to 200 characters.
    name: String,
}

impl TryFrom<CharityRequest> for NewCharity {
    type Error = CharityError;

    fn try_from(request: CharityRequest) -> Result<Self, CharityError> {
        NewCharity::new(request.charity_id, &request.name)
    }
}

/// A registered charity.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredCharityBody {
    pub charity_id: Uuid,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Charity> for RegisteredCharityBody {
    fn from(charity: Charity) -> Self {
        RegisteredCharityBody {
            charity_id: charity.charity_id,
            name: charity.name,
            created_at: charity.created_at,
        }
    }
}

/// A charity as the donation form lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CharityBody {
    pub charity_id: Uuid,
    pub name: String,
}

impl From<Charity> for CharityBody {
    fn from(charity: Charity) -> Self {
        CharityBody {
            charity_id: charity.charity_id,
            name: charity.name,
        }
    }
}

/// Register a charity (admin); the same again → the first answer.
#[utoipa::path(
    post,
    path = "/v1/points/charities",
    tag = "points",
    request_body = CharityRequest,
    responses(
        (status = CREATED, description = "Registered, now or before", body = RegisteredCharityBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not admin"),
        (status = CONFLICT, description = "Registered before under another name"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid charity"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn register(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Json(request): Json<CharityRequest>,
) -> Result<(StatusCode, Json<RegisteredCharityBody>), ApiError> {
    caller.require_role(&[Role::Admin])?;
    let charity = NewCharity::try_from(request)?;
    let mut tx = pool.begin().await?;
    let outcome = store::charities::register(&mut tx, &charity).await?;
    tx.commit().await?;
    match outcome {
        CharityOutcome::Registered(charity) | CharityOutcome::AlreadyRegistered(charity) => {
            Ok((StatusCode::CREATED, Json(charity.into())))
        }
        CharityOutcome::Conflict(existing) => {
            Err(ApiError::CharityAlreadyRegistered(existing.charity_id))
        }
    }
}

/// The registered charities, by name (anyone signed in).
#[utoipa::path(
    get,
    path = "/v1/points/charities",
    tag = "points",
    params(PageRequest<(String, Uuid)>),
    responses(
        (status = OK, description = "A page of charities", body = Page<CharityBody>),
        (status = UNAUTHORIZED),
        (status = UNPROCESSABLE_ENTITY, description = "Bad limit or cursor"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn list(
    caller: AuthUser,
    State(pool): State<PgPool>,
    page: PageRequest<(String, Uuid)>,
) -> Result<Json<Page<CharityBody>>, ApiError> {
    let mut conn = pool.acquire().await?;
    let rows = store::charities::page(&mut conn, page.after(), page.fetch_limit()).await?;
    Ok(Json(page.page(rows).map(CharityBody::from)))
}
