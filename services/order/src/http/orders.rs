//! Orders: `GET /v1/orders` (the caller's own; an admin's all),
//! `GET /v1/orders/{id}` (the owner, an admin or a service; others 404) and
//! `POST /v1/orders/{id}/cancel` (the owner).

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path, Query};
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiError, OrderState};
use crate::dispatcher::{Dispatcher, Withdrawal};
use crate::domain::saga::{self, Input, Refusal};
use crate::domain::{Fulfillment, HistoryEntry, Line, Order, OrderStatus, Refund};
use crate::journey::{self, Outcome};
use crate::store::{self, OrderFilter};

/// Who buys, and so has orders.
const SHOPPERS: &[Role] = &[Role::Civilian, Role::Charity];

pub fn router() -> OpenApiRouter<OrderState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(cancel))
}

/// One line as checkout priced it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody {
    pub offering_id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub amount_due_minor: i64,
}

impl From<Line> for LineBody {
    fn from(line: Line) -> Self {
        LineBody {
            offering_id: line.offering_id,
            business_id: line.business_id,
            title: line.title,
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
            points_applied: line.points_applied,
            discount_minor: line.discount_minor,
            amount_due_minor: line.amount_due_minor,
        }
    }
}

/// The authorization that pays the order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentBody {
    pub authorization_id: Uuid,
    pub provider: String,
    /// The provider's id of the capture, once captured.
    pub transaction_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingBody {
    pub carrier: String,
    pub tracking_number: String,
}

/// One business's part: `queued`, `sent`, `confirmed`, `shipped`,
/// `delivered`, `declined` or `cancelled`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FulfillmentBody {
    pub business_id: Uuid,
    pub status: &'static str,
    pub offering_ids: Vec<Uuid>,
    pub tracking: Option<TrackingBody>,
    /// Why the part was declined.
    pub reason: Option<String>,
}

/// Money and points given back for one part (`business_id` null: the whole order).
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundBody {
    pub refund_id: Uuid,
    pub business_id: Option<Uuid>,
    pub amount_minor: i64,
    pub points: i64,
    pub reason: String,
    /// `requested` until payment-gateway answers, then `refunded` or `failed`.
    pub status: &'static str,
    /// The provider's reason, when the refund failed.
    pub failure: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryBody {
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub reason: Option<String>,
}

/// An order as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub id: Uuid,
    pub customer_id: Uuid,
    /// `pending`, `payment_processing`, `processing`, `dispatched`,
    /// `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: &'static str,
    pub lines: Vec<LineBody>,
    pub currency: String,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub points_applied: i64,
    /// Null when the total is 0.
    pub payment: Option<PaymentBody>,
    pub fulfillments: Vec<FulfillmentBody>,
    pub refunds: Vec<RefundBody>,
    /// `out_of_stock`, `payment_failed`, `declined_by_business` or `customer_cancelled`.
    pub cancellation_reason: Option<&'static str>,
    /// Oldest first, starting with `pending`.
    pub history: Vec<HistoryBody>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Order> for OrderBody {
    fn from(order: Order) -> Self {
        let fulfillments = order
            .fulfillments
            .iter()
            .map(|part: &Fulfillment| FulfillmentBody {
                business_id: part.business_id,
                status: part.status.as_str(),
                offering_ids: order
                    .lines_of(part.business_id)
                    .map(|line| line.offering_id)
                    .collect(),
                tracking: part.tracking.clone().map(|tracking| TrackingBody {
                    carrier: tracking.carrier,
                    tracking_number: tracking.tracking_number,
                }),
                reason: part.reason.clone(),
            })
            .collect();
        OrderBody {
            id: order.id,
            customer_id: order.customer_id,
            status: order.status.as_str(),
            currency: order.currency,
            subtotal_minor: order.subtotal_minor,
            discount_minor: order.discount_minor,
            total_minor: order.total_minor,
            points_applied: order.points_applied,
            payment: order.payment.map(|payment| PaymentBody {
                authorization_id: payment.authorization_id,
                provider: payment.provider,
                transaction_id: payment.transaction_id,
            }),
            fulfillments,
            refunds: order
                .refunds
                .into_iter()
                .map(|refund: Refund| RefundBody {
                    refund_id: refund.refund_id,
                    business_id: refund.business_id,
                    amount_minor: refund.amount_minor,
                    points: refund.points,
                    reason: refund.reason,
                    status: refund.state.as_str(),
                    failure: refund.failure,
                    at: refund.at,
                })
                .collect(),
            cancellation_reason: order.cancellation_reason.map(|reason| reason.as_str()),
            history: order
                .history
                .into_iter()
                .map(|entry: HistoryEntry| HistoryBody {
                    status: entry.status.as_str(),
                    at: entry.at,
                    reason: entry.reason,
                })
                .collect(),
            lines: order.lines.into_iter().map(LineBody::from).collect(),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<String>,
}

/// The caller's orders (an admin's: everyone's), newest first.
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    params(ListQuery, PageRequest<i64>),
    responses(
        (status = OK, description = "A page of orders", body = Page<OrderBody>),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "The caller's role has no orders"),
        (status = UNPROCESSABLE_ENTITY, description = "Bad status, limit or cursor"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn list(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Query(query): Query<ListQuery>,
    page: PageRequest<i64>,
) -> Result<Json<Page<OrderBody>>, ApiError> {
    let customer_id = if caller.has_role(&[Role::Admin]) {
        None
    } else {
        caller.require_role(SHOPPERS)?;
        Some(caller.id())
    };
    let status = query
        .status
        .map(|text| OrderStatus::parse(&text).ok_or(ApiError::InvalidStatusFilter(text)))
        .transpose()?;
    let filter = OrderFilter {
        customer_id,
        status,
    };
    let mut conn = pool.acquire().await?;
    let rows = store::list(&mut conn, filter, page.after().copied(), page.fetch_limit()).await?;
    Ok(Json(page.page(rows).map(OrderBody::from)))
}

/// One order: its owner's, or any for an admin or a service.
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order")),
    responses(
        (status = OK, description = "The order", body = OrderBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "The caller's role has no orders"),
        (status = NOT_FOUND, description = "No such order of the caller's"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %caller.id()))]
async fn get(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(id): Path<Uuid>,
) -> Result<Json<OrderBody>, ApiError> {
    let sees_all = caller.has_role(&[Role::Admin, Role::Service]);
    if !sees_all {
        caller.require_role(SHOPPERS)?;
    }
    let mut conn = pool.acquire().await?;
    let order = store::get(&mut conn, id)
        .await?
        .filter(|order| sees_all || order.customer_id == caller.id())
        .ok_or(ApiError::OrderNotFound(id))?;
    Ok(Json(order.into()))
}

/// Cancels the caller's order: the dispatcher withdraws every part first,
/// then the order voids or refunds (per part), releases stock and points.
/// Cancelling a cancelled order answers 202 again and changes nothing.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    params(("id" = Uuid, Path, description = "The order")),
    responses(
        (status = ACCEPTED, description = "The order is cancelled", body = OrderBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "The caller's role has no orders"),
        (status = NOT_FOUND, description = "No such order of the caller's"),
        (status = CONFLICT, description = "not_cancellable: a part is confirmed; payment_in_progress: a capture is under way"),
        (status = SERVICE_UNAVAILABLE, description = "The dispatcher cannot be asked; nothing changed"),
    )
)]
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %caller.id()))]
async fn cancel(
    caller: AuthUser,
    State(state): State<OrderState>,
    Path(id): Path<Uuid>,
) -> Result<(StatusCode, Json<OrderBody>), ApiError> {
    caller.require_role(SHOPPERS)?;
    // The order stays locked across the dispatcher's answer. Trade-off,
    // named: the saga's events for this one order wait (at most the
    // client's timeout), but no capture or confirmation can slip in between
    // the check and the cancel, and a withdraw is never followed by an order
    // that goes on without its parts.
    let mut tx = state.service.pool.begin().await?;
    let order = store::lock(&mut tx, id)
        .await?
        .filter(|order| order.customer_id == caller.id())
        .ok_or(ApiError::OrderNotFound(id))?;
    match saga::check_cancel(&order) {
        Ok(()) => {}
        Err(Refusal::AlreadyCancelled) => return Ok((StatusCode::ACCEPTED, Json(order.into()))),
        Err(refusal) => return Err(refused(refusal)),
    }
    withdraw(&state.dispatcher, id).await?;
    let now = state.service.clock.now();
    match journey::step_locked(&mut tx, Some(&order), Input::CustomerCancel, now, order.id).await? {
        Outcome::Applied(cancelled) => {
            tx.commit().await?;
            tracing::info!("order cancelled by its customer");
            Ok((StatusCode::ACCEPTED, Json((*cancelled).into())))
        }
        Outcome::Refused(refusal) => Err(refused(refusal)),
    }
}

async fn withdraw(dispatcher: &Dispatcher, order_id: Uuid) -> Result<(), ApiError> {
    match dispatcher.withdraw(order_id).await? {
        Withdrawal::Withdrawn => Ok(()),
        // Confirmed at the business, though the event has not reached us yet.
        Withdrawal::NotCancellable => Err(ApiError::NotCancellable),
    }
}

fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::PaymentInProgress => ApiError::PaymentInProgress,
        _ => ApiError::NotCancellable,
    }
}
