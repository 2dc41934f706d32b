//! `GET /v1/points/balance`: the caller's own points.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http_service::auth::AuthUser;
use http_service::problem::Json;
use sqlx::PgPool;

use super::ApiError;
use crate::domain::Balance;
use crate::store;
use service_host::ServiceState;

pub fn router() -> Router<ServiceState> {
    Router::new().route("/v1/points/balance", get(balance))
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn balance(caller: AuthUser, State(pool): State<PgPool>) -> Result<Json<Balance>, ApiError> {
    let mut conn = pool.acquire().await?;
    Ok(Json(store::balance(&mut conn, caller.id()).await?))
}
