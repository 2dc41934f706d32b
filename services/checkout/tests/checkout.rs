//! Checkout as its customers see it, against the real catalog, cart,
//! user-points and payment-gateway (sandbox): the order submitted with
//! every field right, points held, payment authorized; each sandbox
//! method's outcome; expiry by the clock alone; and every refusal leaving
//! points and cart as they were.

mod support;

use std::time::Duration;

use futures::future::join_all;
use http_service::auth::{mint_hs256, Claims, Role};
use serde_json::{json, Value};
use support::{address, paying, uuid, Fleet};
use test_harness::JWT_SECRET;
use uuid::Uuid;

/// A customer with 1 000 points and a cart of 2 mugs (12.00, 120 points
/// each) and 1 tea (5.00, 50 points).
async fn customer(fleet: &Fleet) -> (Uuid, Uuid, Uuid) {
    let mug = fleet.offering("Mug", 1_200, 120, Some(10)).await;
    let tea = fleet.offering("Tea", 500, 50, None).await;
    let ada = Uuid::new_v4();
    fleet.award(ada, 1_000).await;
    fleet.put(ada, mug, 2).await;
    fleet.put(ada, tea, 1).await;
    (ada, mug, tea)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_submits_the_order_with_every_field_holds_the_points_and_authorizes() {
    let fleet = support::start().await;
    let (ada, mug, tea) = customer(&fleet).await;

    let quote = fleet
        .quote(ada, &json!({"points_to_redeem": 300}))
        .await
        .expect_status(200);
    assert_eq!(quote.body["subtotal_minor"], 2_900);
    assert_eq!(quote.body["available_points"], 1_000);
    // 240 points pay both mugs in full and the tea takes 50 of the 60
    // left: 290 applied, nothing to pay.
    assert_eq!(quote.body["points_applied"], 290);
    assert_eq!(quote.body["total_minor"], 0);

    // 100 points: 100 of the mugs' 240 → 2400 × 100/240 = 1000 off.
    let token = mint_hs256(
        JWT_SECRET,
        &Claims::new(ada, Role::Civilian, Duration::from_secs(600)).with_email("ada@example.com"),
    );
    let answer = fleet
        .checkout
        .post("/v1/checkouts")
        .bearer(&token)
        .idempotency_key("first")
        .json(&paying("pm_card_visa", Some(100)))
        .send()
        .await
        .expect_status(201);
    let body = &answer.body;
    assert_eq!(body["status"], "completed");
    assert_eq!(body["payment"]["status"], "authorized");
    assert_eq!(body["payment"]["provider"], "sandbox");
    assert_eq!(body["quote"]["total_minor"], 1_900);
    let order_id = uuid(body, "order_id");
    let checkout_id = uuid(body, "id");
    let authorization_id = uuid(&body["payment"], "authorization_id");

    let submitted = fleet.wait_for_order(order_id).await;
    assert_eq!(submitted.checkout_id, checkout_id);
    assert_eq!(submitted.customer_id, ada);
    assert_eq!(submitted.customer_email.as_deref(), Some("ada@example.com"));
    assert!(submitted.reservation_id.is_some());
    assert_eq!(submitted.currency, "USD");
    assert_eq!(
        (
            submitted.subtotal_minor,
            submitted.discount_minor,
            submitted.total_minor,
            submitted.points_applied
        ),
        (2_900, 1_000, 1_900, 100)
    );
    let lines: Vec<_> = submitted
        .lines
        .iter()
        .map(|l| {
            (
                l.offering_id,
                l.business_id,
                l.title.as_str(),
                l.quantity,
                l.unit_price_minor,
                l.points_applied,
                l.discount_minor,
                l.amount_due_minor,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (mug, fleet.business_id, "Mug", 2, 1_200, 100, 1_000, 1_400),
            (tea, fleet.business_id, "Tea", 1, 500, 0, 0, 500),
        ]
    );
    assert_eq!(submitted.shipping_address.line2.as_deref(), Some("Flat 2"));
    assert_eq!(submitted.shipping_address.country, "US");
    let payment = submitted.payment.expect("a payment");
    assert_eq!(
        (payment.authorization_id, payment.provider.as_str()),
        (authorization_id, "sandbox")
    );

    // user-points holds the 100 points; the gateway holds the money.
    assert_eq!(fleet.points_of(ada).await, (900, 100));
    let shown = fleet
        .payment(&authorization_id.to_string())
        .await
        .expect_status(200);
    assert_eq!(shown.body["status"], "authorized");
    assert_eq!(shown.body["order_id"], json!(order_id));
    assert_eq!(shown.body["amount_minor"], 1_900);

    // The customer reads it back; the same key answers the same again.
    let read = fleet
        .checkout
        .get(&format!("/v1/checkouts/{checkout_id}"))
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200);
    assert_eq!(read.body["status"], "completed");
    let again = fleet
        .checkout
        .post("/v1/checkouts")
        .bearer(&token)
        .idempotency_key("first")
        .json(&paying("pm_card_visa", Some(100)))
        .send()
        .await
        .expect_status(201);
    assert_eq!(again.body, answer.body);
    // The cart lowers itself once it sees the order.
    test_harness::eventually(Duration::from_secs(20), "the cart is emptied", || async {
        fleet.cart_of(ada).await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_of_zero_needs_no_payment_and_authorizes_nothing() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(ada, "all-points", &json!({"shipping_address": address()}))
        .await
        .expect_status(201);
    assert_eq!(
        answer.body["payment"],
        json!({"authorization_id": null, "provider": null, "status": "not_required"})
    );
    assert_eq!(answer.body["quote"]["points_applied"], 290);
    let submitted = fleet.wait_for_order(uuid(&answer.body, "order_id")).await;
    assert_eq!(submitted.payment, None);
    assert_eq!(submitted.total_minor, 0);
    assert_eq!(submitted.customer_email, None);
    assert_eq!(fleet.points_of(ada).await, (710, 290));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_submissions_with_one_key_make_one_order_and_one_answer() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let body = paying("pm_card_visa", Some(0));
    let answers = join_all((0..10).map(|_| fleet.submit(ada, "once", &body))).await;
    let first = &answers[0];
    assert_eq!(first.status, 201, "{}", first.text);
    for answer in &answers {
        assert_eq!(answer.status, 201, "{}", answer.text);
        assert_eq!(answer.body, first.body);
    }
    let order_id = uuid(&first.body, "order_id");
    fleet.wait_for_order(order_id).await;
    let orders: Vec<_> = fleet
        .submitted()
        .await
        .into_iter()
        .filter(|s| s.customer_id == ada)
        .collect();
    assert_eq!(orders.len(), 1, "{orders:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_answers_402_with_its_reason_and_releases_the_points() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    for (method, decline_code) in [
        ("pm_card_chargeDeclined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
    ] {
        let answer = fleet
            .submit(ada, method, &paying(method, Some(100)))
            .await
            .expect_problem(402, "payment_declined");
        assert_eq!(answer.body["decline_code"], decline_code, "{}", answer.text);
        assert_eq!(fleet.points_of(ada).await, (1_000, 0), "{method}");
        assert_eq!(fleet.cart_of(ada).await.len(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_that_needs_authentication_completes_on_confirm() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(
            ada,
            "3ds",
            &paying("pm_card_authenticationRequired", Some(100)),
        )
        .await
        .expect_status(200);
    assert_eq!(answer.body["status"], "requires_action");
    assert_eq!(answer.body["next_action"]["type"], "redirect_to_url");
    let checkout_id = answer.body["id"].as_str().expect("id").to_owned();
    assert_eq!(fleet.points_of(ada).await, (900, 100));

    let url = answer.body["next_action"]["url"].as_str().expect("url");
    fleet.answer_authentication(url, "approve").await;
    let confirmed = fleet.confirm(ada, &checkout_id).await.expect_status(201);
    assert_eq!(confirmed.body["status"], "completed");
    assert_eq!(confirmed.body["payment"]["status"], "authorized");
    let submitted = fleet
        .wait_for_order(uuid(&confirmed.body, "order_id"))
        .await;
    assert_eq!(submitted.points_applied, 100);

    // Confirming a completed checkout answers its 201 again.
    let again = fleet.confirm(ada, &checkout_id).await.expect_status(201);
    assert_eq!(again.body, confirmed.body);
    // Another customer does not see it.
    fleet
        .confirm(Uuid::new_v4(), &checkout_id)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_checkout_is_voided_and_released_by_expiry_alone() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(
            ada,
            "abandoned",
            &paying("pm_card_authenticationRequired", Some(100)),
        )
        .await
        .expect_status(200);
    let checkout_id = answer.body["id"].as_str().expect("id").to_owned();
    assert_eq!(fleet.points_of(ada).await, (900, 100));

    // Past the reservation (15 minutes) nobody calls anything.
    fleet.clock.advance(Duration::from_secs(16 * 60));
    let status = || async {
        fleet
            .checkout
            .get(&format!("/v1/checkouts/{checkout_id}"))
            .as_user(ada, Role::Civilian)
            .send()
            .await
            .body["status"]
            .clone()
    };
    test_harness::eventually(Duration::from_secs(20), "the checkout expires", || async {
        status().await == json!("expired")
    })
    .await;
    test_harness::eventually(
        Duration::from_secs(20),
        "the points are released",
        || async { fleet.points_of(ada).await == (1_000, 0) },
    )
    .await;
    let url = answer.body["next_action"]["url"].as_str().expect("url");
    let authorization_id = url.rsplit('/').next().expect("an id");
    test_harness::eventually(
        Duration::from_secs(20),
        "the authorization is voided",
        || async { fleet.payment(authorization_id).await.body["status"] == json!("voided") },
    )
    .await;

    fleet
        .confirm(ada, &checkout_id)
        .await
        .expect_problem(409, "checkout_expired");
    assert!(fleet.submitted().await.is_empty());
}

/// The unchanged state a refused request must leave behind.
async fn unchanged(fleet: &Fleet, ada: Uuid) {
    assert_eq!(fleet.points_of(ada).await, (1_000, 0));
    assert_eq!(fleet.cart_of(ada).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_change_nothing() {
    let fleet = support::start().await;
    let (ada, mug, _) = customer(&fleet).await;

    let malformed = fleet
        .checkout
        .post("/v1/checkouts")
        .as_user(ada, Role::Civilian)
        .idempotency_key("malformed")
        .raw_json("{\"shipping_address\": ")
        .send()
        .await;
    malformed.expect_problem(400, "malformed_json");
    let mut missing_city = paying("pm_card_visa", None);
    missing_city["shipping_address"]
        .as_object_mut()
        .expect("object")
        .remove("city");
    fleet
        .submit(ada, "no-city", &missing_city)
        .await
        .expect_problem(422, "invalid_body");
    let mut empty_line1 = paying("pm_card_visa", None);
    empty_line1["shipping_address"]["line1"] = json!("  ");
    fleet
        .submit(ada, "empty-line1", &empty_line1)
        .await
        .expect_problem(422, "invalid_body");
    fleet
        .submit(ada, "negative", &paying("pm_card_visa", Some(-5)))
        .await
        .expect_problem(422, "invalid_body");
    fleet
        .quote(ada, &json!({"points_to_redeem": -1}))
        .await
        .expect_problem(422, "invalid_body");
    // 290 points would pay everything; 100 leave 19.00 to pay.
    fleet
        .submit(
            ada,
            "no-payment",
            &json!({"points_to_redeem": 100, "shipping_address": address()}),
        )
        .await
        .expect_problem(422, "invalid_body");
    fleet
        .checkout
        .post("/v1/checkouts")
        .as_user(ada, Role::Civilian)
        .json(&paying("pm_card_visa", None))
        .send()
        .await
        .expect_problem(400, "idempotency_key_required");
    for role in [Role::Business, Role::Officer, Role::Admin] {
        fleet
            .checkout
            .post("/v1/checkouts")
            .as_user(ada, role)
            .idempotency_key(&format!("{role:?}"))
            .json(&paying("pm_card_visa", None))
            .send()
            .await
            .expect_problem(403, "forbidden");
        fleet
            .checkout
            .post("/v1/checkouts/quote")
            .as_user(ada, role)
            .json(&json!({}))
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    fleet
        .submit(ada, "greedy", &paying("pm_card_visa", Some(1_001)))
        .await
        .expect_problem(409, "insufficient_points");
    unchanged(&fleet, ada).await;

    // 10 mugs in stock; 11 in another customer's cart.
    let bob = Uuid::new_v4();
    fleet.put(bob, mug, 11).await;
    fleet
        .submit(bob, "too-many", &paying("pm_card_visa", None))
        .await
        .expect_problem(409, "out_of_stock");
    fleet
        .submit(Uuid::new_v4(), "empty", &paying("pm_card_visa", None))
        .await
        .expect_problem(409, "cart_empty");
    fleet.patch_offering(mug, json!({"active": false})).await;
    fleet
        .submit(ada, "inactive", &paying("pm_card_visa", None))
        .await
        .expect_problem(409, "offering_unavailable");
    unchanged(&fleet, ada).await;
    assert!(fleet.submitted().await.is_empty());

    fleet
        .checkout
        .get(&format!("/v1/checkouts/{}", Uuid::new_v4()))
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_customers_checkout_is_not_found() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(ada, "mine", &json!({"shipping_address": address()}))
        .await
        .expect_status(201);
    let path = format!("/v1/checkouts/{}", answer.body["id"].as_str().expect("id"));
    let value: Value = fleet
        .checkout
        .get(&path)
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(value["order_id"], answer.body["order_id"]);
    fleet
        .checkout
        .get(&path)
        .as_user(Uuid::new_v4(), Role::Charity)
        .send()
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_authentication_is_declined_on_confirm_and_releases_the_points() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(
            ada,
            "3ds-fails",
            &paying("pm_card_authenticationRequired", Some(100)),
        )
        .await
        .expect_status(200);
    let checkout_id = answer.body["id"].as_str().expect("id").to_owned();
    let url = answer.body["next_action"]["url"].as_str().expect("url");
    fleet.answer_authentication(url, "fail").await;

    let declined = fleet
        .confirm(ada, &checkout_id)
        .await
        .expect_problem(402, "payment_declined");
    assert!(
        declined.body["decline_code"].is_string(),
        "{}",
        declined.text
    );
    unchanged(&fleet, ada).await;
    // The checkout is over; confirming it again cannot revive it.
    fleet
        .confirm(ada, &checkout_id)
        .await
        .expect_problem(409, "checkout_failed");
    assert!(fleet.submitted().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_confirmed_within_the_safety_margin_of_its_reservation_is_not_finished() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    let answer = fleet
        .submit(
            ada,
            "late",
            &paying("pm_card_authenticationRequired", Some(100)),
        )
        .await
        .expect_status(200);
    let checkout_id = answer.body["id"].as_str().expect("id").to_owned();
    let url = answer.body["next_action"]["url"].as_str().expect("url");
    fleet.answer_authentication(url, "approve").await;

    // 20 s before the 15-minute reservation ends: inside the 30 s margin,
    // where an order_submitted could race user-points' own release.
    fleet.clock.advance(Duration::from_secs(15 * 60 - 20));
    fleet
        .confirm(ada, &checkout_id)
        .await
        .expect_problem(409, "checkout_expired");
    test_harness::eventually(
        Duration::from_secs(20),
        "the points are released",
        || async { fleet.points_of(ada).await == (1_000, 0) },
    )
    .await;
    let authorization_id = url.rsplit('/').next().expect("an id");
    test_harness::eventually(
        Duration::from_secs(20),
        "the authorization is voided",
        || async { fleet.payment(authorization_id).await.body["status"] == json!("voided") },
    )
    .await;
    assert!(fleet.submitted().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_whose_capture_will_fail_is_still_authorized_at_checkout() {
    let fleet = support::start().await;
    let (ada, _, _) = customer(&fleet).await;
    // Capturing is the order's step, after stock is reserved: at checkout
    // this method authorizes like any other.
    let answer = fleet
        .submit(
            ada,
            "capture-fails",
            &paying("pm_sandbox_capture_fails", Some(0)),
        )
        .await
        .expect_status(201);
    assert_eq!(answer.body["payment"]["status"], "authorized");
    assert_eq!(answer.body["quote"]["total_minor"], 2_900);
    let authorization_id = answer.body["payment"]["authorization_id"]
        .as_str()
        .expect("an authorization");
    let shown = fleet.payment(authorization_id).await.expect_status(200);
    assert_eq!(shown.body["status"], "authorized");
    let submitted = fleet.wait_for_order(uuid(&answer.body, "order_id")).await;
    // No points redeemed: no reservation, and none held.
    assert_eq!(submitted.reservation_id, None);
    assert_eq!(fleet.points_of(ada).await, (1_000, 0));
}
