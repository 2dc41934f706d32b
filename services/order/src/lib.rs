//! order: long-lived orders with a persisted state machine and history; drives the saga and queues paid orders for dispatch.

pub mod http;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/order");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "order",
    default_port: 8086,
    schema: "orders",
    migrator: &MIGRATOR,
    produces: &[Topic::Order],
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
    let consumer = host.consumer();
    host.serve(http::router(state), http::openapi(), consumer)
        .await
}
