//! A business's own order system, as the dispatcher's `webhook` plugin
//! meets it: one local server for every business that takes its parts by
//! webhook (each at `/{business_id}/orders`, with a secret of its own). It
//! checks every signature as a careful business would (HMAC-SHA256 over
//! `{timestamp}.{body}`, five minutes of tolerance), keeps what it was sent,
//! and answers the dispatcher with signed webhooks of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

/// One POST the dispatcher made to a business.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub dispatch_id: String,
    /// `part_placed` or `part_withdrawn`.
    pub event: String,
    pub body: Value,
}

#[derive(Default)]
struct Books {
    secrets: HashMap<Uuid, String>,
    deliveries: HashMap<Uuid, Vec<Delivery>>,
    /// Requests whose signature did not verify, refused with 401.
    forged: usize,
}

/// The webhook server of the journeys' businesses.
#[derive(Clone)]
pub struct WebhookBusiness {
    base_url: String,
    books: Arc<Mutex<Books>>,
}

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn receive(
    State(books): State<Arc<Mutex<Books>>>,
    Path(business): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut books = books.lock().expect("books");
    let Some(secret) = books.secrets.get(&business).cloned() else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({})));
    };
    let timestamp: i64 = header("heyblue-timestamp").parse().unwrap_or_default();
    let fresh = (OffsetDateTime::now_utc().unix_timestamp() - timestamp).abs() < 300;
    if !fresh || header("heyblue-signature") != sign(&secret, timestamp, &body) {
        books.forged += 1;
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({})));
    }
    books
        .deliveries
        .entry(business)
        .or_default()
        .push(Delivery {
            dispatch_id: header("heyblue-dispatch-id"),
            event: header("heyblue-event"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
    (
        StatusCode::OK,
        axum::Json(json!({"reference": format!("WH-{business}")})),
    )
}

impl WebhookBusiness {
    pub async fn start() -> WebhookBusiness {
        let books = Arc::new(Mutex::new(Books::default()));
        let app = axum::Router::new()
            .route("/{business}/orders", axum::routing::post(receive))
            .with_state(books.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        WebhookBusiness { base_url, books }
    }

    /// Opens the books of `business` with `secret`; the webhook plugin's
    /// config for it.
    pub fn open(&self, business: Uuid, secret: &str) -> Value {
        self.books
            .lock()
            .expect("books")
            .secrets
            .insert(business, secret.to_owned());
        json!({"url": format!("{}/{business}/orders", self.base_url), "secret": secret})
    }

    /// Every secret the books were opened with.
    pub fn secrets(&self) -> Vec<String> {
        self.books
            .lock()
            .expect("books")
            .secrets
            .values()
            .cloned()
            .collect()
    }

    /// Every verified POST the business received, in order.
    pub fn deliveries(&self, business: Uuid) -> Vec<Delivery> {
        self.books
            .lock()
            .expect("books")
            .deliveries
            .get(&business)
            .cloned()
            .unwrap_or_default()
    }

    /// Requests refused for their signature, of every business.
    pub fn forged(&self) -> usize {
        self.books.lock().expect("books").forged
    }

    /// The business's signed answer about its part; the status the
    /// dispatcher answered.
    pub async fn answer(&self, dispatcher: &str, business: Uuid, answer: &Value) -> u16 {
        let secret = self.books.lock().expect("books").secrets[&business].clone();
        let body = answer.to_string();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        reqwest::Client::new()
            .post(format!("{dispatcher}/v1/dispatch/webhooks/{business}"))
            .header("content-type", "application/json")
            .header("heyblue-timestamp", timestamp.to_string())
            .header(
                "heyblue-signature",
                sign(&secret, timestamp, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    }
}
