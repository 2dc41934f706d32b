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
pub mod links;
pub mod metrics;
pub mod plugins;
pub mod settings;
pub mod store;

use std::sync::Arc;

use anyhow::Context;
use job_queue::Sweeper;
use rand::Rng;
use secrecy::SecretString;
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
    let metrics = metrics::DispatchMetrics::register(&host.registry)?;
    let links = links::LinkSigner::new(link_secret(&host, &settings).await?, settings.link_ttl);
    let mailer = mail::Mailer::new(&settings.mail).context("invalid mail settings")?;
    tracing::info!(mail = %mailer.describe(), "email plugin ready");
    let plugins = Arc::new(plugins::Plugins::standard(
        &settings,
        links.clone(),
        mailer,
        host.config.clock.clone(),
    ));
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
            metrics: metrics.clone(),
        })
        .on(delivery::NotifyWithdrawals {
            plugins: Arc::clone(&plugins),
            settings: settings.delivery.clone(),
            metrics: metrics.clone(),
        })
        .every(Sweeper(deadline::ConfirmationDeadline { metrics }));
    let routes = http::router(http::DispatchState {
        service: host.state(),
        plugins,
        links,
        settings: Arc::new(settings),
    });
    host.serve(routes, consumer, jobs).await
}

/// The configured link secret, or the one this deployment generated for
/// itself and keeps in its schema.
async fn link_secret(host: &Host, settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.link_secret {
        return Ok(secret.clone());
    }
    let mut conn = host.pool.acquire().await?;
    let secret = store::generated_secret(&mut conn, "action_links", || {
        hex::encode(rand::rng().random::<[u8; 32]>())
    })
    .await
    .context("failed to read the generated link secret")?;
    Ok(SecretString::from(secret))
}
