//! Black-box tests of the shared HTTP edge: problem bodies for bad input,
//! limits, panics and unknown routes, and the operational endpoints.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

mod support;

use std::{sync::Arc, time::Duration};

use axum::{
    routing::{get, post},
    Router,
};
use http_service::{
    routes, service_api, CommonRoutes, Json, OpenApiRouter, Page, PageRequest, Path, Problem,
    Query, ReadinessCheck,
};
use prometheus::Registry;
use reqwest::{header, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Deserialize)]
struct NewItem {
    name: String,
    quantity: u32,
}

#[utoipa::path(
    post,
    path = "/items",
    responses((status = OK, description = "Created"), (status = UNPROCESSABLE_ENTITY))
)]
async fn create_item(Json(item): Json<NewItem>) -> Json<Value> {
    Json(json!({"name": item.name, "quantity": item.quantity}))
}

async fn echo_text(body: String) -> String {
    body
}

async fn get_item(Path(id): Path<Uuid>) -> Json<Value> {
    Json(json!({"id": id}))
}

#[derive(Debug, Deserialize)]
struct Paging {
    limit: Option<u16>,
}

async fn list_items(Query(paging): Query<Paging>) -> Json<Value> {
    Json(json!({"items": [], "limit": paging.limit}))
}

/// The numbers 5 down to 1, paged by the number itself.
async fn numbers(page: PageRequest<u32>) -> Json<Page<u32>> {
    let after = page.after().copied().unwrap_or(u32::MAX);
    let rows = (1..=5u32)
        .rev()
        .filter(|n| *n < after)
        .take(page.fetch_limit() as usize)
        .map(|n| (n, n))
        .collect();
    Json(page.page(rows))
}

async fn explode() -> &'static str {
    panic!("connection string postgres://app:hunter2@db leaked")
}

async fn conflict() -> Result<(), Problem> {
    Err(Problem::conflict("already_exists", "The item exists.").with("item_id", "abc"))
}

async fn bare_unauthorized() -> StatusCode {
    StatusCode::UNAUTHORIZED
}

struct Passing;

#[async_trait::async_trait]
impl ReadinessCheck for Passing {
    fn name(&self) -> &str {
        "database"
    }
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

struct Failing;

#[async_trait::async_trait]
impl ReadinessCheck for Failing {
    fn name(&self) -> &str {
        "broker"
    }
    async fn check(&self) -> Result<(), String> {
        Err("broker at 10.0.0.7:9092 refused the connection".to_owned())
    }
}

struct Hanging;

#[async_trait::async_trait]
impl ReadinessCheck for Hanging {
    fn name(&self) -> &str {
        "slow"
    }
    async fn check(&self) -> Result<(), String> {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    }
}

fn app(common: CommonRoutes) -> Router {
    Router::new()
        .route("/items", post(create_item).get(list_items))
        .route("/items/{id}", get(get_item))
        .route("/echo", post(echo_text))
        .route("/numbers", get(numbers))
        .route("/explode", get(explode))
        .route("/conflict", post(conflict))
        .route("/bare", get(bare_unauthorized))
        .merge(common.router())
}

async fn start_with(checks: Vec<Arc<dyn ReadinessCheck>>) -> support::TestServer {
    let registry = Registry::new();
    let documented: OpenApiRouter = OpenApiRouter::new().routes(routes!(create_item));
    let openapi = service_api(documented, "test-service", "0.1.0", &[]).into_openapi();
    let common = checks.into_iter().fold(
        CommonRoutes::new(registry.clone(), openapi),
        |routes, check| routes.readiness_check_arc(check),
    );
    support::start(app(common), registry).await
}

async fn start() -> support::TestServer {
    start_with(vec![Arc::new(Passing)]).await
}

async fn problem(response: reqwest::Response) -> Value {
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn valid_json_body_reaches_the_handler() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .json(&json!({"name": "mug", "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"name": "mug", "quantity": 2}));
}

#[tokio::test]
async fn malformed_json_answers_400_malformed_json() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"name": "mug", "quantity": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = problem(response).await;
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(body["status"], 400);
    assert_eq!(
        body["type"],
        "https://errors.heyblue.example/malformed_json"
    );
    assert_eq!(body["title"], "Bad Request");
}

#[tokio::test]
async fn wrong_field_type_answers_422_invalid_body_naming_the_field() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .json(&json!({"name": "mug", "quantity": "two"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(response).await;
    assert_eq!(body["code"], "invalid_body");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("quantity"), "{detail}");
    assert!(detail.contains("invalid type"), "{detail}");
}

#[tokio::test]
async fn missing_field_answers_422_invalid_body() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .json(&json!({"name": "mug"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(response).await;
    assert_eq!(body["code"], "invalid_body");
    assert!(body["detail"].as_str().unwrap().contains("missing field"));
}

#[tokio::test]
async fn body_without_json_content_type_answers_415() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"name": "mug", "quantity": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(problem(response).await["code"], "unsupported_media_type");
}

fn two_mib_json() -> String {
    format!(
        r#"{{"name": "{}", "quantity": 1}}"#,
        "x".repeat(2 * 1024 * 1024)
    )
}

#[tokio::test]
async fn two_mib_body_answers_413_problem() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(two_mib_json())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(response).await["code"], "payload_too_large");
}

/// A chunked body announces no length, so the limit can only bite while the
/// body streams into the extractor.
fn chunked(body: String) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(64 * 1024)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn chunked_body_over_the_limit_answers_413_problem_to_the_json_extractor() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/items"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(chunked(two_mib_json()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(response).await["code"], "payload_too_large");
}

#[tokio::test]
async fn chunked_body_over_the_limit_answers_413_problem_to_a_plain_extractor() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/echo"))
        .body(chunked("y".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(problem(response).await["code"], "payload_too_large");
}

#[tokio::test]
async fn unknown_route_answers_404_problem() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(response).await["code"], "not_found");
}

#[tokio::test]
async fn wrong_method_answers_405_problem_with_allow_header() {
    let server = start().await;
    let response = support::client()
        .delete(server.url("/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()[header::ALLOW]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allow.contains("POST"), "{allow}");
    assert_eq!(problem(response).await["code"], "method_not_allowed");
}

#[tokio::test]
async fn panicking_handler_answers_500_without_the_panic_message() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/explode"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = problem(response).await;
    assert_eq!(body["code"], "internal_error");
    let text = body.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("postgres"), "{text}");

    // The server survives the panic.
    let health = support::client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn handler_problem_keeps_its_code_and_extra_members() {
    let server = start().await;
    let response = support::client()
        .post(server.url("/conflict"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = problem(response).await;
    assert_eq!(body["code"], "already_exists");
    assert_eq!(body["item_id"], "abc");
}

#[tokio::test]
async fn bare_status_from_a_handler_becomes_a_problem() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/bare"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(problem(response).await["code"], "unauthorized");
}

#[tokio::test]
async fn path_id_that_is_not_a_uuid_answers_404() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/items/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(problem(response).await["code"], "not_found");

    let id = Uuid::new_v4();
    let response = support::client()
        .get(server.url(&format!("/items/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unparsable_query_answers_400_invalid_query() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/items?limit=many"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = problem(response).await;
    assert_eq!(body["code"], "invalid_query");
    assert!(body["detail"].as_str().unwrap().contains("limit"));
}

#[tokio::test]
async fn bad_pagination_answers_422_invalid_pagination_and_a_cursor_pages_on() {
    let server = start().await;
    for query in [
        "limit=0",
        "limit=201",
        "limit=abc",
        "cursor=forged",
        "limit=5&cursor=MTI",
    ] {
        let response = support::client()
            .get(server.url(&format!("/numbers?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}"
        );
        assert_eq!(
            problem(response).await["code"],
            "invalid_pagination",
            "{query}"
        );
    }

    let first: Value = support::client()
        .get(server.url("/numbers?limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"], json!([5, 4]));
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = support::client()
        .get(server.url(&format!("/numbers?cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest, json!({"items": [3, 2, 1], "next_cursor": null}));
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_answers_ready_when_every_check_passes() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok"}})
    );
}

#[tokio::test]
async fn readyz_answers_503_naming_the_failing_check_without_its_reason() {
    let server = start_with(vec![Arc::new(Passing), Arc::new(Failing)]).await;
    let response = support::client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = problem(response).await;
    assert_eq!(body["code"], "not_ready");
    assert_eq!(
        body["checks"],
        json!({"database": "ok", "broker": "failed"})
    );
    assert!(!body.to_string().contains("10.0.0.7"));
}

#[tokio::test]
async fn readyz_counts_a_hanging_check_as_timed_out() {
    let server = start_with(vec![Arc::new(Hanging)]).await;
    let started = std::time::Instant::now();
    let response = support::client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(problem(response).await["checks"]["slow"], "timed_out");
}

#[tokio::test]
async fn metrics_count_requests_by_method_route_and_status() {
    let server = start().await;
    let id = Uuid::new_v4();
    support::client()
        .get(server.url(&format!("/items/{id}")))
        .send()
        .await
        .unwrap();
    let response = support::client()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",path="/items/{id}",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_is_3_1_and_lists_operational_and_service_paths() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/items"] {
        assert!(doc["paths"][path].is_object(), "missing {path}");
    }
    assert_eq!(doc["info"]["title"], "test-service");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["bearerFormat"],
        "JWT"
    );
    // Operational endpoints need no token; the service's do.
    assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([{}]));
    assert!(doc["paths"]["/items"]["post"].get("security").is_none());
    assert_eq!(doc["security"], json!([{"bearer": []}]));
    let not_ready = &doc["paths"]["/readyz"]["get"]["responses"]["503"];
    assert_eq!(
        not_ready["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert_eq!(
        not_ready["x-problem-codes"],
        json!(["not_ready", "overloaded", "request_timeout"])
    );
}

#[tokio::test]
async fn incoming_request_id_is_echoed() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/healthz"))
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
}

#[tokio::test]
async fn missing_request_id_is_assigned_a_uuid_even_on_errors() {
    let server = start().await;
    let response = support::client()
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn cancelling_the_token_stops_the_server() {
    let server = start().await;
    server.shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), server.handle)
        .await
        .expect("server stops within 5 s")
        .unwrap();
    assert!(outcome.is_ok());
}
