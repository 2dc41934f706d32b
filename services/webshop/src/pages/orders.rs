//! The customer's orders: the list, one order with its parts and history,
//! and cancelling it while that is still allowed.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::cart::Empty;
use super::shop::{parse_id, Listing};
use super::{label, money, render, see_other, when, Nav, PageError};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

#[derive(Debug, Deserialize)]
struct Order {
    id: Uuid,
    status: String,
    lines: Vec<Line>,
    currency: String,
    subtotal_minor: i64,
    discount_minor: i64,
    total_minor: i64,
    points_applied: i64,
    fulfillments: Vec<Fulfillment>,
    #[serde(default)]
    refunds: Vec<Refund>,
    cancellation_reason: Option<String>,
    history: Vec<History>,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    business_id: Uuid,
    title: String,
    quantity: u32,
    amount_due_minor: i64,
    points_applied: i64,
}

#[derive(Debug, Deserialize)]
struct Fulfillment {
    business_id: Uuid,
    status: String,
    tracking: Option<Tracking>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Tracking {
    carrier: String,
    tracking_number: String,
}

#[derive(Debug, Deserialize)]
struct Refund {
    amount_minor: i64,
    points: i64,
    reason: String,
    at: String,
}

#[derive(Debug, Deserialize)]
struct History {
    status: String,
    at: String,
    reason: Option<String>,
}

struct OrderRow {
    id: Uuid,
    status: String,
    total: String,
    created: String,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    nav: Nav,
    orders: Vec<OrderRow>,
    next_page: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PageError> {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let mut path = "/v1/orders?limit=20".to_owned();
    if let Some(cursor) = &query.cursor {
        path.push('&');
        path.push_str(&serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default());
    }
    let listed = state
        .api
        .get(fleet::ORDER, path)
        .bearer(session.token())
        .send::<Listing<Order>>()
        .await?
        .body;
    render(&OrdersPage {
        nav: Nav::of(Some(&session)),
        orders: listed
            .items
            .iter()
            .map(|order| OrderRow {
                id: order.id,
                status: label(&order.status),
                total: money(order.total_minor, &order.currency),
                created: when(&order.created_at),
            })
            .collect(),
        next_page: listed.next_cursor.map(|cursor| {
            format!(
                "/orders?{}",
                serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
            )
        }),
    })
}

struct LineView {
    title: String,
    quantity: u32,
    amount_due: String,
    points_applied: i64,
}

struct PartView {
    business_id: Uuid,
    status: String,
    tracking: Option<String>,
    reason: Option<String>,
    lines: Vec<LineView>,
}

struct HistoryView {
    status: String,
    at: String,
    reason: Option<String>,
}

struct RefundView {
    amount: String,
    points: i64,
    reason: String,
    at: String,
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    nav: Nav,
    id: Uuid,
    status: String,
    cancellation_reason: Option<String>,
    subtotal: String,
    discount: String,
    total: String,
    points_applied: i64,
    parts: Vec<PartView>,
    refunds: Vec<RefundView>,
    history: Vec<HistoryView>,
    cancellable: bool,
    problem: Option<String>,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "order_pending.html")]
struct OrderPending {
    nav: Nav,
    id: Uuid,
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderQuery {
    placed: Option<String>,
    cancelled: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
    query: Result<Query<OrderQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let notice = if query.cancelled.is_some() {
        Some("Your order is cancelled; anything paid is given back.".to_owned())
    } else if query.placed.is_some() {
        Some("Thank you: your order is placed.".to_owned())
    } else {
        None
    };
    match order_page(&state, &session, id, None, notice).await {
        // The order service learns of a new order from checkout's event a
        // moment after checkout answered: say so rather than "not found".
        Err(PageError::NotFound) if query.placed.is_some() => render(&OrderPending {
            nav: Nav::of(Some(&session)),
            id,
        })
        .map(IntoResponse::into_response),
        page => page.map(IntoResponse::into_response),
    }
}

async fn order_page(
    state: &AppState,
    session: &Session,
    id: Uuid,
    problem: Option<String>,
    notice: Option<String>,
) -> Result<Html<String>, PageError> {
    let order = state
        .api
        .get(fleet::ORDER, format!("/v1/orders/{id}"))
        .bearer(session.token())
        .send::<Order>()
        .await?
        .body;
    let currency = order.currency.as_str();
    let parts = order
        .fulfillments
        .iter()
        .map(|part| PartView {
            business_id: part.business_id,
            status: label(&part.status),
            tracking: part
                .tracking
                .as_ref()
                .map(|t| format!("{} {}", t.carrier, t.tracking_number)),
            reason: part.reason.clone(),
            lines: order
                .lines
                .iter()
                .filter(|line| line.business_id == part.business_id)
                .map(|line| LineView {
                    title: line.title.clone(),
                    quantity: line.quantity,
                    amount_due: money(line.amount_due_minor, currency),
                    points_applied: line.points_applied,
                })
                .collect(),
        })
        .collect();
    // DESIGN §4: a customer cancels only before any part is confirmed, and
    // not while the payment is being captured. The service decides; the
    // button is only offered where it can succeed.
    let confirmed = order
        .fulfillments
        .iter()
        .any(|part| matches!(part.status.as_str(), "confirmed" | "shipped" | "delivered"));
    let cancellable = !confirmed
        && matches!(
            order.status.as_str(),
            "pending" | "processing" | "dispatched"
        );
    render(&OrderPage {
        nav: Nav::of(Some(session)),
        id: order.id,
        status: label(&order.status),
        cancellation_reason: order.cancellation_reason.as_deref().map(label),
        subtotal: money(order.subtotal_minor, currency),
        discount: money(order.discount_minor, currency),
        total: money(order.total_minor, currency),
        points_applied: order.points_applied,
        parts,
        refunds: order
            .refunds
            .iter()
            .map(|refund| RefundView {
                amount: money(refund.amount_minor, currency),
                points: refund.points,
                reason: label(&refund.reason),
                at: when(&refund.at),
            })
            .collect(),
        history: order
            .history
            .iter()
            .map(|step| HistoryView {
                status: label(&step.status),
                at: when(&step.at),
                reason: step.reason.as_deref().map(label),
            })
            .collect(),
        cancellable,
        problem,
        notice,
    })
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let cancelled = state
        .api
        .post(fleet::ORDER, format!("/v1/orders/{id}/cancel"))
        .bearer(session.token())
        .send::<serde_json::Value>()
        .await;
    match cancelled {
        Ok(_) => Ok(see_other(&format!("/orders/{id}?cancelled=1"))),
        Err(error @ ApiError::Refused(_)) if error.status() != 404 => {
            order_page(&state, &session, id, Some(error.message()), None)
                .await
                .map(IntoResponse::into_response)
        }
        Err(error) => Err(error.into()),
    }
}
