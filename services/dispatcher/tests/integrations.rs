//! Choosing a business's plugin: admins only, each configuration checked by
//! its plugin, secrets never read back, the portal when none is chosen.

mod support;

use http_service::auth::Role;
use serde_json::json;
use support::{business_token, ready};
use uuid::Uuid;

#[tokio::test]
async fn a_business_without_an_integration_uses_the_portal() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let shown = d
        .api
        .get(&format!("/v1/dispatch/integrations/{business}"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(shown["plugin"], "portal");
    assert_eq!(shown["config"], json!({}));
    assert!(shown["updated_at"].is_null());
}

#[tokio::test]
async fn an_admin_chooses_the_webhook_plugin_and_its_secret_is_never_shown() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let config = json!({"url": "https://shop.example/orders", "secret": "0123456789abcdef-secret"});
    let stored = d
        .integrate(business, "webhook", config)
        .await
        .expect_status(200)
        .body;
    assert_eq!(stored["plugin"], "webhook");
    assert_eq!(
        stored["config"],
        json!({"url": "https://shop.example/orders"})
    );
    let shown = d
        .api
        .get(&format!("/v1/dispatch/integrations/{business}"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        shown["config"],
        json!({"url": "https://shop.example/orders"})
    );
    assert!(!shown.to_string().contains("secret"));

    // Back to the portal: its parts go to the queue again.
    d.integrate(business, "portal", json!({}))
        .await
        .expect_status(200);
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    assert_eq!(d.wait_for_queue(business, 1).await[0]["status"], "sent");
}

#[tokio::test]
async fn unknown_plugins_and_bad_configurations_are_refused() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    d.integrate(business, "carrier_pigeon", json!({}))
        .await
        .expect_problem(422, "unknown_plugin");
    for bad in [
        json!({"url": "not a url", "secret": "0123456789abcdef-secret"}),
        json!({"url": "ftp://shop.example/", "secret": "0123456789abcdef-secret"}),
        json!({"url": "https://shop.example/", "secret": "short"}),
        json!({"url": "https://shop.example/"}),
        json!("https://shop.example/"),
    ] {
        d.integrate(business, "webhook", bad)
            .await
            .expect_problem(422, "invalid_config");
    }
    d.integrate(business, "portal", json!({"url": "https://shop.example/"}))
        .await
        .expect_problem(422, "invalid_config");
    d.api
        .put(&format!("/v1/dispatch/integrations/{business}"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .json(&json!({"config": {}}))
        .send()
        .await
        .expect_problem(422, "invalid_body");

    // Nothing was stored.
    let shown = d
        .api
        .get(&format!("/v1/dispatch/integrations/{business}"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(shown["plugin"], "portal");
}

#[tokio::test]
async fn only_admins_choose_or_read_integrations() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let path = format!("/v1/dispatch/integrations/{business}");
    let body = json!({"plugin": "portal", "config": {}});
    d.api
        .put(&path)
        .bearer(&business_token(business))
        .json(&body)
        .send()
        .await
        .expect_problem(403, "forbidden");
    d.api
        .get(&path)
        .bearer(&business_token(business))
        .send()
        .await
        .expect_problem(403, "forbidden");
    d.api
        .put(&path)
        .json(&body)
        .send()
        .await
        .expect_problem(401, "unauthorized");
}
