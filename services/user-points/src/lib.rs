//! user-points: the points ledger. Awards (from the connection capability's
//! topic or an admin), reservations, spend, release, refund, officer→charity
//! donations, and each user's balance and history.

pub mod domain;
pub mod events;
pub mod expiry;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod store;

use job_queue::Sweeper;
use service_host::{App, Host, HostConfig, ServiceSpec};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/user-points");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::USER_POINTS.name,
    default_port: fleet::USER_POINTS.port,
    schema: fleet::USER_POINTS.schema,
    migrator: &MIGRATOR,
    produces: fleet::USER_POINTS.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let metrics = metrics::PointsMetrics::register(&host.registry)?;
    let clock = host.config.clock.clone();
    let consumer = host
        .consumer()
        .on(events::AwardHandler)
        .on(events::OrderSubmittedHandler {
            clock: clock.clone(),
            metrics: metrics.clone(),
        })
        .on(events::OrderCommandHandler {
            clock,
            metrics: metrics.clone(),
        });
    let routes = http::router(host.state());
    let jobs = host
        .jobs()
        .every(Sweeper(expiry::ExpireReservations { metrics }));
    host.serve(routes, consumer, jobs).await
}
