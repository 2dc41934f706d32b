//! dispatcher's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use http_service::{auth::Authenticator, AuthConfig};
use service_host::ServiceState;

/// The check never runs a handler, so the pool never connects.
fn state() -> ServiceState {
    ServiceState {
        pool: sqlx::PgPool::connect_lazy("postgres://route-check.invalid/none")
            .expect("a lazy pool needs only a URL"),
        auth: Authenticator::new(AuthConfig::hs256("route-check")).expect("HS256 settings"),
    }
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    http_service::testing::assert_routes_match_documentation(dispatcher::http::router(state()))
        .await;
}
