//! order: long-lived orders with a persisted state machine and history; drives the saga and queues paid orders for dispatch.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/order");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "order",
    default_port: 8086,
    schema: "orders",
    migrator: &MIGRATOR,
    produces: &[Topic::Order],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
