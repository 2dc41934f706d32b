//! A business's parts through the API: its queue
//! (`GET /v1/dispatch/businesses/{business_id}/orders`) and its answers
//! (`POST /v1/dispatch/orders/{order_id}/confirm | decline | shipments |
//! delivered`). A business acts only on its own part: another's is 404.

use axum::extract::State;
use http_service::auth::AuthUser;
use http_service::problem::{Json, Path, Query};
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::Deserialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::body::PartBody;
use super::{acting_business, require_business, ApiError, DispatchState};
use crate::domain::{
    Action, ActionError, Carrier, DeclineReason, Dispatch, Reference, Status, TrackingNumber,
};
use crate::{fulfillment, store};

pub fn router() -> OpenApiRouter<DispatchState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(confirm))
        .routes(routes!(decline))
        .routes(routes!(ship))
        .routes(routes!(deliver))
}

/// Applies `action` to `business_id`'s part of `order_id` in one transaction
/// with its event. Every way a business answers ends here.
pub(super) async fn apply(
    pool: &PgPool,
    now: OffsetDateTime,
    order_id: Uuid,
    business_id: Uuid,
    action: Action,
) -> Result<Dispatch, ApiError> {
    let mut tx = pool.begin().await?;
    let part = store::part_for_update(&mut tx, order_id, business_id)
        .await?
        .ok_or(ApiError::PartNotFound(order_id))?;
    let part = fulfillment::act(&mut tx, part, action, now).await??;
    tx.commit().await?;
    Ok(part)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListFilter {
    /// Only parts in this status; all of them when absent.
    status: Option<String>,
}

/// A business's parts, newest first (the business itself, or an admin).
#[utoipa::path(
    get,
    path = "/v1/dispatch/businesses/{business_id}/orders",
    tag = "dispatch",
    params(
        ("business_id" = Uuid, Path, description = "The business"),
        ListFilter,
        PageRequest<(OffsetDateTime, Uuid)>,
    ),
    responses(
        (status = OK, description = "A page of parts", body = Page<PartBody>),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Another business, or not a business or admin"),
        (status = UNPROCESSABLE_ENTITY, description = "Unknown status, bad limit or cursor"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %business_id))]
async fn list(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(business_id): Path<Uuid>,
    Query(filter): Query<ListFilter>,
    page: PageRequest<(OffsetDateTime, Uuid)>,
) -> Result<Json<Page<PartBody>>, ApiError> {
    require_business(&caller, business_id)?;
    let status = filter
        .status
        .as_deref()
        .map(str::parse::<Status>)
        .transpose()?;
    let mut conn = pool.acquire().await?;
    let parts = store::list_for_business(
        &mut conn,
        business_id,
        status,
        page.after(),
        page.fetch_limit(),
    )
    .await?;
    let rows = parts
        .into_iter()
        .map(|part| ((part.created_at, part.dispatch_id), PartBody::from(part)))
        .collect();
    Ok(Json(page.page(rows)))
}

/// Which business's part an admin acts on; a business acts on its own.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ActingFor {
    /// Required for an admin; a business may only name itself.
    business_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmRequest {
    /// The business's own id for the part.
    reference: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineRequest {
    /// Why, in the business's words; at most 200 characters.
    reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentRequest {
    carrier: String,
    tracking_number: String,
}

impl TryFrom<ConfirmRequest> for Action {
    type Error = ActionError;

    fn try_from(request: ConfirmRequest) -> Result<Self, ActionError> {
        Ok(Action::Confirm {
            reference: request
                .reference
                .as_deref()
                .map(Reference::new)
                .transpose()?,
        })
    }
}

impl TryFrom<DeclineRequest> for Action {
    type Error = ActionError;

    fn try_from(request: DeclineRequest) -> Result<Self, ActionError> {
        Ok(Action::Decline {
            reason: DeclineReason::new(&request.reason)?,
        })
    }
}

impl TryFrom<ShipmentRequest> for Action {
    type Error = ActionError;

    fn try_from(request: ShipmentRequest) -> Result<Self, ActionError> {
        Ok(Action::Ship {
            carrier: Carrier::new(&request.carrier)?,
            tracking_number: TrackingNumber::new(&request.tracking_number)?,
        })
    }
}

/// Confirm the part: the business will fulfil it.
#[utoipa::path(
    post,
    path = "/v1/dispatch/orders/{order_id}/confirm",
    tag = "dispatch",
    params(("order_id" = Uuid, Path, description = "The order"), ActingFor),
    request_body = ConfirmRequest,
    responses(
        (status = OK, description = "Confirmed", body = PartBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the business itself or an admin"),
        (status = NOT_FOUND, description = "No part of this order is the business's"),
        (status = CONFLICT, description = "The part was withdrawn, or is not waiting for a confirmation"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid body, or an admin named no business"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %order_id))]
async fn confirm(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(order_id): Path<Uuid>,
    Query(acting): Query<ActingFor>,
    Json(request): Json<ConfirmRequest>,
) -> Result<Json<PartBody>, ApiError> {
    let business_id = acting_business(&caller, acting.business_id)?;
    let action = Action::try_from(request)?;
    act(&state, order_id, business_id, action).await
}

/// Decline the part: the order refunds exactly this part.
#[utoipa::path(
    post,
    path = "/v1/dispatch/orders/{order_id}/decline",
    tag = "dispatch",
    params(("order_id" = Uuid, Path, description = "The order"), ActingFor),
    request_body = DeclineRequest,
    responses(
        (status = OK, description = "Declined", body = PartBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the business itself or an admin"),
        (status = NOT_FOUND, description = "No part of this order is the business's"),
        (status = CONFLICT, description = "The part was withdrawn, or was confirmed or declined before"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid body, or an admin named no business"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %order_id))]
async fn decline(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(order_id): Path<Uuid>,
    Query(acting): Query<ActingFor>,
    Json(request): Json<DeclineRequest>,
) -> Result<Json<PartBody>, ApiError> {
    let business_id = acting_business(&caller, acting.business_id)?;
    let action = Action::try_from(request)?;
    act(&state, order_id, business_id, action).await
}

/// The part was handed to a carrier.
#[utoipa::path(
    post,
    path = "/v1/dispatch/orders/{order_id}/shipments",
    tag = "dispatch",
    params(("order_id" = Uuid, Path, description = "The order"), ActingFor),
    request_body = ShipmentRequest,
    responses(
        (status = OK, description = "Shipped", body = PartBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the business itself or an admin"),
        (status = NOT_FOUND, description = "No part of this order is the business's"),
        (status = CONFLICT, description = "The part was withdrawn, or is not confirmed"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid body, or an admin named no business"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %order_id))]
async fn ship(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(order_id): Path<Uuid>,
    Query(acting): Query<ActingFor>,
    Json(request): Json<ShipmentRequest>,
) -> Result<Json<PartBody>, ApiError> {
    let business_id = acting_business(&caller, acting.business_id)?;
    let action = Action::try_from(request)?;
    act(&state, order_id, business_id, action).await
}

/// The part reached the customer.
#[utoipa::path(
    post,
    path = "/v1/dispatch/orders/{order_id}/delivered",
    tag = "dispatch",
    params(("order_id" = Uuid, Path, description = "The order"), ActingFor),
    responses(
        (status = OK, description = "Delivered", body = PartBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the business itself or an admin"),
        (status = NOT_FOUND, description = "No part of this order is the business's"),
        (status = CONFLICT, description = "The part was withdrawn, or is not shipped"),
        (status = UNPROCESSABLE_ENTITY, description = "An admin named no business"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %order_id))]
async fn deliver(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(order_id): Path<Uuid>,
    Query(acting): Query<ActingFor>,
) -> Result<Json<PartBody>, ApiError> {
    let business_id = acting_business(&caller, acting.business_id)?;
    act(&state, order_id, business_id, Action::Deliver).await
}

async fn act(
    state: &DispatchState,
    order_id: Uuid,
    business_id: Uuid,
    action: Action,
) -> Result<Json<PartBody>, ApiError> {
    let now = state.service.clock.now();
    let part = apply(&state.service.pool, now, order_id, business_id, action).await?;
    Ok(Json(part.into()))
}
