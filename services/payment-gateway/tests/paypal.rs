//! The gateway's endpoints, commands and webhooks against a local server
//! that speaks PayPal's REST API (OAuth2, Orders v2, payments, webhook
//! verification).

mod support;

use std::time::Duration;

use payment_gateway::settings::PayPalSettings;
use payment_gateway::GatewaySettings;
use serde_json::{json, Value};
use shared_events::PaymentEvent;
use support::gateway::{self, authorization, id_of, Gateway};
use support::paypal::{self as fake_paypal, FakePayPal};
use uuid::Uuid;

async fn start() -> (FakePayPal, Gateway) {
    let fake = FakePayPal::start(Duration::from_secs(3600)).await;
    let mut paypal = PayPalSettings::new(
        fake_paypal::CLIENT_ID,
        fake_paypal::CLIENT_SECRET,
        &fake.base_url,
    );
    paypal.webhook_id = Some(fake_paypal::WEBHOOK_ID.to_owned());
    let gateway = gateway::start(GatewaySettings {
        paypal: Some(paypal),
        ..GatewaySettings::default()
    })
    .await;
    (fake, gateway)
}

fn order_of(body: &Value) -> Uuid {
    body["order_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("order_id")
}

/// The PayPal order a `requires_action` answer sends the buyer to approve.
fn paypal_order(answer: &test_harness::Answer) -> String {
    let url = answer.body["next_action"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no next_action in {}", answer.text));
    url.split_once("token=")
        .map(|(_, token)| token.to_owned())
        .unwrap_or_else(|| panic!("no token in {url}"))
}

/// Authorizes a PayPal payment through the buyer's approval.
async fn approved(fake: &FakePayPal, gateway: &Gateway, amount: i64) -> (Uuid, Uuid) {
    let body = authorization("paypal", "paypal", amount);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    let authorization_id = id_of(&answer, "authorization_id");
    fake.approve(&paypal_order(&answer));
    let confirmed = gateway
        .act(authorization_id, "confirm")
        .await
        .expect_status(200);
    assert_eq!(confirmed.body["status"], "authorized", "{}", confirmed.text);
    (order_of(&body), authorization_id)
}

#[tokio::test]
async fn paypal_approval_is_required_then_the_payment_is_authorized_captured_and_refunded() {
    let (fake, gateway) = start().await;
    let body = authorization("paypal", "paypal", 5000);
    let order_id = order_of(&body);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    assert_eq!(answer.body["next_action"]["type"], "redirect_to_url");
    let paypal_order = paypal_order(&answer);
    let authorization_id = id_of(&answer, "authorization_id");

    // Not approved yet: confirm sends the buyer back to the same page.
    let early = gateway
        .act(authorization_id, "confirm")
        .await
        .expect_status(200);
    assert_eq!(early.body["status"], "requires_action", "{}", early.text);
    assert_eq!(early.body["next_action"], answer.body["next_action"]);

    fake.approve(&paypal_order);
    let confirmed = gateway
        .act(authorization_id, "confirm")
        .await
        .expect_status(200);
    assert_eq!(confirmed.body["status"], "authorized", "{}", confirmed.text);

    gateway.capture(order_id, authorization_id, 5000).await;
    let events = gateway.events_of(order_id, 3).await;
    let PaymentEvent::PaymentSuccessful(paid) = &events[2] else {
        panic!("not payment_successful: {events:?}");
    };
    assert_eq!(paid.payment_method, shared_events::PaymentMethod::PayPal);
    assert_eq!(paid.provider, "paypal");
    assert_eq!(paid.amount_minor, 5000);

    let refund_id = Uuid::now_v7();
    gateway
        .refund(order_id, authorization_id, refund_id, 1250)
        .await;
    let events = gateway.events_of(order_id, 4).await;
    let PaymentEvent::PaymentRefunded(refunded) = &events[3] else {
        panic!("not payment_refunded: {events:?}");
    };
    assert_eq!(refunded.refund_id, refund_id);
    assert_eq!(refunded.amount_minor, 1250);

    let ids: Vec<String> = fake.request_ids().into_iter().map(|(_, id)| id).collect();
    assert!(
        ids.contains(&format!("capture:{authorization_id}")),
        "{ids:?}"
    );
    assert!(ids.contains(&format!("refund:{refund_id}")), "{ids:?}");
}

#[tokio::test]
async fn an_expired_paypal_token_is_renewed_and_the_payment_goes_on() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = approved(&fake, &gateway, 2000).await;
    assert_eq!(fake.token_requests(), 1);

    fake.expire_tokens();
    gateway.capture(order_id, authorization_id, 2000).await;
    let events = gateway.events_of(order_id, 3).await;
    assert_eq!(
        Gateway::types(&events),
        [
            "payment_authorized",
            "payment_processing",
            "payment_successful"
        ]
    );
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn a_paypal_void_releases_the_authorization() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = approved(&fake, &gateway, 2000).await;
    gateway.void_command(order_id, authorization_id, 2000).await;
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_voided"]
    );
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["status"], "voided", "{payment}");

    // An order the buyer never approved holds nothing; voiding it is done at once.
    let body = authorization("paypal", "paypal", 900);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    let authorization_id = id_of(&answer, "authorization_id");
    gateway
        .act(authorization_id, "void")
        .await
        .expect_status(200);
    let events = gateway.events_of(order_of(&body), 1).await;
    assert_eq!(Gateway::types(&events), ["payment_voided"]);
}

async fn post_webhook(gateway: &Gateway, body: &[u8]) -> test_harness::Answer {
    let mut call = gateway
        .api
        .post("/v1/webhooks/paypal")
        .raw_json(String::from_utf8(body.to_vec()).expect("utf-8"));
    for (name, value) in FakePayPal::webhook_headers(body) {
        call = call.header(name, &value);
    }
    call.send().await
}

#[tokio::test]
async fn a_verified_paypal_webhook_takes_effect_once_and_a_forged_one_is_refused() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = approved(&fake, &gateway, 3000).await;
    let body = serde_json::to_vec(&json!({
        "id": format!("WH-{}", Uuid::now_v7().simple()),
        "event_version": "1.0",
        "create_time": "2026-11-06T14:30:00.000Z",
        "resource_type": "capture",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": {"id": "3C679366HH908993F", "status": "COMPLETED",
                     "custom_id": authorization_id.to_string()},
    }))
    .expect("event");
    post_webhook(&gateway, &body).await.expect_status(200);
    post_webhook(&gateway, &body).await.expect_status(200);
    let events = gateway.events_of(order_id, 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(gateway.events_now(order_id).await, events);
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_successful"]
    );

    // The headers of that delivery over another body: PayPal says no.
    let forged = br#"{"id":"WH-forged","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{}}"#;
    let mut call = gateway
        .api
        .post("/v1/webhooks/paypal")
        .raw_json(String::from_utf8(forged.to_vec()).expect("utf-8"));
    for (name, value) in FakePayPal::webhook_headers(&body) {
        call = call.header(name, &value);
    }
    call.send().await.expect_problem(400, "invalid_signature");
}
