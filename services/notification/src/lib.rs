//! notification: turns events into user notifications: an in-app inbox and email.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/notification");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "notification",
    default_port: 8088,
    schema: "notification",
    migrator: &MIGRATOR,
    produces: &[],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
