//! `GET /v1/points/ledger`: the caller's ledger entries, newest first,
//! paged by the entry's sequence number.

use axum::extract::State;
use http_service::auth::AuthUser;
use http_service::problem::Json;
use http_service::{routes, OpenApiRouter, Page, PageRequest};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::{EntryKind, LedgerEntry};
use crate::store;
use service_host::ServiceState;

pub fn router() -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new().routes(routes!(ledger))
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKindBody {
    Awarded,
    Reserved,
    Released,
    Spent,
    Refunded,
    Donated,
    Received,
}

impl From<EntryKind> for EntryKindBody {
    fn from(kind: EntryKind) -> Self {
        match kind {
            EntryKind::Awarded => EntryKindBody::Awarded,
            EntryKind::Reserved => EntryKindBody::Reserved,
            EntryKind::Released => EntryKindBody::Released,
            EntryKind::Spent => EntryKindBody::Spent,
            EntryKind::Refunded => EntryKindBody::Refunded,
            EntryKind::Donated => EntryKindBody::Donated,
            EntryKind::Received => EntryKindBody::Received,
        }
    }
}

/// One change to the caller's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntryBody {
    pub id: Uuid,
    pub kind: EntryKindBody,
    pub points: i64,
    pub order_id: Option<Uuid>,
    pub reference: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<LedgerEntry> for LedgerEntryBody {
    fn from(entry: LedgerEntry) -> Self {
        LedgerEntryBody {
            id: entry.id,
            kind: entry.kind.into(),
            points: entry.points,
            order_id: entry.order_id,
            reference: entry.reference,
            created_at: entry.created_at,
        }
    }
}

/// The caller's ledger entries, newest first.
#[utoipa::path(
    get,
    path = "/v1/points/ledger",
    tag = "points",
    params(PageRequest<i64>),
    responses(
        (status = OK, description = "A page of entries", body = Page<LedgerEntryBody>),
        (status = UNAUTHORIZED),
        (status = UNPROCESSABLE_ENTITY, description = "Bad limit or cursor"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn ledger(
    caller: AuthUser,
    State(pool): State<PgPool>,
    page: PageRequest<i64>,
) -> Result<Json<Page<LedgerEntryBody>>, ApiError> {
    let mut conn = pool.acquire().await?;
    let rows = store::ledger_page(
        &mut conn,
        caller.id(),
        page.after().copied(),
        page.fetch_limit(),
    )
    .await?;
    Ok(Json(page.page(rows).map(LedgerEntryBody::from)))
}
