//! user-points: the points ledger. Awards (from the connection capability's
//! topic or an admin), reservations, spend, release, refund, officer→charity
//! donations, and each user's balance and history.

pub mod domain;
pub mod events;
pub mod http;
pub mod store;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/user-points");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "user-points",
    default_port: 8084,
    schema: "points",
    migrator: &MIGRATOR,
    produces: &[Topic::Points],
};

/// What every handler can reach.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub auth: Authenticator,
}

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let state = AppState {
        pool: host.pool.clone(),
        auth: host.auth.clone(),
    };
    let consumer = host.consumer().on(events::AwardHandler);
    host.serve(http::router(state), http::openapi(), consumer)
        .await
}
