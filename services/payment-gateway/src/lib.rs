//! payment-gateway: the anti-corruption layer over payment providers: authorize for checkout, capture, void and refund on the order's commands, provider webhooks.

pub mod authorizations;
pub mod domain;
pub mod events;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod providers;
pub mod settings;
pub mod store;
pub mod webhooks;

pub use settings::GatewaySettings;

use anyhow::Context;
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
pub async fn build(config: HostConfig, settings: GatewaySettings) -> anyhow::Result<App> {
    let providers = providers::Providers::from_settings(&settings)
        .context("failed to set up the payment providers")?;
    let host = Host::start(&SPEC, config).await?;
    let metrics = metrics::GatewayMetrics::register(&host.registry)
        .context("failed to register the gateway's metrics")?;
    let consumer = host.consumer().on(events::OrderCommandHandler {
        metrics: metrics.clone(),
    });
    let routes = http::router(http::GatewayState {
        service: host.state(),
        providers: providers.clone(),
    });
    let jobs = host
        .jobs()
        .on(jobs::CaptureJob {
            providers: providers.clone(),
        })
        .on(jobs::ResolveAuthorizationJob {
            providers: providers.clone(),
        })
        .on(jobs::VoidJob {
            providers: providers.clone(),
        })
        .on(jobs::RefundJob {
            providers: providers.clone(),
            metrics: metrics.clone(),
        })
        .on(webhooks::ProcessWebhook { providers, metrics });
    host.serve(routes, consumer, jobs).await
}
