//! The API proxy's own answers: a service that is down, a body too large,
//! a path no service owns. (Forwarding to live services is tested on the
//! whole fleet, in `tests/webshop`.)

mod support;

use support::Shop;
use test_harness::Api;

#[tokio::test]
async fn an_api_call_to_a_service_that_is_down_answers_503_dependency_unavailable() {
    let shop = Shop::start().await;
    let api = Api::unchecked(shop.service.base_url.clone());

    let answer = api
        .get("/v1/offerings?q=coffee")
        .send()
        .await
        .expect_problem(503, "dependency_unavailable");

    assert_eq!(answer.body["service"], "catalog");
}

#[tokio::test]
async fn an_api_body_over_one_mebibyte_is_refused_with_413() {
    let shop = Shop::start().await;
    let api = Api::unchecked(shop.service.base_url.clone());
    let huge = format!("\"{}\"", "x".repeat(1024 * 1024 + 1));

    api.post("/v1/checkouts/quote")
        .raw_json(huge)
        .send()
        .await
        .expect_problem(413, "payload_too_large");
}

#[tokio::test]
async fn a_path_no_service_owns_is_a_404_problem_and_an_unknown_page_a_404_page() {
    let shop = Shop::start().await;
    let api = Api::unchecked(shop.service.base_url.clone());

    api.get("/v1/loyalty/cards")
        .send()
        .await
        .expect_problem(404, "not_found");
    let page = shop.browser().get("/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(page.is_html());
    assert!(page.body.contains("Page not found"));
}
