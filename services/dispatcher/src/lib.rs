//! dispatcher: a microkernel with one plugin per way of talking to businesses; places each business's part of an order and takes their answers.

pub mod http;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;
use sqlx::PgPool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/dispatcher");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "dispatcher",
    default_port: 8087,
    schema: "dispatcher",
    migrator: &MIGRATOR,
    produces: &[Topic::Dispatch],
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
