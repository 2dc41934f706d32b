//! A service's pool cuts a stuck statement short: a query past the
//! statement timeout, or a wait for a lock past the lock timeout, fails
//! fast with an error instead of holding its connection, while a `LISTEN`
//! connection waits for notifications as long as it likes. And a
//! connection the server ended while it lay idle in the pool is replaced,
//! not handed out.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use std::time::{Duration, Instant};

use service_host::{connect_pool, HostConfig, PING_AFTER_IDLE};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use test_harness::TestDatabase;

fn config(url: &str, statement_timeout: Duration, lock_timeout: Duration) -> HostConfig {
    // The broker is never reached: only the pool is made.
    let mut config = HostConfig::for_test(url, "127.0.0.1:9", "not-a-real-secret");
    config.db_statement_timeout = statement_timeout;
    config.db_lock_timeout = lock_timeout;
    config
}

/// A fresh database, and the pool a service of its `cart` role makes with
/// these timeouts.
async fn cart_pool(statement_timeout: Duration, lock_timeout: Duration) -> (TestDatabase, PgPool) {
    let db = test_harness::fresh_database(&["cart"]).await;
    let pool = connect_pool(
        &config(db.url("cart"), statement_timeout, lock_timeout),
        "cart",
    )
    .await
    .unwrap();
    (db, pool)
}

fn code_of(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|database| database.code())
        .map(|code| code.into_owned())
}

#[tokio::test]
async fn a_query_longer_than_the_statement_timeout_fails_fast_and_the_pool_goes_on() {
    let timeout = Duration::from_millis(300);
    let (_db, pool) = cart_pool(timeout, timeout).await;

    let started = Instant::now();
    let error = sqlx::query("SELECT pg_sleep(30)")
        .execute(&pool)
        .await
        .unwrap_err();
    let took = started.elapsed();

    // 57014: query_canceled, "canceling statement due to statement timeout".
    assert_eq!(code_of(&error).as_deref(), Some("57014"), "{error}");
    assert!(took >= timeout && took < Duration::from_secs(5), "{took:?}");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let setting: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(setting, "300ms");
}

#[tokio::test]
async fn a_statement_waiting_for_a_lock_gives_up_after_the_lock_timeout() {
    let lock_timeout = Duration::from_millis(300);
    let (_db, pool) = cart_pool(Duration::from_secs(20), lock_timeout).await;
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(42)")
        .execute(&mut *holder)
        .await
        .unwrap();

    let started = Instant::now();
    let error = sqlx::query("SELECT pg_advisory_lock(42)")
        .execute(&pool)
        .await
        .unwrap_err();
    let took = started.elapsed();

    // 55P03: lock_not_available, "canceling statement due to lock timeout".
    assert_eq!(code_of(&error).as_deref(), Some("55P03"), "{error}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[tokio::test]
async fn a_listening_connection_outlives_the_statement_timeout() {
    let timeout = Duration::from_millis(200);
    let (_db, pool) = cart_pool(timeout, timeout).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen("timeouts_test").await.unwrap();

    tokio::time::sleep(timeout * 5).await;
    sqlx::query("SELECT pg_notify('timeouts_test', 'still here')")
        .execute(&pool)
        .await
        .unwrap();

    let notification = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    assert_eq!(notification.payload(), "still here");
}

#[tokio::test]
async fn a_connection_the_server_ended_while_idle_is_replaced_not_handed_out() {
    let timeout = Duration::from_secs(20);
    let (db, pool) = cart_pool(timeout, timeout).await;
    let first: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();

    // The server ends that backend (an operator, a restart, a proxy's idle
    // timeout) while the pool holds its connection idle.
    let mut other = PgConnection::connect(db.url("cart")).await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&mut other)
        .await
        .unwrap();
    assert!(ended);
    tokio::time::sleep(PING_AFTER_IDLE + Duration::from_millis(200)).await;
    assert_eq!(
        (pool.size(), pool.num_idle()),
        (1, 1),
        "the ended one lies idle"
    );

    let second: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_ne!(second, first);
}
