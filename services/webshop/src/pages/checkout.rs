//! Checkout: the quote for the cart with the points the customer chooses,
//! the shipping address and the (sandbox) card, then the order.
//!
//! Each rendered form carries a fresh `Idempotency-Key`, made here, so a
//! double submit of one form places one order, while a form shown again
//! after a refusal gets a new key and can be sent with other choices. When
//! the service could not answer, the form keeps its key: sending it again
//! resumes the same checkout instead of starting a second one.
//!
//! A card that needs 3-D Secure answers `requires_action`: a page of ours
//! sends the browser on to the provider's page, whose `return_url` is
//! [`RETURN_PATH`]; that page confirms the checkout the session remembers.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{money, render, see_other, Nav, PageError};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

/// Where the payment provider's page sends the customer back.
pub const RETURN_PATH: &str = "/checkout/return";

/// The sandbox's test cards (DESIGN §3), as the form offers them.
const CARDS: &[(&str, &str)] = &[
    ("pm_card_visa", "Visa, approved"),
    (
        "pm_card_authenticationRequired",
        "Visa, asks for 3-D Secure",
    ),
    ("pm_card_chargeDeclined", "Card declined"),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "Card declined: insufficient funds",
    ),
    (
        "pm_sandbox_capture_fails",
        "Approved, but the capture fails",
    ),
];

#[derive(Debug, Deserialize)]
struct Quote {
    lines: Vec<QuoteLine>,
    currency: String,
    subtotal_minor: i64,
    points_applied: i64,
    discount_minor: i64,
    total_minor: i64,
    available_points: i64,
}

#[derive(Debug, Deserialize)]
struct QuoteLine {
    title: String,
    quantity: u32,
    unit_price_minor: i64,
    points_applied: i64,
    amount_due_minor: i64,
}

struct QuoteView {
    lines: Vec<QuoteLineView>,
    subtotal: String,
    discount: String,
    total: String,
    points_applied: i64,
    available_points: i64,
}

struct QuoteLineView {
    title: String,
    quantity: u32,
    unit_price: String,
    points_applied: i64,
    amount_due: String,
}

impl From<Quote> for QuoteView {
    fn from(quote: Quote) -> Self {
        let currency = quote.currency.as_str();
        QuoteView {
            lines: quote
                .lines
                .iter()
                .map(|line| QuoteLineView {
                    title: line.title.clone(),
                    quantity: line.quantity,
                    unit_price: money(line.unit_price_minor, currency),
                    points_applied: line.points_applied,
                    amount_due: money(line.amount_due_minor, currency),
                })
                .collect(),
            subtotal: money(quote.subtotal_minor, currency),
            discount: money(quote.discount_minor, currency),
            total: money(quote.total_minor, currency),
            points_applied: quote.points_applied,
            available_points: quote.available_points,
        }
    }
}

/// The checkout form as typed; every field kept as text, so a refused
/// form comes back exactly as it was sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CheckoutForm {
    points_to_redeem: String,
    name: String,
    line1: String,
    line2: String,
    city: String,
    postal_code: String,
    country: String,
    payment_method: String,
    idempotency_key: String,
}

struct Card {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    nav: Nav,
    quote: Option<QuoteView>,
    form: CheckoutForm,
    cards: Vec<Card>,
    problem: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Response, PageError> {
    let form = CheckoutForm {
        country: "US".to_owned(),
        payment_method: CARDS[0].0.to_owned(),
        ..CheckoutForm::default()
    };
    checkout_page(&state, &session, form, None, true).await
}

/// Prices the cart again with the points typed, keeping the rest.
pub async fn requote(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<CheckoutForm>,
) -> Result<Response, PageError> {
    checkout_page(&state, &session, form, None, false).await
}

/// Points as typed: empty is "all available" (checkout's default).
fn points(form: &CheckoutForm) -> Result<Option<i64>, String> {
    let typed = form.points_to_redeem.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    typed
        .parse::<i64>()
        .ok()
        .filter(|points| *points >= 0)
        .map(Some)
        .ok_or_else(|| "Points to redeem must be a whole number, 0 or more.".to_owned())
}

/// The checkout page with a fresh quote; on first show the points field
/// holds what the quote applied (all available, as checkout's default).
async fn checkout_page(
    state: &AppState,
    session: &Session,
    mut form: CheckoutForm,
    mut problem: Option<String>,
    first_show: bool,
) -> Result<Response, PageError> {
    let requested = match points(&form) {
        Ok(points) => points,
        Err(why) => {
            problem.get_or_insert(why);
            None
        }
    };
    let quote = state
        .api
        .post(fleet::CHECKOUT, "/v1/checkouts/quote")
        .bearer(session.token())
        .json(&QuoteRequest {
            points_to_redeem: requested,
        })
        .send::<Quote>()
        .await;
    let quote = match quote {
        Ok(answer) => Some(answer.body),
        Err(ApiError::Refused(refusal)) if refusal.code == "cart_empty" => {
            return Ok(see_other("/cart"));
        }
        Err(error @ ApiError::Refused(_)) => {
            problem.get_or_insert(error.message());
            None
        }
        Err(error) => return Err(error.into()),
    };
    if let (true, Some(quote)) = (first_show, &quote) {
        form.points_to_redeem = quote.points_applied.to_string();
    }
    // Every form shown is a new attempt: a new key. Only the page after an
    // unanswered submit keeps the old one (see `place`).
    form.idempotency_key = Uuid::new_v4().to_string();
    page(session, quote.map(QuoteView::from), form, problem)
}

fn page(
    session: &Session,
    quote: Option<QuoteView>,
    form: CheckoutForm,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let cards = CARDS
        .iter()
        .map(|(value, label)| Card {
            value,
            label,
            selected: form.payment_method == *value,
        })
        .collect();
    render(&CheckoutPage {
        nav: Nav::of(Some(session)),
        quote,
        form,
        cards,
        problem,
    })
    .map(IntoResponse::into_response)
}

#[derive(Serialize)]
struct QuoteRequest {
    points_to_redeem: Option<i64>,
}

#[derive(Serialize)]
struct CheckoutRequest<'a> {
    points_to_redeem: Option<i64>,
    payment: Payment<'a>,
    shipping_address: Address<'a>,
    return_url: String,
}

#[derive(Serialize)]
struct Payment<'a> {
    provider: &'a str,
    payment_method: &'a str,
}

#[derive(Serialize)]
struct Address<'a> {
    name: &'a str,
    line1: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    line2: Option<&'a str>,
    city: &'a str,
    postal_code: &'a str,
    country: &'a str,
}

/// A checkout's answer (the fields the pages follow).
#[derive(Debug, Deserialize)]
struct Checkout {
    id: Uuid,
    order_id: Uuid,
    status: String,
    next_action: Option<NextAction>,
}

#[derive(Debug, Deserialize)]
struct NextAction {
    url: String,
}

pub async fn place(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<CheckoutForm>,
) -> Result<Response, PageError> {
    let requested = match points(&form) {
        Ok(points) => points,
        Err(why) => return checkout_page(&state, &session, form, Some(why), false).await,
    };
    if form.idempotency_key.trim().is_empty() {
        return Err(PageError::BadForm);
    }
    let line2 = form.line2.trim();
    let body = CheckoutRequest {
        points_to_redeem: requested,
        payment: Payment {
            provider: "sandbox",
            payment_method: &form.payment_method,
        },
        shipping_address: Address {
            name: form.name.trim(),
            line1: form.line1.trim(),
            line2: (!line2.is_empty()).then_some(line2),
            city: form.city.trim(),
            postal_code: form.postal_code.trim(),
            country: form.country.trim(),
        },
        return_url: return_url(&state),
    };
    let answer = state
        .api
        .post(fleet::CHECKOUT, "/v1/checkouts")
        .bearer(session.token())
        .idempotency_key(form.idempotency_key.clone())
        .json(&body)
        .send::<Checkout>()
        .await;
    match answer {
        Ok(answer) => follow(&state, &session, answer.body).await,
        Err(error @ ApiError::Refused(_)) => {
            let message = refusal_message(&error);
            checkout_page(&state, &session, form, Some(message), false).await
        }
        // The key stays: sending the form again resumes this checkout.
        Err(error @ ApiError::Unavailable { .. }) => {
            page(&session, None, form, Some(error.message()))
        }
    }
}

/// A refusal's message, with the card's decline reason when there is one.
fn refusal_message(error: &ApiError) -> String {
    let message = error.message();
    match error {
        ApiError::Refused(refusal) => match refusal.problem["decline_code"].as_str() {
            Some(code) => format!(
                "{message} (The card was declined: {}.)",
                super::label(code).to_lowercase()
            ),
            None => message,
        },
        ApiError::Unavailable { .. } => message,
    }
}

fn return_url(state: &AppState) -> String {
    format!(
        "{}{RETURN_PATH}",
        state.public_base_url.as_str().trim_end_matches('/')
    )
}

/// Where a checkout's answer leads: the order, or the provider's page.
async fn follow(
    state: &AppState,
    session: &Session,
    checkout: Checkout,
) -> Result<Response, PageError> {
    match (checkout.status.as_str(), checkout.next_action) {
        ("requires_action", Some(action)) => {
            state
                .sessions
                .set_pending_checkout(session, Some(checkout.id))
                .await
                .map_err(PageError::internal)?;
            // Not a redirect: browsers hold a form's redirects to the
            // page's `form-action`, which names only this shop, so a 303 to
            // the provider's origin would be blocked. A page of our own
            // forwards the customer by a plain navigation (and a link).
            let url = reqwest::Url::parse(&action.url)
                .ok()
                .filter(|url| matches!(url.scheme(), "https" | "http"))
                .ok_or_else(|| {
                    PageError::internal(anyhow::anyhow!(
                        "checkout {} asked for an action at an unusable URL",
                        checkout.id
                    ))
                })?;
            render(&Authenticate {
                nav: Nav::of(Some(session)),
                url: url.to_string(),
            })
            .map(IntoResponse::into_response)
        }
        _ => {
            if session.pending_checkout.is_some() {
                state
                    .sessions
                    .set_pending_checkout(session, None)
                    .await
                    .map_err(PageError::internal)?;
            }
            Ok(see_other(&format!(
                "/orders/{}?placed=1",
                checkout.order_id
            )))
        }
    }
}

/// On to the payment provider's page, where the customer's bank asks
/// them to approve the payment (3-D Secure).
#[derive(Template)]
#[template(path = "checkout_authenticate.html")]
struct Authenticate {
    nav: Nav,
    url: String,
}

#[derive(Template)]
#[template(path = "checkout_failed.html")]
struct CheckoutFailed {
    nav: Nav,
    message: String,
}

/// The provider's page sent the customer back: confirm the checkout.
pub async fn returned(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Response, PageError> {
    let Some(checkout) = session.pending_checkout else {
        return Ok(see_other("/orders"));
    };
    let answer = state
        .api
        .post(fleet::CHECKOUT, format!("/v1/checkouts/{checkout}/confirm"))
        .bearer(session.token())
        .send::<Checkout>()
        .await;
    match answer {
        Ok(answer) => follow(&state, &session, answer.body).await,
        Err(error @ ApiError::Refused(_)) => {
            state
                .sessions
                .set_pending_checkout(&session, None)
                .await
                .map_err(PageError::internal)?;
            render(&CheckoutFailed {
                nav: Nav::of(Some(&session)),
                message: refusal_message(&error),
            })
            .map(IntoResponse::into_response)
        }
        Err(error) => Err(error.into()),
    }
}
