//! The cart: `GET /v1/cart`, `PUT` and `DELETE /v1/cart/items/{offering_id}`,
//! `DELETE /v1/cart` for its owner (civilians and charities), and
//! `GET /v1/carts/{user_id}` for checkout.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, CartState};
use crate::catalog::Catalog;
use crate::domain::{Cart, OfferingState, Quantity};
use crate::store;

/// Who may have a cart.
const SHOPPERS: &[Role] = &[Role::Civilian, Role::Charity];

pub fn router() -> OpenApiRouter<CartState> {
    OpenApiRouter::new()
        .routes(routes!(get_cart, clear_cart))
        .routes(routes!(put_item, remove_item))
        .routes(routes!(cart_for_checkout))
}

/// One offering in the cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartItemBody {
    pub offering_id: Uuid,
    /// 1 to 99.
    pub quantity: u32,
}

/// A user's cart, items in the order they were first added.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartBody {
    pub user_id: Uuid,
    pub items: Vec<CartItemBody>,
    /// When the cart last changed; null for a cart never used.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

impl From<Cart> for CartBody {
    fn from(cart: Cart) -> Self {
        CartBody {
            user_id: cart.user_id,
            items: cart
                .items
                .into_iter()
                .map(|item| CartItemBody {
                    offering_id: item.offering_id,
                    quantity: item.quantity.get(),
                })
                .collect(),
            updated_at: cart.updated_at,
        }
    }
}

/// How many units of an offering the cart should hold.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ItemRequest {
    /// 1 to 99.
    quantity: i64,
}

/// The caller's cart.
#[utoipa::path(
    get,
    path = "/v1/cart",
    tag = "cart",
    responses(
        (status = OK, description = "The cart", body = CartBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn get_cart(
    caller: AuthUser,
    State(pool): State<PgPool>,
) -> Result<Json<CartBody>, ApiError> {
    caller.require_role(SHOPPERS)?;
    let mut conn = pool.acquire().await?;
    Ok(Json(store::cart(&mut conn, caller.id()).await?.into()))
}

/// Empties the caller's cart.
#[utoipa::path(
    delete,
    path = "/v1/cart",
    tag = "cart",
    responses(
        (status = NO_CONTENT, description = "The cart is empty"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn clear_cart(caller: AuthUser, State(pool): State<PgPool>) -> Result<StatusCode, ApiError> {
    caller.require_role(SHOPPERS)?;
    let mut conn = pool.acquire().await?;
    store::clear(&mut conn, caller.id()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets how many units of an offering the caller's cart holds; a new
/// offering goes last, a changed one keeps its place.
#[utoipa::path(
    put,
    path = "/v1/cart/items/{offering_id}",
    tag = "cart",
    params(("offering_id" = Uuid, Path, description = "The offering")),
    request_body = ItemRequest,
    responses(
        (status = OK, description = "The cart after the change", body = CartBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
        (status = NOT_FOUND, description = "No such offering"),
        (status = CONFLICT, description = "The offering is not on sale"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "The quantity is not 1 to 99"),
        (status = SERVICE_UNAVAILABLE, description = "catalog cannot be asked"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %offering_id))]
async fn put_item(
    caller: AuthUser,
    State(pool): State<PgPool>,
    State(catalog): State<Catalog>,
    Path(offering_id): Path<Uuid>,
    Json(request): Json<ItemRequest>,
) -> Result<Json<CartBody>, ApiError> {
    caller.require_role(SHOPPERS)?;
    let quantity = Quantity::new(request.quantity)?;
    match catalog.offering_state(offering_id).await? {
        OfferingState::Active => {}
        OfferingState::Inactive => return Err(ApiError::OfferingUnavailable(offering_id)),
        OfferingState::Unknown => return Err(ApiError::UnknownOffering(offering_id)),
    }
    let mut conn = pool.acquire().await?;
    store::set_item(&mut conn, caller.id(), offering_id, quantity).await?;
    Ok(Json(cart_after_change(&mut conn, caller.id()).await?))
}

/// Takes an offering out of the caller's cart (nothing happens if it is not
/// there).
#[utoipa::path(
    delete,
    path = "/v1/cart/items/{offering_id}",
    tag = "cart",
    params(("offering_id" = Uuid, Path, description = "The offering")),
    responses(
        (status = OK, description = "The cart after the change", body = CartBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %offering_id))]
async fn remove_item(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(offering_id): Path<Uuid>,
) -> Result<Json<CartBody>, ApiError> {
    caller.require_role(SHOPPERS)?;
    let mut conn = pool.acquire().await?;
    store::remove_item(&mut conn, caller.id(), offering_id).await?;
    Ok(Json(cart_after_change(&mut conn, caller.id()).await?))
}

/// The cart as a change left it, read after the change committed.
///
/// A change is one statement and needs no transaction; the read is a
/// statement of its own rather than part of the change, because a change
/// that waited for the cart's row lock still reads from the snapshot it
/// started with, which lacks what the other device committed meanwhile.
async fn cart_after_change(conn: &mut PgConnection, user_id: Uuid) -> Result<CartBody, ApiError> {
    Ok(store::cart(conn, user_id).await?.into())
}

/// A user's cart, for checkout (service role only).
#[utoipa::path(
    get,
    path = "/v1/carts/{user_id}",
    tag = "cart",
    params(("user_id" = Uuid, Path, description = "Whose cart")),
    responses(
        (status = OK, description = "The cart", body = CartBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
    )
)]
#[tracing::instrument(skip_all, fields(%user_id))]
async fn cart_for_checkout(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(user_id): Path<Uuid>,
) -> Result<Json<CartBody>, ApiError> {
    caller.require_role(&[Role::Service])?;
    let mut conn = pool.acquire().await?;
    Ok(Json(store::cart(&mut conn, user_id).await?.into()))
}
