//! A peer service for the client to call: the fleet's HTTP stack (`layered`,
//! problem+json, bearer auth) with handlers that answer the ways a real peer
//! can, and a record of what arrived.

#![allow(dead_code)] // each test binary uses a different part of it
#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    routing::{delete, get, post},
    Router,
};
use http_service::{layered, serve, AuthConfig, Authenticator, Claims, HttpConfig, Json, Problem};
use prometheus::Registry;
use reqwest::Url;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long `/slow` takes to answer.
pub const SLOW: Duration = Duration::from_secs(2);

/// The running peer; dropping it stops the server.
pub struct Peer {
    pub base: Url,
    pub requests: Arc<AtomicUsize>,
    revoked: Arc<Mutex<HashSet<String>>>,
    refuse_all: Arc<AtomicBool>,
    shutdown: CancellationToken,
}

impl Peer {
    /// Answers 401 to `token` from now on, as a peer does whose provider
    /// revoked it.
    pub fn revoke(&self, token: &str) {
        self.revoked.lock().unwrap().insert(token.to_owned());
    }

    /// Answers 401 to every token.
    pub fn refuse_all_tokens(&self) {
        self.refuse_all.store(true, Ordering::SeqCst);
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone)]
struct PeerState {
    auth: Authenticator,
    requests: Arc<AtomicUsize>,
    revoked: Arc<Mutex<HashSet<String>>>,
    refuse_all: Arc<AtomicBool>,
}

impl PeerState {
    async fn caller(&self, headers: &HeaderMap) -> Result<Claims, Problem> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if self.refuse_all.load(Ordering::SeqCst) || self.revoked.lock().unwrap().contains(token) {
            return Err(Problem::unauthorized("The bearer token has been revoked."));
        }
        Ok(self.auth.authenticate(headers).await?)
    }
}

/// A peer verifying tokens with `auth`, served like a service of the fleet.
pub async fn start_peer(auth: AuthConfig) -> Peer {
    let requests = Arc::new(AtomicUsize::new(0));
    let revoked = Arc::new(Mutex::new(HashSet::new()));
    let refuse_all = Arc::new(AtomicBool::new(false));
    let state = PeerState {
        auth: Authenticator::new(auth).unwrap(),
        requests: requests.clone(),
        revoked: revoked.clone(),
        refuse_all: refuse_all.clone(),
    };
    let router = Router::new()
        .route("/whoami", get(whoami))
        .route("/headers", get(echo_headers))
        .route("/reservations", post(reserve))
        .route("/awards", post(award))
        .route("/things/{id}", delete(remove))
        .route("/slow", get(slow))
        .route("/boom", get(boom))
        .route("/garbage", get(garbage))
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    let app = layered(router, &HttpConfig::with_port(0), &Registry::new());
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(listener, app, shutdown.clone()));
    Peer {
        base,
        requests,
        revoked,
        refuse_all,
        shutdown,
    }
}

/// A base URL nothing listens on.
pub async fn unused_url() -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    Url::parse(&format!("http://{address}")).unwrap()
}

async fn whoami(
    State(state): State<PeerState>,
    headers: HeaderMap,
) -> Result<Json<Claims>, Problem> {
    Ok(Json(state.caller(&headers).await?))
}

async fn echo_headers(
    State(state): State<PeerState>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers).await?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    Ok(Json(json!({
        "traceparent": header("traceparent"),
        "x-request-id": header("x-request-id"),
    })))
}

/// Refuses like user-points does when the balance is too low.
async fn reserve(
    State(state): State<PeerState>,
    headers: HeaderMap,
) -> Result<Json<Value>, Problem> {
    state.caller(&headers).await?;
    Err(Problem::conflict(
        "insufficient_points",
        "The user has fewer points available than requested.",
    )
    .with("available_points", 12))
}

/// 201 with the body it was sent and the idempotency key it came with.
async fn award(
    State(state): State<PeerState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Problem> {
    state.caller(&headers).await?;
    let key = headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok());
    Ok((
        StatusCode::CREATED,
        Json(json!({"received": body, "idempotency_key": key})),
    ))
}

async fn remove(State(state): State<PeerState>, headers: HeaderMap) -> Result<StatusCode, Problem> {
    state.caller(&headers).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn slow(State(state): State<PeerState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.caller(&headers).await?;
    tokio::time::sleep(SLOW).await;
    Ok(Json(json!({"late": true})))
}

async fn boom(State(state): State<PeerState>, headers: HeaderMap) -> Result<Json<Value>, Problem> {
    state.caller(&headers).await?;
    Err(Problem::internal())
}

async fn garbage(State(state): State<PeerState>, headers: HeaderMap) -> Result<String, Problem> {
    state.caller(&headers).await?;
    Ok("<html>surely not JSON".to_owned())
}
