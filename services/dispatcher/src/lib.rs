//! dispatcher: a microkernel with one plugin per way of talking to businesses; places each business's part of an order and takes their answers.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/dispatcher");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "dispatcher",
    default_port: 8087,
    schema: "dispatcher",
    migrator: &MIGRATOR,
    produces: &[Topic::Dispatch],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
