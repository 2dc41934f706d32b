//! The order journey of DESIGN §4 end to end, on the fleet that `scripts/run`
//! starts: a seeded civilian pays for a cart of two businesses' products with
//! points and the sandbox card, each business takes its part from its portal
//! queue, confirms, ships and delivers it, and the customer sees every step —
//! in the order, in the points ledger, at the payment gateway and in the
//! notification inbox. No service is stood in for: every hop is the real
//! binary and the embedded broker.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};
use shared_events::checkout::CheckoutEvent;
use test_harness::{eventually, Api};
use uuid::Uuid;

use fixture::{BannerToken, Fleet};

mod fixture;

/// Long enough for about ten hops through the broker on a busy machine.
const JOURNEY: Duration = Duration::from_secs(60);

async fn get(api: &Api, path: &str, token: &str) -> Value {
    api.get(path)
        .bearer(token)
        .send()
        .await
        .expect_status(200)
        .body
}

/// A product of `business` with unlimited stock, from the seeded shop.
async fn product_of(catalog: &Api, business: Uuid) -> Value {
    let listed = catalog
        .get(&format!("/v1/offerings?business_id={business}&limit=200"))
        .send()
        .await
        .expect_status(200);
    listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|offering| offering["kind"] == "product" && offering["stock"].is_null())
        .unwrap_or_else(|| panic!("no product of {business} with unlimited stock"))
        .clone()
}

async fn order_status(orders: &Api, order_id: &str, customer: &BannerToken) -> Value {
    get(orders, &format!("/v1/orders/{order_id}"), &customer.token).await
}

async fn wait_for_status(orders: &Api, order_id: &str, customer: &BannerToken, status: &str) {
    eventually(JOURNEY, &format!("the order is {status}"), || async {
        order_status(orders, order_id, customer).await["status"] == status
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_civilian_pays_with_points_and_card_and_two_businesses_deliver_their_parts() {
    let fleet = Fleet::start().await;
    let api = |service: &str| Api::new(fleet.urls[service].clone());
    let (catalog, cart, checkout, points, payments, orders, dispatch, notifications) = (
        api("catalog"),
        api("cart"),
        api("checkout"),
        api("user-points"),
        api("payment-gateway"),
        api("order"),
        api("dispatcher"),
        api("notification"),
    );
    let civilian = fleet.token("civilian").clone();
    let admin = fleet.token("admin").clone();
    let owners: Vec<BannerToken> = fleet.tokens("business").into_iter().cloned().collect();
    assert!(owners.len() >= 2, "two businesses in the demo shop");
    let balance_before = get(&points, "/v1/points/balance", &civilian.token).await;

    // Two units of the first business's product, one of the second's.
    let mut bought = HashMap::new();
    for (owner, quantity) in [(&owners[0], 2), (&owners[1], 1)] {
        let business = owner.business_id.expect("business id");
        let product = product_of(&catalog, business).await;
        let offering = product["id"].as_str().expect("offering id").to_owned();
        cart.put(&format!("/v1/cart/items/{offering}"))
            .bearer(&civilian.token)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .expect_status(200);
        bought.insert(business, (offering, quantity));
    }

    // Points pay part of it: fewer than the cart could take, so the card
    // pays the rest.
    let quote = checkout
        .post("/v1/checkouts/quote")
        .bearer(&civilian.token)
        .json(&json!({}))
        .send()
        .await
        .expect_status(200)
        .body;
    let available = quote["available_points"]
        .as_i64()
        .expect("available points");
    assert_eq!(Some(available), balance_before["available"].as_i64());
    let redeem = (available / 2).clamp(1, 10);
    let submitted = checkout
        .post("/v1/checkouts")
        .bearer(&civilian.token)
        .idempotency_key(&Uuid::new_v4().to_string())
        .json(&json!({
            "points_to_redeem": redeem,
            "payment": {"provider": "sandbox", "payment_method": "pm_card_visa"},
            "shipping_address": {
                "name": "Dana Civilian", "line1": "1 Main Street", "city": "Springfield",
                "postal_code": "12345", "country": "US"
            }
        }))
        .send()
        .await
        .expect_status(201)
        .body;
    assert_eq!(submitted["status"], "completed", "{submitted}");
    assert_eq!(submitted["payment"]["status"], "authorized", "{submitted}");
    assert_eq!(submitted["quote"]["points_applied"], redeem, "{submitted}");
    let order_id = submitted["order_id"].as_str().expect("order id").to_owned();
    let authorization_id = submitted["payment"]["authorization_id"]
        .as_str()
        .expect("authorization id")
        .to_owned();
    let total = submitted["quote"]["total_minor"].as_i64().expect("total");
    assert!(total > 0, "the card pays something: {submitted}");

    // The order is on the checkout topic, with both businesses' lines.
    let bootstrap = fleet.banner["KAFKA_BOOTSTRAP"].clone();
    eventually(JOURNEY, "order_submitted is on heyblue.checkout.v1", || {
        let bootstrap = bootstrap.clone();
        let order_id = order_id.clone();
        async move {
            test_harness::events::read_events::<CheckoutEvent>(&bootstrap)
                .await
                .iter()
                .any(|envelope| match &envelope.event {
                    CheckoutEvent::OrderSubmitted(event) => {
                        event.order_id.to_string() == order_id && event.lines.len() == 2
                    }
                })
        }
    })
    .await;

    // Stock, capture and points spend behind it: the order reaches both
    // businesses' portal queues.
    wait_for_status(&orders, &order_id, &civilian, "dispatched").await;
    let order = order_status(&orders, &order_id, &civilian).await;
    assert_eq!(order["total_minor"], total, "{order}");
    assert_eq!(order["points_applied"], redeem, "{order}");
    assert_eq!(
        order["payment"]["authorization_id"], authorization_id,
        "{order}"
    );
    let payment = get(
        &payments,
        &format!("/v1/payments/{authorization_id}"),
        &admin.token,
    )
    .await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(payment["amount_minor"], total, "{payment}");
    eventually(JOURNEY, "the points are spent", || async {
        let balance = get(&points, "/v1/points/balance", &civilian.token).await;
        balance["available"].as_i64() == Some(available - redeem)
            && balance["reserved"] == 0
            && balance["lifetime_spent"].as_i64()
                == balance_before["lifetime_spent"]
                    .as_i64()
                    .map(|s| s + redeem)
    })
    .await;
    eventually(
        JOURNEY,
        "the cart is lowered by what was bought",
        || async { get(&cart, "/v1/cart", &civilian.token).await["items"] == json!([]) },
    )
    .await;

    // Each business confirms, ships and delivers its own part.
    for owner in &owners[..2] {
        let business = owner.business_id.expect("business id");
        let queue = get(
            &dispatch,
            &format!("/v1/dispatch/businesses/{business}/orders"),
            &owner.token,
        )
        .await;
        let part = queue["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|part| part["order_id"] == order_id.as_str())
            .unwrap_or_else(|| panic!("{business} has the order in its queue: {queue}"))
            .clone();
        let (offering, quantity) = &bought[&business];
        assert_eq!(part["lines"][0]["offering_id"], offering.as_str(), "{part}");
        assert_eq!(part["lines"][0]["quantity"], *quantity, "{part}");
        assert_eq!(part["shipping_address"]["city"], "Springfield", "{part}");
        for (action, body) in [
            ("confirm", json!({"reference": "PO-1"})),
            (
                "shipments",
                json!({"carrier": "UPS", "tracking_number": format!("1Z{business}")}),
            ),
            ("delivered", json!({})),
        ] {
            dispatch
                .post(&format!("/v1/dispatch/orders/{order_id}/{action}"))
                .bearer(&owner.token)
                .json(&body)
                .send()
                .await
                .expect_status(200);
        }
    }
    wait_for_status(&orders, &order_id, &civilian, "delivered").await;
    let order = order_status(&orders, &order_id, &civilian).await;
    let history: Vec<&str> = order["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| entry["status"].as_str().expect("status"))
        .collect();
    assert_eq!(history.first(), Some(&"pending"), "{order}");
    assert_eq!(history.last(), Some(&"delivered"), "{order}");
    for fulfillment in order["fulfillments"].as_array().expect("fulfillments") {
        assert_eq!(fulfillment["status"], "delivered", "{order}");
        assert_eq!(fulfillment["tracking"]["carrier"], "UPS", "{order}");
    }
    assert_eq!(order["refunds"], json!([]), "{order}");

    // The customer was told each step: placed, paid, and each business's
    // part dispatched, confirmed, shipped and delivered.
    eventually(JOURNEY, "every step is in the inbox", || async {
        let inbox = get(
            &notifications,
            "/v1/notifications?limit=200",
            &civilian.token,
        )
        .await;
        let mut kinds: HashMap<String, usize> = HashMap::new();
        for item in inbox["items"].as_array().expect("items") {
            if item["order_id"] == order_id.as_str() {
                *kinds
                    .entry(item["kind"].as_str().expect("kind").to_owned())
                    .or_default() += 1;
            }
        }
        let expected: HashMap<String, usize> = [
            ("placed", 1),
            ("paid", 1),
            ("dispatched", 2),
            ("confirmed", 2),
            ("shipped", 2),
            ("delivered", 2),
        ]
        .into_iter()
        .map(|(kind, count)| (kind.to_owned(), count))
        .collect();
        kinds == expected
    })
    .await;

    let status = fleet.stop().await;
    assert!(status.success(), "the launcher stops cleanly: {status}");
}
