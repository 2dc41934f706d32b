//! payment-gateway: the anti-corruption layer over payment providers: authorize for checkout, capture, void and refund on the order's commands, provider webhooks.

pub mod http;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/payment-gateway");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "payment-gateway",
    default_port: 8085,
    schema: "payment",
    migrator: &MIGRATOR,
    produces: &[Topic::Payment],
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
