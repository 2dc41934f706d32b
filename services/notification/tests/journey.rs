//! A whole order journey's events become exactly one notification per step
//! a customer is told about (DESIGN §4 step 9), in the inbox and by email,
//! whatever order the topics arrive in and however often events are re-sent.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{Fact, Journey, Notifier, CARRIER, TRACKING};

/// `kind → how many`, per order, of the customer's inbox.
fn kinds_of(inbox: &[Value], order_id: uuid::Uuid) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for item in inbox
        .iter()
        .filter(|item| item["order_id"] == order_id.to_string())
    {
        *kinds
            .entry(item["kind"].as_str().unwrap_or_default().to_owned())
            .or_insert(0) += 1;
    }
    kinds
}

fn once_each(kinds: &[&str]) -> BTreeMap<String, usize> {
    kinds.iter().map(|kind| ((*kind).to_owned(), 1)).collect()
}

/// The inbox holds one notification per step, the shipped one with carrier
/// and tracking, and every one of them is unread.
fn assert_the_journey_is_told_once(journey: &Journey, inbox: &[Value]) {
    assert_eq!(inbox.len(), Journey::notification_count(), "{inbox:#?}");
    assert_eq!(
        kinds_of(inbox, journey.order_id),
        once_each(&Journey::ORDER_KINDS)
    );
    assert_eq!(
        kinds_of(inbox, journey.cancelled_order_id),
        once_each(&Journey::CANCELLED_ORDER_KINDS)
    );
    let shipped = inbox
        .iter()
        .find(|item| item["kind"] == "shipped")
        .expect("a shipped notification");
    assert_eq!(shipped["title"], "Order shipped");
    let body = shipped["body"].as_str().unwrap_or_default();
    assert!(body.contains(CARRIER) && body.contains(TRACKING), "{body}");
    let cancelled = inbox
        .iter()
        .find(|item| item["kind"] == "cancelled")
        .expect("a cancelled notification");
    assert!(
        cancelled["body"]
            .as_str()
            .is_some_and(|body| body.contains("out of stock")),
        "{cancelled}"
    );
    for item in inbox {
        assert!(item["read_at"].is_null(), "{item}");
        assert!(item["created_at"].is_string(), "{item}");
        assert!(item["id"].is_string(), "{item}");
    }
}

/// Each notification reached the customer's mailbox once, its title as the
/// subject and its words in the body.
fn assert_each_notification_was_emailed_once(
    notifier: &Notifier,
    journey: &Journey,
    inbox: &[Value],
) {
    let smtp = notifier.smtp.as_ref().expect("an SMTP server");
    let mail = smtp.messages_to(&journey.email);
    assert_eq!(mail.len(), inbox.len(), "{mail:#?}");
    let mut subjects: Vec<String> = mail.iter().filter_map(|m| m.subject()).collect();
    let mut titles: Vec<String> = inbox
        .iter()
        .map(|item| item["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    subjects.sort();
    titles.sort();
    assert_eq!(subjects, titles);
    let shipped = mail
        .iter()
        .find(|m| m.subject().as_deref() == Some("Order shipped"))
        .expect("the shipped email");
    let text = shipped.text().expect("a text part");
    assert!(
        text.contains(&format!("with {CARRIER}. Tracking number: {TRACKING}")),
        "{}",
        shipped.data
    );
    let inbox_body = inbox
        .iter()
        .find(|item| item["kind"] == "shipped")
        .and_then(|item| item["body"].as_str())
        .unwrap_or_default();
    assert_eq!(
        text.trim_end(),
        inbox_body,
        "the email says what the inbox says"
    );
    // Every notification has its own Message-ID, so none is a resend.
    let mut ids: Vec<String> = mail.iter().filter_map(|m| m.header("Message-ID")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), mail.len());
}

#[tokio::test]
async fn a_journey_in_the_order_it_happens_tells_each_step_once_in_the_inbox_and_by_email() {
    let notifier = support::start_with_smtp().await;
    let journey = Journey::new();

    notifier.publish(&journey.in_realistic_order()).await;

    let inbox = notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    assert_the_journey_is_told_once(&journey, &inbox);
    notifier
        .mail_of_size(&journey.email, Journey::notification_count())
        .await;
    assert_each_notification_was_emailed_once(&notifier, &journey, &inbox);
}

#[tokio::test]
async fn payment_and_dispatch_events_before_the_order_wait_for_it_and_are_then_told_once() {
    let notifier = support::start_with_smtp().await;
    let journey = Journey::new();
    let early: Vec<_> = journey
        .dispatch_facts()
        .into_iter()
        .chain(journey.payment_facts().into_iter().skip(1)) // the refund names no customer
        .collect();

    notifier.publish(&early).await;
    notifier.handled(Fact::acted_on_in(&early)).await;
    // Nobody is told yet, and nothing is lost: the facts wait for the order.
    assert!(notifier.inbox(journey.customer_id).await.is_empty());
    let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM parked_notifications")
        .fetch_one(&notifier.pool().await)
        .await
        .expect("count parked notifications");
    assert_eq!(parked, early.len() as i64);
    notifier
        .metric_reaches("notification_parked_notifications", early.len() as f64)
        .await;

    // The payment (which names the customer but not their address), then
    // the order's own events.
    let mut rest = vec![journey.payment_facts()[0].clone()];
    rest.extend(journey.order_facts());
    rest.extend(journey.cancelled_order_facts());
    notifier.publish(&rest).await;

    let inbox = notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    assert_the_journey_is_told_once(&journey, &inbox);
    notifier
        .mail_of_size(&journey.email, Journey::notification_count())
        .await;
    assert_each_notification_was_emailed_once(&notifier, &journey, &inbox);
    notifier
        .metric_reaches("notification_parked_notifications", 0.0)
        .await;
}

#[tokio::test]
async fn every_event_sent_again_as_a_new_event_tells_nothing_new() {
    let notifier = support::start_with_smtp().await;
    let journey = Journey::new();
    let facts = journey.in_realistic_order();
    notifier.publish(&facts).await;
    let first = notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    notifier
        .mail_of_size(&journey.email, Journey::notification_count())
        .await;

    // The same facts under new event ids, as a re-drive publishes them.
    notifier.publish(&facts).await;
    notifier.handled(2 * Fact::acted_on_in(&facts)).await;

    let again = notifier.inbox(journey.customer_id).await;
    assert_eq!(again, first);
    // A job enqueued by a duplicate would run within milliseconds of its
    // commit; give it ample time to show.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let smtp = notifier.smtp.as_ref().expect("an SMTP server");
    assert_eq!(
        smtp.messages_to(&journey.email).len(),
        Journey::notification_count()
    );
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE emailed_at IS NULL")
            .fetch_one(&notifier.pool().await)
            .await
            .expect("count notifications not emailed");
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn without_an_smtp_server_each_email_is_an_eml_file() {
    let notifier = support::start_writing_files().await;
    let journey = Journey::new();

    notifier.publish(&journey.in_realistic_order()).await;

    notifier
        .inbox_of_size(journey.customer_id, Journey::notification_count())
        .await;
    test_harness::eventually(
        support::PATIENCE,
        "one .eml file per notification",
        || async { notifier.eml_files().len() >= Journey::notification_count() },
    )
    .await;
    let files = notifier.eml_files();
    assert_eq!(files.len(), Journey::notification_count());
    for (path, text) in &files {
        assert!(
            text.contains(&format!("To: {}", journey.email)),
            "{}: {text}",
            path.display()
        );
    }
    let shipped = files
        .iter()
        .find(|(_, text)| text.contains("Subject: Order shipped"))
        .expect("the shipped email's file");
    let text = mail::testing::part(&shipped.1, "text/plain").expect("a text part");
    assert!(text.contains(TRACKING), "{}", shipped.1);
}

#[tokio::test]
async fn an_email_the_server_refuses_for_now_is_sent_on_a_later_try() {
    let notifier = support::start_with_smtp().await;
    let smtp = notifier.smtp.as_ref().expect("an SMTP server");
    smtp.refuse_next(2);
    let journey = Journey::new();

    notifier.publish(&journey.cancelled_order_facts()).await;

    let mail = notifier.mail_of_size(&journey.email, 2).await;
    assert_eq!(smtp.refused(), 2);
    let mut subjects: Vec<String> = mail.iter().filter_map(|m| m.subject()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Order cancelled", "Order placed"]);
    notifier
        .metric_reaches("notification_emails_total{outcome=\"failed\"}", 2.0)
        .await;
    notifier
        .metric_reaches("notification_emails_total{outcome=\"sent\"}", 2.0)
        .await;
}

#[tokio::test]
async fn an_order_paid_with_points_only_is_told_paid_and_emailed_to_the_address_checkout_gave() {
    let notifier = support::start_with_smtp().await;
    let journey = Journey::new();
    let order_id = uuid::Uuid::now_v7();

    notifier
        .publish(&journey.points_only_order_facts(order_id))
        .await;

    let inbox = notifier.inbox_of_size(journey.customer_id, 2).await;
    assert_eq!(kinds_of(&inbox, order_id), once_each(&["placed", "paid"]));
    let paid = inbox
        .iter()
        .find(|item| item["kind"] == "paid")
        .expect("a paid notification");
    assert_eq!(paid["title"], "Order paid with points");
    let mail = notifier.mail_of_size(&journey.email, 2).await;
    let mut subjects: Vec<String> = mail.iter().filter_map(|m| m.subject()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Order paid with points", "Order placed"]);
}
