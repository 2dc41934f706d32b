//! checkout: quotes with points discounts, points reservation, synchronous payment authorization and the finalized order.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/checkout");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "checkout",
    default_port: 8083,
    schema: "checkout",
    migrator: &MIGRATOR,
    produces: &[Topic::Checkout],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
