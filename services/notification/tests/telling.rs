//! The order's row as its lock: events about one order arrive on three
//! topics, consumed at once, and a fact must never be parked by one of them
//! just as another learns whom the order belongs to.

mod support;

use std::time::Duration;

use notification::domain::{Customer, Kind, Notice};
use notification::inbox::{tell, Told};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

fn notice(order_id: Uuid, kind: Kind) -> Notice {
    Notice {
        order_id,
        kind,
        fact_key: String::new(),
        title: format!("{} title", kind.as_str()),
        body: format!("{} body", kind.as_str()),
    }
}

/// A notifier writing its emails as files, and a pool connected as it.
async fn notifier_and_pool() -> (support::Notifier, PgPool) {
    let notifier = support::start_writing_files().await;
    let pool = PgPool::connect(notifier.db.url("notification"))
        .await
        .expect("connect as notification");
    (notifier, pool)
}

fn customer_of(order_id: Uuid) -> Customer {
    Customer {
        order_id,
        customer_id: Uuid::new_v4(),
        email: Some("ada@example.test".to_owned()),
    }
}

/// Tells `kind` about the order in a transaction of its own, in the
/// background, committing once told; the task's answer is how it was told.
fn tell_in_its_own_transaction(
    pool: &PgPool,
    order_id: Uuid,
    customer: Option<Customer>,
    kind: Kind,
) -> tokio::task::JoinHandle<Told> {
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut tx = pool.begin().await.expect("begin");
        let told = tell(
            &mut tx,
            order_id,
            customer.as_ref(),
            Some(&notice(order_id, kind)),
        )
        .await
        .expect("tell");
        tx.commit().await.expect("commit");
        told
    })
}

/// Tells that the order was paid before anything named its customer:
/// the fact is parked.
async fn park_the_payment(conn: &mut PgConnection, order_id: Uuid) {
    let told = tell(conn, order_id, None, Some(&notice(order_id, Kind::Paid)))
        .await
        .expect("tell the payment");
    assert_eq!(told, Told::Parked);
}

/// How many of the order's facts are parked.
async fn parked(pool: &PgPool, order_id: Uuid) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM parked_notifications WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(pool)
        .await
        .expect("count parked")
}

#[tokio::test]
async fn a_fact_told_while_another_event_learns_the_customer_waits_for_it_and_is_not_parked() {
    let (_notifier, pool) = notifier_and_pool().await;
    let order_id = Uuid::new_v4();
    let customer = customer_of(order_id);

    // The payment is told before the order's own event: it waits.
    let mut early = pool.begin().await.expect("begin");
    park_the_payment(&mut early, order_id).await;
    early.commit().await.expect("commit");

    // The order's event names the customer, and has not committed yet...
    let mut learning = pool.begin().await.expect("begin");
    let told = tell(
        &mut learning,
        order_id,
        Some(&customer),
        Some(&notice(order_id, Kind::Placed)),
    )
    .await
    .expect("tell the order");
    assert_eq!(told, Told::Told);

    // ...when a dispatch event about the same order comes in.
    let dispatch = tell_in_its_own_transaction(&pool, order_id, None, Kind::Dispatched);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !dispatch.is_finished(),
        "the dispatch waits for the order's row"
    );
    learning.commit().await.expect("commit");
    let told = dispatch.await.expect("the dispatch's task");
    assert_eq!(
        told,
        Told::Told,
        "the dispatch sees the customer the order's event taught"
    );

    assert_eq!(parked(&pool, order_id).await, 0, "nothing stays parked");
    let told: Vec<(String, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT kind, user_id, email_to FROM notifications WHERE order_id = $1 ORDER BY seq",
    )
    .bind(order_id)
    .fetch_all(&pool)
    .await
    .expect("read the inbox");
    let email = customer.email.clone();
    assert_eq!(
        told,
        vec![
            ("placed".to_owned(), customer.customer_id, email.clone()),
            ("paid".to_owned(), customer.customer_id, email.clone()),
            ("dispatched".to_owned(), customer.customer_id, email),
        ],
        "each fact in the customer's inbox once, each to be emailed"
    );
    // Every job enqueued with a dedupe key leaves it, whether it has run
    // (and left the queue) or not.
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_queue_keys WHERE kind = 'email_notification'")
            .fetch_one(&pool)
            .await
            .expect("count email jobs");
    assert_eq!(jobs, 3, "one email job per notification");
}

#[tokio::test]
async fn the_customer_learnt_while_another_event_makes_the_orders_row_moves_what_it_parked() {
    let (_notifier, pool) = notifier_and_pool().await;
    let order_id = Uuid::new_v4();
    let customer = customer_of(order_id);

    // The payment is the order's first event: it makes the order's row and
    // parks the fact, and has not committed yet...
    let mut parking = pool.begin().await.expect("begin");
    park_the_payment(&mut parking, order_id).await;

    // ...when the order's event, naming the customer, comes in.
    let learning =
        tell_in_its_own_transaction(&pool, order_id, Some(customer.clone()), Kind::Placed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !learning.is_finished(),
        "the order's event waits for the row being made"
    );
    parking.commit().await.expect("commit");
    assert_eq!(learning.await.expect("the order's task"), Told::Told);

    assert_eq!(
        parked(&pool, order_id).await,
        0,
        "the parked fact was moved"
    );
    let told: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT kind, email_to FROM notifications WHERE order_id = $1 ORDER BY seq")
            .bind(order_id)
            .fetch_all(&pool)
            .await
            .expect("read the inbox");
    assert_eq!(
        told,
        vec![
            ("placed".to_owned(), customer.email.clone()),
            ("paid".to_owned(), customer.email.clone()),
        ],
        "both facts told, each to be emailed"
    );
}
