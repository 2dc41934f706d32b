//! cart: one persisted cart per user, the same on every device, lowered by what was bought after checkout.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/cart");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "cart",
    default_port: 8082,
    schema: "cart",
    migrator: &MIGRATOR,
    produces: &[],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    host.serve(routes, consumer).await
}
