//! catalog: businesses' storefront profiles, offerings (price, points price,
//! stock) with ranked full-text search, and stock reservation per order.

pub mod domain;
pub mod events;
pub mod http;
pub mod settings;
pub mod stock;
pub mod store;

use service_host::{App, Host, HostConfig, ServiceSpec};

pub use settings::CatalogSettings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/catalog");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::CATALOG.name,
    default_port: fleet::CATALOG.port,
    schema: fleet::CATALOG.schema,
    migrator: &MIGRATOR,
    produces: fleet::CATALOG.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: CatalogSettings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    tracing::info!(currency = %settings.shop_currency.0, "the shop sells in this currency");
    let consumer = host.consumer().on(events::OrderHandler);
    let routes = http::router(http::CatalogState {
        service: host.state(),
        shop_currency: settings.shop_currency,
    });
    let jobs = host.jobs();
    host.serve(routes, consumer, jobs).await
}
