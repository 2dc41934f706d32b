//! cart: one persisted cart per user, the same on every device, lowered by what was bought after checkout.

pub mod catalog;
pub mod domain;
pub mod events;
pub mod http;
pub mod settings;
pub mod store;

use service_host::{App, Host, HostConfig, ServiceSpec};

use crate::catalog::Catalog;
pub use crate::settings::Settings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/cart");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: "cart",
    default_port: 8082,
    schema: "cart",
    migrator: &MIGRATOR,
    produces: &[],
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let consumer = host.consumer().on(events::CheckoutHandler);
    let catalog = Catalog(host.client("catalog", &settings.catalog_url)?);
    let routes = http::router(http::CartState {
        service: host.state(),
        catalog,
    });
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
