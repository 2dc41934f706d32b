//! The signed-in user's points: the balance and the ledger, newest first.
//! Officers also give points to a charity here.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http_service::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::shop::Listing;
use super::{label, render, see_other, when, with_cursor, Nav, PageError, PageQuery};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

#[derive(Debug, Deserialize)]
struct Balance {
    available: i64,
    reserved: i64,
    lifetime_earned: i64,
    lifetime_spent: i64,
}

#[derive(Debug, Deserialize)]
struct Entry {
    kind: String,
    points: i64,
    order_id: Option<Uuid>,
    reference: Option<String>,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Charity {
    charity_id: Uuid,
    name: String,
}

struct EntryView {
    kind: String,
    points: i64,
    order_id: Option<Uuid>,
    reference: String,
    at: String,
}

struct CharityChoice {
    id: String,
    name: String,
    selected: bool,
}

/// The donation form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DonateForm {
    charity_id: String,
    points: String,
    /// Made when the form is shown, so a double submit gives once.
    idempotency_key: String,
}

/// An officer's donation form and the charities it offers.
struct Donating {
    charities: Vec<CharityChoice>,
    form: DonateForm,
}

#[derive(Template)]
#[template(path = "points.html")]
struct PointsPage {
    nav: Nav,
    available: i64,
    reserved: i64,
    lifetime_earned: i64,
    lifetime_spent: i64,
    entries: Vec<EntryView>,
    next_page: Option<String>,
    donating: Option<Donating>,
    problem: Option<String>,
    notice: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    cursor: Option<String>,
    donated: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<LedgerQuery>,
) -> Result<Html<String>, PageError> {
    let notice = query
        .donated
        .filter(|points| *points > 0)
        .map(|points| format!("Thank you: you gave {points} points."));
    points_page(
        &state,
        &session,
        query.cursor.as_deref(),
        DonateForm::default(),
        None,
        notice,
    )
    .await
}

async fn points_page(
    state: &AppState,
    session: &Session,
    cursor: Option<&str>,
    mut form: DonateForm,
    problem: Option<String>,
    notice: Option<String>,
) -> Result<Html<String>, PageError> {
    let balance = state
        .api
        .get(fleet::USER_POINTS, "/v1/points/balance")
        .bearer(session.token())
        .send::<Balance>()
        .await?
        .body;
    let ledger = state
        .api
        .get(
            fleet::USER_POINTS,
            with_cursor("/v1/points/ledger?limit=25", cursor),
        )
        .bearer(session.token())
        .send::<Listing<Entry>>()
        .await?
        .body;
    let donating = if session.user.role == Role::Officer {
        let charities = state
            .api
            .get(fleet::USER_POINTS, "/v1/points/charities?limit=200")
            .bearer(session.token())
            .send::<Listing<Charity>>()
            .await?
            .body
            .items;
        // A form shown after a refusal gets a new key: it may be sent
        // again with other choices.
        form.idempotency_key = Uuid::new_v4().to_string();
        Some(Donating {
            charities: charities
                .into_iter()
                .map(|charity| CharityChoice {
                    selected: charity.charity_id.to_string() == form.charity_id,
                    id: charity.charity_id.to_string(),
                    name: charity.name,
                })
                .collect(),
            form,
        })
    } else {
        None
    };
    render(&PointsPage {
        nav: Nav::of(Some(session)),
        available: balance.available,
        reserved: balance.reserved,
        lifetime_earned: balance.lifetime_earned,
        lifetime_spent: balance.lifetime_spent,
        entries: ledger
            .items
            .into_iter()
            .map(|entry| EntryView {
                kind: label(&entry.kind),
                points: entry.points,
                order_id: entry.order_id,
                reference: entry.reference.unwrap_or_default(),
                at: when(&entry.created_at),
            })
            .collect(),
        next_page: ledger
            .next_cursor
            .map(|cursor| with_cursor("/points", Some(&cursor))),
        donating,
        problem,
        notice,
    })
}

#[derive(Serialize)]
struct DonationRequest {
    charity_id: Uuid,
    points: i64,
}

/// `POST /points/donations` (officers): gives points to a charity. A
/// refusal (not enough points, an unknown charity) is told on the page,
/// with the form as it was filled in.
pub async fn donate(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<DonateForm>,
) -> Result<Response, PageError> {
    if session.user.role != Role::Officer {
        return Err(PageError::Forbidden(
            "Only officers give points to charities.".to_owned(),
        ));
    }
    let Ok(charity_id) = form.charity_id.trim().parse::<Uuid>() else {
        return refused(&state, &session, "Please choose a charity.", form).await;
    };
    let points = match form.points.trim().parse::<i64>() {
        Ok(points) if points > 0 => points,
        _ => {
            return refused(
                &state,
                &session,
                "Points to give must be a whole number, 1 or more.",
                form,
            )
            .await
        }
    };
    if form.idempotency_key.trim().is_empty() {
        return Err(PageError::BadForm);
    }
    let given = state
        .api
        .post(fleet::USER_POINTS, "/v1/points/donations")
        .bearer(session.token())
        .idempotency_key(form.idempotency_key.trim())
        .json(&DonationRequest { charity_id, points })
        .send::<serde_json::Value>()
        .await;
    match given {
        Ok(_) => Ok(see_other(&format!("/points?donated={points}"))),
        Err(error @ ApiError::Refused(_)) => {
            refused(&state, &session, &error.message(), form).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The points page again, saying why the donation was not made.
async fn refused(
    state: &AppState,
    session: &Session,
    problem: &str,
    form: DonateForm,
) -> Result<Response, PageError> {
    points_page(state, session, None, form, Some(problem.to_owned()), None)
        .await
        .map(IntoResponse::into_response)
}
