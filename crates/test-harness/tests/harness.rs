//! The harness as tests see it: isolated databases, one shared broker.

use std::net::TcpStream;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use test_harness::{broker, fresh_database, postgres_admin_url, unique};

/// Writes `marker` into a table of a fresh database, waits long enough for the
/// other test doing the same to overlap, and reads back only its own row.
async fn a_fresh_database_holds_only_what_this_test_wrote(marker: &str) {
    let db = fresh_database(&["cart", "orders"]).await;
    let mut cart = PgConnection::connect(db.url("cart"))
        .await
        .expect("connect as cart");
    cart.execute("CREATE TABLE marks (marker text NOT NULL)")
        .await
        .expect("create table");
    sqlx::query("INSERT INTO marks VALUES ($1)")
        .bind(marker)
        .execute(&mut cart)
        .await
        .expect("insert");

    tokio::time::sleep(Duration::from_millis(300)).await;

    let marks: Vec<String> = sqlx::query_scalar("SELECT marker FROM marks")
        .fetch_all(&mut cart)
        .await
        .expect("select");
    assert_eq!(marks, [marker]);
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut cart)
        .await
        .expect("current database");
    assert_eq!(database, db.name);
    cart.close().await.ok();

    let mut admin = PgConnection::connect(&db.admin_url)
        .await
        .expect("connect as admin");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables \
         WHERE table_schema IN ('cart', 'orders') ORDER BY 1",
    )
    .fetch_all(&mut admin)
    .await
    .expect("list tables");
    assert_eq!(tables, ["cart.marks"]);
    admin.close().await.ok();

    db.remove().await.expect("remove database");
}

#[tokio::test]
async fn first_parallel_test_sees_only_its_own_table() {
    a_fresh_database_holds_only_what_this_test_wrote("first").await;
}

#[tokio::test]
async fn second_parallel_test_sees_only_its_own_table() {
    a_fresh_database_holds_only_what_this_test_wrote("second").await;
}

#[tokio::test]
async fn the_databases_of_one_process_live_on_one_server() {
    let first = fresh_database(&["cart"]).await;
    let second = fresh_database(&["cart"]).await;
    assert_ne!(first.name, second.name);
    let mut server = PgConnection::connect(&postgres_admin_url().await)
        .await
        .expect("connect to the server");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname = $1 OR datname = $2")
            .bind(&first.name)
            .bind(&second.name)
            .fetch_all(&mut server)
            .await
            .expect("list databases");
    assert_eq!(
        names.len(),
        2,
        "both databases are on the admin URL's server"
    );
}

#[test]
fn the_shared_broker_is_reachable_at_its_bootstrap_servers() {
    let broker = broker();
    for address in broker.bootstrap_servers().split(',') {
        TcpStream::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    }
    if let Some(embedded) = broker.as_embedded() {
        embedded
            .create_topic(&unique("harness"), 2)
            .expect("create a topic");
    }
    assert!(
        std::ptr::eq(broker, test_harness::broker()),
        "one broker per process"
    );
}

#[test]
fn unique_names_do_not_repeat() {
    assert_ne!(unique("group"), unique("group"));
    assert!(unique("group").starts_with("group-"));
}
