//! The gateway through its endpoints and the order's commands with the
//! built-in sandbox provider: every test payment method of DESIGN §3, the
//! authentication page, idempotency, voids, and the unhappy paths.

mod support;

use http_service::auth::Role;
use payment_gateway::GatewaySettings;
use serde_json::{json, Value};
use shared_events::PaymentEvent;
use sqlx::Connection;
use support::gateway::{self, authorization, id_of, Gateway, RETURN_URL};
use uuid::Uuid;

async fn sandbox() -> Gateway {
    gateway::start(GatewaySettings::default()).await
}

fn order_of(body: &Value) -> Uuid {
    body["order_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .expect("order_id")
}

/// A client that shows redirects instead of following them, as a test of
/// the page's answer needs.
/// A Visa authorization of `amount_minor` for a new order: its order id
/// and authorization id.
async fn visa_authorized(gateway: &Gateway, amount_minor: i64) -> (Uuid, Uuid) {
    let body = authorization("sandbox", "pm_card_visa", amount_minor);
    let answer = gateway.authorize(&body).await.expect_status(201);
    (order_of(&body), id_of(&answer, "authorization_id"))
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn visa_authorizes_and_its_capture_publishes_payment_successful_with_an_exact_amount() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_card_visa", 10000);
    let order_id = order_of(&body);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "authorized", "{}", answer.text);
    assert!(answer.body.get("next_action").is_none(), "{}", answer.text);
    let authorization_id = id_of(&answer, "authorization_id");

    gateway.capture(order_id, authorization_id, 10000).await;
    let events = gateway.events_of(order_id, 3).await;
    assert_eq!(
        Gateway::types(&events),
        [
            "payment_authorized",
            "payment_processing",
            "payment_successful"
        ]
    );
    let PaymentEvent::PaymentSuccessful(paid) = &events[2] else {
        panic!("not payment_successful: {:?}", events[2]);
    };
    assert_eq!(paid.authorization_id, authorization_id);
    assert_eq!(paid.amount_minor, 10000);
    assert_eq!(paid.provider, "sandbox");
    assert_eq!(
        paid.payment_method,
        shared_events::PaymentMethod::CreditCard
    );
    // The existing consumer reads `payment_amount` as a decimal with the
    // currency's two digits.
    let raw = gateway.raw_events_of(order_id).await;
    let successful = raw
        .iter()
        .find(|payload| payload.contains("\"payment_successful\""))
        .expect("payment_successful on the wire");
    assert!(
        successful.contains("\"payment_amount\":100.00"),
        "{successful}"
    );
    assert!(
        successful.contains("\"payment_method\":\"Credit Card\""),
        "{successful}"
    );
    assert!(
        successful.contains("\"payment_status\":\"Success\""),
        "{successful}"
    );

    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(
        payment["transaction_id"],
        json!(paid.transaction_id),
        "{payment}"
    );
    assert_eq!(payment["captures"][0]["amount_minor"], 10000, "{payment}");
    assert_eq!(payment["captures"][0]["status"], "succeeded", "{payment}");
    // The capture's job ended in the commit that announced the payment.
    let capture_jobs = gateway
        .count(
            "SELECT count(*) FROM payment.job_queue WHERE payload->>'authorization_id' = $1::text",
            authorization_id,
        )
        .await;
    assert_eq!(capture_jobs, 0, "the capture job left the queue");
}

#[tokio::test]
async fn declining_cards_answer_201_declined_with_their_decline_codes() {
    let gateway = sandbox().await;
    for (method, code) in [
        ("pm_card_chargeDeclined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
    ] {
        let body = authorization("sandbox", method, 2500);
        let answer = gateway.authorize(&body).await.expect_status(201);
        assert_eq!(answer.body["status"], "declined", "{}", answer.text);
        assert_eq!(answer.body["decline_code"], code, "{}", answer.text);
        // The attempt is recorded, and nothing was authorized.
        let payment = gateway.payment(id_of(&answer, "authorization_id")).await;
        assert_eq!(payment["status"], "declined", "{payment}");
        assert_eq!(payment["decline_code"], code, "{payment}");
        assert!(gateway.events_now(order_of(&body)).await.is_empty());
    }
}

#[tokio::test]
async fn a_failed_authentication_page_declines_the_confirm() {
    let gateway = sandbox().await;
    let answer = gateway
        .authorize(&authorization(
            "sandbox",
            "pm_card_authenticationRequired",
            4200,
        ))
        .await
        .expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    assert_eq!(answer.body["next_action"]["type"], "redirect_to_url");
    let authorization_id = id_of(&answer, "authorization_id");
    let url = answer.body["next_action"]["url"].as_str().expect("url");
    let path = format!("/v1/payments/sandbox/authentications/{authorization_id}");
    assert!(url.ends_with(&path), "{url}");

    // The page itself, without a token, changes nothing.
    let page = browser()
        .get(gateway.service.url(&path))
        .send()
        .await
        .expect("the page answers");
    assert_eq!(page.status(), 200);
    // No framing, nothing inline, and the form may lead back to the shop.
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let shop = reqwest::Url::parse(RETURN_URL).expect("url").origin();
    assert_eq!(
        page.headers()["content-security-policy"],
        format!(
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {}",
            shop.ascii_serialization()
        )
        .as_str()
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("Approve") && html.contains("Fail"), "{html}");

    let answered = browser()
        .post(gateway.service.url(&path))
        .form(&[("verdict", "fail")])
        .send()
        .await
        .expect("the page answers");
    assert_eq!(answered.status(), 303);
    assert_eq!(answered.headers()["location"], RETURN_URL);

    let confirmed = gateway
        .act(authorization_id, "confirm")
        .await
        .expect_status(200);
    assert_eq!(confirmed.body["status"], "declined", "{}", confirmed.text);
    assert_eq!(confirmed.body["decline_code"], "authentication_failed");
    // Once settled, the page is gone.
    let gone = browser()
        .get(gateway.service.url(&path))
        .send()
        .await
        .expect("the page answers");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn an_approved_page_or_no_page_at_all_authorizes_on_confirm() {
    let gateway = sandbox().await;
    for approve in [true, false] {
        let mut body = authorization("sandbox", "pm_card_authenticationRequired", 4200);
        // Without a return_url the page says it is done.
        body["return_url"] = Value::Null;
        let answer = gateway.authorize(&body).await.expect_status(201);
        let authorization_id = id_of(&answer, "authorization_id");
        if approve {
            let path = format!("/v1/payments/sandbox/authentications/{authorization_id}");
            let answered = browser()
                .post(gateway.service.url(&path))
                .form(&[("verdict", "approve")])
                .send()
                .await
                .expect("the page answers");
            assert_eq!(answered.status(), 200);
            let html = answered.text().await.expect("html");
            assert!(html.contains("Done"), "{html}");
            // A verdict the page does not offer is refused.
            browser()
                .post(gateway.service.url(&path))
                .form(&[("verdict", "maybe")])
                .send()
                .await
                .map(|response| assert_eq!(response.status(), 422))
                .expect("the page answers");
        }
        let confirmed = gateway
            .act(authorization_id, "confirm")
            .await
            .expect_status(200);
        assert_eq!(confirmed.body["status"], "authorized", "{}", confirmed.text);
        // Confirming again answers the same.
        let again = gateway
            .act(authorization_id, "confirm")
            .await
            .expect_status(200);
        assert_eq!(again.body, confirmed.body);
        let events = gateway.events_of(order_of(&body), 1).await;
        assert_eq!(Gateway::types(&events), ["payment_authorized"]);
    }
}

#[tokio::test]
async fn a_capture_the_provider_refuses_publishes_payment_failed_after_retries() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_sandbox_capture_fails", 3000);
    let order_id = order_of(&body);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "authorized", "{}", answer.text);
    let authorization_id = id_of(&answer, "authorization_id");

    gateway.capture(order_id, authorization_id, 3000).await;
    let events = gateway.events_of(order_id, 3).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_processing", "payment_failed"]
    );
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["status"], "authorized", "{payment}");
    assert_eq!(payment["captures"][0]["status"], "failed", "{payment}");
    assert_eq!(payment["transaction_id"], Value::Null, "{payment}");
}

#[tokio::test]
async fn the_same_idempotency_key_or_the_same_order_gets_the_first_authorization() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_card_visa", 1999);
    let order_id = order_of(&body);
    let first = gateway
        .authorize_with_key(&body, "checkout-1")
        .await
        .expect_status(201);
    let replayed = gateway
        .authorize_with_key(&body, "checkout-1")
        .await
        .expect_status(201);
    assert_eq!(replayed.body, first.body);
    // Another key, the same order: the order's one authorization.
    let again = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(again.body, first.body);
    let count = gateway
        .count(
            "SELECT count(*) FROM payment.authorizations WHERE order_id = $1",
            order_id,
        )
        .await;
    assert_eq!(count, 1);
    let events = gateway.events_of(order_id, 1).await;
    assert_eq!(Gateway::types(&events), ["payment_authorized"]);
}

#[tokio::test]
async fn voiding_releases_the_hold_once_and_a_captured_authorization_is_not_voided() {
    let gateway = sandbox().await;
    let (order_id, authorization_id) = visa_authorized(&gateway, 5000).await;
    for _ in 0..2 {
        let voided = gateway
            .act(authorization_id, "void")
            .await
            .expect_status(200);
        assert_eq!(
            voided.body,
            json!({"authorization_id": authorization_id, "status": "voided"})
        );
    }
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_voided"]
    );
    // A confirm after the void is refused.
    gateway
        .act(authorization_id, "confirm")
        .await
        .expect_problem(409, "authorization_voided");

    let (order_id, authorization_id) = visa_authorized(&gateway, 5000).await;
    gateway.capture(order_id, authorization_id, 5000).await;
    gateway
        .wait_for_payment(authorization_id, "/status", json!("captured"))
        .await;
    gateway
        .act(authorization_id, "void")
        .await
        .expect_problem(409, "already_captured");
}

#[tokio::test]
async fn an_order_void_voids_its_authorization_and_refuses_one_arriving_later() {
    let gateway = sandbox().await;
    // After the authorization: it is voided.
    let (order_id, authorization_id) = visa_authorized(&gateway, 800).await;
    let voided = gateway.void_order(order_id).await;
    assert_eq!(
        voided.body,
        json!({"order_id": order_id, "voided": [authorization_id]})
    );
    let again = gateway.void_order(order_id).await;
    assert_eq!(again.body, voided.body);
    gateway
        .wait_for_payment(authorization_id, "/status", json!("voided"))
        .await;
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_voided"]
    );

    // Before the authorization: the mark refuses it when it comes.
    let body = authorization("sandbox", "pm_card_visa", 800);
    let order_id = order_of(&body);
    let voided = gateway.void_order(order_id).await;
    assert_eq!(voided.body, json!({"order_id": order_id, "voided": []}));
    gateway
        .authorize(&body)
        .await
        .expect_problem(409, "order_voided");
    let count = gateway
        .count(
            "SELECT count(*) FROM payment.authorizations WHERE order_id = $1",
            order_id,
        )
        .await;
    assert_eq!(count, 0);
}

#[tokio::test]
async fn an_order_void_committed_while_the_answer_waits_for_its_lock_releases_the_hold() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_card_authenticationRequired", 3100);
    let order_id = order_of(&body);
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "requires_action", "{}", answer.text);
    let authorization_id = id_of(&answer, "authorization_id");

    // An order void under way: it has marked the order and holds the
    // authorization's lock when the provider's answer comes to be recorded.
    let mut void = gateway.admin_connection().await;
    let mut void_tx = void.begin().await.expect("begin");
    sqlx::query("INSERT INTO payment.order_voids (order_id) VALUES ($1)")
        .bind(order_id)
        .execute(&mut *void_tx)
        .await
        .expect("mark the order voided");
    sqlx::query("SELECT 1 FROM payment.authorizations WHERE authorization_id = $1 FOR UPDATE")
        .bind(authorization_id)
        .execute(&mut *void_tx)
        .await
        .expect("lock the authorization");
    let void_commits_once_the_answer_waits = async {
        gateway.wait_for_a_lock_wait().await;
        void_tx.commit().await.expect("commit the void");
    };
    let (confirmed, ()) = tokio::join!(
        gateway.act(authorization_id, "confirm"),
        void_commits_once_the_answer_waits
    );

    // The answer sees the mark once it has the lock: the hold is released,
    // never recorded as authorized.
    confirmed.expect_problem(409, "order_voided");
    gateway
        .wait_for_payment(authorization_id, "/status", json!("voided"))
        .await;
    let events = gateway.events_of(order_id, 1).await;
    assert_eq!(Gateway::types(&events), ["payment_voided"]);
}

#[tokio::test]
async fn a_capture_command_that_waits_for_a_void_under_way_is_refused() {
    let gateway = sandbox().await;
    let (order_id, authorization_id) = visa_authorized(&gateway, 2700).await;
    gateway.events_of(order_id, 1).await;

    // A void under way holds the authorization's lock and has marked it
    // voided when the capture command arrives.
    let mut void = gateway.admin_connection().await;
    let mut void_tx = void.begin().await.expect("begin");
    sqlx::query("UPDATE payment.authorizations SET state = 'voided' WHERE authorization_id = $1")
        .bind(authorization_id)
        .execute(&mut *void_tx)
        .await
        .expect("void the authorization");
    gateway.capture(order_id, authorization_id, 2700).await;
    gateway.wait_for_a_lock_wait().await;
    void_tx.commit().await.expect("commit the void");

    // The command reads the authorization as the void left it.
    let events = gateway.events_of(order_id, 2).await;
    assert_eq!(
        Gateway::types(&events),
        ["payment_authorized", "payment_failed"]
    );
    let PaymentEvent::PaymentFailed(failed) = &events[1] else {
        panic!("not payment_failed: {:?}", events[1]);
    };
    assert!(failed.reason.contains("voided"), "{}", failed.reason);
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(payment["captures"][0]["status"], "failed", "{payment}");
}

#[tokio::test]
async fn a_capture_command_sent_again_with_a_new_event_id_captures_once() {
    let gateway = sandbox().await;
    let (order_id, authorization_id) = visa_authorized(&gateway, 1234).await;
    gateway.capture(order_id, authorization_id, 1234).await;
    gateway.capture(order_id, authorization_id, 1234).await;
    gateway.events_of(order_id, 3).await;
    // Give a second capture every chance to show up.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let events = gateway.events_now(order_id).await;
    assert_eq!(
        Gateway::types(&events),
        [
            "payment_authorized",
            "payment_processing",
            "payment_successful"
        ]
    );
}

#[tokio::test]
async fn a_refund_of_a_payment_never_captured_fails_and_is_counted() {
    let gateway = sandbox().await;
    let (order_id, authorization_id) = visa_authorized(&gateway, 5000).await;
    let refund_id = Uuid::now_v7();
    gateway
        .refund(order_id, authorization_id, refund_id, 2000)
        .await;
    let events = gateway.events_of(order_id, 2).await;
    let PaymentEvent::PaymentRefundFailed(failed) = &events[1] else {
        panic!("not payment_refund_failed: {events:?}");
    };
    assert_eq!(failed.refund_id, refund_id);
    assert_eq!(failed.amount_minor, 2000);
    assert!(
        failed.reason.contains("never captured"),
        "{}",
        failed.reason
    );
    let metrics = gateway.api.metrics().await;
    assert!(
        metrics.contains("payment_refund_failures_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_captured_payment_is_refunded_once_per_refund_id() {
    let gateway = sandbox().await;
    let (order_id, authorization_id) = visa_authorized(&gateway, 5000).await;
    gateway.capture(order_id, authorization_id, 5000).await;
    gateway
        .wait_for_payment(authorization_id, "/status", json!("captured"))
        .await;
    let refund_id = Uuid::now_v7();
    gateway
        .refund(order_id, authorization_id, refund_id, 1500)
        .await;
    gateway
        .refund(order_id, authorization_id, refund_id, 1500)
        .await;
    gateway
        .wait_for_payment(authorization_id, "/refunds/0/status", json!("succeeded"))
        .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let events = gateway.events_now(order_id).await;
    assert_eq!(
        Gateway::types(&events),
        [
            "payment_authorized",
            "payment_processing",
            "payment_successful",
            "payment_refunded"
        ]
    );
    let payment = gateway.payment(authorization_id).await;
    assert_eq!(
        payment["refunds"].as_array().map(Vec::len),
        Some(1),
        "{payment}"
    );
    assert_eq!(payment["refunds"][0]["amount_minor"], 1500, "{payment}");
}

#[tokio::test]
async fn unhappy_requests_get_problems_and_change_nothing() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_card_visa", 1000);
    let order_id = order_of(&body);
    // No token, a civilian's token.
    gateway
        .api
        .post("/v1/payments/authorizations")
        .idempotency_key("k")
        .json(&body)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    gateway
        .api
        .post("/v1/payments/authorizations")
        .as_user(Uuid::new_v4(), Role::Civilian)
        .idempotency_key("k")
        .json(&body)
        .send()
        .await
        .expect_problem(403, "forbidden");
    gateway
        .api
        .get(&format!("/v1/payments/{}", Uuid::new_v4()))
        .as_user(Uuid::new_v4(), Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    // No Idempotency-Key.
    gateway
        .api
        .post("/v1/payments/authorizations")
        .as_user(Uuid::new_v4(), Role::Service)
        .json(&body)
        .send()
        .await
        .expect_problem(400, "idempotency_key_required");
    // Bad bodies.
    let mut bad = Vec::new();
    for (field, value) in [
        ("amount_minor", json!(0)),
        ("amount_minor", json!(-5)),
        ("currency", json!("dollars")),
        ("payment_method", json!("")),
        ("return_url", json!("javascript:alert(1)")),
    ] {
        let mut invalid = body.clone();
        invalid[field] = value;
        bad.push(invalid);
    }
    for invalid in &bad {
        gateway
            .authorize(invalid)
            .await
            .expect_problem(422, "invalid_body");
    }
    // A payment method the sandbox does not have: refused, nothing recorded.
    let mut unknown_method = body.clone();
    unknown_method["payment_method"] = json!("pm_card_unheard_of");
    gateway
        .authorize(&unknown_method)
        .await
        .expect_problem(422, "payment_refused");
    let mut unknown = body.clone();
    unknown["provider"] = json!("stripe");
    gateway
        .authorize(&unknown)
        .await
        .expect_problem(422, "unknown_provider");
    gateway
        .api
        .post("/v1/payments/authorizations")
        .as_user(Uuid::new_v4(), Role::Service)
        .idempotency_key("malformed")
        .raw_json("{\"order_id\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    // Unknown ids.
    for action in ["confirm", "void"] {
        gateway
            .act(Uuid::new_v4(), action)
            .await
            .expect_problem(404, "not_found");
    }
    gateway
        .api
        .get(&format!("/v1/payments/{}", Uuid::new_v4()))
        .as_user(Uuid::new_v4(), Role::Service)
        .send()
        .await
        .expect_problem(404, "not_found");
    gateway
        .api
        .get(&format!(
            "/v1/payments/sandbox/authentications/{}",
            Uuid::new_v4()
        ))
        .send()
        .await
        .expect_problem(404, "not_found");
    let count = gateway
        .count(
            "SELECT count(*) FROM payment.authorizations WHERE order_id = $1",
            order_id,
        )
        .await;
    assert_eq!(count, 0);
}

#[tokio::test]
async fn an_authorization_left_in_flight_is_waited_for_and_asked_again_once_abandoned() {
    let gateway = sandbox().await;
    let body = authorization("sandbox", "pm_card_visa", 700);
    let order_id = order_of(&body);
    // A request that is still waiting for its provider…
    let in_flight = Uuid::now_v7();
    gateway
        .execute(
            "INSERT INTO payment.authorizations (authorization_id, order_id, checkout_id,
                 customer_id, provider, payment_method, amount_minor, currency, state)
             VALUES ($1, $2, $2, $2, 'sandbox', 'pm_card_visa', 700, 'USD', 'pending')",
            in_flight,
            order_id,
        )
        .await;
    gateway
        .authorize(&body)
        .await
        .expect_problem(409, "authorization_in_progress");
    // …and one whose process died long ago.
    gateway
        .execute(
            "UPDATE payment.authorizations SET created_at = now() - interval '1 hour'
             WHERE authorization_id = $1 AND order_id = $2",
            in_flight,
            order_id,
        )
        .await;
    let answer = gateway.authorize(&body).await.expect_status(201);
    assert_eq!(answer.body["status"], "authorized", "{}", answer.text);
    assert_ne!(id_of(&answer, "authorization_id"), in_flight);
    let count = gateway
        .count(
            "SELECT count(*) FROM payment.authorizations WHERE order_id = $1",
            order_id,
        )
        .await;
    assert_eq!(count, 1);
}
