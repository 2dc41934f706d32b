//! The portal plugin as businesses use it: each business sees only its own
//! parts, answers through the API, and every answer becomes an event; the
//! fulfillment machine refuses what is out of order.

mod support;

use std::time::Duration;

use http_service::auth::Role;
use serde_json::json;
use shared_events::dispatch::{DispatchEvent, OrderShipped};
use support::{business_token, ready, types};
use uuid::Uuid;

#[tokio::test]
async fn each_business_sees_only_its_own_part_once_however_often_the_order_arrives() {
    let d = support::start().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    let paid = ready(order, &[a, b]);
    d.publish_ready(&paid).await;
    // The same order again, as a re-drive sends it: a new event_id.
    d.publish_ready(&paid).await;

    let queue_a = d.wait_for_queue(a, 1).await;
    let queue_b = d.wait_for_queue(b, 1).await;
    let events = d.events_of(order, 2).await;
    // Give a second copy time to show up if one were made.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(d.queue(a, "").await.len(), 1);
    assert_eq!(d.events_now(order).await, events);
    assert_eq!(types(&events), ["order_dispatched", "order_dispatched"]);

    let part = &queue_a[0];
    assert_eq!(part["order_id"], json!(order));
    assert_eq!(part["business_id"], json!(a));
    assert_eq!(part["status"], "sent");
    assert_eq!(part["lines"][0]["title"], "Coffee beans");
    assert_eq!(part["lines"][0]["business_id"], json!(a));
    assert_eq!(part["shipping_address"]["city"], "Springfield");
    assert!(part["created_at"].is_string());
    assert_eq!(queue_b[0]["business_id"], json!(b));
    let dispatch_ids: Vec<_> = events
        .iter()
        .map(|event| match event {
            DispatchEvent::OrderDispatched(e) => (e.business_id, json!(e.dispatch_id)),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert!(dispatch_ids.contains(&(a, part["dispatch_id"].clone())));
    assert!(dispatch_ids.contains(&(b, queue_b[0]["dispatch_id"].clone())));
}

#[tokio::test]
async fn a_business_confirms_ships_and_delivers_its_part_and_each_step_is_published() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;

    let confirmed = d
        .answer(business, order, "confirm", &json!({"reference": "SO-1001"}))
        .await
        .expect_status(200)
        .body;
    assert_eq!(confirmed["status"], "confirmed");
    assert_eq!(confirmed["reference"], "SO-1001");
    let shipped = d
        .answer(
            business,
            order,
            "shipments",
            &json!({"carrier": "UPS", "tracking_number": "1Z999"}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(shipped["status"], "shipped");
    assert_eq!(
        shipped["tracking"],
        json!({"carrier": "UPS", "tracking_number": "1Z999"})
    );
    d.answer(business, order, "delivered", &json!({}))
        .await
        .expect_status(200);

    let events = d.events_of(order, 4).await;
    assert_eq!(
        types(&events),
        [
            "order_dispatched",
            "order_confirmed",
            "order_shipped",
            "order_delivered"
        ]
    );
    let dispatch_id = confirmed["dispatch_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a dispatch id");
    assert_eq!(
        events[2],
        DispatchEvent::OrderShipped(OrderShipped {
            order_id: order,
            business_id: business,
            dispatch_id,
            carrier: "UPS".to_owned(),
            tracking_number: "1Z999".to_owned(),
        })
    );
    match &events[1] {
        DispatchEvent::OrderConfirmed(e) => assert_eq!(e.reference.as_deref(), Some("SO-1001")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(d.queue(business, "?status=delivered").await.len(), 1);
    assert!(d.queue(business, "?status=sent").await.is_empty());
}

#[tokio::test]
async fn a_business_declines_its_part_with_a_reason() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;

    let declined = d
        .answer(
            business,
            order,
            "decline",
            &json!({"reason": "out of stock"}),
        )
        .await
        .expect_status(200)
        .body;
    assert_eq!(declined["status"], "declined");
    assert_eq!(declined["reason"], "out of stock");
    let events = d.events_of(order, 2).await;
    match &events[1] {
        DispatchEvent::OrderDeclined(e) => assert_eq!(e.reason, "out of stock"),
        other => panic!("unexpected {other:?}"),
    }
    // Declined is final.
    d.answer(business, order, "confirm", &json!({}))
        .await
        .expect_problem(409, "invalid_transition");
}

#[tokio::test]
async fn another_business_cannot_see_or_touch_a_part_that_is_not_its_own() {
    let d = support::start().await;
    let (owner, other) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[owner])).await;
    d.wait_for_queue(owner, 1).await;

    // Its part of the order does not exist for another business.
    d.answer(other, order, "confirm", &json!({}))
        .await
        .expect_problem(404, "not_found");
    d.answer(other, order, "decline", &json!({"reason": "no"}))
        .await
        .expect_problem(404, "not_found");
    assert!(d.queue(other, "").await.is_empty());
    // Reading or acting for another business is forbidden.
    d.api
        .get(&format!("/v1/dispatch/businesses/{owner}/orders"))
        .bearer(&business_token(other))
        .send()
        .await
        .expect_problem(403, "forbidden");
    d.api
        .post(&format!(
            "/v1/dispatch/orders/{order}/confirm?business_id={owner}"
        ))
        .bearer(&business_token(other))
        .json(&json!({}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    d.api
        .get(&format!("/v1/dispatch/businesses/{owner}/orders"))
        .as_user(Uuid::new_v4(), Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    d.api
        .get(&format!("/v1/dispatch/businesses/{owner}/orders"))
        .send()
        .await
        .expect_problem(401, "unauthorized");

    // Nothing changed: the owner's part is still waiting for it.
    assert_eq!(d.queue(owner, "").await[0]["status"], "sent");
    // An admin sees any queue and acts for the business it names.
    let listed = d
        .api
        .get(&format!("/v1/dispatch/businesses/{owner}/orders"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    d.api
        .post(&format!("/v1/dispatch/orders/{order}/confirm"))
        .as_user(Uuid::new_v4(), Role::Admin)
        .json(&json!({}))
        .send()
        .await
        .expect_problem(422, "business_id_required");
    d.api
        .post(&format!(
            "/v1/dispatch/orders/{order}/confirm?business_id={owner}"
        ))
        .as_user(Uuid::new_v4(), Role::Admin)
        .json(&json!({}))
        .send()
        .await
        .expect_status(200);
}

#[tokio::test]
async fn actions_out_of_order_are_refused_and_change_nothing() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;

    d.answer(
        business,
        order,
        "shipments",
        &json!({"carrier": "UPS", "tracking_number": "1Z"}),
    )
    .await
    .expect_problem(409, "invalid_transition");
    d.answer(business, order, "delivered", &json!({}))
        .await
        .expect_problem(409, "invalid_transition");
    d.answer(business, order, "confirm", &json!({}))
        .await
        .expect_status(200);
    d.answer(business, order, "confirm", &json!({}))
        .await
        .expect_problem(409, "invalid_transition");
    d.answer(
        business,
        order,
        "decline",
        &json!({"reason": "changed our mind"}),
    )
    .await
    .expect_problem(409, "invalid_transition");

    assert_eq!(d.queue(business, "").await[0]["status"], "confirmed");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        types(&d.events_of(order, 2).await),
        ["order_dispatched", "order_confirmed"]
    );
}

#[tokio::test]
async fn actions_on_a_withdrawn_part_are_409_order_cancelled() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;
    d.withdraw(order).await.expect_status(200);

    for (action, body) in [
        ("confirm", json!({})),
        ("decline", json!({"reason": "too late"})),
        (
            "shipments",
            json!({"carrier": "UPS", "tracking_number": "1Z"}),
        ),
        ("delivered", json!({})),
    ] {
        d.answer(business, order, action, &body)
            .await
            .expect_problem(409, "order_cancelled");
    }
    assert_eq!(d.queue(business, "").await[0]["status"], "cancelled");
}

#[tokio::test]
async fn bad_bodies_and_filters_are_refused_with_their_codes() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;

    d.answer(business, order, "decline", &json!({"reason": "   "}))
        .await
        .expect_problem(422, "invalid_body");
    d.answer(business, order, "decline", &json!({}))
        .await
        .expect_problem(422, "invalid_body");
    d.answer(business, order, "shipments", &json!({"carrier": "UPS"}))
        .await
        .expect_problem(422, "invalid_body");
    d.answer(
        business,
        order,
        "confirm",
        &json!({"reference": "x".repeat(201)}),
    )
    .await
    .expect_problem(422, "invalid_body");
    d.api
        .post(&format!("/v1/dispatch/orders/{order}/confirm"))
        .bearer(&business_token(business))
        .raw_json("{not json")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    d.api
        .get(&format!(
            "/v1/dispatch/businesses/{business}/orders?status=lost"
        ))
        .bearer(&business_token(business))
        .send()
        .await
        .expect_problem(422, "invalid_status");
    d.api
        .get(&format!(
            "/v1/dispatch/businesses/{business}/orders?limit=0"
        ))
        .bearer(&business_token(business))
        .send()
        .await
        .expect_problem(422, "invalid_pagination");

    // None of it touched the part.
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");
}

#[tokio::test]
async fn a_queue_pages_newest_first() {
    let d = support::start().await;
    let business = Uuid::new_v4();
    let orders: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for order in &orders {
        d.publish_ready(&ready(*order, &[business])).await;
        d.wait_for_queue(
            business,
            orders.iter().position(|o| o == order).unwrap_or(0) + 1,
        )
        .await;
    }
    let first = d
        .api
        .get(&format!(
            "/v1/dispatch/businesses/{business}/orders?limit=2"
        ))
        .bearer(&business_token(business))
        .send()
        .await
        .expect_status(200)
        .body;
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = d
        .api
        .get(&format!(
            "/v1/dispatch/businesses/{business}/orders?limit=2&cursor={cursor}"
        ))
        .bearer(&business_token(business))
        .send()
        .await
        .expect_status(200)
        .body;
    let listed: Vec<_> = first["items"]
        .as_array()
        .into_iter()
        .chain(second["items"].as_array())
        .flatten()
        .map(|part| part["order_id"].clone())
        .collect();
    let newest_first: Vec<_> = orders.iter().rev().map(|o| json!(o)).collect();
    assert_eq!(listed, newest_first);
    assert!(second["next_cursor"].is_null());
}
