//! A checkout whose request died mid-way (the process crashed after the
//! points were reserved, before the payment's answer was recorded) is
//! found by the expiry sweep: its points are released and its order voided
//! at the gateway, so a late authorization cannot stand either. Retried
//! with its key before that, it carries on instead.

mod support;

use std::time::Duration;

use checkout::domain::{
    price, CartLine, Checkout, CheckoutStatus, PaymentChoice, Points, Quantity, ShippingAddress,
    UnitPrice,
};
use http_service::auth::Role;
use serde_json::{json, Value};
use uuid::Uuid;

/// What a request that died mid-way leaves: `ada`'s 100 points reserved
/// at user-points and her checkout, begun with `key`, still in progress.
/// Returns its order id.
async fn stalled_checkout(fleet: &support::Fleet, ada: Uuid, key: &str) -> Uuid {
    let (checkout_id, order_id) = (Uuid::new_v4(), Uuid::new_v4());

    // What the dead request had done: the points reserved at user-points…
    let reservation: Value = fleet
        .points
        .post("/v1/points/reservations")
        .as_user(Uuid::new_v4(), Role::Service)
        .json(
            &json!({"user_id": ada, "order_id": order_id, "checkout_id": checkout_id,
                      "points": 100, "ttl_seconds": 900}),
        )
        .send()
        .await
        .expect_status(201)
        .body;
    assert_eq!(fleet.points_of(ada).await, (900, 100));
    // …and its checkout written, still in progress.
    let line = CartLine {
        offering_id: Uuid::new_v4(),
        business_id: fleet.business_id,
        title: "Mug".to_owned(),
        quantity: Quantity::new(2).expect("quantity"),
        unit_price_minor: UnitPrice::new("price_minor", 1_200).expect("price"),
        points_price: UnitPrice::new("points_price", 120).expect("points price"),
    };
    let now = fleet.clock_now();
    let stalled = Checkout {
        id: checkout_id,
        order_id,
        customer_id: ada,
        customer_email: None,
        status: CheckoutStatus::InProgress,
        currency: "USD".to_owned(),
        quote: price(&[line], Points::new(100).expect("points")).expect("priced"),
        available_points: 1_000,
        shipping_address: ShippingAddress::new(
            "Ada",
            "1 Main St",
            None,
            "Springfield",
            "12345",
            "US",
        )
        .expect("address"),
        payment: Some(PaymentChoice::new("sandbox", "pm_card_visa").expect("payment")),
        return_url: None,
        reservation_id: Some(support::uuid(&reservation, "reservation_id")),
        expires_at: now + Duration::from_secs(900),
        authorization_id: None,
        next_action_url: None,
        failure_code: None,
        created_at: now,
    };
    let pool = sqlx::PgPool::connect(fleet.db.url("checkout"))
        .await
        .expect("connect");
    let mut conn = pool.acquire().await.expect("connection");
    checkout::store::insert(&mut conn, &stalled, key)
        .await
        .expect("insert");
    drop(conn);
    pool.close().await;
    order_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_left_in_progress_is_expired_its_points_released_and_its_order_voided() {
    let fleet = support::start().await;
    let ada = Uuid::new_v4();
    fleet.award(ada, 1_000).await;
    let order_id = stalled_checkout(&fleet, ada, "the-dead-request").await;

    fleet.clock.advance(Duration::from_secs(16 * 60));
    test_harness::eventually(
        Duration::from_secs(30),
        "the checkout is expired and released",
        || async {
            fleet.checkouts_of(ada).await == vec![(order_id, "expired".to_owned())]
                && fleet.points_of(ada).await == (1_000, 0)
                && fleet.order_voided(order_id).await
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_of_a_request_that_died_carries_on_its_checkout() {
    let fleet = support::start().await;
    let ada = Uuid::new_v4();
    fleet.award(ada, 1_000).await;
    let key = "the-dead-request";
    let order_id = stalled_checkout(&fleet, ada, key).await;

    // The customer's retry, with the same key, finishes that checkout: the
    // same order, the points held once, nothing begun twice.
    let answer = fleet
        .checkout
        .post("/v1/checkouts")
        .as_user(ada, Role::Civilian)
        .idempotency_key(key)
        .json(&json!({
            "points_to_redeem": 100,
            "payment": {"provider": "sandbox", "payment_method": "pm_card_visa"},
            "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Springfield",
                                 "postal_code": "12345", "country": "US"},
        }))
        .send()
        .await
        .expect_status(201);
    assert_eq!(answer.body["status"], "completed", "{}", answer.text);
    assert_eq!(support::uuid(&answer.body, "order_id"), order_id);
    assert_eq!(
        answer.body["payment"]["status"], "authorized",
        "{}",
        answer.text
    );
    assert_eq!(
        fleet.checkouts_of(ada).await,
        vec![(order_id, "completed".to_owned())]
    );
    assert_eq!(fleet.points_of(ada).await, (900, 100));
}
