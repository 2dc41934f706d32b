//! order: long-lived orders with a persisted state machine and history;
//! drives the saga (DESIGN §4) and queues paid orders for dispatch.

pub mod dispatcher;
pub mod domain;
pub mod events;
pub mod http;
pub mod journey;
pub mod metrics;
pub mod redrive;
pub mod settings;
pub mod store;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::catalog::CatalogEvent;
use shared_events::checkout::CheckoutEvent;
use shared_events::dispatch::DispatchEvent;
use shared_events::payment::PaymentEvent;

use crate::dispatcher::Dispatcher;
pub use crate::settings::Settings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/order");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::ORDER.name,
    default_port: fleet::ORDER.port,
    schema: fleet::ORDER.schema,
    migrator: &MIGRATOR,
    produces: fleet::ORDER.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let metrics = metrics::OrderMetrics::register(&host.registry)?;
    let saga = events::Saga {
        clock: host.config.clock.clone(),
        metrics: metrics.clone(),
    };
    let consumer = host
        .consumer()
        .on::<CheckoutEvent, _>(saga.clone())
        .on::<CatalogEvent, _>(saga.clone())
        .on::<PaymentEvent, _>(saga.clone())
        .on::<DispatchEvent, _>(saga);
    let dispatcher = Dispatcher(host.client("dispatcher", &settings.dispatcher_url)?);
    let routes = http::router(http::OrderState {
        service: host.state(),
        dispatcher,
    });
    let jobs = host.jobs().every(redrive::RedriveStuckOrders {
        stuck_after: settings.stuck_after,
        metrics,
    });
    host.serve(routes, consumer, jobs).await
}
