//! dispatcher's routes and its OpenAPI document agree: every route documented,
//! every documented operation routed, every error response naming its codes.

use std::sync::Arc;
use std::time::Duration;

use dispatcher::http::DispatchState;
use dispatcher::links::LinkSigner;
use dispatcher::plugins::Plugins;
use dispatcher::Settings;
use test_harness::offline_state;

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let settings = Settings::default();
    let service = offline_state();
    let links = LinkSigner::new("links".to_owned().into(), Duration::from_secs(60));
    let mailer = mail::Mailer::new(&settings.mail).expect("a mailer");
    let state = DispatchState {
        plugins: Arc::new(Plugins::standard(
            &settings,
            links.clone(),
            mailer,
            service.clock.clone(),
        )),
        service,
        links,
        settings: Arc::new(settings),
    };
    http_service::testing::assert_routes_match_documentation(dispatcher::http::router(state)).await;
}
