//! user-points as its users see it: awards from the connection capability's
//! topic or an admin, the balance, the ledger, and every bad request.

use std::time::{Duration, Instant};

use http_service::auth::Role;
use messaging::embedded::EmbeddedBroker;
use messaging::inspect::{publish_raw, read_topic};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use shared_events::connection::{ConnectionEvent, PointsAwarded};
use shared_events::{Envelope, EventFamily, Topic};
use test_harness::{token, TestService};
use uuid::Uuid;

struct Fixture {
    service: TestService,
    broker: EmbeddedBroker,
    http: Client,
}

async fn start() -> Fixture {
    let db = test_harness::fresh_database(&["points"]).await;
    start_on(&db).await
}

async fn start_on(db: &test_harness::TestDatabase) -> Fixture {
    let broker = EmbeddedBroker::start(1).expect("start broker");
    broker.create_topics(&Topic::ALL, 3).expect("create topics");
    let service = TestService::start(
        &user_points::SPEC,
        user_points::build,
        db,
        broker.bootstrap_servers(),
    )
    .await;
    Fixture {
        service,
        broker,
        http: Client::new(),
    }
}

impl Fixture {
    async fn balance(&self, user: Uuid) -> Value {
        self.own(user, "/v1/points/balance").await
    }

    /// The first page of the user's ledger, as they see it.
    async fn ledger(&self, user: Uuid) -> Value {
        self.own(user, "/v1/points/ledger").await
    }

    /// What `user` reads at `path` about themselves; asserts 200.
    async fn own(&self, user: Uuid, path: &str) -> Value {
        let response = self
            .http
            .get(self.service.url(path))
            .bearer_auth(token(user, Role::Civilian))
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {path}: {error}"));
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response
            .json()
            .await
            .unwrap_or_else(|error| panic!("GET {path} body: {error}"))
    }

    async fn metrics(&self) -> String {
        self.http
            .get(self.service.url("/metrics"))
            .send()
            .await
            .expect("metrics request")
            .text()
            .await
            .expect("metrics text")
    }

    async fn award(&self, caller_role: Role, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.service.url("/v1/points/awards"))
            .bearer_auth(token(Uuid::new_v4(), caller_role))
            .json(body)
            .send()
            .await
            .expect("award request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn points_awarded(award_id: Uuid, user_id: Uuid, points: i64) -> Envelope<ConnectionEvent> {
    Envelope::new(
        ConnectionEvent::PointsAwarded(PointsAwarded {
            award_id,
            user_id,
            points,
            reason: "met officer Smith at the fair".to_owned(),
            connection_id: Uuid::new_v4(),
        }),
        Uuid::new_v4(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_award_from_the_connection_topic_is_credited_once_and_announced() {
    let fixture = start().await;
    let user = Uuid::new_v4();
    let award_id = Uuid::new_v4();
    // The same award delivered twice, as separate events (a producer retry),
    // both within one trace of the connection capability.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    for _ in 0..2 {
        let event = points_awarded(award_id, user, 120);
        publish_raw(
            fixture.broker.bootstrap_servers(),
            ConnectionEvent::TOPIC.name(),
            &event.partition_key(),
            &event.to_json().expect("serialize event"),
            &[("traceparent", &traceparent)],
        )
        .await
        .expect("publish award");
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while fixture.balance(user).await["available"] != 120 {
        assert!(
            Instant::now() < deadline,
            "the award never reached the balance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let credited: Vec<_> = read_topic(
        fixture.broker.bootstrap_servers(),
        Topic::Points.name(),
        Duration::from_secs(2),
    )
    .await
    .expect("read points topic")
    .into_iter()
    .filter(|m| m.event_type().as_deref() == Some("points_credited"))
    .collect();

    let balance = fixture.balance(user).await;
    assert_eq!(
        balance,
        json!({"user_id": user, "available": 120, "reserved": 0, "lifetime_earned": 120, "lifetime_spent": 0})
    );
    assert_eq!(credited.len(), 1, "points_credited published once");
    let event: Value = serde_json::from_slice(&credited[0].payload).expect("event json");
    assert_eq!(event["user_id"], json!(user));
    assert_eq!(event["points"], 120);
    assert_eq!(event["source"], "award");
    assert_eq!(event["reference"], award_id.to_string());
    assert_eq!(
        credited[0].key.as_deref(),
        Some(user.to_string().as_bytes())
    );
    fixture.service.stop().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_award_is_credited_once_and_answers_the_same_when_repeated() {
    let fixture = start().await;
    let user = Uuid::new_v4();
    let body = json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 40, "reason": "welcome bonus"});

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = fixture
        .http
        .post(fixture.service.url("/v1/points/awards"))
        .bearer_auth(token(Uuid::new_v4(), Role::Admin))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .json(&body)
        .send()
        .await
        .expect("award request");
    let first_status = response.status();
    let first: Value = response.json().await.expect("award body");
    let (again_status, again) = fixture.award(Role::Service, &body).await;

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(again_status, StatusCode::CREATED);
    assert_eq!(first, again);
    assert_eq!(first["points"], 40);
    assert_eq!(fixture.balance(user).await["available"], 40);

    let mut reused = body.clone();
    reused["points"] = json!(41);
    let (status, problem) = fixture.award(Role::Admin, &reused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["code"], "idempotency_key_reused");
    assert_eq!(
        fixture.balance(user).await["available"],
        40,
        "a reused id changes nothing"
    );

    let ledger = fixture.ledger(user).await;
    assert_eq!(ledger["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(ledger["items"][0]["kind"], "awarded");
    assert_eq!(ledger["items"][0]["points"], 40);
    assert_eq!(ledger["items"][0]["reference"], body["award_id"]);
    assert_eq!(ledger["next_cursor"], Value::Null);

    let credited = read_topic(
        fixture.broker.bootstrap_servers(),
        Topic::Points.name(),
        Duration::from_secs(2),
    )
    .await
    .expect("read points topic");
    assert_eq!(credited.len(), 1, "one points_credited for one award");
    assert!(
        credited[0]
            .header("traceparent")
            .is_some_and(|t| t.starts_with(&format!("00-{trace_id}-"))),
        "the event continues the request's trace: {:?}",
        credited[0].header("traceparent")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_awards_of_a_new_user_all_count() {
    let fixture = start().await;
    let user = Uuid::new_v4();

    let answers = futures::future::join_all((0..10).map(|_| {
        let body = json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 7, "reason": "x"});
        let fixture = &fixture;
        async move { fixture.award(Role::Admin, &body).await }
    }))
    .await;

    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }
    let balance = fixture.balance(user).await;
    assert_eq!(
        (&balance["available"], &balance["lifetime_earned"]),
        (&json!(70), &json!(70)),
        "{balance}"
    );
    let ledger = fixture.ledger(user).await;
    assert_eq!(ledger["items"].as_array().map(Vec::len), Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_award_requests_get_a_problem_and_change_nothing() {
    let fixture = start().await;
    let user = Uuid::new_v4();
    let valid = json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 10, "reason": "x"});

    let (status, problem) = fixture.award(Role::Civilian, &valid).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    for (body, code) in [
        (
            json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 0, "reason": "x"}),
            "invalid_body",
        ),
        (
            json!({"award_id": Uuid::new_v4(), "user_id": user, "points": -3, "reason": "x"}),
            "invalid_body",
        ),
        (
            json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 10, "reason": "  "}),
            "invalid_body",
        ),
        (
            json!({"award_id": "not-a-uuid", "user_id": user, "points": 10, "reason": "x"}),
            "invalid_body",
        ),
        (
            json!({"user_id": user, "points": 10, "reason": "x"}),
            "invalid_body",
        ),
        (
            json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 1e30, "reason": "x"}),
            "invalid_body",
        ),
    ] {
        let (status, problem) = fixture.award(Role::Admin, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(problem["code"], code, "{body}");
        assert_eq!(problem["status"], 422);
    }

    let malformed = fixture
        .http
        .post(fixture.service.url("/v1/points/awards"))
        .bearer_auth(token(Uuid::new_v4(), Role::Admin))
        .header("content-type", "application/json")
        .body("{\"award_id\": ")
        .send()
        .await
        .expect("malformed request");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.headers()["content-type"].to_str().ok(),
        Some("application/problem+json")
    );
    let problem: Value = malformed.json().await.expect("problem body");
    assert_eq!(problem["code"], "malformed_json");

    let oversized = fixture
        .http
        .post(fixture.service.url("/v1/points/awards"))
        .bearer_auth(token(Uuid::new_v4(), Role::Admin))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"reason\": \"{}\"}}",
            "a".repeat(2 * 1024 * 1024)
        ))
        .send()
        .await
        .expect("oversized request");
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(
        fixture.balance(user).await["available"],
        0,
        "nothing was credited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balance_needs_a_valid_token_and_shows_only_the_callers_points() {
    let fixture = start().await;
    let rich = Uuid::new_v4();
    let (status, _) = fixture
        .award(
            Role::Admin,
            &json!({"award_id": Uuid::new_v4(), "user_id": rich, "points": 500, "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let someone_else = Uuid::new_v4();
    assert_eq!(fixture.balance(someone_else).await["available"], 0);

    for auth in [None, Some("Bearer not-a-jwt"), Some("Basic dXNlcjpwYXNz")] {
        let mut request = fixture.http.get(fixture.service.url("/v1/points/balance"));
        if let Some(value) = auth {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        let problem: Value = response.json().await.expect("problem");
        assert_eq!(problem["code"], "unauthorized");
    }
    let forged = http_service::auth::mint_hs256(
        "another-secret",
        &http_service::auth::Claims::new(rich, Role::Civilian, Duration::from_secs(60)),
    );
    let response = fixture
        .http
        .get(fixture.service.url("/v1/points/balance"))
        .bearer_auth(forged)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_pages_newest_first_and_refuses_bad_pagination() {
    let fixture = start().await;
    let user = Uuid::new_v4();
    for points in [1, 2, 3] {
        let (status, _) = fixture
            .award(
                Role::Admin,
                &json!({"award_id": Uuid::new_v4(), "user_id": user, "points": points, "reason": "x"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let ledger = |query: String| {
        let request = fixture
            .http
            .get(fixture.service.url(&format!("/v1/points/ledger?{query}")))
            .bearer_auth(token(user, Role::Civilian));
        async move {
            let response = request.send().await.expect("ledger request");
            let status = response.status();
            (status, response.json::<Value>().await.expect("ledger body"))
        }
    };

    let (status, first) = ledger("limit=2".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    let points: Vec<_> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["points"].clone())
        .collect();
    assert_eq!(points, [json!(3), json!(2)]);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, rest) = ledger(format!("limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["items"][0]["points"], 1);
    assert_eq!(rest["next_cursor"], Value::Null);

    for query in [
        "limit=0",
        "limit=201",
        "limit=500",
        "limit=abc",
        "cursor=2",
        "cursor=not-ours",
    ] {
        let (status, problem) = ledger(query.to_owned()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(problem["code"], "invalid_pagination", "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdrawn_account_is_409_insufficient_points_and_other_database_errors_500() {
    use axum::response::IntoResponse;
    use user_points::http::ApiError;

    let db = test_harness::fresh_database(&["points"]).await;
    let fixture = start_on(&db).await;
    let user = Uuid::new_v4();
    let (status, _) = fixture
        .award(
            Role::Admin,
            &json!({"award_id": Uuid::new_v4(), "user_id": user, "points": 10, "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // Spending more than is available breaks the named CHECK constraint in
    // PostgreSQL itself; the error table maps it to the client error.
    let pool = sqlx::PgPool::connect(db.url("points"))
        .await
        .expect("connect");
    let overdraw = sqlx::query(
        "UPDATE accounts SET available = available - 11, spent = spent + 11 WHERE user_id = $1",
    )
    .bind(user)
    .execute(&pool)
    .await
    .expect_err("the constraint refuses a negative balance");
    let response = ApiError::from(overdraw).into_response();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let problem: Value = serde_json::from_slice(&body).expect("problem");
    assert_eq!(problem["code"], "insufficient_points");

    let broken = sqlx::query("UPDATE accounts SET reserved = -1 WHERE user_id = $1")
        .bind(user)
        .execute(&pool)
        .await
        .expect_err("another constraint");
    let response = ApiError::from(broken).into_response();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        fixture.balance(user).await["available"],
        10,
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operational_endpoints_answer() {
    let fixture = start().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let response = fixture
            .http
            .get(fixture.service.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let metrics = fixture.metrics().await;
    assert!(metrics.contains("messaging_outbox_backlog"), "{metrics}");

    // Consumer lag comes from librdkafka's statistics, every 5 s.
    let lag_line = "messaging_consumer_lag{group=\"user-points\",partition=\"0\",topic=\"heyblue.connection.v1\"} 0";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = fixture.metrics().await;
        if metrics.contains(lag_line) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no consumer lag reported: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let openapi: Value = fixture
        .http
        .get(fixture.service.url("/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(openapi["paths"]["/v1/points/balance"]["get"].is_object());
}
