//! catalog: businesses' storefront profiles, offerings (price, points price, stock) and stock reservation per order.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/catalog");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::CATALOG.name,
    default_port: fleet::CATALOG.port,
    schema: fleet::CATALOG.schema,
    migrator: &MIGRATOR,
    produces: fleet::CATALOG.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
