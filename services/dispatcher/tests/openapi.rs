//! dispatcher's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use std::sync::Arc;

use dispatcher::http::DispatchState;
use dispatcher::plugins::Plugins;
use dispatcher::Settings;
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let settings = Settings::default();
    let state = DispatchState {
        service: offline_state(),
        plugins: Arc::new(Plugins::standard(&settings)),
        settings: Arc::new(settings),
    };
    http_service::testing::assert_routes_match_documentation(dispatcher::http::router(state)).await;
}
