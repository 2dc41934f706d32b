//! The webshop's OpenAPI document and its router agree, as every service's
//! do. The document is empty on purpose: the pages are HTML for browsers,
//! not operations anyone programs against, and `/v1/...` is forwarded
//! unchanged to the services, whose own `/openapi.json` documents it. The
//! webshop adds no API operation of its own (see `webshop::router`).

use http_service::OpenApiRouter;
use reqwest::Url;
use test_harness::offline_state;
use webshop::session::Sessions;
use webshop::{AppState, PeerUrls};

fn router() -> OpenApiRouter {
    let state = offline_state();
    let app = AppState {
        api: webshop::api::Api::new(PeerUrls(Vec::new()), std::time::Duration::from_secs(1))
            .expect("an HTTP client"),
        sessions: Sessions::new(state.pool, std::time::Duration::from_secs(60), false),
        demo: None,
        oidc: None,
        public_base_url: Url::parse("http://127.0.0.1:8080").expect("a URL"),
        shop_currency: "USD".to_owned(),
    };
    OpenApiRouter::from(webshop::router(app))
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    http_service::testing::assert_routes_match_documentation(router()).await;
}

#[tokio::test]
async fn the_webshop_documents_no_api_operation_of_its_own() {
    let document = router().into_openapi();
    assert!(
        document.paths.paths.is_empty(),
        "{:?}",
        document.paths.paths.keys().collect::<Vec<_>>()
    );
}
