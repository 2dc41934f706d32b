//! `GET /v1/points/balance`: the caller's own points.

use axum::extract::State;
use http_service::auth::AuthUser;
use http_service::problem::Json;
use http_service::{routes, OpenApiRouter};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ApiError;
use crate::domain::Balance;
use crate::store;
use service_host::ServiceState;

pub fn router() -> OpenApiRouter<ServiceState> {
    OpenApiRouter::new().routes(routes!(balance))
}

/// A user's points; `available + reserved = lifetime_earned − lifetime_spent − donated`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceBody {
    pub user_id: Uuid,
    pub available: i64,
    pub reserved: i64,
    /// Awarded plus received.
    pub lifetime_earned: i64,
    /// Spent minus refunded.
    pub lifetime_spent: i64,
}

impl From<Balance> for BalanceBody {
    fn from(balance: Balance) -> Self {
        BalanceBody {
            user_id: balance.user_id,
            available: balance.available,
            reserved: balance.reserved,
            lifetime_earned: balance.lifetime_earned,
            lifetime_spent: balance.lifetime_spent,
        }
    }
}

/// The caller's points balance.
#[utoipa::path(
    get,
    path = "/v1/points/balance",
    tag = "points",
    responses(
        (status = OK, description = "The balance", body = BalanceBody),
        (status = UNAUTHORIZED),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn balance(
    caller: AuthUser,
    State(pool): State<PgPool>,
) -> Result<Json<BalanceBody>, ApiError> {
    let mut conn = pool.acquire().await?;
    let balance = store::balance(&mut conn, caller.id()).await?;
    Ok(Json(balance.into()))
}
