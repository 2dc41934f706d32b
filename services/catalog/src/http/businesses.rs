//! `/v1/businesses`: businesses' storefront profiles. An admin registers
//! them; anyone lists and reads them.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, CatalogState};
use crate::domain::{
    Business, BusinessKey, BusinessName, ContactEmail, NewBusiness, ValidationError,
};
use crate::store;

pub fn router() -> OpenApiRouter<CatalogState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get))
}

/// A business to register.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BusinessRequest {
    /// 1 to 200 characters.
    name: String,
    contact_email: String,
}

impl TryFrom<BusinessRequest> for NewBusiness {
    type Error = ValidationError;

    fn try_from(request: BusinessRequest) -> Result<Self, ValidationError> {
        Ok(NewBusiness {
            name: BusinessName::new(&request.name)?,
            contact_email: ContactEmail::new(&request.contact_email)?,
        })
    }
}

/// A business's storefront profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusinessBody {
    pub id: Uuid,
    pub name: String,
    pub contact_email: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Business> for BusinessBody {
    fn from(business: Business) -> Self {
        BusinessBody {
            id: business.id,
            name: business.name,
            contact_email: business.contact_email,
            created_at: business.created_at,
        }
    }
}

/// Register a business (admin).
#[utoipa::path(
    post,
    path = "/v1/businesses",
    tag = "businesses",
    request_body = BusinessRequest,
    responses(
        (status = CREATED, description = "Registered", body = BusinessBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not an admin"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid name or email"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn create(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Json(request): Json<BusinessRequest>,
) -> Result<(StatusCode, Json<BusinessBody>), ApiError> {
    caller.require_role(&[Role::Admin])?;
    let business = NewBusiness::try_from(request)?;
    let mut conn = pool.acquire().await?;
    let created = store::create_business(&mut conn, &business).await?;
    tracing::info!(business_id = %created.id, "business registered");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The registered businesses, newest first (anyone).
#[utoipa::path(
    get,
    path = "/v1/businesses",
    tag = "businesses",
    params(PageRequest<BusinessKey>),
    responses(
        (status = OK, description = "A page of businesses", body = Page<BusinessBody>),
        (status = UNPROCESSABLE_ENTITY, description = "Bad limit or cursor"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(pool): State<PgPool>,
    page: PageRequest<BusinessKey>,
) -> Result<Json<Page<BusinessBody>>, ApiError> {
    let mut conn = pool.acquire().await?;
    let rows = store::list_businesses(&mut conn, page.after(), page.fetch_limit()).await?;
    Ok(Json(page.page(rows).map(BusinessBody::from)))
}

/// One business (anyone).
#[utoipa::path(
    get,
    path = "/v1/businesses/{id}",
    tag = "businesses",
    params(("id" = Uuid, Path, description = "The business")),
    responses(
        (status = OK, description = "The business", body = BusinessBody),
        (status = NOT_FOUND, description = "No such business"),
    )
)]
#[tracing::instrument(skip_all, fields(business_id = %id))]
async fn get(
    State(pool): State<PgPool>,
    Path(id): Path<Uuid>,
) -> Result<Json<BusinessBody>, ApiError> {
    let mut conn = pool.acquire().await?;
    let business = store::get_business(&mut conn, id)
        .await?
        .ok_or(ApiError::BusinessNotFound(id))?;
    Ok(Json(business.into()))
}
