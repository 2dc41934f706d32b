//! The confirmation deadline: a part its business has not confirmed in time
//! is declined as `timeout`, and the business's later answers are refused.

mod support;

use std::sync::Arc;
use std::time::Duration;

use dispatcher::Settings;
use job_queue::ManualClock;
use serde_json::json;
use shared_events::dispatch::DispatchEvent;
use support::{ready, types};
use uuid::Uuid;

#[tokio::test]
async fn a_part_not_confirmed_by_the_deadline_is_declined_as_timeout() {
    let clock = Arc::new(ManualClock::starting_now());
    let d = support::start_with(Settings::default(), Some(clock.clone())).await;
    let (late, prompt) = (Uuid::new_v4(), Uuid::new_v4());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[late, prompt])).await;
    d.wait_for_queue(late, 1).await;
    d.wait_for_queue(prompt, 1).await;
    d.answer(prompt, order, "confirm", &json!({}))
        .await
        .expect_status(200);

    // Just before the default 48 h nothing happens.
    clock.advance(Duration::from_secs(48 * 3600 - 60));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(d.queue(late, "").await[0]["status"], "sent");

    clock.advance(Duration::from_secs(61));
    let events = d.events_of(order, 4).await;
    assert_eq!(
        types(&events),
        [
            "order_dispatched",
            "order_dispatched",
            "order_confirmed",
            "order_declined"
        ]
    );
    let declined: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            DispatchEvent::OrderDeclined(e) => Some((e.business_id, e.reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(declined, [(late, "timeout".to_owned())]);
    let part = &d.queue(late, "").await[0];
    assert_eq!(part["status"], "declined");
    assert_eq!(part["reason"], "timeout");
    let metrics = d.api.metrics().await;
    assert!(
        metrics.contains("dispatch_confirmation_timeouts_total 1"),
        "{metrics}"
    );

    // Too late now, whatever the business says.
    d.answer(late, order, "confirm", &json!({}))
        .await
        .expect_problem(409, "invalid_transition");
    d.answer(late, order, "decline", &json!({"reason": "sorry"}))
        .await
        .expect_problem(409, "invalid_transition");
    // The confirmed part is not touched by the deadline.
    assert_eq!(d.queue(prompt, "").await[0]["status"], "confirmed");
}

#[tokio::test]
async fn the_deadline_is_a_setting() {
    let clock = Arc::new(ManualClock::starting_now());
    let settings = Settings {
        confirm_deadline: Duration::from_secs(3600),
        ..Settings::default()
    };
    let d = support::start_with(settings, Some(clock.clone())).await;
    let business = Uuid::new_v4();
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.wait_for_queue(business, 1).await;

    clock.advance(Duration::from_secs(3601));
    let events = d.events_of(order, 2).await;
    assert_eq!(types(&events), ["order_dispatched", "order_declined"]);
}
