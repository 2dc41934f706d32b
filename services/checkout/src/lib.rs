//! checkout: quotes with points discounts, points reservation, synchronous payment authorization and the finalized order.

pub mod http;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/checkout");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "checkout",
    default_port: 8083,
    schema: "checkout",
    migrator: &MIGRATOR,
    produces: &[Topic::Checkout],
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
