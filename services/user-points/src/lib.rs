//! user-points: the points ledger. Awards (from the connection capability's
//! topic or an admin), reservations, spend, release, refund, officer→charity
//! donations, and each user's balance and history.

pub mod domain;
pub mod events;
pub mod http;
pub mod store;

use service_host::{App, Host, HostConfig, ServiceSpec};
use shared_events::Topic;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/user-points");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "user-points",
    default_port: 8084,
    schema: "points",
    migrator: &MIGRATOR,
    produces: &[Topic::Points],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, _settings: ()) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer().on(events::AwardHandler);
    let routes = http::router(host.state());
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
