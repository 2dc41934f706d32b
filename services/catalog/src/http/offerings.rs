//! `/v1/offerings`: what businesses sell. Anyone lists (with ranked
//! full-text search) and reads them; a business creates and changes its
//! own, an admin anyone's.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path, Query};
use http_service::{routes, OpenApiRouter, Page, PageRequest, Problem};
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiError, CatalogState};
use crate::domain::{
    Description, NewOffering, Offering, OfferingFilter, OfferingKey, OfferingKind, OfferingPatch,
    PointsPrice, PriceMinor, SearchText, ShopCurrency, Stock, Title, ValidationError,
};
use crate::store;

pub fn router() -> OpenApiRouter<CatalogState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, patch))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindBody {
    Product,
    Voucher,
    Service,
}

impl From<KindBody> for OfferingKind {
    fn from(kind: KindBody) -> Self {
        match kind {
            KindBody::Product => OfferingKind::Product,
            KindBody::Voucher => OfferingKind::Voucher,
            KindBody::Service => OfferingKind::Service,
        }
    }
}

impl From<OfferingKind> for KindBody {
    fn from(kind: OfferingKind) -> Self {
        match kind {
            OfferingKind::Product => KindBody::Product,
            OfferingKind::Voucher => KindBody::Voucher,
            OfferingKind::Service => KindBody::Service,
        }
    }
}

/// An offering, as every endpoint and `offering_changed` show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferingBody {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: KindBody,
    pub price_minor: i64,
    pub currency: String,
    pub points_price: i64,
    /// Units still available to new orders; null is unlimited.
    pub stock: Option<i64>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Offering> for OfferingBody {
    fn from(offering: Offering) -> Self {
        OfferingBody {
            id: offering.id,
            business_id: offering.business_id,
            title: offering.title,
            description: offering.description,
            kind: offering.kind.into(),
            price_minor: offering.price_minor,
            currency: offering.currency,
            points_price: offering.points_price,
            stock: offering.stock,
            active: offering.active,
            created_at: offering.created_at,
            updated_at: offering.updated_at,
        }
    }
}

/// An offering to list.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OfferingRequest {
    business_id: Uuid,
    /// 1 to 200 characters.
    title: String,
    /// Up to 5 000 characters.
    description: String,
    kind: KindBody,
    /// 1 to 100 000 000 minor units of `currency`.
    price_minor: i64,
    /// The shop's currency (ISO 4217).
    currency: String,
    /// Points that pay one unit in full, 1 to 100 000 000.
    points_price: i64,
    /// 0 or more; null or absent is unlimited.
    #[serde(default)]
    stock: Option<i64>,
    /// Default true.
    #[serde(default)]
    active: Option<bool>,
}

impl OfferingRequest {
    fn parse(self, shop: ShopCurrency) -> Result<NewOffering, ValidationError> {
        Ok(NewOffering {
            business_id: self.business_id,
            title: Title::new(&self.title)?,
            description: Description::new(&self.description)?,
            kind: self.kind.into(),
            price_minor: PriceMinor::new(self.price_minor)?,
            currency: shop.accept(&self.currency)?,
            points_price: PointsPrice::new(self.points_price)?,
            stock: Stock::new(self.stock)?,
            active: self.active.unwrap_or(true),
        })
    }
}

/// A change to an offering: only the fields present change. `stock: null`
/// makes it unlimited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferingPatchRequest {
    title: Option<String>,
    description: Option<String>,
    price_minor: Option<i64>,
    points_price: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    stock: Option<Option<i64>>,
    active: Option<bool>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl TryFrom<OfferingPatchRequest> for OfferingPatch {
    type Error = ValidationError;

    fn try_from(request: OfferingPatchRequest) -> Result<Self, ValidationError> {
        Ok(OfferingPatch {
            title: request.title.as_deref().map(Title::new).transpose()?,
            description: request
                .description
                .as_deref()
                .map(Description::new)
                .transpose()?,
            price_minor: request.price_minor.map(PriceMinor::new).transpose()?,
            points_price: request.points_price.map(PointsPrice::new).transpose()?,
            stock: request.stock.map(Stock::new).transpose()?,
            active: request.active,
        })
    }
}

/// Which offerings to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this business's offerings.
    business_id: Option<Uuid>,
    /// Words to search titles and descriptions for (web-search syntax:
    /// quotes for phrases, `-word` to exclude); ranked by relevance.
    q: Option<String>,
    /// Also inactive offerings: for the business itself (with
    /// `business_id`) or an admin.
    include_inactive: Option<bool>,
}

/// 403 unless `caller` is an admin or the business `business_id` itself.
fn require_acting_for(caller: &AuthUser, business_id: Uuid) -> Result<(), ApiError> {
    caller.require_role(&[Role::Admin, Role::Business])?;
    if caller.role() == Role::Admin || caller.claims.business_id == Some(business_id) {
        Ok(())
    } else {
        Err(ApiError::OtherBusiness)
    }
}

/// List an offering (the business itself, or an admin).
#[utoipa::path(
    post,
    path = "/v1/offerings",
    tag = "offerings",
    request_body = OfferingRequest,
    responses(
        (status = CREATED, description = "Listed", body = OfferingBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not admin or this business"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid offering, another currency, or an unregistered business"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn create(
    caller: AuthUser,
    State(pool): State<PgPool>,
    State(shop): State<ShopCurrency>,
    Json(request): Json<OfferingRequest>,
) -> Result<(StatusCode, Json<OfferingBody>), ApiError> {
    require_acting_for(&caller, request.business_id)?;
    let offering = request.parse(shop)?;
    let mut tx = pool.begin().await?;
    let created = store::create_offering(&mut tx, &offering).await?;
    tx.commit().await?;
    tracing::info!(offering_id = %created.id, "offering listed");
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Active offerings, newest first or, with `q`, by relevance (anyone).
#[utoipa::path(
    get,
    path = "/v1/offerings",
    tag = "offerings",
    params(ListQuery, PageRequest<OfferingKey>),
    responses(
        (status = OK, description = "A page of offerings", body = Page<OfferingBody>),
        (status = BAD_REQUEST, description = "A parameter does not parse"),
        (status = UNAUTHORIZED, description = "include_inactive without a valid token"),
        (status = FORBIDDEN, description = "include_inactive for another business"),
        (status = UNPROCESSABLE_ENTITY, description = "Bad search text, limit or cursor"),
    )
)]
#[tracing::instrument(skip_all)]
async fn list(
    caller: Option<AuthUser>,
    State(pool): State<PgPool>,
    Query(query): Query<ListQuery>,
    page: PageRequest<OfferingKey>,
) -> Result<Json<Page<OfferingBody>>, ApiError> {
    let include_inactive = query.include_inactive.unwrap_or(false);
    if include_inactive {
        let caller = caller
            .ok_or_else(|| Problem::unauthorized("include_inactive needs a signed-in caller"))?;
        match query.business_id {
            Some(business_id) => require_acting_for(&caller, business_id)?,
            None => caller.require_role(&[Role::Admin])?,
        }
    }
    let filter = OfferingFilter {
        business_id: query.business_id,
        q: query
            .q
            .as_deref()
            .map(SearchText::new)
            .transpose()
            .map_err(ApiError::InvalidSearch)?,
        include_inactive,
    };
    let mut conn = pool.acquire().await?;
    let rows = store::list_offerings(&mut conn, &filter, page.after(), page.fetch_limit()).await?;
    Ok(Json(page.page(rows).map(OfferingBody::from)))
}

/// One offering, active or not (anyone).
#[utoipa::path(
    get,
    path = "/v1/offerings/{id}",
    tag = "offerings",
    params(("id" = Uuid, Path, description = "The offering")),
    responses(
        (status = OK, description = "The offering", body = OfferingBody),
        (status = NOT_FOUND, description = "No such offering"),
    )
)]
#[tracing::instrument(skip_all, fields(offering_id = %id))]
async fn get(
    State(pool): State<PgPool>,
    Path(id): Path<Uuid>,
) -> Result<Json<OfferingBody>, ApiError> {
    let mut conn = pool.acquire().await?;
    let offering = store::get_offering(&mut conn, id)
        .await?
        .ok_or(ApiError::OfferingNotFound(id))?;
    Ok(Json(offering.into()))
}

/// Change an offering's title, description, prices, stock or activity (its
/// business, or an admin).
#[utoipa::path(
    patch,
    path = "/v1/offerings/{id}",
    tag = "offerings",
    params(("id" = Uuid, Path, description = "The offering")),
    request_body = OfferingPatchRequest,
    responses(
        (status = OK, description = "Changed", body = OfferingBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not admin or this offering's business"),
        (status = NOT_FOUND, description = "No such offering"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid values or a field that cannot change"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), offering_id = %id))]
async fn patch(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(id): Path<Uuid>,
    Json(request): Json<OfferingPatchRequest>,
) -> Result<Json<OfferingBody>, ApiError> {
    caller.require_role(&[Role::Admin, Role::Business])?;
    let mut tx = pool.begin().await?;
    // An offering never changes business, so checking it before the update
    // cannot race with another change.
    let current = store::get_offering(&mut tx, id)
        .await?
        .ok_or(ApiError::OfferingNotFound(id))?;
    require_acting_for(&caller, current.business_id)?;
    let patch = OfferingPatch::try_from(request)?;
    let patched = store::patch_offering(&mut tx, id, &patch)
        .await?
        .ok_or(ApiError::OfferingNotFound(id))?;
    tx.commit().await?;
    Ok(Json(patched.into()))
}
