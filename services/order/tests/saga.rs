//! The saga over every path of DESIGN §4, driven by the other services'
//! events as they publish them, checked by the commands order publishes on
//! `heyblue.order.v1` and by the order its customer sees.

mod support;

use std::time::Duration;

use shared_events::order::{CancellationReason, OrderEvent, OrderStatus};
use shared_events::payment::{PaymentEvent, PaymentRefundFailed, PaymentRefunded};
use support::{dispatch, history, kinds, metric, Shop, Submission};
use uuid::Uuid;

/// Two businesses, 300 points spent on the first line.
fn two_business_order() -> (Submission, Uuid, Uuid) {
    let (b1, b2) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Submission::priced(&[(b1, 1200, 600, 2), (b2, 700, 350, 1)], 300);
    (order, b1, b2)
}

async fn submit_and_pay(shop: &Shop, order: &Submission) {
    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(order, "pending").await;
    shop.publish(order.stock_reserved(), order.id()).await;
    shop.wait_for_status(order, "payment_processing").await;
    shop.publish(order.paid(), order.id()).await;
    shop.wait_for_status(order, "processing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_order_is_captured_spends_its_points_and_follows_its_parts_to_delivery() {
    let shop = support::start().await;
    let (order, b1, b2) = two_business_order();

    shop.publish(order.submitted(), order.id()).await;
    let pending = shop.wait_for_status(&order, "pending").await;
    assert_eq!(pending["fulfillments"][0]["status"], "queued");
    assert_eq!(pending["fulfillments"][1]["status"], "queued");
    assert_eq!(
        pending["payment"]["authorization_id"],
        order.authorization().to_string()
    );
    assert_eq!(
        pending["payment"]["transaction_id"],
        serde_json::Value::Null
    );
    assert_eq!(pending["total_minor"], order.0.total_minor);
    assert_eq!(pending["points_applied"], 300);

    shop.publish(order.stock_reserved(), order.id()).await;
    shop.wait_for_status(&order, "payment_processing").await;
    shop.publish(order.paid(), order.id()).await;
    let processing = shop.wait_for_status(&order, "processing").await;
    assert_eq!(
        processing["payment"]["transaction_id"],
        format!("pi_{}", order.id().simple())
    );

    let commands = shop.commands_after(&order, 6).await;
    assert_eq!(
        kinds(&commands),
        [
            "order_created",
            "payment_capture_requested",
            "points_spend_requested",
            "order_ready_for_dispatch"
        ]
    );
    let capture = commands.iter().find_map(|c| match c {
        OrderEvent::PaymentCaptureRequested(c) => Some(c),
        _ => None,
    });
    let capture = capture.expect("a capture");
    assert_eq!(capture.authorization_id, order.authorization());
    assert_eq!(capture.amount_minor, order.0.total_minor);
    let spend = commands.iter().find_map(|c| match c {
        OrderEvent::PointsSpendRequested(s) => Some(s),
        _ => None,
    });
    let spend = spend.expect("a spend");
    assert_eq!(Some(spend.reservation_id), order.0.reservation_id);
    assert_eq!(spend.points, 300);
    let ready = commands.iter().find_map(|c| match c {
        OrderEvent::OrderReadyForDispatch(r) => Some(r),
        _ => None,
    });
    let ready = ready.expect("ready for dispatch");
    let parts: Vec<(Uuid, usize)> = ready
        .parts
        .iter()
        .map(|p| (p.business_id, p.lines.len()))
        .collect();
    assert_eq!(parts, [(b1, 1), (b2, 1)]);
    let changes: Vec<(OrderStatus, OrderStatus, Option<String>)> = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::OrderStatusChanged(s) => Some((s.from, s.to, s.customer_email.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                OrderStatus::Pending,
                OrderStatus::PaymentProcessing,
                Some("ada@example.com".to_owned())
            ),
            (
                OrderStatus::PaymentProcessing,
                OrderStatus::Processing,
                Some("ada@example.com".to_owned())
            ),
        ]
    );

    // The order is as far as its slowest part.
    shop.publish(dispatch::dispatched(&order, b1), order.id())
        .await;
    shop.wait_for(&order, "b1 sent", |o| {
        o["fulfillments"][0]["status"] == "sent"
    })
    .await;
    assert_eq!(shop.get(&order).await["status"], "processing");
    shop.publish(dispatch::dispatched(&order, b2), order.id())
        .await;
    shop.wait_for_status(&order, "dispatched").await;
    for business in [b1, b2] {
        shop.publish(dispatch::confirmed(&order, business), order.id())
            .await;
    }
    shop.wait_for_status(&order, "confirmed").await;
    for business in [b1, b2] {
        shop.publish(dispatch::shipped(&order, business), order.id())
            .await;
    }
    let shipped = shop.wait_for_status(&order, "shipped").await;
    assert_eq!(shipped["fulfillments"][1]["tracking"]["carrier"], "UPS");
    assert_eq!(
        shipped["fulfillments"][1]["tracking"]["tracking_number"],
        format!("1Z{}", b2.simple())
    );
    for business in [b1, b2] {
        shop.publish(dispatch::delivered(&order, business), order.id())
            .await;
    }
    let delivered = shop.wait_for_status(&order, "delivered").await;
    assert_eq!(
        history(&delivered),
        [
            "pending",
            "payment_processing",
            "processing",
            "dispatched",
            "confirmed",
            "shipped",
            "delivered"
        ]
    );
    assert_eq!(delivered["refunds"], serde_json::json!([]));
    assert_eq!(delivered["cancellation_reason"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_paid_entirely_with_points_skips_payment() {
    let shop = support::start().await;
    let business = Uuid::new_v4();
    let order = Submission::priced(&[(business, 500, 100, 2)], 1000);
    assert_eq!(order.0.total_minor, 0);
    assert!(order.0.payment.is_none());

    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(&order, "pending").await;
    shop.publish(order.stock_reserved(), order.id()).await;
    let processing = shop.wait_for_status(&order, "processing").await;
    assert_eq!(processing["payment"], serde_json::Value::Null);
    assert_eq!(history(&processing), ["pending", "processing"]);
    let commands = shop.commands_after(&order, 4).await;
    assert_eq!(
        kinds(&commands),
        [
            "order_created",
            "points_spend_requested",
            "order_ready_for_dispatch"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_rejected_voids_the_authorization_releases_the_points_and_cancels() {
    let shop = support::start().await;
    let (order, _, _) = two_business_order();
    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(&order, "pending").await;
    shop.publish(order.stock_rejected(), order.id()).await;
    let cancelled = shop.wait_for_status(&order, "cancelled").await;
    assert_eq!(cancelled["cancellation_reason"], "out_of_stock");
    assert_eq!(history(&cancelled), ["pending", "cancelled"]);
    assert_eq!(cancelled["fulfillments"][0]["status"], "cancelled");

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
    for command in &commands {
        match command {
            OrderEvent::PaymentVoidRequested(void) => {
                assert_eq!(void.authorization_id, order.authorization());
                assert_eq!(void.amount_minor, order.0.total_minor);
            }
            OrderEvent::PointsReleaseRequested(release) => {
                assert_eq!(Some(release.reservation_id), order.0.reservation_id);
                assert_eq!(release.points, 300);
            }
            OrderEvent::OrderCancelled(cancelled) => {
                assert_eq!(cancelled.reason, CancellationReason::OutOfStock)
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_capture_releases_the_stock_and_the_points_and_cancels() {
    let shop = support::start().await;
    let (order, _, _) = two_business_order();
    // Catalog answers `order_created`, so its answer follows the order's creation.
    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(&order, "pending").await;
    shop.publish(order.stock_reserved(), order.id()).await;
    shop.wait_for_status(&order, "payment_processing").await;
    shop.publish(order.capture_failed(), order.id()).await;
    let cancelled = shop.wait_for_status(&order, "cancelled").await;
    assert_eq!(cancelled["cancellation_reason"], "payment_failed");
    assert_eq!(
        history(&cancelled),
        ["pending", "payment_processing", "cancelled"]
    );

    let commands = shop.commands_after(&order, 7).await;
    assert_eq!(
        kinds(&commands),
        [
            "order_created",
            "payment_capture_requested",
            "stock_release_requested",
            "points_release_requested",
            "order_cancelled"
        ]
    );
    let released = commands.iter().find_map(|c| match c {
        OrderEvent::StockReleaseRequested(r) => Some(r.lines.clone()),
        _ => None,
    });
    assert_eq!(released, Some(order.stock_lines()));
}

/// Three businesses and a points budget that leaves each line's discount
/// with a remainder: the refund of a declined part is exactly that part's
/// line sums, and the parts' sums add up to the order's totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_part_refunds_exactly_its_line_sums_of_money_points_and_stock_once() {
    let shop = support::start().await;
    let (b1, b2, b3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let order = Submission::priced(
        &[
            (b1, 999, 333, 2),
            (b2, 1001, 700, 3),
            (b3, 250, 7, 1),
            (b2, 333, 200, 1),
        ],
        1000,
    );
    // The budget runs out inside b2's first line: its discount is floored.
    let sums: Vec<(i64, i64)> = [b1, b2, b3].iter().map(|&b| order.part_sums(b)).collect();
    assert_eq!(sums.iter().map(|s| s.0).sum::<i64>(), order.0.total_minor);
    assert_eq!(
        sums.iter().map(|s| s.1).sum::<i64>(),
        order.0.points_applied
    );
    assert_eq!(
        order.part_sums(b2),
        (2859, 334),
        "3003 − ⌊3003×334/2100⌋ + 333"
    );

    submit_and_pay(&shop, &order).await;
    shop.publish(dispatch::dispatched(&order, b1), order.id())
        .await;
    shop.publish(
        dispatch::declined(&order, b2, "out of stock at the shop"),
        order.id(),
    )
    .await;
    let declined = shop
        .wait_for(&order, "b2 declined", |o| {
            o["fulfillments"][1]["status"] == "declined"
        })
        .await;
    assert_eq!(declined["status"], "processing", "b3 is still queued");
    assert_eq!(
        declined["fulfillments"][1]["reason"],
        "out of stock at the shop"
    );
    let refunds = declined["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["business_id"], b2.to_string());
    assert_eq!(refunds[0]["amount_minor"], 2859);
    assert_eq!(refunds[0]["points"], 334);
    assert_eq!(refunds[0]["status"], "requested");

    let commands = shop.commands_after(&order, 9).await;
    let refund_id: Uuid = refunds[0]["refund_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("an id");
    let money: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::PaymentRefundRequested(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(money.len(), 1);
    assert_eq!(
        (
            money[0].refund_id,
            money[0].business_id,
            money[0].amount_minor,
            money[0].authorization_id
        ),
        (refund_id, Some(b2), 2859, order.authorization())
    );
    let points: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::PointsRefundRequested(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(points.len(), 1);
    assert_eq!(
        (points[0].refund_id, points[0].business_id, points[0].points),
        (refund_id, b2, 334)
    );
    let stock: Vec<_> = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::StockReleaseRequested(r) => Some(r.lines.clone()),
            _ => None,
        })
        .collect();
    let b2_lines: Vec<_> = order
        .0
        .lines
        .iter()
        .filter(|l| l.business_id == b2)
        .map(shared_events::StockLine::from)
        .collect();
    assert_eq!(stock, [b2_lines]);

    // The same decline again, as a new event: nothing more.
    shop.publish(
        dispatch::declined(&order, b2, "out of stock at the shop"),
        order.id(),
    )
    .await;
    // The provider refuses the refund: shown on the order, counted for an operator.
    shop.publish(
        PaymentEvent::PaymentRefundFailed(PaymentRefundFailed {
            order_id: order.id(),
            refund_id,
            amount_minor: 2859,
            currency: "USD".to_owned(),
            reason: "charge_disputed".to_owned(),
        }),
        order.id(),
    )
    .await;
    let failed = shop
        .wait_for(&order, "the refund failed", |o| {
            o["refunds"][0]["status"] == "failed"
        })
        .await;
    assert_eq!(failed["refunds"][0]["failure"], "charge_disputed");
    assert_eq!(failed["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        metric(&shop.metrics().await, "order_refund_failures_total"),
        Some(1.0)
    );
    assert_eq!(
        shop.commands(&order).await.len(),
        commands.len(),
        "no second refund"
    );

    // An operator's retry succeeds.
    shop.publish(
        PaymentEvent::PaymentRefunded(PaymentRefunded {
            order_id: order.id(),
            refund_id,
            amount_minor: 2859,
            currency: "USD".to_owned(),
            reason: "out of stock at the shop".to_owned(),
        }),
        order.id(),
    )
    .await;
    shop.wait_for(&order, "the refund succeeded", |o| {
        o["refunds"][0]["status"] == "refunded"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_part_declined_cancels_the_order_with_nothing_refunded_twice() {
    let shop = support::start().await;
    let (order, b1, b2) = two_business_order();
    submit_and_pay(&shop, &order).await;
    shop.publish(dispatch::dispatched(&order, b1), order.id())
        .await;
    shop.publish(dispatch::declined(&order, b1, "closed"), order.id())
        .await;
    shop.publish(dispatch::declined(&order, b2, "timeout"), order.id())
        .await;
    let cancelled = shop.wait_for_status(&order, "cancelled").await;
    assert_eq!(cancelled["cancellation_reason"], "declined_by_business");
    let refunds = cancelled["refunds"].as_array().expect("refunds");
    let given: Vec<(String, i64, i64)> = refunds
        .iter()
        .map(|r| {
            (
                r["business_id"].as_str().unwrap_or_default().to_owned(),
                r["amount_minor"].as_i64().unwrap_or_default(),
                r["points"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    let (a1, p1) = order.part_sums(b1);
    let (a2, p2) = order.part_sums(b2);
    assert_eq!(given, [(b1.to_string(), a1, p1), (b2.to_string(), a2, p2)]);
    assert_eq!(a1 + a2, order.0.total_minor);
    assert_eq!(p1 + p2, order.0.points_applied);

    let commands = shop.commands_after(&order, 13).await;
    let money: i64 = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::PaymentRefundRequested(r) => Some(r.amount_minor),
            _ => None,
        })
        .sum();
    let points: i64 = commands
        .iter()
        .filter_map(|c| match c {
            OrderEvent::PointsRefundRequested(r) => Some(r.points),
            _ => None,
        })
        .sum();
    assert_eq!(
        (money, points),
        (order.0.total_minor, order.0.points_applied)
    );
    assert!(!kinds(&commands).contains(&"payment_void_requested"));
    assert!(!kinds(&commands).contains(&"points_release_requested"));
    assert_eq!(
        kinds(&commands)
            .iter()
            .filter(|k| **k == "order_cancelled")
            .count(),
        1
    );
}

/// Every event of a whole journey sent again as new events, and then
/// replayed topic by topic in another interleaving that per-key ordering
/// allows: no second command, refund or change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_resent_and_replayed_in_another_order_changes_nothing() {
    let shop = support::start().await;
    let (order, b1, b2) = two_business_order();
    submit_and_pay(&shop, &order).await;
    let dispatch_events = vec![
        dispatch::dispatched(&order, b1),
        dispatch::dispatched(&order, b2),
        dispatch::confirmed(&order, b1),
        dispatch::declined(&order, b2, "closed"),
        dispatch::shipped(&order, b1),
    ];
    for event in dispatch_events.clone() {
        shop.publish(event, order.id()).await;
    }
    let before = shop.wait_for_status(&order, "shipped").await;
    let commands = shop.commands_after(&order, 10).await;

    // Re-sent, each as a new event, in the same order.
    shop.publish(order.submitted(), order.id()).await;
    shop.publish(order.stock_reserved(), order.id()).await;
    shop.publish(order.paid(), order.id()).await;
    for event in dispatch_events.clone() {
        shop.publish(event, order.id()).await;
    }
    // Replayed with the topics interleaved the other way round: dispatch
    // first, then payment, catalog and checkout, each topic in its order.
    for event in dispatch_events {
        shop.publish(event, order.id()).await;
    }
    shop.publish(order.paid(), order.id()).await;
    shop.publish(order.stock_reserved(), order.id()).await;
    shop.publish(order.submitted(), order.id()).await;
    // The last event is handled once its refusal is counted.
    test_harness::eventually(Duration::from_secs(20), "the replay is handled", || async {
        metric(
            &shop.metrics().await,
            "order_saga_refusals_total{event_type=\"order_submitted\"}",
        ) == Some(2.0)
    })
    .await;

    assert_eq!(shop.get(&order).await, before);
    assert_eq!(shop.commands(&order).await, commands);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_order_is_counted_and_its_pending_command_published_again() {
    let shop = support::start().await;
    let (order, _, _) = two_business_order();
    // Catalog answers `order_created`, so its answer follows the order's creation.
    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(&order, "pending").await;
    shop.publish(order.stock_reserved(), order.id()).await;
    shop.wait_for_status(&order, "payment_processing").await;
    let commands = shop.commands_after(&order, 3).await;

    // payment-gateway never answers: past the limit the capture goes out again.
    shop.clock
        .advance(order::settings::DEFAULT_STUCK_AFTER + Duration::from_secs(61));
    let again = shop.commands_after(&order, commands.len() + 1).await;
    let captures: Vec<_> = again
        .iter()
        .filter_map(|c| match c {
            OrderEvent::PaymentCaptureRequested(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(captures.len(), 2);
    assert_eq!(
        captures[0], captures[1],
        "the same authorization and amount"
    );
    assert_eq!(again.len(), commands.len() + 1, "only the pending command");
    let metrics = shop.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "order_stuck_orders{age=\"1x\",status=\"payment_processing\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "order_redriven_commands_total"), Some(1.0));
    assert_eq!(shop.get(&order).await["status"], "payment_processing");

    // Not again until another full wait has passed.
    shop.clock.advance(Duration::from_secs(61));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(shop.commands(&order).await.len(), commands.len() + 1);
}
