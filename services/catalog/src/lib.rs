//! catalog: businesses' storefront profiles, offerings (price, points price, stock) and stock reservation per order.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/catalog");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "catalog",
    default_port: 8081,
    schema: "catalog",
    migrator: &MIGRATOR,
    produces: &[Topic::Catalog],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
