//! The signed-in user's notifications, newest first, each marked read from
//! the page.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::cart::Empty;
use super::shop::{parse_id, Listing};
use super::{render, see_other, when, with_cursor, CursorQuery, Nav, PageError, PageQuery};
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

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<CursorQuery>,
) -> Result<Html<String>, PageError> {
    let path = with_cursor("/v1/notifications?limit=25", query.cursor.as_deref());
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
        next_page: listed
            .next_cursor
            .map(|cursor| with_cursor("/notifications", Some(&cursor))),
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
