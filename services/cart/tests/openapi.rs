//! cart's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use cart::catalog::Catalog;
use cart::http::CartState;
use service_client::{ServiceClient, TokenSource};
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let catalog = ServiceClient::new(
        "catalog",
        "http://catalog.invalid".parse().expect("a URL"),
        TokenSource::hs256(test_harness::JWT_SECRET.to_owned().into(), "cart"),
    )
    .expect("a client");
    let state = CartState {
        service: offline_state(),
        catalog: Catalog(catalog),
    };
    http_service::testing::assert_routes_match_documentation(cart::http::router(state)).await;
}
