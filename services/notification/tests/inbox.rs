//! The inbox as its users see it: only their own notifications, newest
//! first and paged; marking one read; and every bad request.

mod support;

use http_service::auth::Role;
use support::Journey;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

#[tokio::test]
async fn another_users_notifications_are_invisible_and_cannot_be_marked_read() {
    let notifier = support::start_writing_files().await;
    let journey = Journey::new();
    notifier.publish(&journey.in_realistic_order()).await;
    let inbox = notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    let theirs = inbox[0]["id"].as_str().expect("an id").to_owned();

    let stranger = Uuid::new_v4();
    assert!(notifier.inbox(stranger).await.is_empty());
    notifier
        .api
        .post(&format!("/v1/notifications/{theirs}/read"))
        .as_user(stranger, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");

    // Still unread for its owner.
    let again = notifier.inbox(journey.customer_id).await;
    assert!(again.iter().all(|item| item["read_at"].is_null()));
}

#[tokio::test]
async fn marking_a_notification_read_keeps_the_first_read_at() {
    let notifier = support::start_writing_files().await;
    let journey = Journey::new();
    notifier.publish(&journey.cancelled_order_facts()).await;
    let inbox = notifier.inbox_of_size(journey.customer_id, 2).await;
    let id = inbox[1]["id"].as_str().expect("an id").to_owned();

    let read = notifier
        .api
        .post(&format!("/v1/notifications/{id}/read"))
        .as_user(journey.customer_id, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(read["id"], id.as_str());
    assert_eq!(read["kind"], "placed");
    assert_eq!(read["order_id"], journey.cancelled_order_id.to_string());
    let read_at = read["read_at"].as_str().expect("read_at is set").to_owned();

    let twice = notifier
        .api
        .post(&format!("/v1/notifications/{id}/read"))
        .as_user(journey.customer_id, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(twice["read_at"], read_at.as_str());

    let inbox = notifier.inbox(journey.customer_id).await;
    assert_eq!(inbox[1]["read_at"], read_at.as_str());
    assert!(inbox[0]["read_at"].is_null(), "only the one marked is read");
}

#[tokio::test]
async fn the_inbox_pages_newest_first_without_gaps_or_repeats() {
    let notifier = support::start_writing_files().await;
    let journey = Journey::new();
    notifier.publish(&journey.in_realistic_order()).await;
    // `inbox` reads four at a time, so ten notifications are three pages.
    let inbox = notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    let mut ids: Vec<&str> = inbox
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect();
    // Newest first: the events of one order are handled in the order they
    // were published (one partition), so its cancellation tops its placing.
    let position = |kind: &str| {
        inbox
            .iter()
            .position(|item| {
                item["order_id"] == journey.cancelled_order_id.to_string() && item["kind"] == kind
            })
            .unwrap_or_else(|| panic!("no {kind} notification"))
    };
    assert!(position("cancelled") < position("placed"), "{inbox:#?}");
    for item in &inbox {
        let at = item["created_at"].as_str().expect("created_at");
        OffsetDateTime::parse(at, &Rfc3339).expect("created_at is RFC 3339");
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), Journey::notification_count());

    let first_page = notifier
        .api
        .get("/v1/notifications?limit=200")
        .as_user(journey.customer_id, Role::Officer)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        first_page["items"].as_array().map(Vec::len),
        Some(Journey::notification_count())
    );
    assert!(first_page["next_cursor"].is_null());
}

#[tokio::test]
async fn bad_requests_get_problems_not_errors() {
    let notifier = support::start_writing_files().await;
    let user = Uuid::new_v4();

    notifier
        .api
        .get("/v1/notifications")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    notifier
        .api
        .get("/v1/notifications")
        .bearer("not-a-token")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    notifier
        .api
        .post(&format!("/v1/notifications/{}/read", Uuid::new_v4()))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    for query in ["limit=0", "limit=201", "limit=ten", "cursor=not-a-cursor"] {
        notifier
            .api
            .get(&format!("/v1/notifications?{query}"))
            .as_user(user, Role::Civilian)
            .send()
            .await
            .expect_problem(422, "invalid_pagination");
    }
    notifier
        .api
        .post(&format!("/v1/notifications/{}/read", Uuid::new_v4()))
        .as_user(user, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
    notifier
        .api
        .post("/v1/notifications/not-a-uuid/read")
        .as_user(user, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
}
