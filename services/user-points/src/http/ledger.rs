//! `GET /v1/points/ledger`: the caller's ledger entries, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http_service::auth::AuthUser;
use http_service::problem::{Json, Problem, Query};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::ApiError;
use crate::domain::LedgerEntry;
use crate::store;
use service_host::ServiceState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn router() -> Router<ServiceState> {
    Router::new().route("/v1/points/ledger", get(ledger))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct Page {
    items: Vec<LedgerEntry>,
    next_cursor: Option<String>,
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn ledger(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::unprocessable(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )
        .into());
    }
    let before = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(
            cursor
                .parse::<i64>()
                .ok()
                .filter(|seq| *seq > 0)
                .ok_or_else(|| {
                    Problem::unprocessable(
                        "invalid_cursor",
                        "cursor is not one this service issued",
                    )
                })?,
        ),
    };
    let mut conn = pool.acquire().await?;
    let (items, next) = store::ledger_page(&mut conn, caller.id(), before, limit).await?;
    Ok(Json(Page {
        items,
        next_cursor: next.map(|seq| seq.to_string()),
    }))
}
