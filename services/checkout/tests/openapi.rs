//! checkout's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use std::time::Duration;

use checkout::http::CheckoutState;
use checkout::peers::Peers;
use checkout::process::Checkouts;
use service_client::{ServiceClient, TokenSource};
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let peer = |name: &str| {
        ServiceClient::new(
            name,
            format!("http://{name}.invalid").parse().expect("a URL"),
            TokenSource::hs256(test_harness::JWT_SECRET.to_owned().into(), "checkout"),
        )
        .expect("a client")
    };
    let service = offline_state();
    let checkouts = Checkouts {
        pool: service.pool.clone(),
        clock: service.clock.clone(),
        peers: Peers {
            catalog: peer("catalog"),
            cart: peer("cart"),
            points: peer("user-points"),
            gateway: peer("payment-gateway"),
        },
        reservation_ttl: Duration::from_secs(900),
        expiry_margin: Duration::from_secs(30),
        peer_timeout: Duration::from_secs(5),
    };
    let state = CheckoutState { service, checkouts };
    http_service::testing::assert_routes_match_documentation(checkout::http::router(state)).await;
}
