//! payment-gateway: the anti-corruption layer over payment providers: authorize for checkout, capture, void and refund on the order's commands, provider webhooks.

pub mod http;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/payment-gateway");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "payment-gateway",
    default_port: 8085,
    schema: "payment",
    migrator: &MIGRATOR,
    produces: &[Topic::Payment],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
