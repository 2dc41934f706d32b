//! The cart: what is in it, each quantity changeable, each line removable,
//! and the way to checkout.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::shop::{parse_id, parse_quantity, Cart, Offering};
use super::{money, render, see_other, Nav, PageError};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

struct Line {
    offering_id: Uuid,
    title: String,
    unit_price: String,
    quantity: String,
    amount: String,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    nav: Nav,
    lines: Vec<Line>,
    total: String,
    problem: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Html<String>, PageError> {
    cart_page(&state, &session, None, None).await
}

/// The cart page; `edited` is a line whose quantity was refused, with what
/// was typed and why.
async fn cart_page(
    state: &AppState,
    session: &Session,
    edited: Option<(Uuid, String, String)>,
    problem: Option<String>,
) -> Result<Html<String>, PageError> {
    let cart = state
        .api
        .get(fleet::CART, "/v1/cart")
        .bearer(session.token())
        .send::<Cart>()
        .await?
        .body;
    let offerings = futures::future::join_all(cart.items.iter().map(|item| {
        state
            .api
            .get(
                fleet::CATALOG,
                format!("/v1/offerings/{}", item.offering_id),
            )
            .send::<Offering>()
    }))
    .await;
    let mut total = 0i64;
    let mut currency = "USD".to_owned();
    let mut lines = Vec::new();
    for (item, offering) in cart.items.iter().zip(offerings) {
        let (title, unit_price, amount) = match offering {
            Ok(answer) => {
                let offering = answer.body;
                let amount = offering.price_minor * i64::from(item.quantity);
                total += amount;
                currency = offering.currency.clone();
                (
                    offering.title,
                    money(offering.price_minor, &offering.currency),
                    money(amount, &offering.currency),
                )
            }
            Err(ApiError::Unavailable { .. }) => (
                "(details unavailable)".to_owned(),
                String::new(),
                String::new(),
            ),
            Err(ApiError::Refused(_)) => (
                "(no longer on sale)".to_owned(),
                String::new(),
                String::new(),
            ),
        };
        let (quantity, line_problem) = match &edited {
            Some((id, typed, why)) if *id == item.offering_id => (typed.clone(), Some(why.clone())),
            _ => (item.quantity.to_string(), None),
        };
        lines.push(Line {
            offering_id: item.offering_id,
            title,
            unit_price,
            quantity,
            amount,
            problem: line_problem,
        });
    }
    render(&CartPage {
        nav: Nav::of(Some(session)),
        lines,
        total: money(total, &currency),
        problem,
    })
}

#[derive(Debug, Deserialize)]
pub struct QuantityForm {
    quantity: String,
}

pub async fn change_quantity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<QuantityForm>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let quantity = match parse_quantity(&form.quantity) {
        Ok(quantity) => quantity,
        Err(why) => {
            return cart_page(&state, &session, Some((id, form.quantity, why)), None)
                .await
                .map(IntoResponse::into_response)
        }
    };
    let put = state
        .api
        .put(fleet::CART, format!("/v1/cart/items/{id}"))
        .bearer(session.token())
        .json(&serde_json::json!({ "quantity": quantity }))
        .send::<serde_json::Value>()
        .await;
    match put {
        Ok(_) => Ok(see_other("/cart")),
        Err(error @ ApiError::Refused(_)) => cart_page(
            &state,
            &session,
            Some((id, form.quantity, error.message())),
            None,
        )
        .await
        .map(IntoResponse::into_response),
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let deleted = state
        .api
        .delete(fleet::CART, format!("/v1/cart/items/{id}"))
        .bearer(session.token())
        .send::<serde_json::Value>()
        .await;
    match deleted {
        // A line already gone is what was asked for.
        Ok(_) | Err(ApiError::Refused(_)) => Ok(see_other("/cart")),
        Err(error) => Err(error.into()),
    }
}
