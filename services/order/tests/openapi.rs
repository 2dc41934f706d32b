//! order's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use order::dispatcher::Dispatcher;
use order::http::OrderState;
use service_client::{ServiceClient, TokenSource};
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let dispatcher = ServiceClient::new(
        "dispatcher",
        "http://dispatcher.invalid".parse().expect("a URL"),
        TokenSource::hs256(test_harness::JWT_SECRET.to_owned().into(), "order"),
    )
    .expect("a client");
    let state = OrderState {
        service: offline_state(),
        dispatcher: Dispatcher(dispatcher),
    };
    http_service::testing::assert_routes_match_documentation(order::http::router(state)).await;
}
