//! The email job's payload: a job carries what it sends, and one that names
//! only its notification reads it from there.

mod support;

use notification::domain::{Customer, Kind, Notice};
use notification::inbox::{tell, Told, EMAIL_JOB};
use notification::store;
use uuid::Uuid;

#[tokio::test]
async fn a_job_that_names_only_its_notification_sends_what_the_notification_was_queued_with() {
    let notifier = support::start_writing_files().await;
    let pool = notifier.pool().await;
    let order_id = Uuid::new_v4();
    let customer = Customer {
        order_id,
        customer_id: Uuid::new_v4(),
        email: None,
    };
    let notice = Notice {
        order_id,
        kind: Kind::Placed,
        fact_key: String::new(),
        title: "Order placed".to_owned(),
        body: "We have your order.".to_owned(),
    };

    // Told before the address is known, then queued for email by id alone.
    let mut tx = pool.begin().await.expect("begin");
    let told = tell(&mut tx, order_id, Some(&customer), Some(&notice))
        .await
        .expect("tell the order");
    assert_eq!(told, Told::Told);
    let unsent = store::claim_unsent_emails(&mut tx, order_id, "ada@example.test")
        .await
        .expect("queue the email");
    let [(notification_id, _)] = unsent.as_slice() else {
        panic!("one notification to email: {unsent:?}");
    };
    let payload = serde_json::json!({ "notification_id": notification_id });
    job_queue::enqueue(
        &mut tx,
        job_queue::NewJob::new(EMAIL_JOB, &payload)
            .expect("a payload")
            .dedupe_key(notification_id.to_string()),
    )
    .await
    .expect("enqueue the email");
    tx.commit().await.expect("commit");

    test_harness::eventually(support::PATIENCE, "the email's .eml file", || async {
        !notifier.eml_files().is_empty()
    })
    .await;
    let files = notifier.eml_files();
    let [(path, text)] = files.as_slice() else {
        panic!("one email: {files:?}");
    };
    assert!(text.contains("To: ada@example.test"), "{}", path.display());
    assert!(text.contains("Subject: Order placed"), "{text}");
    assert!(
        text.contains(&format!("{notification_id}@notification.heyblue")),
        "{text}"
    );
    // The sent email is recorded, and its job ended, in one commit.
    test_harness::eventually(support::PATIENCE, "the email recorded as sent", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT emailed_at IS NOT NULL FROM notifications WHERE id = $1",
        )
        .bind(notification_id)
        .fetch_one(&pool)
        .await
        .expect("read the notification")
    })
    .await;
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM job_queue")
        .fetch_one(&pool)
        .await
        .expect("count jobs");
    assert_eq!(
        jobs, 0,
        "the email's job left the queue as it was recorded sent"
    );
}
