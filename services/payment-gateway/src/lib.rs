//! payment-gateway: the anti-corruption layer over payment providers: authorize for checkout, capture, void and refund on the order's commands, provider webhooks.

pub mod domain;
pub mod http;
pub mod providers;
pub mod settings;

pub use settings::GatewaySettings;

use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/payment-gateway");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::PAYMENT_GATEWAY.name,
    default_port: fleet::PAYMENT_GATEWAY.port,
    schema: fleet::PAYMENT_GATEWAY.schema,
    migrator: &MIGRATOR,
    produces: fleet::PAYMENT_GATEWAY.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: GatewaySettings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer();
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
