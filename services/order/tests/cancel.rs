//! The customer's cancel (DESIGN §3 and §4 step 8) against the real
//! dispatcher: withdrawn first, then voided or refunded per part; refused
//! once a part is confirmed or while a capture is under way; nothing changed
//! when the dispatcher cannot be asked; and the events that arrive after a
//! cancel compensated, once.

mod support;

use std::time::Duration;

use http_service::auth::Role;
use serde_json::json;
use shared_events::order::OrderEvent;
use support::{business_token, history, kinds, Shop, Submission};
use test_harness::Answer;
use uuid::Uuid;

fn two_business_order() -> (Submission, Uuid, Uuid) {
    let (b1, b2) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Submission::priced(&[(b1, 1200, 600, 2), (b2, 700, 350, 1)], 300);
    (order, b1, b2)
}

impl Shop {
    async fn cancel(&self, order: &Submission) -> Answer {
        self.api
            .post(&format!("/v1/orders/{}/cancel", order.id()))
            .as_user(order.customer(), Role::Civilian)
            .send()
            .await
    }

    async fn submit(&self, order: &Submission) {
        self.publish(order.submitted(), order.id()).await;
        self.wait_for_status(order, "pending").await;
    }

    async fn pay(&self, order: &Submission) {
        self.publish(order.stock_reserved(), order.id()).await;
        self.wait_for_status(order, "payment_processing").await;
        self.publish(order.paid(), order.id()).await;
        // With the dispatcher beside it, the order may be dispatched already.
        self.wait_for(order, "the order is paid", |o| {
            o["payment"]["transaction_id"].is_string()
        })
        .await;
    }
}

/// Waits a moment for anything the order might still publish, then reads.
async fn settled_commands(shop: &Shop, order: &Submission) -> Vec<OrderEvent> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    shop.commands(order).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_before_capture_voids_and_releases_and_late_stock_and_capture_are_given_back() {
    let shop = support::start_with_dispatcher().await;
    let (order, _, _) = two_business_order();
    shop.submit(&order).await;

    let answer = shop.cancel(&order).await.expect_status(202);
    assert_eq!(answer.body["status"], "cancelled");
    assert_eq!(answer.body["cancellation_reason"], "customer_cancelled");
    assert_eq!(answer.body["fulfillments"][0]["status"], "cancelled");
    assert_eq!(answer.body["refunds"], json!([]));
    assert_eq!(history(&answer.body), ["pending", "cancelled"]);
    let commands = shop.commands_after(&order, 5).await;
    assert_eq!(
        kinds(&commands),
        [
            "order_created",
            "payment_void_requested",
            "points_release_requested",
            "order_cancelled"
        ]
    );

    // Again: the same answer, nothing new.
    let again = shop.cancel(&order).await.expect_status(202);
    assert_eq!(again.body, shop.get(&order).await);

    // Catalog had reserved meanwhile: released. The gateway captured
    // anyway: refunded in full. Each once, however often it is sent.
    for _ in 0..2 {
        shop.publish(order.stock_reserved(), order.id()).await;
        shop.publish(order.paid(), order.id()).await;
    }
    let refunded = shop
        .wait_for(&order, "the late capture is refunded", |o| {
            o["refunds"].as_array().is_some_and(|r| r.len() == 1)
        })
        .await;
    assert_eq!(
        refunded["refunds"][0]["business_id"],
        serde_json::Value::Null
    );
    assert_eq!(refunded["refunds"][0]["amount_minor"], order.0.total_minor);
    assert_eq!(refunded["refunds"][0]["points"], 0);
    assert_eq!(refunded["status"], "cancelled");
    let after = settled_commands(&shop, &order).await;
    assert_eq!(
        kinds(&after[commands.len()..]),
        ["stock_release_requested", "payment_refund_requested"]
    );
    let refund = after.iter().find_map(|c| match c {
        OrderEvent::PaymentRefundRequested(r) => Some(r),
        _ => None,
    });
    let refund = refund.expect("a refund");
    assert_eq!(
        (refund.business_id, refund.amount_minor),
        (None, order.0.total_minor)
    );
    assert_eq!(refund.authorization_id, order.authorization());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_after_capture_and_points_spend_refunds_each_part_and_releases_its_stock() {
    let shop = support::start_with_dispatcher().await;
    let (order, b1, b2) = two_business_order();
    shop.submit(&order).await;
    shop.pay(&order).await;
    // The dispatcher places both parts (portal: straight into the queue).
    shop.wait_for_status(&order, "dispatched").await;
    let before = shop.commands(&order).await;

    let answer = shop.cancel(&order).await.expect_status(202);
    assert_eq!(answer.body["status"], "cancelled");
    assert_eq!(answer.body["cancellation_reason"], "customer_cancelled");
    let refunds: Vec<(String, i64, i64, String)> = answer.body["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| {
            (
                r["business_id"].as_str().unwrap_or_default().to_owned(),
                r["amount_minor"].as_i64().unwrap_or_default(),
                r["points"].as_i64().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let (a1, p1) = order.part_sums(b1);
    let (a2, p2) = order.part_sums(b2);
    assert_eq!(
        refunds,
        [
            (b1.to_string(), a1, p1, "customer_cancelled".to_owned()),
            (b2.to_string(), a2, p2, "customer_cancelled".to_owned()),
        ]
    );
    for part in answer.body["fulfillments"].as_array().expect("parts") {
        assert_eq!(part["status"], "cancelled");
    }

    let after = settled_commands(&shop, &order).await;
    let new = &after[before.len()..];
    assert_eq!(
        kinds(new),
        [
            "stock_release_requested",
            "payment_refund_requested",
            "points_refund_requested",
            "payment_refund_requested",
            "order_cancelled"
        ],
        "b2's part carries no points; nothing is voided or released once captured and spent"
    );
    let released = new.iter().find_map(|c| match c {
        OrderEvent::StockReleaseRequested(r) => Some(r.lines.clone()),
        _ => None,
    });
    assert_eq!(released, Some(order.stock_lines()));

    // The business can no longer act on its part.
    dispatcher(&shop)
        .post(&format!("/v1/dispatch/orders/{}/confirm", order.id()))
        .bearer(&business_token(b1))
        .json(&json!({}))
        .send()
        .await
        .expect_problem(409, "order_cancelled");
    shop.cancel(&order).await.expect_status(202);
    assert_eq!(settled_commands(&shop, &order).await.len(), after.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_is_refused_once_a_business_confirmed_its_part() {
    let shop = support::start_with_dispatcher().await;
    let (order, b1, _) = two_business_order();
    shop.submit(&order).await;
    shop.pay(&order).await;
    shop.wait_for_status(&order, "dispatched").await;
    dispatcher(&shop)
        .post(&format!("/v1/dispatch/orders/{}/confirm", order.id()))
        .bearer(&business_token(b1))
        .json(&json!({"reference": "B-17"}))
        .send()
        .await
        .expect_status(200);
    let before = shop.get(&order).await;
    let commands = shop.commands(&order).await;

    // At once (the dispatcher knows), and once the order has heard of it.
    shop.cancel(&order)
        .await
        .expect_problem(409, "not_cancellable");
    shop.wait_for(&order, "b1 confirmed", |o| {
        o["fulfillments"][0]["status"] == "confirmed"
    })
    .await;
    shop.cancel(&order)
        .await
        .expect_problem(409, "not_cancellable");

    let after = shop.get(&order).await;
    assert_eq!(after["status"], "dispatched");
    assert_eq!(after["refunds"], json!([]));
    assert_eq!(after["history"], before["history"]);
    let new = settled_commands(&shop, &order).await;
    assert_eq!(
        kinds(&new),
        kinds(&commands),
        "no refund, release or cancel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_the_capture_is_refused_and_changes_nothing() {
    let shop = support::start().await;
    let (order, _, _) = two_business_order();
    shop.submit(&order).await;
    shop.publish(order.stock_reserved(), order.id()).await;
    let before = shop.wait_for_status(&order, "payment_processing").await;
    shop.cancel(&order)
        .await
        .expect_problem(409, "payment_in_progress");
    assert_eq!(shop.get(&order).await, before);
    assert_eq!(
        kinds(&settled_commands(&shop, &order).await),
        ["order_created", "payment_capture_requested"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_dispatcher_is_unreachable_answers_503_and_changes_nothing() {
    let shop = support::start().await;
    let (order, _, _) = two_business_order();
    shop.submit(&order).await;
    let before = shop.get(&order).await;
    shop.cancel(&order)
        .await
        .expect_problem(503, "dependency_unavailable");
    assert_eq!(shop.get(&order).await, before);
    assert_eq!(
        kinds(&settled_commands(&shop, &order).await),
        ["order_created"]
    );
}

fn dispatcher(shop: &Shop) -> test_harness::Api {
    shop.dispatcher.as_ref().expect("the dispatcher runs").api()
}
