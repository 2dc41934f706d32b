//! payment-gateway's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use payment_gateway::http::GatewayState;
use payment_gateway::providers::Providers;
use payment_gateway::GatewaySettings;
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let providers =
        Providers::from_settings(&GatewaySettings::default()).expect("the sandbox registers");
    http_service::testing::assert_routes_match_documentation(payment_gateway::http::router(
        GatewayState {
            service: offline_state(),
            providers,
        },
    ))
    .await;
}
