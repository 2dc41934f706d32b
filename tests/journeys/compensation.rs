//! Orders that go wrong after they were placed, and are made good exactly:
//! a capture the provider refuses, a business that declines its part, and a
//! customer who cancels — and is refused once a business has confirmed.

use std::sync::Arc;

use http_service::Role;
use serde_json::json;

use crate::buying::{deliver, place};
use crate::invariants::{
    one_email_per_notification, order_settled, points_conserved, stock_conserved,
};
use crate::world::{checkout_body, World};

pub async fn a_capture_that_fails_cancels_and_gives_back_stock_and_points(world: Arc<World>) {
    let shop = world.business("Pottery").await;
    let vase = world.offering(&shop, "Vase", 3_000, 1_000, Some(5)).await;
    let civilian = world.person(Role::Civilian, 800).await;
    world.add_to_cart(&civilian, &vase, 2).await;
    let order_id = place(
        &world,
        &civilian,
        &checkout_body(800, Some("pm_sandbox_capture_fails")),
    )
    .await;

    let order = world
        .wait_for_status(&civilian, &order_id, "cancelled")
        .await;
    assert_eq!(order["cancellation_reason"], "payment_failed", "{order}");
    let authorization = order["payment"]["authorization_id"]
        .as_str()
        .expect("authorization");
    let payment = world.payment(authorization).await;
    assert!(
        payment["captures"]
            .as_array()
            .expect("captures")
            .iter()
            .all(|c| c["status"] != "succeeded"),
        "nothing was taken: {payment}"
    );
    test_harness::eventually(crate::world::SETTLE, "the points are back", || async {
        world.balance(&civilian).await["available"] == 800
    })
    .await;
    let order = order_settled(&world, &civilian, &order_id).await;
    stock_conserved(&world, &vase, 5, &[order]).await;
    assert_eq!(world.stock(&vase).await, Some(5));
    points_conserved(&world, &civilian).await;
    world
        .wait_for_inbox(&civilian, &order_id, &[("placed", 1), ("cancelled", 1)])
        .await;
    one_email_per_notification(&world, &civilian).await;
}

pub async fn a_business_declining_its_part_refunds_exactly_that_part(world: Arc<World>) {
    let keeps = world.business("Tea house").await;
    let declines = world.business("Candle maker").await;
    let tea = world.offering(&keeps, "Green tea", 1_200, 600, None).await;
    let candle = world
        .offering(&declines, "Candle", 1_100, 700, Some(6))
        .await;
    let civilian = world.person(Role::Civilian, 2_000).await;
    world.add_to_cart(&civilian, &tea, 1).await;
    world.add_to_cart(&civilian, &candle, 3).await;
    // 1,000 points: 600 pay the tea in full, 400 of the candles' 2,100.
    let order_id = place(
        &world,
        &civilian,
        &checkout_body(1_000, Some("pm_card_visa")),
    )
    .await;
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;

    world.part(&declines, &order_id).await;
    assert_eq!(
        world
            .act(
                &declines,
                &order_id,
                "decline",
                json!({"reason": "out of wax"})
            )
            .await,
        200
    );
    // The candles' part: 3,300 less floor(3,300 × 400 / 2,100) = 628 off.
    let order = world
        .wait_for_order(
            &civilian,
            &order_id,
            "the declined part is refunded",
            |order| {
                order["refunds"]
                    .as_array()
                    .is_some_and(|refunds| refunds.len() == 1)
            },
        )
        .await;
    let refund = &order["refunds"][0];
    assert_eq!(refund["business_id"], declines.id.to_string(), "{order}");
    assert_eq!(
        (refund["amount_minor"].as_i64(), refund["points"].as_i64()),
        (Some(3_300 - 628), Some(400)),
        "{order}"
    );
    test_harness::eventually(
        crate::world::SETTLE,
        "the candles are back in stock",
        || async { world.stock(&candle).await == Some(6) },
    )
    .await;
    // A declined part is final for the business too.
    assert_eq!(
        world.act(&declines, &order_id, "confirm", json!({})).await,
        409
    );

    deliver(&world, &keeps, &order_id).await;
    let order = world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    assert_eq!(
        order["refunds"].as_array().map(Vec::len),
        Some(1),
        "refunded once: {order}"
    );
    let order = order_settled(&world, &civilian, &order_id).await;
    stock_conserved(&world, &candle, 6, &[order]).await;
    let points = points_conserved(&world, &civilian).await;
    assert_eq!(points.get("refunded"), Some(&400));
    world
        .wait_for_inbox(
            &civilian,
            &order_id,
            &[
                ("placed", 1),
                ("paid", 1),
                ("dispatched", 2),
                ("declined", 1),
                ("refunded", 1),
                ("confirmed", 1),
                ("shipped", 1),
                ("delivered", 1),
            ],
        )
        .await;
    one_email_per_notification(&world, &civilian).await;
}

pub async fn a_customer_cancels_and_is_refused_once_a_part_is_confirmed(world: Arc<World>) {
    let florist = world.business("Florist").await;
    let grocer = world.business("Grocer").await;
    let roses = world
        .offering(&florist, "Roses", 2_000, 1_000, Some(8))
        .await;
    let apples = world.offering(&grocer, "Apples", 500, 250, None).await;
    let civilian = world.person(Role::Civilian, 3_000).await;
    let cancel = |order_id: String| {
        let world = world.clone();
        let token = civilian.token.clone();
        async move {
            world
                .orders
                .post(&format!("/v1/orders/{order_id}/cancel"))
                .bearer(&token)
                .send()
                .await
        }
    };

    // Cancelled while both parts wait on their businesses: the card is paid
    // back and the points returned part by part.
    world.add_to_cart(&civilian, &roses, 2).await;
    world.add_to_cart(&civilian, &apples, 2).await;
    let cancelled = place(
        &world,
        &civilian,
        &checkout_body(1_500, Some("pm_card_visa")),
    )
    .await;
    world
        .wait_for_status(&civilian, &cancelled, "dispatched")
        .await;
    cancel(cancelled.clone()).await.expect_status(202);
    let order = world
        .wait_for_status(&civilian, &cancelled, "cancelled")
        .await;
    assert_eq!(
        order["cancellation_reason"], "customer_cancelled",
        "{order}"
    );
    assert_eq!(
        order["refunds"].as_array().map(Vec::len),
        Some(2),
        "a refund per part: {order}"
    );
    cancel(cancelled.clone()).await.expect_status(202);
    for business in [&florist, &grocer] {
        assert_eq!(
            world.part(business, &cancelled).await["status"],
            "cancelled"
        );
        assert_eq!(
            world.act(business, &cancelled, "confirm", json!({})).await,
            409
        );
    }

    // Once the florist confirms, cancelling is refused and changes nothing.
    world.add_to_cart(&civilian, &roses, 1).await;
    world.add_to_cart(&civilian, &apples, 1).await;
    let kept = place(&world, &civilian, &checkout_body(0, Some("pm_card_visa"))).await;
    world.wait_for_status(&civilian, &kept, "dispatched").await;
    world.part(&florist, &kept).await;
    assert_eq!(world.act(&florist, &kept, "confirm", json!({})).await, 200);
    cancel(kept.clone())
        .await
        .expect_problem(409, "not_cancellable");
    deliver(&world, &grocer, &kept).await;
    for (action, body) in [
        (
            "shipments",
            json!({"carrier": "DHL", "tracking_number": "JD0142"}),
        ),
        ("delivered", json!({})),
    ] {
        assert_eq!(world.act(&florist, &kept, action, body).await, 200);
    }
    world.wait_for_status(&civilian, &kept, "delivered").await;

    let orders = [
        order_settled(&world, &civilian, &cancelled).await,
        order_settled(&world, &civilian, &kept).await,
    ];
    stock_conserved(&world, &roses, 8, &orders).await;
    points_conserved(&world, &civilian).await;
    world
        .wait_for_order(&civilian, &cancelled, "every refund is answered", |order| {
            order["refunds"]
                .as_array()
                .is_some_and(|refunds| refunds.iter().all(|r| r["status"] == "refunded"))
        })
        .await;
    one_email_per_notification(&world, &civilian).await;
}
