//! catalog: businesses' storefront profiles, offerings (price, points price, stock) and stock reservation per order.

pub mod http;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/catalog");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "catalog",
    default_port: 8081,
    schema: "catalog",
    migrator: &MIGRATOR,
    produces: &[Topic::Catalog],
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
