//! Calls to a peer with HS256 service tokens: what a caller gets back when
//! the peer answers, refuses, fails or is gone, and what the peer receives.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

mod support;

use std::time::{Duration, Instant};

use axum::{extract::State, routing::get, Router};
use http_service::{auth::Role, layered, serve, AuthConfig, Claims, HttpConfig, Json, Problem};
use prometheus::Registry;
use reqwest::{Method, StatusCode, Url};
use secrecy::SecretString;
use serde_json::{json, Value};
use service_client::{service_subject, CallError, ServiceClient, TokenSource};
use tokio_util::sync::CancellationToken;
use trace_context::TraceParent;

const SECRET: &str = "fleet-secret-for-client-tests";

fn tokens() -> TokenSource {
    TokenSource::hs256(SecretString::from(SECRET), "checkout")
}

async fn peer_and_client() -> (support::Peer, ServiceClient) {
    let peer = support::start_peer(AuthConfig::hs256(SECRET)).await;
    let client = ServiceClient::new("user-points", peer.base.clone(), tokens()).unwrap();
    (peer, client)
}

/// Asserts the problem a caller answers with when its peer is unavailable.
fn assert_dependency_unavailable(err: CallError) {
    assert!(err.is_unavailable(), "{err}");
    let problem = Problem::from(err);
    assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.code(), "dependency_unavailable");
    assert_eq!(
        problem.detail(),
        "The user-points service is unavailable. Please try again shortly."
    );
    assert!(problem.extra().is_empty(), "{:?}", problem.extra());
}

#[tokio::test]
async fn a_peer_that_is_down_is_dependency_unavailable() {
    let client = ServiceClient::new("user-points", support::unused_url().await, tokens()).unwrap();
    let err = client.get::<Value>("/whoami").await.unwrap_err();
    assert_dependency_unavailable(err);
}

#[tokio::test]
async fn a_peer_slower_than_the_timeout_is_dependency_unavailable() {
    let (_peer, client) = peer_and_client().await;
    let client = client.with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = client.get::<Value>("/slow").await.unwrap_err();
    assert!(started.elapsed() < support::SLOW, "{:?}", started.elapsed());
    assert_dependency_unavailable(err);
}

#[tokio::test]
async fn a_peer_answering_500_is_dependency_unavailable() {
    let (_peer, client) = peer_and_client().await;
    let err = client.get::<Value>("/boom").await.unwrap_err();
    assert_dependency_unavailable(err);
}

#[tokio::test]
async fn a_peer_answering_garbage_is_dependency_unavailable() {
    let (_peer, client) = peer_and_client().await;
    let err = client.get::<Value>("/garbage").await.unwrap_err();
    assert_dependency_unavailable(err);
}

#[tokio::test]
async fn a_peers_409_problem_passes_through_with_its_code_and_members() {
    let (_peer, client) = peer_and_client().await;
    let err = client
        .post::<_, Value>("/reservations", &json!({"points": 500}))
        .await
        .unwrap_err();
    assert!(err.is_rejected_with("insufficient_points"), "{err}");
    assert_eq!(err.status(), StatusCode::CONFLICT);
    let problem = err.problem().unwrap();
    assert_eq!(problem.extra()["available_points"], 12);

    // Passed on as this service's answer, the body is the peer's.
    let problem = Problem::from(err);
    assert_eq!(
        problem.body(),
        json!({
            "type": "https://errors.heyblue.example/insufficient_points",
            "title": "Conflict",
            "status": 409,
            "detail": "The user has fewer points available than requested.",
            "code": "insufficient_points",
            "available_points": 12,
        })
    );
}

#[tokio::test]
async fn a_post_tells_201_apart_and_carries_its_idempotency_key() {
    let (_peer, client) = peer_and_client().await;
    let reply = client
        .request(Method::POST, "/awards")
        .json(&json!({"points": 10}))
        .idempotency_key("award-42")
        .send::<Value>()
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.body["received"], json!({"points": 10}));
    assert_eq!(reply.body["idempotency_key"], "award-42");
}

#[tokio::test]
async fn a_delete_answered_204_succeeds() {
    let (_peer, client) = peer_and_client().await;
    assert_eq!(
        client.delete("/things/1").await.unwrap(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn the_peer_accepts_the_hs256_token_as_the_service_role() {
    let (_peer, client) = peer_and_client().await;
    let claims: Claims = client.get("/whoami").await.unwrap();
    assert_eq!(claims.role, Role::Service);
    assert_eq!(claims.sub, service_subject("checkout"));
}

#[tokio::test]
async fn a_peer_with_another_secret_makes_the_call_unavailable_without_retrying() {
    let peer = support::start_peer(AuthConfig::hs256("another-secret")).await;
    let client = ServiceClient::new("user-points", peer.base.clone(), tokens()).unwrap();
    let err = client.get::<Value>("/whoami").await.unwrap_err();
    assert_dependency_unavailable(err);
    // Minting again with the same secret cannot help, so it is not tried.
    assert_eq!(peer.requests(), 1);
}

/// A service of the fleet whose one handler calls the peer and answers with
/// what the peer received.
async fn start_front(peer: ServiceClient) -> Url {
    async fn relay(State(peer): State<ServiceClient>) -> Result<Json<Value>, Problem> {
        Ok(Json(peer.get("/headers").await?))
    }
    let router = Router::new().route("/relay", get(relay)).with_state(peer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let app = layered(router, &HttpConfig::with_port(0), &Registry::new());
    tokio::spawn(serve(listener, app, CancellationToken::new()));
    base
}

#[tokio::test]
async fn the_trace_and_request_id_of_the_incoming_request_reach_the_peer() {
    let (_peer, client) = peer_and_client().await;
    let front = start_front(client).await;
    let incoming = TraceParent::new_root();

    let seen: Value = reqwest::Client::new()
        .get(front.join("/relay").unwrap())
        .header("traceparent", incoming.to_string())
        .header("x-request-id", "req-7f3a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(seen["x-request-id"], "req-7f3a");
    let forwarded = TraceParent::parse(seen["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(forwarded.trace_id, incoming.trace_id);
    assert_ne!(
        forwarded.span_id, incoming.span_id,
        "the call is a span of its own"
    );
}

#[tokio::test]
async fn calls_outside_any_request_each_start_a_trace() {
    let (_peer, client) = peer_and_client().await;
    let mut trace_ids = Vec::new();
    for _ in 0..2 {
        let seen: Value = client.get("/headers").await.unwrap();
        let traceparent = TraceParent::parse(seen["traceparent"].as_str().unwrap()).unwrap();
        trace_ids.push(traceparent.trace_id);
    }
    assert_ne!(trace_ids[0], trace_ids[1]);
}
