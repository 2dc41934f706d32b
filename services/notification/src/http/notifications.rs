//! `/v1/notifications`: the caller's own inbox, newest first, and marking
//! one read. Any signed-in role has an inbox.

use axum::extract::State;
use http_service::auth::AuthUser;
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{Kind, Notification};
use crate::store;
use service_host::ServiceState;

pub fn router() -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(mark_read))
}

/// What the notification is about.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindBody {
    Placed,
    Paid,
    Dispatched,
    Confirmed,
    Shipped,
    Delivered,
    Declined,
    Refunded,
    Cancelled,
}

impl From<Kind> for KindBody {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Placed => KindBody::Placed,
            Kind::Paid => KindBody::Paid,
            Kind::Dispatched => KindBody::Dispatched,
            Kind::Confirmed => KindBody::Confirmed,
            Kind::Shipped => KindBody::Shipped,
            Kind::Delivered => KindBody::Delivered,
            Kind::Declined => KindBody::Declined,
            Kind::Refunded => KindBody::Refunded,
            Kind::Cancelled => KindBody::Cancelled,
        }
    }
}

/// One notification in the caller's inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationBody {
    pub id: Uuid,
    pub order_id: Uuid,
    pub kind: KindBody,
    pub title: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the caller first marked it read; null while unread.
    #[serde(with = "time::serde::rfc3339::option")]
    pub read_at: Option<OffsetDateTime>,
}

impl From<Notification> for NotificationBody {
    fn from(notification: Notification) -> Self {
        NotificationBody {
            id: notification.id,
            order_id: notification.order_id,
            kind: notification.kind.into(),
            title: notification.title,
            body: notification.body,
            created_at: notification.created_at,
            read_at: notification.read_at,
        }
    }
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "notifications",
    params(PageRequest<i64>),
    responses(
        (status = OK, description = "A page of notifications", body = Page<NotificationBody>),
        (status = UNAUTHORIZED),
        (status = UNPROCESSABLE_ENTITY, description = "Bad limit or cursor"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn list(
    caller: AuthUser,
    State(pool): State<PgPool>,
    page: PageRequest<i64>,
) -> Result<Json<Page<NotificationBody>>, ApiError> {
    let mut conn = pool.acquire().await?;
    let rows = store::inbox_page(
        &mut conn,
        caller.id(),
        page.after().copied(),
        page.fetch_limit(),
    )
    .await?;
    Ok(Json(page.page(rows).map(NotificationBody::from)))
}

/// Mark one of the caller's notifications read; marking it again keeps the
/// first `read_at`.
#[utoipa::path(
    post,
    path = "/v1/notifications/{notification_id}/read",
    tag = "notifications",
    params(("notification_id" = Uuid, Path, description = "The notification")),
    responses(
        (status = OK, description = "The notification, read", body = NotificationBody),
        (status = UNAUTHORIZED),
        (status = NOT_FOUND, description = "The caller has no such notification"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %notification_id))]
async fn mark_read(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(notification_id): Path<Uuid>,
) -> Result<Json<NotificationBody>, ApiError> {
    let mut conn = pool.acquire().await?;
    store::mark_read(&mut conn, caller.id(), notification_id)
        .await?
        .map(|notification| Json(notification.into()))
        .ok_or(ApiError::NotificationNotFound(notification_id))
}
