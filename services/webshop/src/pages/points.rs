//! The signed-in user's points: the balance and the ledger, newest first.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use uuid::Uuid;

use super::shop::Listing;
use super::{label, render, when, Nav, PageError};
use crate::session::SignedIn;
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

struct EntryView {
    kind: String,
    points: i64,
    order_id: Option<Uuid>,
    reference: String,
    at: String,
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
}

#[derive(Debug, Default, Deserialize)]
pub struct LedgerQuery {
    cursor: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    query: Result<Query<LedgerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, PageError> {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let balance = state
        .api
        .get(fleet::USER_POINTS, "/v1/points/balance")
        .bearer(session.token())
        .send::<Balance>()
        .await?
        .body;
    let mut path = "/v1/points/ledger?limit=25".to_owned();
    if let Some(cursor) = &query.cursor {
        path.push('&');
        path.push_str(&serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default());
    }
    let ledger = state
        .api
        .get(fleet::USER_POINTS, path)
        .bearer(session.token())
        .send::<Listing<Entry>>()
        .await?
        .body;
    render(&PointsPage {
        nav: Nav::of(Some(&session)),
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
        next_page: ledger.next_cursor.map(|cursor| {
            format!(
                "/points?{}",
                serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
            )
        }),
    })
}
