//! The customer's orders: the list, one order with its parts and history
//! (kept current by Server-Sent Events where the browser runs the page's
//! script), and cancelling it while that is still allowed.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::cart::Empty;
use super::shop::{parse_id, Listing};
use super::{
    label, money, render, see_other, when, with_cursor, CursorQuery, Nav, PageError, PageQuery,
};
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

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<CursorQuery>,
) -> Result<Html<String>, PageError> {
    let path = with_cursor("/v1/orders?limit=20", query.cursor.as_deref());
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
        next_page: listed
            .next_cursor
            .map(|cursor| with_cursor("/orders", Some(&cursor))),
    })
}

#[derive(PartialEq)]
struct LineView {
    title: String,
    quantity: u32,
    amount_due: String,
    points_applied: i64,
}

#[derive(PartialEq)]
struct PartView {
    business_id: Uuid,
    status: String,
    tracking: Option<String>,
    reason: Option<String>,
    lines: Vec<LineView>,
}

#[derive(PartialEq)]
struct HistoryView {
    status: String,
    at: String,
    reason: Option<String>,
}

#[derive(PartialEq)]
struct RefundView {
    amount: String,
    points: i64,
    reason: String,
    at: String,
}

/// The part of an order's page that changes as the order moves on: its
/// status, parts, refunds, history and the cancel button. The page shows it
/// once; [`events`] sends it again, rendered, whenever it changes.
#[derive(Template, PartialEq)]
#[template(path = "order_live.html")]
struct OrderLive {
    id: Uuid,
    csrf: String,
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
}

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    nav: Nav,
    id: Uuid,
    live: OrderLive,
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
    PageQuery(query): PageQuery<OrderQuery>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
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
    let order = fetch_order(state, session.token(), id).await?;
    render(&OrderPage {
        nav: Nav::of(Some(session)),
        id: order.id,
        live: live_view(&order, &session.csrf_token),
        problem,
        notice,
    })
}

/// The order as its owner may see it: another user's is a 404.
async fn fetch_order(state: &AppState, token: &str, id: Uuid) -> Result<Order, ApiError> {
    Ok(state
        .api
        .get(fleet::ORDER, format!("/v1/orders/{id}"))
        .bearer(token)
        .send::<Order>()
        .await?
        .body)
}

fn live_view(order: &Order, csrf: &str) -> OrderLive {
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
    OrderLive {
        id: order.id,
        csrf: csrf.to_owned(),
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
    }
}

/// How often the live view asks the order service while a page watches.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// A page that stays open longer is told to stop; its script closes the
/// stream and the page still reloads as usual. Bounds the polling one
/// forgotten tab can cause.
const WATCH_AT_MOST: Duration = Duration::from_secs(30 * 60);
/// How long a finished order is still watched: refunds follow a
/// cancellation by a moment.
const WATCH_AFTER_FINISH: Duration = Duration::from_secs(5);

/// What the stream of [`events`] still has to do.
struct Watch {
    state: AppState,
    token: String,
    csrf: String,
    id: Uuid,
    /// The fragment last sent, so only changes are sent.
    last: Option<OrderLive>,
    /// The order the request read first, sent without waiting.
    first: Option<Order>,
    started: Instant,
    finished_at: Option<Instant>,
    done: bool,
}

/// `GET /orders/{id}/events`: Server-Sent Events for the order page. The
/// webshop asks the order service as the signed-in owner every half
/// second and sends `order` (the rendered [`OrderLive`] fragment) whenever
/// it changed, then `done` once the order is delivered or cancelled, or
/// the page has watched for long. Polling here rather than consuming the
/// order's events keeps the webshop free of Kafka and sees exactly what
/// the owner may see; the cost is a read every half second per open page.
pub async fn events(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    // Checked before the stream starts, so another user's order is the
    // same 404 page as its page.
    let first = fetch_order(&state, session.token(), id).await?;
    let watch = Watch {
        state,
        token: session.access_token.clone(),
        csrf: session.csrf_token.clone(),
        id,
        last: None,
        first: Some(first),
        started: Instant::now(),
        finished_at: None,
        done: false,
    };
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        if watch.done {
            return None;
        }
        loop {
            let order = match watch.first.take() {
                Some(order) => Ok(order),
                None => {
                    tokio::time::sleep(POLL_EVERY).await;
                    fetch_order(&watch.state, &watch.token, watch.id).await
                }
            };
            let out_of_time = watch.started.elapsed() > WATCH_AT_MOST
                || watch
                    .finished_at
                    .is_some_and(|at| at.elapsed() > WATCH_AFTER_FINISH);
            let order = match order {
                Ok(order) => order,
                // A service that hiccups is asked again; a refusal (the
                // token ran out) ends the stream.
                Err(ApiError::Unavailable { .. }) if !out_of_time => continue,
                Err(_) => {
                    watch.done = true;
                    return Some((Ok(Event::default().event("done").data("")), watch));
                }
            };
            if watch.finished_at.is_none()
                && matches!(order.status.as_str(), "delivered" | "cancelled")
            {
                watch.finished_at = Some(Instant::now());
            }
            let live = live_view(&order, &watch.csrf);
            if watch.last.as_ref() != Some(&live) {
                match live.render() {
                    Ok(html) => {
                        // An event's data may not hold a carriage return,
                        // and a business's tracking text might.
                        let html = html.replace('\r', "");
                        watch.last = Some(live);
                        return Some((
                            Ok::<_, Infallible>(Event::default().event("order").data(html)),
                            watch,
                        ));
                    }
                    Err(error) => {
                        tracing::error!(error = %error, "the live order view failed to render");
                    }
                }
            }
            if out_of_time {
                watch.done = true;
                return Some((Ok(Event::default().event("done").data("")), watch));
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
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
