//! dispatcher: a microkernel with one plugin per way of talking to
//! businesses (`plugins`); it places each business's part of an order and
//! takes their answers.
//!
//! - `events`: `order_ready_for_dispatch` arrives; each part is stored once
//!   per (order, business) and handed to its business's plugin.
//! - `fulfillment`: the core; every change of a part passes the fulfillment
//!   machine (`domain`) and writes its event into the outbox.
//! - `delivery`: the durable, retried delivery of plugins that call out.
//! - `deadline`: parts not confirmed in time are declined (`timeout`).
//! - `http`: the business, admin and order-service endpoints.

pub mod deadline;
pub mod delivery;
pub mod domain;
pub mod events;
pub mod fulfillment;
pub mod http;
pub mod plugins;
pub mod settings;
pub mod store;

use std::sync::Arc;

use service_host::{App, Host, HostConfig, ServiceSpec};

pub use settings::Settings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/dispatcher");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::DISPATCHER.name,
    default_port: fleet::DISPATCHER.port,
    schema: fleet::DISPATCHER.schema,
    migrator: &MIGRATOR,
    produces: fleet::DISPATCHER.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let plugins = Arc::new(plugins::Plugins::standard(&settings));
    let consumer = host.consumer().on(events::OrderReadyHandler {
        plugins: Arc::clone(&plugins),
        clock: host.config.clock.clone(),
        confirm_deadline: settings.confirm_deadline,
    });
    let jobs = host
        .jobs()
        .on(delivery::DeliverParts {
            plugins: Arc::clone(&plugins),
            settings: settings.delivery.clone(),
        })
        .every(deadline::ConfirmationDeadline);
    let routes = http::router(http::DispatchState {
        service: host.state(),
        plugins,
        settings: Arc::new(settings),
    });
    host.serve(routes, consumer, jobs).await
}
