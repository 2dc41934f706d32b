//! Checkouts that must not go through, and leave nothing behind: a card the
//! bank declines, and two buyers after the last unit of something.

use std::sync::Arc;

use http_service::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::buying::{deliver, submit};
use crate::invariants::{order_settled, points_conserved, stock_conserved};
use crate::world::{checkout_body, get, World};

pub async fn a_declined_card_charges_nothing_and_leaves_cart_and_points_as_they_were(
    world: Arc<World>,
) {
    let shop = world.business("Garden").await;
    let seeds = world.offering(&shop, "Seeds", 900, 300, Some(5)).await;
    let civilian = world.person(Role::Civilian, 500).await;
    world.add_to_cart(&civilian, &seeds, 3).await;
    let cart = world.cart_items(&civilian).await;
    let balance = world.balance(&civilian).await;

    for (method, decline_code) in [
        ("pm_card_chargeDeclined", "generic_decline"),
        (
            "pm_card_chargeDeclinedInsufficientFunds",
            "insufficient_funds",
        ),
    ] {
        let answer = world
            .checkout
            .post("/v1/checkouts")
            .bearer(&civilian.token)
            .idempotency_key(&Uuid::new_v4().to_string())
            .json(&checkout_body(200, Some(method)))
            .send()
            .await
            .expect_problem(402, "payment_declined");
        assert_eq!(answer.body["decline_code"], decline_code, "{}", answer.text);
        assert_eq!(
            world.cart_items(&civilian).await,
            cart,
            "the cart is unchanged"
        );
        assert_eq!(
            world.balance(&civilian).await,
            balance,
            "the points are as they were"
        );
    }
    let orders = get(&world.orders, "/v1/orders", &civilian.token).await;
    assert_eq!(orders["items"], json!([]), "no order: {orders}");
    assert_eq!(world.stock(&seeds).await, Some(5));
    points_conserved(&world, &civilian).await;
    assert!(
        world.smtp.messages_to(&civilian.email).is_empty(),
        "nothing to tell about an order that never was"
    );
}

pub async fn two_buyers_race_for_the_last_unit_and_exactly_one_gets_it(world: Arc<World>) {
    let shop = world.business("Antiques").await;
    let clock = world
        .offering(&shop, "Grandfather clock", 50_000, 10_000, Some(1))
        .await;
    let first = world.person(Role::Civilian, 2_000).await;
    let second = world.person(Role::Civilian, 2_000).await;
    for buyer in [&first, &second] {
        world.add_to_cart(buyer, &clock, 1).await;
    }
    let body = checkout_body(2_000, Some("pm_card_visa"));
    let keys = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    let (a, b) = tokio::join!(
        submit(&world, &first, &body, &keys.0),
        submit(&world, &second, &body, &keys.1)
    );

    // Each checkout is refused at once, or placed and then either served or
    // cancelled for want of stock; exactly one buyer gets the clock.
    let mut orders: Vec<Value> = Vec::new();
    let mut winners = Vec::new();
    for ((status, answer), buyer) in [(a, &first), (b, &second)] {
        match status {
            409 => assert_eq!(answer["code"], "out_of_stock", "{answer}"),
            201 => {
                let order_id = answer["order_id"].as_str().expect("order id").to_owned();
                let order = world
                    .wait_for_order(
                        buyer,
                        &order_id,
                        "the order is served or cancelled",
                        |order| order["status"] == "dispatched" || order["status"] == "cancelled",
                    )
                    .await;
                if order["status"] == "cancelled" {
                    assert_eq!(order["cancellation_reason"], "out_of_stock", "{order}");
                    order_settled(&world, buyer, &order_id).await;
                } else {
                    winners.push((buyer, order_id));
                }
                orders.push(order);
            }
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(winners.len(), 1, "one buyer gets the last unit: {orders:?}");
    let (winner, order_id) = winners.pop().expect("a winner");
    deliver(&world, &shop, &order_id).await;
    let served = world.wait_for_status(winner, &order_id, "delivered").await;
    order_settled(&world, winner, &order_id).await;
    let settled: Vec<Value> = orders
        .into_iter()
        .filter(|order| order["id"] != order_id.as_str())
        .chain([served])
        .collect();
    stock_conserved(&world, &clock, 1, &settled).await;
    assert_eq!(world.stock(&clock).await, Some(0));
    for buyer in [&first, &second] {
        points_conserved(&world, buyer).await;
    }
}
