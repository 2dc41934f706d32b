//! The order service withdrawing an order's parts when its customer
//! cancels: all or none, once, refused after a confirmation, and effective
//! even before the parts arrive.

mod support;

use std::time::Duration;

use http_service::auth::Role;
use serde_json::json;
use shared_events::dispatch::DispatchEvent;
use support::{ready, types};
use uuid::Uuid;

#[tokio::test]
async fn withdraw_takes_back_every_waiting_part_once() {
    let d = support::start().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[a, b])).await;
    d.wait_for_queue(a, 1).await;
    d.wait_for_queue(b, 1).await;

    let answer = d.withdraw(order).await.expect_status(200).body;
    assert_eq!(answer, json!({"order_id": order, "status": "withdrawn"}));
    let events = d.events_of(order, 4).await;
    let withdrawn: Vec<Uuid> = events
        .iter()
        .filter_map(|event| match event {
            DispatchEvent::OrderWithdrawn(e) => Some(e.business_id),
            _ => None,
        })
        .collect();
    assert_eq!(withdrawn.len(), 2);
    assert!(withdrawn.contains(&a) && withdrawn.contains(&b));

    // Again: the same answer, nothing new.
    let again = d.withdraw(order).await.expect_status(200).body;
    assert_eq!(again, answer);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(d.events_now(order).await.len(), 4);
    assert_eq!(d.queue(a, "").await[0]["status"], "cancelled");
    assert_eq!(d.queue(b, "").await[0]["status"], "cancelled");
}

#[tokio::test]
async fn a_withdraw_before_the_parts_arrive_means_they_never_reach_the_business() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.withdraw(order).await.expect_status(200);
    d.publish_ready(&ready(order, &[business])).await;

    // Wait until the dispatcher has handled the late parts.
    let admin = sqlx::PgPool::connect(&d.db.admin_url)
        .await
        .expect("the admin connects");
    test_harness::eventually(Duration::from_secs(20), "the parts arrived", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT arrived_at IS NOT NULL FROM dispatcher.orders WHERE order_id = $1",
        )
        .bind(order)
        .fetch_optional(&admin)
        .await
        .expect("the query runs")
        .unwrap_or(false)
    })
    .await;
    assert!(d.queue(business, "").await.is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(d.events_now(order).await.is_empty());
    // Withdrawing once more still answers the same.
    d.withdraw(order).await.expect_status(200);
}

#[tokio::test]
async fn withdraw_is_refused_once_any_part_is_confirmed_and_then_changes_nothing() {
    let d = support::start().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[a, b])).await;
    d.wait_for_queue(a, 1).await;
    d.wait_for_queue(b, 1).await;
    d.answer(a, order, "confirm", &json!({}))
        .await
        .expect_status(200);

    d.withdraw(order)
        .await
        .expect_problem(409, "not_cancellable");
    // All or none: the other part is still with its business.
    assert_eq!(d.queue(b, "").await[0]["status"], "sent");
    d.answer(b, order, "confirm", &json!({}))
        .await
        .expect_status(200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let events = d.events_of(order, 4).await;
    assert!(!types(&events).contains(&"order_withdrawn"), "{events:?}");
}

#[tokio::test]
async fn a_declined_part_stays_declined_when_the_rest_is_withdrawn() {
    let d = support::start().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[a, b])).await;
    d.wait_for_queue(a, 1).await;
    d.wait_for_queue(b, 1).await;
    d.answer(a, order, "decline", &json!({"reason": "sold out"}))
        .await
        .expect_status(200);

    d.withdraw(order).await.expect_status(200);
    assert_eq!(d.queue(a, "").await[0]["status"], "declined");
    assert_eq!(d.queue(b, "").await[0]["status"], "cancelled");
}

#[tokio::test]
async fn only_the_order_service_or_an_admin_withdraws() {
    let d = support::start().await;
    let order = Uuid::new_v4();
    for role in [Role::Business, Role::Civilian] {
        d.api
            .post(&format!("/v1/dispatch/orders/{order}/withdraw"))
            .as_user(Uuid::new_v4(), role)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    d.api
        .post(&format!("/v1/dispatch/orders/{order}/withdraw"))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    d.api
        .post(&format!("/v1/dispatch/orders/{order}/withdraw"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200);
}
