//! The gateway's endpoints, commands and webhooks against a local server
//! that speaks Stripe's API: Stripe itself and Apple Pay through it.

mod support;

use std::time::Duration;

use payment_gateway::settings::StripeSettings;
use payment_gateway::GatewaySettings;
use serde_json::{json, Value};
use shared_events::PaymentEvent;
use support::gateway::{self, authorization, id_of, Gateway};
use support::stripe::{self as fake_stripe, FakeStripe};
use uuid::Uuid;

fn settings(fake: &FakeStripe) -> GatewaySettings {
    let mut stripe = StripeSettings::new(fake_stripe::SECRET_KEY, &fake.base_url);
    stripe.webhook_secret = Some(fake_stripe::WEBHOOK_SECRET.to_owned().into());
    stripe.timeout = Duration::from_millis(500);
    GatewaySettings {
        stripe: Some(stripe),
        ..GatewaySettings::default()
    }
}

async fn start() -> (FakeStripe, Gateway) {
    let fake = FakeStripe::start().await;
    let gateway = gateway::start(settings(&fake)).await;
    (fake, gateway)
}

fn order_of(body: &Value) -> Uuid {
    body["order_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("order_id")
}

/// Authorizes `method` for a new order; returns the order and authorization.
async fn authorized(gateway: &Gateway, provider: &str, method: &str, amount: i64) -> (Uuid, Uuid) {
    let body = authorization(provider, method, amount);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "authorized", "{}", answer.text);
    (order_of(&body), id_of(&answer, "authorization_id"))
}

fn successful(events: &[PaymentEvent]) -> Vec<&shared_events::PaymentSuccessful> {
    events
        .iter()
        .filter_map(|event| match event {
            PaymentEvent::PaymentSuccessful(paid) => Some(paid),
            _ => None,
        })
        .collect()
}

async fn post_webhook(gateway: &Gateway, signature: &str, body: &[u8]) -> test_harness::Answer {
    gateway
        .api
        .post("/v1/webhooks/stripe")
        .header("stripe-signature", signature)
        .header("content-type", "application/json")
        .raw_json(String::from_utf8(body.to_vec()).expect("utf-8"))
        .send()
        .await
}

#[tokio::test]
async fn stripe_authorizes_captures_and_refunds_part_of_a_payment() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 5000).await;
    let intent = gateway.reference(authorization_id).await;
    assert_eq!(
        fake.intent(&intent).expect("at Stripe")["status"],
        "requires_capture"
    );

    gateway.capture(order_id, authorization_id, 5000).await;
    let events = gateway.events_of(order_id, 3).await;
    let paid = successful(&events);
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(paid[0].provider, "stripe");
    assert_eq!(paid[0].amount_minor, 5000);
    assert_eq!(
        paid[0].payment_method,
        shared_events::PaymentMethod::CreditCard
    );
    assert_eq!(fake.captures(), 1);

    let refund_id = Uuid::now_v7();
    gateway
        .refund(order_id, authorization_id, refund_id, 1500)
        .await;
    let events = gateway.events_of(order_id, 4).await;
    let PaymentEvent::PaymentRefunded(refunded) = &events[3] else {
        panic!("not payment_refunded: {events:?}");
    };
    assert_eq!(refunded.refund_id, refund_id);
    assert_eq!(refunded.amount_minor, 1500);
    let refund_calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path == "/v1/refunds")
        .collect();
    assert_eq!(refund_calls.len(), 1);
    assert_eq!(refund_calls[0].param("amount"), Some("1500"));
    assert_eq!(
        refund_calls[0].idempotency_key.as_deref(),
        Some(format!("refund:{refund_id}").as_str())
    );
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(payment["refunds"][0]["status"], "succeeded", "{payment}");
}

#[tokio::test]
async fn stripe_three_d_secure_requires_action_then_confirm_authorizes() {
    let (fake, gateway) = start().await;
    let body = authorization("stripe", "pm_card_authenticationRequired", 2500);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    assert_eq!(answer.body["next_action"]["type"], "redirect_to_url");
    assert!(
        answer.body["next_action"]["url"].is_string(),
        "{}",
        answer.text
    );
    let authorization_id = id_of(&answer, "authorization_id");

    fake.complete_authentication(&gateway.reference(authorization_id).await, true);
    let confirmed = gateway
        .act(authorization_id, "confirm")
        .await
        .expect_status(200);
    assert_eq!(confirmed.body["status"], "authorized", "{}", confirmed.text);
    let events = gateway.events_of(order_of(&body), 1).await;
    assert_eq!(Gateway::types(&events), ["payment_authorized"]);
}

#[tokio::test]
async fn stripe_void_cancels_the_payment_intent() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 3000).await;
    gateway
        .act(authorization_id, "void")
        .await
        .expect_status(200);
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_voided"]
    );
    let intent = gateway.reference(authorization_id).await;
    assert_eq!(
        fake.intent(&intent).expect("at Stripe")["status"],
        "canceled"
    );
}

#[tokio::test]
async fn apple_pay_is_authorized_and_captured_through_stripe() {
    let (_fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "apple_pay", "tok_visa", 3000).await;
    gateway.capture(order_id, authorization_id, 3000).await;
    let events = gateway.events_of(order_id, 3).await;
    let paid = successful(&events);
    assert_eq!(paid.len(), 1, "{events:?}");
    assert_eq!(paid[0].provider, "apple_pay");
    assert_eq!(
        paid[0].payment_method,
        shared_events::PaymentMethod::ApplePay
    );
}

#[tokio::test]
async fn a_capture_whose_answer_times_out_is_resolved_by_lookup_not_by_charging_again() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 4000).await;
    // The capture happens at Stripe, but its answer outlasts our timeout.
    fake.delay_next_capture(Duration::from_secs(2));
    gateway.capture(order_id, authorization_id, 4000).await;
    let events = gateway.events_of(order_id, 3).await;
    assert_eq!(successful(&events).len(), 1, "{events:?}");
    assert_eq!(fake.captures(), 1);
    let lookups = fake
        .requests()
        .into_iter()
        .filter(|request| {
            request.method == "GET" && request.path.starts_with("/v1/payment_intents/")
        })
        .count();
    assert!(lookups >= 1, "the retry asked Stripe first");
}

/// The PaymentIntents Stripe holds for `authorization_id`.
fn intents_of(fake: &FakeStripe, authorization_id: Uuid) -> Vec<Value> {
    fake.intents()
        .into_iter()
        .filter(|intent| intent["metadata"]["authorization_id"] == authorization_id.to_string())
        .collect()
}

/// The creates Stripe received, each with its idempotency key.
fn create_keys(fake: &FakeStripe) -> Vec<Option<String>> {
    fake.requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path == "/v1/payment_intents")
        .map(|request| request.idempotency_key)
        .collect()
}

#[tokio::test]
async fn an_authorization_whose_answer_was_lost_is_found_and_voided_with_its_order() {
    let (fake, gateway) = start().await;
    // Stripe makes the PaymentIntent, but its answer outlasts our timeout,
    // and so does the answer to the first call that asks again.
    fake.delay_next_creates(2, Duration::from_secs(3));
    let body = authorization("stripe", "pm_card_visa", 3500);
    let order_id = order_of(&body);
    gateway
        .authorize(&body)
        .await
        .expect_problem(503, "dependency_unavailable");

    // Checkout's retry finds it still unresolved, even once it looks old.
    gateway
        .authorize(&body)
        .await
        .expect_problem(409, "authorization_in_progress");
    gateway
        .execute(
            "UPDATE payment.authorizations SET created_at = now() - interval '1 hour'
             WHERE order_id = $1 AND $2::uuid IS NOT NULL",
            order_id,
            Uuid::nil(),
        )
        .await;
    gateway
        .authorize(&body)
        .await
        .expect_problem(409, "authorization_in_progress");

    // Checkout voids the order after the 5xx, before the answer is found.
    let voided = gateway.void_order(order_id).await;
    let authorization_id = voided.body["voided"][0]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("the unresolved authorization is voided: {}", voided.text));
    assert_eq!(gateway.payment(authorization_id).await["status"], "pending");

    gateway
        .wait_for_payment(authorization_id, "/status", json!("voided"))
        .await;
    let events = gateway.events_of(order_id, 1).await;
    assert_eq!(Gateway::types(&events), ["payment_voided"]);
    let intents = intents_of(&fake, authorization_id);
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0]["status"], "canceled", "{intents:?}");
    assert_eq!(fake.intents().len(), 1, "no other hold was made");
    let keys = create_keys(&fake);
    assert!(keys.len() >= 3, "asked again until answered: {keys:?}");
    let key = format!("authorize:{authorization_id}");
    assert!(
        keys.iter().all(|k| k.as_deref() == Some(key.as_str())),
        "{keys:?}"
    );
}

#[tokio::test]
async fn an_authorization_found_after_its_answer_was_lost_stands_until_its_order_is_voided() {
    let (fake, gateway) = start().await;
    fake.delay_next_creates(1, Duration::from_secs(3));
    let body = authorization("stripe", "pm_card_visa", 4500);
    let order_id = order_of(&body);
    gateway
        .authorize(&body)
        .await
        .expect_problem(503, "dependency_unavailable");
    let authorization_id = gateway
        .authorization_of_order(order_id)
        .await
        .expect("the authorization is kept while its answer is unknown");

    gateway
        .wait_for_payment(authorization_id, "/status", json!("authorized"))
        .await;
    let intents = intents_of(&fake, authorization_id);
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0]["status"], "requires_capture");
    // A retry for the order gets the authorization that was found.
    let again = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(id_of(&again, "authorization_id"), authorization_id);
    assert_eq!(again.body["status"], "authorized", "{}", again.text);

    let voided = gateway.void_order(order_id).await;
    assert_eq!(
        voided.body["voided"],
        json!([authorization_id]),
        "{}",
        voided.text
    );
    gateway
        .wait_for_payment(authorization_id, "/status", json!("voided"))
        .await;
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_voided"]
    );
    let intents = intents_of(&fake, authorization_id);
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(intents[0]["status"], "canceled");
    assert_eq!(fake.intents().len(), 1, "no other hold was made");
}

#[tokio::test]
async fn a_capture_command_re_sent_with_a_new_event_id_captures_once() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 4000).await;
    gateway.capture(order_id, authorization_id, 4000).await;
    gateway.capture(order_id, authorization_id, 4000).await;
    gateway.events_of(order_id, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = gateway.events_now(order_id).await;
    assert_eq!(
        Gateway::types(&events),
        [
            "payment_authorized",
            "payment_processing",
            "payment_successful"
        ]
    );
    let capture_calls = fake
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/capture"))
        .count();
    assert_eq!(capture_calls, 1);
    assert_eq!(fake.captures(), 1);
}

#[tokio::test]
async fn a_valid_webhook_delivered_twice_publishes_one_event() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 2000).await;
    let intent = gateway.reference(authorization_id).await;
    // Stripe reports a capture the gateway has not recorded yet.
    let body = fake.event("payment_intent.succeeded", &intent);
    let signature = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, fake_stripe::now(), &body);
    let first = post_webhook(&gateway, &signature, &body)
        .await
        .expect_status(200);
    assert_eq!(first.body["first_delivery"], true, "{}", first.text);
    let second = post_webhook(&gateway, &signature, &body)
        .await
        .expect_status(200);
    assert_eq!(second.body["first_delivery"], false, "{}", second.text);

    let events = gateway.events_of(order_id, 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events_later = gateway.events_now(order_id).await;
    assert_eq!(events, events_later);
    assert_eq!(
        Gateway::types(&events_later),
        ["payment_authorized", "payment_successful"]
    );
    let paid = successful(&events_later);
    assert_eq!(paid[0].transaction_id, intent);
    gateway
        .wait_for_payment(authorization_id, "/status", json!("captured"))
        .await;

    // An event type the gateway does not act on is stored and ignored.
    let other = fake.event("customer.created", &intent);
    let signature = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, fake_stripe::now(), &other);
    post_webhook(&gateway, &signature, &other)
        .await
        .expect_status(200);
}

#[tokio::test]
async fn invalid_stale_and_replayed_webhook_signatures_are_refused() {
    let (fake, gateway) = start().await;
    let (_, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 2000).await;
    let intent = gateway.reference(authorization_id).await;
    let body = fake.event("payment_intent.succeeded", &intent);

    let foreign = FakeStripe::signature("whsec_someone_else", fake_stripe::now(), &body);
    post_webhook(&gateway, &foreign, &body)
        .await
        .expect_problem(400, "invalid_signature");
    let stale = FakeStripe::signature(
        fake_stripe::WEBHOOK_SECRET,
        fake_stripe::now() - 3600,
        &body,
    );
    post_webhook(&gateway, &stale, &body)
        .await
        .expect_problem(400, "stale_signature");
    // A genuine signature replayed over another body.
    let genuine = FakeStripe::signature(fake_stripe::WEBHOOK_SECRET, fake_stripe::now(), &body);
    let other = fake.event("payment_intent.payment_failed", &intent);
    post_webhook(&gateway, &genuine, &other)
        .await
        .expect_problem(400, "invalid_signature");
    gateway
        .api
        .post("/v1/webhooks/stripe")
        .raw_json(String::from_utf8(body.clone()).expect("utf-8"))
        .send()
        .await
        .expect_problem(400, "invalid_signature");
    // Nothing was stored or done.
    let stored = gateway
        .count(
            "SELECT count(*) FROM payment.webhook_events WHERE $1::uuid IS NOT NULL",
            Uuid::nil(),
        )
        .await;
    assert_eq!(stored, 0);
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["status"], "authorized", "{payment}");
}

#[tokio::test]
async fn a_refund_stripe_refuses_is_retried_then_reported_and_counted() {
    let (fake, gateway) = start().await;
    let (order_id, authorization_id) = authorized(&gateway, "stripe", "pm_card_visa", 1000).await;
    gateway.capture(order_id, authorization_id, 1000).await;
    gateway
        .wait_for_payment(authorization_id, "/status", json!("captured"))
        .await;
    // More than was captured: Stripe refuses it every time.
    let refund_id = Uuid::now_v7();
    gateway
        .refund(order_id, authorization_id, refund_id, 5000)
        .await;
    let events = gateway.events_of(order_id, 4).await;
    let PaymentEvent::PaymentRefundFailed(failed) = &events[3] else {
        panic!("not payment_refund_failed: {events:?}");
    };
    assert_eq!(failed.refund_id, refund_id);
    assert!(failed.reason.contains("refused"), "{}", failed.reason);
    let refund_calls = fake
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path == "/v1/refunds")
        .count();
    assert_eq!(
        refund_calls as u32,
        payment_gateway::jobs::REFUSALS_BEFORE_GIVING_UP
    );
    let metrics = gateway.api.metrics().await;
    assert!(
        metrics.contains("payment_refund_failures_total 1"),
        "{metrics}"
    );
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["refunds"][0]["status"], "failed", "{payment}");
}

#[tokio::test]
async fn below_stripes_minimum_or_with_stripe_unreachable_nothing_is_authorized() {
    let (_fake, gateway) = start().await;
    gateway
        .authorize(&authorization("stripe", "pm_card_visa", 10))
        .await
        .expect_problem(422, "amount_below_minimum");

    // A Stripe nobody answers at.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = closed.local_addr().expect("address");
    drop(closed);
    let mut stripe = StripeSettings::new(fake_stripe::SECRET_KEY, &format!("http://{address}"));
    stripe.timeout = Duration::from_millis(500);
    let unreachable = gateway::start(GatewaySettings {
        stripe: Some(stripe),
        ..GatewaySettings::default()
    })
    .await;
    let body = authorization("stripe", "pm_card_visa", 2000);
    unreachable
        .authorize(&body)
        .await
        .expect_problem(503, "dependency_unavailable");
    let count = unreachable
        .count(
            "SELECT count(*) FROM payment.authorizations WHERE order_id = $1",
            order_of(&body),
        )
        .await;
    assert_eq!(count, 0);
}
