//! The signed-in user's notifications, newest first, each marked read from
//! the page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::cart::Empty;
use super::shop::{parse_id, Listing};
use super::{render, see_other, when, Nav, PageError};
use crate::session::{CsrfForm, SignedIn};
use crate::AppState;

#[derive(Debug, Deserialize)]
struct Notification {
    id: Uuid,
    order_id: Uuid,
    title: String,
    body: String,
    created_at: String,
    read_at: Option<String>,
}

struct NotificationView {
    id: Uuid,
    order_id: Uuid,
    title: String,
    body: String,
    at: String,
    unread: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage {
    nav: Nav,
    notifications: Vec<NotificationView>,
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
    let mut path = "/v1/notifications?limit=25".to_owned();
    if let Some(cursor) = &query.cursor {
        path.push('&');
        path.push_str(&serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default());
    }
    let listed = state
        .api
        .get(fleet::NOTIFICATION, path)
        .bearer(session.token())
        .send::<Listing<Notification>>()
        .await?
        .body;
    render(&NotificationsPage {
        nav: Nav::of(Some(&session)),
        notifications: listed
            .items
            .into_iter()
            .map(|notification| NotificationView {
                id: notification.id,
                order_id: notification.order_id,
                title: notification.title,
                body: notification.body,
                at: when(&notification.created_at),
                unread: notification.read_at.is_none(),
            })
            .collect(),
        next_page: listed.next_cursor.map(|cursor| {
            format!(
                "/notifications?{}",
                serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default()
            )
        }),
    })
}

/// `POST /notifications/{id}/read`.
pub async fn mark_read(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    state
        .api
        .post(fleet::NOTIFICATION, format!("/v1/notifications/{id}/read"))
        .bearer(session.token())
        .send::<serde_json::Value>()
        .await?;
    Ok(see_other("/notifications"))
}
