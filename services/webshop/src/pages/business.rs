//! A business's queue: its parts of orders, newest first, and its answers
//! to each — confirm, decline with a reason, ship with carrier and
//! tracking number, delivered. The dispatcher decides what is allowed when;
//! its refusals show on the page with what was typed.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::shop::{parse_id, Listing};
use super::{
    label, money, render, see_other, when, with_cursor, CursorQuery, Nav, PageError, PageQuery,
};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

#[derive(Debug, Deserialize)]
struct Part {
    order_id: Uuid,
    status: String,
    lines: Vec<Line>,
    shipping_address: Address,
    reference: Option<String>,
    tracking: Option<Tracking>,
    reason: Option<String>,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Line {
    title: String,
    quantity: u32,
    unit_price_minor: i64,
}

#[derive(Debug, Deserialize)]
struct Address {
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    country: String,
}

#[derive(Debug, Deserialize)]
struct Tracking {
    carrier: String,
    tracking_number: String,
}

/// One business action's form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    reference: String,
    reason: String,
    carrier: String,
    tracking_number: String,
}

struct PartView {
    order_id: Uuid,
    status: String,
    created: String,
    lines: Vec<String>,
    address: String,
    reference: String,
    tracking: Option<String>,
    reason: Option<String>,
    can_confirm: bool,
    can_decline: bool,
    can_ship: bool,
    can_deliver: bool,
    form: ActionForm,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "business.html")]
struct QueuePage {
    nav: Nav,
    parts: Vec<PartView>,
    next_page: Option<String>,
}

/// The business this session acts for; other roles have no queue.
fn business_of(session: &Session) -> Result<Uuid, PageError> {
    session.user.business_id.ok_or_else(|| {
        PageError::Forbidden("Only a business's own users see its orders.".to_owned())
    })
}

pub async fn queue(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<CursorQuery>,
) -> Result<Html<String>, PageError> {
    queue_page(&state, &session, query.cursor.as_deref(), None).await
}

/// The queue; `edited` is the part whose action was refused, with what was
/// typed and why.
async fn queue_page(
    state: &AppState,
    session: &Session,
    cursor: Option<&str>,
    edited: Option<(Uuid, ActionForm, String)>,
) -> Result<Html<String>, PageError> {
    let business = business_of(session)?;
    let path = with_cursor(
        &format!("/v1/dispatch/businesses/{business}/orders?limit=50"),
        cursor,
    );
    let listed = state
        .api
        .get(fleet::DISPATCHER, path)
        .bearer(session.token())
        .send::<Listing<Part>>()
        .await?
        .body;
    let parts = listed
        .items
        .into_iter()
        .map(|part| {
            let (form, problem) = match &edited {
                Some((order, form, why)) if *order == part.order_id => {
                    (form.clone(), Some(why.clone()))
                }
                _ => (ActionForm::default(), None),
            };
            let status = part.status.as_str();
            let a = &part.shipping_address;
            let address = [
                Some(a.name.as_str()),
                Some(a.line1.as_str()),
                a.line2.as_deref(),
                Some(&format!("{} {}", a.postal_code, a.city)),
                Some(a.country.as_str()),
            ]
            .into_iter()
            .flatten()
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join(", ");
            PartView {
                order_id: part.order_id,
                status: label(status),
                created: when(&part.created_at),
                lines: part
                    .lines
                    .iter()
                    .map(|line| {
                        format!(
                            "{} × {} ({} each)",
                            line.quantity,
                            line.title,
                            money(line.unit_price_minor, "USD")
                        )
                    })
                    .collect(),
                address,
                reference: part.reference.unwrap_or_default(),
                tracking: part
                    .tracking
                    .map(|t| format!("{} {}", t.carrier, t.tracking_number)),
                reason: part.reason,
                can_confirm: matches!(status, "queued" | "sent"),
                can_decline: matches!(status, "queued" | "sent"),
                can_ship: status == "confirmed",
                can_deliver: status == "shipped",
                form,
                problem,
            }
        })
        .collect();
    render(&QueuePage {
        nav: Nav::of(Some(session)),
        parts,
        next_page: listed
            .next_cursor
            .map(|cursor| with_cursor("/business", Some(&cursor))),
    })
}

/// What the business answers about one part.
pub async fn act(
    State(state): State<AppState>,
    Path((order, action)): Path<(String, String)>,
    CsrfForm { session, form }: CsrfForm<ActionForm>,
) -> Result<Response, PageError> {
    let order = parse_id(&order)?;
    business_of(&session)?;
    let (path, body) = match action.as_str() {
        "confirm" => {
            let reference = form.reference.trim();
            let body = if reference.is_empty() {
                json!({})
            } else {
                json!({ "reference": reference })
            };
            ("confirm", body)
        }
        "decline" => ("decline", json!({ "reason": form.reason.trim() })),
        "ship" => (
            "shipments",
            json!({ "carrier": form.carrier.trim(), "tracking_number": form.tracking_number.trim() }),
        ),
        "delivered" => ("delivered", json!({})),
        _ => return Err(PageError::NotFound),
    };
    let answered = state
        .api
        .post(
            fleet::DISPATCHER,
            format!("/v1/dispatch/orders/{order}/{path}"),
        )
        .bearer(session.token())
        .json(&body)
        .send::<serde_json::Value>()
        .await;
    match answered {
        Ok(_) => Ok(see_other("/business")),
        Err(error @ ApiError::Refused(_)) => {
            queue_page(&state, &session, None, Some((order, form, error.message())))
                .await
                .map(IntoResponse::into_response)
        }
        Err(error) => Err(error.into()),
    }
}
