//! `Idempotency-Key` against a real PostgreSQL: every rule of DESIGN §2.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use http_service::idempotency::{self, Idempotency};
use http_service::{AuthConfig, Authenticator, Json, Problem};
use prometheus::Registry;
use serde_json::{json, Value};
use sqlx::PgPool;
use test_harness::{token, JWT_SECRET};
use uuid::Uuid;

use http_service::auth::{AuthUser, Role};

/// What the handlers under test count and consult.
#[derive(Clone)]
struct Calls {
    auth: Authenticator,
    runs: Arc<AtomicUsize>,
    /// While false, `/v1/seats` answers 409 `sold_out`.
    seats_available: Arc<AtomicBool>,
    /// While true, `/v1/flaky` answers 500.
    failing: Arc<AtomicBool>,
    /// Runs of `/v1/slow` that reached their end.
    finished: Arc<AtomicUsize>,
}

impl axum::extract::FromRef<Calls> for Authenticator {
    fn from_ref(calls: &Calls) -> Self {
        calls.auth.clone()
    }
}

async fn create_thing(
    caller: AuthUser,
    State(calls): State<Calls>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let run = calls.runs.fetch_add(1, Ordering::SeqCst) + 1;
    // Long enough for every concurrent duplicate to arrive meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (
        StatusCode::CREATED,
        Json(json!({"run": run, "by": caller.id(), "echo": body})),
    )
}

async fn pay(State(calls): State<Calls>, Json(_): Json<Value>) -> Problem {
    calls.runs.fetch_add(1, Ordering::SeqCst);
    Problem::new(
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
        "The card was declined.",
    )
    .with("decline_code", "insufficient_funds")
}

async fn book_seat(
    State(calls): State<Calls>,
    Json(_): Json<Value>,
) -> Result<StatusCode, Problem> {
    calls.runs.fetch_add(1, Ordering::SeqCst);
    if calls.seats_available.load(Ordering::SeqCst) {
        Ok(StatusCode::CREATED)
    } else {
        Err(Problem::conflict("sold_out", "No seat is left."))
    }
}

async fn flaky(State(calls): State<Calls>, Json(_): Json<Value>) -> Result<StatusCode, Problem> {
    calls.runs.fetch_add(1, Ordering::SeqCst);
    if calls.failing.load(Ordering::SeqCst) {
        Err(Problem::internal())
    } else {
        Ok(StatusCode::CREATED)
    }
}

/// Takes longer than [`SHORT_LEASE`] several times over, and says when done.
async fn slow_thing(State(calls): State<Calls>, Json(_): Json<Value>) -> (StatusCode, Json<Value>) {
    let run = calls.runs.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    calls.finished.fetch_add(1, Ordering::SeqCst);
    (StatusCode::CREATED, Json(json!({"run": run})))
}

/// The lease of `/v1/slow`: a fraction of what its handler takes.
const SHORT_LEASE: Duration = Duration::from_millis(300);

struct Shop {
    server: support::TestServer,
    calls: Calls,
    pool: PgPool,
    client: reqwest::Client,
}

async fn shop() -> Shop {
    let db = test_harness::fresh_database(&["cart"]).await;
    let pool = PgPool::connect(db.url("cart")).await.unwrap();
    idempotency::install(&pool).await.unwrap();
    let auth = Authenticator::new(AuthConfig::hs256(JWT_SECRET)).unwrap();
    let calls = Calls {
        auth: auth.clone(),
        runs: Arc::default(),
        seats_available: Arc::default(),
        failing: Arc::default(),
        finished: Arc::default(),
    };
    let short = Idempotency::required(pool.clone(), auth.clone()).with_lease(SHORT_LEASE);
    let required = Idempotency::required(pool.clone(), auth.clone());
    let optional = Idempotency::optional(pool.clone(), auth);
    let router = Router::new()
        .route("/v1/things", post(create_thing))
        .route("/v1/payments", post(pay))
        .route("/v1/seats", post(book_seat))
        .route("/v1/flaky", post(flaky))
        .route_layer(axum::middleware::from_fn_with_state(
            required,
            idempotency::middleware,
        ))
        .merge(
            Router::new()
                .route("/v1/slow", post(slow_thing))
                .route_layer(axum::middleware::from_fn_with_state(
                    short,
                    idempotency::middleware,
                )),
        )
        .merge(
            Router::new()
                .route("/v1/optional", post(create_thing))
                .route_layer(axum::middleware::from_fn_with_state(
                    optional,
                    idempotency::middleware,
                )),
        )
        .with_state(calls.clone());
    Shop {
        server: support::start(router, Registry::new()).await,
        calls,
        pool,
        client: reqwest::Client::new(),
    }
}

impl Shop {
    async fn post(&self, path: &str, user: Uuid, key: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self
            .client
            .post(self.server.url(path))
            .bearer_auth(token(user, Role::Civilian))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn runs(&self) -> usize {
        self.calls.runs.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn ten_concurrent_requests_with_one_key_run_the_handler_once_and_get_one_answer() {
    let shop = Arc::new(shop().await);
    let user = Uuid::new_v4();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let shop = shop.clone();
            tokio::spawn(async move {
                shop.post("/v1/things", user, Some("k-1"), r#"{"n": 1}"#)
                    .await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_eq!(shop.runs(), 1, "the handler ran once");
    for answer in &answers {
        assert_eq!(answer, &answers[0]);
    }
    assert_eq!(answers[0].0, 201);
    assert_eq!(answers[0].1["run"], 1);
}

#[tokio::test]
async fn the_same_body_in_another_layout_is_the_same_request() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let first = shop
        .post("/v1/things", user, Some("k"), r#"{"a": 1, "b": 2}"#)
        .await;
    let again = shop
        .post("/v1/things", user, Some("k"), r#"{"b":2,"a":1}"#)
        .await;
    assert_eq!(first, again);
    assert_eq!(shop.runs(), 1);
}

#[tokio::test]
async fn a_stored_402_is_replayed_without_running_the_handler_again() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let first = shop.post("/v1/payments", user, Some("pay-1"), "{}").await;
    let again = shop.post("/v1/payments", user, Some("pay-1"), "{}").await;
    assert_eq!(first.0, 402);
    assert_eq!(first.1["code"], "payment_declined");
    assert_eq!(again, first);
    assert_eq!(again.1["decline_code"], "insufficient_funds");
    assert_eq!(shop.runs(), 1);
}

#[tokio::test]
async fn a_stored_409_is_replayed_even_after_the_state_that_caused_it_changed() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let first = shop.post("/v1/seats", user, Some("seat-1"), "{}").await;
    assert_eq!(first.0, 409);
    shop.calls.seats_available.store(true, Ordering::SeqCst);
    let again = shop.post("/v1/seats", user, Some("seat-1"), "{}").await;
    assert_eq!(again, first, "the first answer, not a new booking");
    let fresh = shop.post("/v1/seats", user, Some("seat-2"), "{}").await;
    assert_eq!(fresh.0, 201, "a new key does book");
    assert_eq!(shop.runs(), 2);
}

#[tokio::test]
async fn a_5xx_is_not_stored_so_the_retry_runs_again() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    shop.calls.failing.store(true, Ordering::SeqCst);
    let first = shop.post("/v1/flaky", user, Some("retry-me"), "{}").await;
    assert_eq!(first.0, 500);
    shop.calls.failing.store(false, Ordering::SeqCst);
    let retry = shop.post("/v1/flaky", user, Some("retry-me"), "{}").await;
    assert_eq!(retry.0, 201);
    assert_eq!(shop.runs(), 2);
}

#[tokio::test]
async fn a_key_store_without_a_free_connection_answers_503_and_the_retry_runs_once() {
    let shop = shop().await;
    let starved = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_millis(100))
        .connect_with((*shop.pool.connect_options()).clone())
        .await
        .unwrap();
    let auth = Authenticator::new(AuthConfig::hs256(JWT_SECRET)).unwrap();
    let router = Router::new()
        .route("/v1/things", post(create_thing))
        .route_layer(axum::middleware::from_fn_with_state(
            Idempotency::required(starved.clone(), auth),
            idempotency::middleware,
        ))
        .with_state(shop.calls.clone());
    let server = support::start(router, Registry::new()).await;
    let user = Uuid::new_v4();
    let send = || {
        shop.client
            .post(server.url("/v1/things"))
            .bearer_auth(token(user, Role::Civilian))
            .header("content-type", "application/json")
            .header("idempotency-key", "busy-now")
            .body(r#"{"name":"lamp"}"#)
            .send()
    };

    let held = starved.acquire().await.unwrap();
    let busy = send().await.unwrap();
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(
        busy.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let body: Value = busy.json().await.unwrap();
    assert_eq!(body["code"], "database_busy");
    assert_eq!(
        shop.runs(),
        0,
        "nothing ran while the key could not be stored"
    );

    drop(held);
    let retry = send().await.unwrap();
    assert_eq!(retry.status().as_u16(), 201);
    assert_eq!(shop.runs(), 1);
}

#[tokio::test]
async fn another_body_with_the_same_key_is_refused_and_changes_nothing() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let first = shop
        .post("/v1/things", user, Some("k"), r#"{"n": 1}"#)
        .await;
    assert_eq!(first.0, 201);
    let other = shop
        .post("/v1/things", user, Some("k"), r#"{"n": 2}"#)
        .await;
    assert_eq!(other.0, 422);
    assert_eq!(other.1["code"], "idempotency_key_reused");
    let malformed = shop.post("/v1/things", user, Some("k"), r#"{"n": "#).await;
    assert_eq!(malformed.0, 422);
    assert_eq!(malformed.1["code"], "idempotency_key_reused");
    assert_eq!(shop.runs(), 1);
    let again = shop
        .post("/v1/things", user, Some("k"), r#"{"n": 1}"#)
        .await;
    assert_eq!(again, first);
}

#[tokio::test]
async fn a_key_is_looked_up_before_validation_so_a_stored_400_is_replayed() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let first = shop
        .post("/v1/things", user, Some("bad"), "{not json")
        .await;
    assert_eq!(first.0, 400);
    assert_eq!(first.1["code"], "malformed_json");
    let again = shop
        .post("/v1/things", user, Some("bad"), "{not json")
        .await;
    assert_eq!(again, first);
    assert_eq!(shop.runs(), 0);
}

#[tokio::test]
async fn the_same_key_from_another_user_or_on_another_path_is_independent() {
    let shop = shop().await;
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let by_alice = shop.post("/v1/things", alice, Some("k"), "{}").await;
    let by_bob = shop.post("/v1/things", bob, Some("k"), "{}").await;
    assert_eq!((by_alice.0, by_bob.0), (201, 201));
    assert_eq!(by_alice.1["by"], json!(alice));
    assert_eq!(by_bob.1["by"], json!(bob));
    let elsewhere = shop.post("/v1/optional", alice, Some("k"), "{}").await;
    assert_eq!(elsewhere.0, 201);
    assert_eq!(shop.runs(), 3);
}

#[tokio::test]
async fn a_missing_or_malformed_key_where_one_is_required_is_a_400() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let missing = shop.post("/v1/things", user, None, "{}").await;
    assert_eq!(missing.0, 400);
    assert_eq!(missing.1["code"], "idempotency_key_required");
    let malformed = shop.post("/v1/things", user, Some("two words"), "{}").await;
    assert_eq!(malformed.0, 400);
    assert_eq!(malformed.1["code"], "invalid_idempotency_key");
    assert_eq!(shop.runs(), 0);
    let optional = shop.post("/v1/optional", user, None, "{}").await;
    assert_eq!(optional.0, 201, "an optional key may be left out");
}

#[tokio::test]
async fn keys_expire_after_the_retention_and_are_pruned() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    shop.post("/v1/things", user, Some("old"), "{}").await;
    shop.post("/v1/things", user, Some("new"), "{}").await;
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'",
    )
    .execute(&shop.pool)
    .await
    .unwrap();
    let pruned = idempotency::prune(&shop.pool, idempotency::RETENTION)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the key past 24 h");
    let reused = shop.post("/v1/things", user, Some("old"), "{}").await;
    assert_eq!(reused.1["run"], 3, "an expired key runs the handler anew");
    let kept = shop.post("/v1/things", user, Some("new"), "{}").await;
    assert_eq!(kept.1["run"], 2, "a young key still replays");
}

#[tokio::test]
async fn without_a_valid_token_nothing_is_stored_and_the_handler_answers_401() {
    let shop = shop().await;
    let response = shop
        .client
        .post(shop.server.url("/v1/things"))
        .header("idempotency-key", "k")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&shop.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_caller_who_hangs_up_leaves_the_handler_running_and_its_retry_gets_the_answer() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let hung_up = impatient
        .post(shop.server.url("/v1/slow"))
        .bearer_auth(token(user, Role::Civilian))
        .header("idempotency-key", "k-hang-up")
        .json(&json!({"n": 1}))
        .send()
        .await;
    assert!(hung_up.is_err(), "the caller gave up before the answer");
    test_harness::eventually(Duration::from_secs(10), "the handler finished", || async {
        shop.calls.finished.load(Ordering::SeqCst) == 1
    })
    .await;

    let (status, body) = shop
        .post("/v1/slow", user, Some("k-hang-up"), r#"{"n": 1}"#)
        .await;
    assert_eq!((status, body), (201, json!({"run": 1})));
    assert_eq!(shop.runs(), 1, "the retry got the stored answer");
}

#[tokio::test]
async fn a_handler_running_past_its_lease_keeps_its_key_while_it_runs() {
    let shop = Arc::new(shop().await);
    let user = Uuid::new_v4();
    let first = {
        let shop = shop.clone();
        tokio::spawn(async move { shop.post("/v1/slow", user, Some("k-long"), "{}").await })
    };
    // Arrives, and keeps asking, long after the first request's lease would
    // have run out without being renewed.
    tokio::time::sleep(SHORT_LEASE * 2).await;
    let second = shop.post("/v1/slow", user, Some("k-long"), "{}").await;
    assert_eq!(first.await.unwrap(), (201, json!({"run": 1})));
    assert_eq!(second, (201, json!({"run": 1})));
    assert_eq!(
        shop.runs(),
        1,
        "the duplicate waited instead of taking over"
    );
}

#[tokio::test]
async fn a_key_whose_request_died_is_taken_over_once_its_lease_runs_out() {
    let shop = shop().await;
    let user = Uuid::new_v4();
    // What a request whose process died leaves: its claim, never renewed.
    sqlx::query(
        "INSERT INTO idempotency_keys (subject, method, path, key, request_hash, locked_until)
         VALUES ($1, 'POST', '/v1/slow', 'k-dead', $2, now() + interval '300 milliseconds')",
    )
    .bind(user)
    // The fingerprint of the JSON body `{}`.
    .bind(<sha2::Sha256 as sha2::Digest>::digest(b"json:{}").to_vec())
    .execute(&shop.pool)
    .await
    .unwrap();
    let (status, _) = shop.post("/v1/slow", user, Some("k-dead"), "{}").await;
    assert_eq!(status, 201, "the retry took the key over and ran");
    assert_eq!(shop.runs(), 1);
}
