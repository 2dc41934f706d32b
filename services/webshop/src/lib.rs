//! webshop: the backend-for-frontend. It serves the web pages for
//! civilians, charities and businesses (server-rendered, working without
//! JavaScript), holds sign-in sessions so that tokens never reach the
//! browser, and forwards the public API (`/v1/...`) to the service that
//! owns each path, so a frontend needs one origin.
//!
//! Its own schema holds only the sessions; everything the pages show is
//! read from the services, as the signed-in user.

pub mod api;
pub mod pages;
pub mod proxy;
pub mod session;
pub mod settings;
pub mod signin;

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use http_service::OpenApiRouter;
use job_queue::{JobContext, Periodic};
use reqwest::Url;
use service_host::{App, Host, HostConfig, ServiceSpec};
use time::OffsetDateTime;

pub use settings::{PeerUrls, Settings};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/webshop");

pub static SPEC: ServiceSpec = ServiceSpec {
    name: fleet::WEBSHOP.name,
    default_port: fleet::WEBSHOP.port,
    schema: fleet::WEBSHOP.schema,
    migrator: &MIGRATOR,
    produces: fleet::WEBSHOP.produces,
};

/// What the pages and the proxy share.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub api: api::Api,
    pub sessions: session::Sessions,
    /// The demo sign-in, when it is enabled.
    pub demo: Option<signin::demo::DemoSignIn>,
    /// Sign-in through an OpenID Connect provider, when one is set up.
    pub oidc: Option<signin::oidc::OidcSignIn>,
    pub public_base_url: Url,
    /// The currency new offerings are priced in.
    pub shop_currency: String,
}

/// Builds the service; `app.run()` serves it.
pub async fn build(config: HostConfig, settings: Settings) -> anyhow::Result<App> {
    let host = Host::start(&SPEC, config).await?;
    let demo = if settings.demo_sign_in {
        let secret = host.config.auth.jwt_secret.clone().context(
            "HEYBLUE_WEBSHOP_DEMO_SIGNIN needs HEYBLUE_JWT_SECRET to sign the demo users' tokens",
        )?;
        Some(signin::demo::DemoSignIn::new(secret, settings.session_ttl))
    } else {
        None
    };
    let state = AppState {
        api: api::Api::new(settings.peers.clone(), settings.peer_timeout)
            .context("failed to build the HTTP client for the services")?,
        sessions: session::Sessions::new(
            host.pool.clone(),
            settings.session_ttl,
            settings.is_https(),
        ),
        demo,
        oidc: match &settings.oidc {
            Some(oidc) => Some(signin::oidc::OidcSignIn::new(
                oidc.clone(),
                &settings.public_base_url,
            )?),
            None => None,
        },
        public_base_url: settings.public_base_url.clone(),
        shop_currency: settings.shop_currency.clone(),
    };
    let routes = OpenApiRouter::from(router(state));
    let consumer = host.consumer();
    let jobs = host.jobs().every(PruneSessions);
    host.serve(routes, consumer, jobs).await
}

/// The pages and the API proxy.
///
/// None of these is in the webshop's OpenAPI document, so they are declared
/// with plain `route` (which `services/clippy.toml` otherwise refuses): the
/// pages are HTML for browsers, not an API anyone programs against, and
/// `/v1/...` is the services' own API, documented in each service's
/// `/openapi.json`; the proxy adds no operation of its own.
#[expect(
    clippy::disallowed_methods,
    reason = "pages and the proxy are not API operations of the webshop; see the doc comment"
)]
pub fn router(state: AppState) -> Router {
    use pages::{admin, business, cart, checkout, notifications, offerings, orders, points, shop};
    Router::new()
        .route("/", get(shop::storefront))
        .route("/offerings/{id}", get(shop::offering))
        .route("/cart", get(cart::show))
        .route("/cart/items", post(shop::add_to_cart))
        .route("/cart/items/{id}", post(cart::change_quantity))
        .route("/cart/items/{id}/remove", post(cart::remove))
        .route("/checkout", get(checkout::show).post(checkout::place))
        .route("/checkout/quote", post(checkout::requote))
        .route(checkout::RETURN_PATH, get(checkout::returned))
        .route("/orders", get(orders::list))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/events", get(orders::events))
        .route("/notifications", get(notifications::list))
        .route("/notifications/{id}/read", post(notifications::mark_read))
        .route("/points", get(points::show))
        .route("/points/donations", post(points::donate))
        .route("/admin", get(admin::show))
        .route("/admin/businesses", post(admin::register_business))
        .route("/admin/charities", post(admin::register_charity))
        .route(
            "/admin/integrations/{business}",
            post(admin::set_integration),
        )
        .route("/business", get(business::queue))
        .route("/business/orders/{order}/{action}", post(business::act))
        .route(
            "/business/offerings",
            get(offerings::list).post(offerings::create),
        )
        .route("/business/offerings/new", get(offerings::new))
        .route(
            "/business/offerings/{id}",
            get(offerings::edit).post(offerings::update),
        )
        .route(
            "/business/offerings/{id}/active",
            post(offerings::set_active),
        )
        .route("/sign-in", get(signin::page))
        .route("/sign-in/demo", post(signin::demo::sign_in))
        .route("/sign-in/oidc", get(signin::oidc::start))
        .route(signin::oidc::CALLBACK_PATH, get(signin::oidc::callback))
        .route("/sign-out", post(signin::sign_out))
        .route("/static/webshop.css", get(pages::style_sheet))
        .route("/static/order-live.js", get(pages::order_script))
        .route("/v1/{*path}", axum::routing::any(proxy::forward))
        // Any other path: a page saying so, not the API's problem+json.
        .route("/{*path}", get(pages::not_found))
        .with_state(state)
}

/// Deletes expired sessions and unfinished sign-ins, every ten minutes,
/// on one replica.
struct PruneSessions;

#[async_trait]
impl Periodic for PruneSessions {
    fn name(&self) -> &'static str {
        "webshop.prune_sessions"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(600)
    }

    async fn tick(&self, ctx: &JobContext, _now: OffsetDateTime) -> anyhow::Result<()> {
        let pruned = session::Sessions::prune(&ctx.pool).await?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned expired sessions");
        }
        let pruned = signin::oidc::prune(&ctx.pool).await?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned unfinished sign-ins");
        }
        Ok(())
    }
}
