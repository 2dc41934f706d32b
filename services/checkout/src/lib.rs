//! checkout: quotes with points discounts, points reservation, synchronous
//! payment authorization and the finalized order (`order_submitted`).

pub mod compensation;
pub mod domain;
pub mod expiry;
pub mod http;
pub mod peers;
pub mod process;
pub mod settings;
pub mod store;

use job_queue::Sweeper;
use service_host::{App, Host, HostConfig, ServiceSpec};

use crate::peers::Peers;
use crate::process::Checkouts;
pub use crate::settings::Settings;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/checkout");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::CHECKOUT.name,
    default_port: fleet::CHECKOUT.port,
    schema: fleet::CHECKOUT.schema,
    migrator: &MIGRATOR,
    produces: fleet::CHECKOUT.produces,
};

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let client = |peer: &str, url| {
        host.client(peer, url)
            .map(|client| client.with_timeout(settings.peer_timeout))
    };
    let peers = Peers {
        catalog: client(fleet::CATALOG.name, &settings.catalog_url)?,
        cart: client(fleet::CART.name, &settings.cart_url)?,
        points: client(fleet::USER_POINTS.name, &settings.user_points_url)?,
        gateway: client(fleet::PAYMENT_GATEWAY.name, &settings.payment_gateway_url)?,
    };
    let state = host.state();
    let checkouts = Checkouts {
        pool: state.pool.clone(),
        clock: state.clock.clone(),
        peers: peers.clone(),
        reservation_ttl: settings.reservation_ttl,
        expiry_margin: settings.expiry_margin,
        peer_timeout: settings.peer_timeout,
    };
    let routes = http::router(http::CheckoutState {
        service: state,
        checkouts,
    });
    let jobs = host
        .jobs()
        .on(compensation::CompensationJob { peers })
        .every(Sweeper(expiry::ExpireCheckouts {
            expiry_margin: settings.expiry_margin,
        }));
    let consumer = host.consumer();
    host.serve(routes, consumer, jobs).await
}
