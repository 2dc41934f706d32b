//! catalog's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    http_service::testing::assert_routes_match_documentation(catalog::http::router(
        catalog::http::CatalogState {
            service: offline_state(),
            shop_currency: catalog::domain::ShopCurrency::default(),
        },
    ))
    .await;
}
