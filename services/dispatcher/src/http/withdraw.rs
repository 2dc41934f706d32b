//! `POST /v1/dispatch/orders/{order_id}/withdraw` (service): the order
//! service takes every part of an order back when its customer cancels,
//! synchronously, before it refunds anything.

use axum::extract::State;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, DispatchState};
use crate::fulfillment;

pub fn router() -> OpenApiRouter<DispatchState> {
    OpenApiRouter::new().routes(routes!(withdraw))
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WithdrawnStatus {
    Withdrawn,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawnBody {
    pub order_id: Uuid,
    pub status: WithdrawnStatus,
}

/// Withdraw every part of the order, all or none (service, admin).
///
/// Refused once any part is confirmed. Withdrawing again answers the same
/// and changes nothing; a withdraw before the parts arrive leaves a mark, so
/// they are never sent.
#[utoipa::path(
    post,
    path = "/v1/dispatch/orders/{order_id}/withdraw",
    tag = "dispatch",
    params(("order_id" = Uuid, Path, description = "The order")),
    responses(
        (status = OK, description = "No part of the order is with a business any more", body = WithdrawnBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the order service or an admin"),
        (status = CONFLICT, description = "A part is confirmed: the order can no longer be cancelled"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %order_id))]
async fn withdraw(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(order_id): Path<Uuid>,
) -> Result<Json<WithdrawnBody>, ApiError> {
    caller.require_role(&[Role::Service, Role::Admin])?;
    let now = state.service.clock.now();
    let mut tx = state.service.pool.begin().await?;
    let withdrawn = fulfillment::withdraw(&mut tx, order_id, now).await??;
    tx.commit().await?;
    tracing::info!(parts = withdrawn.len(), "order withdrawn");
    Ok(Json(WithdrawnBody {
        order_id,
        status: WithdrawnStatus::Withdrawn,
    }))
}
