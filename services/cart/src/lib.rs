//! cart: one persisted cart per user, the same on every device, lowered by what was bought after checkout.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/cart");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::CART.name,
    default_port: fleet::CART.port,
    schema: fleet::CART.schema,
    migrator: &MIGRATOR,
    produces: fleet::CART.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    host.serve(routes, http::openapi(), consumer).await
}
