//! A local server that speaks Stripe's API as the provider uses it:
//! form-encoded requests with bracketed keys, PaymentIntent, Refund and
//! PaymentMethod objects as JSON, Stripe error objects, `Idempotency-Key`
//! replay, and webhooks signed like Stripe signs them. Card behaviour
//! follows Stripe's test payment methods.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SECRET_KEY: &str = "sk_test_heyblue";
pub const WEBHOOK_SECRET: &str = "whsec_heyblue_test";

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fake {
    base_url: String,
    next_id: u64,
    intents: HashMap<String, Value>,
    refunds: Vec<Value>,
    /// PaymentMethods made from tokens, and the test card they behave as.
    token_methods: HashMap<String, String>,
    /// The `return_url` each PaymentIntent was confirmed with.
    return_urls: HashMap<String, String>,
    replies: HashMap<String, (StatusCode, Value)>,
    captures: usize,
    delay_next_capture: Option<Duration>,
    /// How many of the next PaymentIntent creates (replays included) are
    /// answered late, and by how much.
    delay_creates: Option<(usize, Duration)>,
    requests: Vec<Recorded>,
}

impl Fake {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}_3Fake{:010}", self.next_id)
    }
}

type Shared = Arc<Mutex<Fake>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Fake> {
    state.lock().expect("fake Stripe state poisoned")
}

pub struct FakeStripe {
    pub base_url: String,
    state: Shared,
}

impl FakeStripe {
    pub async fn start() -> FakeStripe {
        let state: Shared = Arc::default();
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
            .route("/v1/payment_intents/{id}/capture", post(capture_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/payment_methods", post(create_payment_method))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake Stripe");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        lock(&state).base_url = base_url.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Stripe serves");
        });
        FakeStripe { base_url, state }
    }

    /// Captures that actually happened (replays not counted).
    pub fn captures(&self) -> usize {
        lock(&self.state).captures
    }

    /// The next capture happens at once but its answer waits `delay`.
    pub fn delay_next_capture(&self, delay: Duration) {
        lock(&self.state).delay_next_capture = Some(delay);
    }

    /// The next `count` PaymentIntent creates (a replay of one included)
    /// are made, or replayed, at once, but their answers wait `delay`.
    pub fn delay_next_creates(&self, count: usize, delay: Duration) {
        lock(&self.state).delay_creates = Some((count, delay));
    }

    /// Every PaymentIntent the server holds.
    pub fn intents(&self) -> Vec<Value> {
        lock(&self.state).intents.values().cloned().collect()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    pub fn intent(&self, id: &str) -> Option<Value> {
        lock(&self.state).intents.get(id).cloned()
    }

    /// The customer finishes (or fails) 3-D Secure on Stripe's page.
    pub fn complete_authentication(&self, intent_id: &str, succeeded: bool) {
        let mut fake = lock(&self.state);
        let intent = fake
            .intents
            .get_mut(intent_id)
            .expect("an intent that requires action");
        assert_eq!(intent["status"], "requires_action");
        intent["next_action"] = Value::Null;
        if succeeded {
            intent["status"] = json!("requires_capture");
            intent["amount_capturable"] = intent["amount"].clone();
        } else {
            intent["status"] = json!("requires_payment_method");
            intent["last_payment_error"] = json!({
                "type": "invalid_request_error",
                "code": "payment_intent_authentication_failure",
                "message": "The provided PaymentMethod has failed authentication.",
            });
        }
    }

    /// A `Stripe-Signature` header for `body`, as Stripe computes it.
    pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    /// An event as Stripe delivers it for `intent_id`.
    pub fn event(&self, event_type: &str, intent_id: &str) -> Vec<u8> {
        let mut fake = lock(&self.state);
        let object = fake.intents.get(intent_id).cloned().unwrap_or(Value::Null);
        let event_id = fake.id("evt");
        serde_json::to_vec(&json!({
            "id": event_id,
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": now(),
            "livemode": false,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": object},
        }))
        .expect("event serializes")
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn stripe_error(status: StatusCode, error: Value) -> (StatusCode, Value) {
    (status, json!({ "error": error }))
}

fn card_declined(decline_code: &str) -> (StatusCode, Value) {
    stripe_error(
        StatusCode::PAYMENT_REQUIRED,
        json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
        }),
    )
}

fn missing(kind: &str, id: &str) -> (StatusCode, Value) {
    stripe_error(
        StatusCode::NOT_FOUND,
        json!({
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": format!("No such {kind}: '{id}'"),
        }),
    )
}

fn unexpected_state(message: String) -> (StatusCode, Value) {
    stripe_error(
        StatusCode::BAD_REQUEST,
        json!({
            "type": "invalid_request_error",
            "code": "payment_intent_unexpected_state",
            "message": message,
        }),
    )
}

/// `metadata[key]=value` pairs, as an object.
fn metadata(form: &[(String, String)]) -> Value {
    let map: serde_json::Map<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("metadata[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|key| (key.to_owned(), json!(v)))
        })
        .collect();
    Value::Object(map)
}

fn param<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// A request let in: its idempotency key and form parameters.
type Admitted = (Option<String>, Vec<(String, String)>);

/// Checks the key, records the request, and replays an answer already
/// given for its `Idempotency-Key`.
fn admit(
    fake: &mut Fake,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Admitted, Box<Response>> {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET_KEY}"));
    if !authorized {
        let (status, body) = stripe_error(
            StatusCode::UNAUTHORIZED,
            json!({"type": "invalid_request_error", "message": "Invalid API Key provided"}),
        );
        return Err(Box::new((status, Json(body)).into_response()));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    fake.requests.push(Recorded {
        method: method.to_owned(),
        path: path.to_owned(),
        idempotency_key: idempotency_key.clone(),
        form: form.clone(),
    });
    if let Some(key) = &idempotency_key {
        if let Some((status, body)) = fake.replies.get(key) {
            let mut response = (*status, Json(body.clone())).into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", "true".parse().expect("header value"));
            return Err(Box::new(response));
        }
    }
    Ok((idempotency_key, form))
}

fn answer(fake: &mut Fake, key: Option<String>, reply: (StatusCode, Value)) -> Response {
    if let Some(key) = key {
        fake.replies.insert(key, reply.clone());
    }
    (reply.0, Json(reply.1)).into_response()
}

/// What a test payment method does when confirmed.
fn confirm_with(
    fake: &Fake,
    intent: &mut Value,
    payment_method: &str,
) -> Option<(StatusCode, Value)> {
    let card = fake
        .token_methods
        .get(payment_method)
        .map(String::as_str)
        .unwrap_or(payment_method);
    intent["payment_method"] = json!(payment_method);
    match card {
        "pm_card_visa" | "tok_visa" => {
            intent["status"] = json!("requires_capture");
            intent["amount_capturable"] = intent["amount"].clone();
            None
        }
        "pm_card_chargeDeclined" | "tok_chargeDeclined" => {
            intent["status"] = json!("requires_payment_method");
            Some(card_declined("generic_decline"))
        }
        "pm_card_chargeDeclinedInsufficientFunds" | "tok_chargeDeclinedInsufficientFunds" => {
            intent["status"] = json!("requires_payment_method");
            Some(card_declined("insufficient_funds"))
        }
        "pm_card_authenticationRequired" => {
            let id = intent["id"].as_str().unwrap_or_default().to_owned();
            intent["status"] = json!("requires_action");
            intent["next_action"] = json!({
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": format!("{}/3d_secure/{id}", fake.base_url),
                    "return_url": fake.return_urls.get(&id),
                },
            });
            None
        }
        other => Some(missing("payment_method", other)),
    }
}

async fn create_intent(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let (response, delay) = {
        let mut fake = lock(&state);
        let delay = match fake.delay_creates.take() {
            Some((count, delay)) if count > 0 => {
                fake.delay_creates = Some((count - 1, delay));
                Some(delay)
            }
            _ => None,
        };
        (make_intent(&mut fake, &headers, &body), delay)
    };
    // The intent is made (or replayed); only its answer is late.
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn make_intent(fake: &mut Fake, headers: &HeaderMap, body: &[u8]) -> Response {
    let (key, form) = match admit(fake, "POST", "/v1/payment_intents", headers, body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let amount: i64 = param(&form, "amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    if amount < 50 {
        let reply = stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "amount_too_small",
                   "message": "Amount must be at least $0.50 usd"}),
        );
        return answer(fake, key, reply);
    }
    let id = fake.id("pi");
    let mut intent = json!({
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": param(&form, "capture_method").unwrap_or("automatic"),
        "client_secret": format!("{id}_secret_fake"),
        "confirmation_method": "automatic",
        "created": now(),
        "currency": param(&form, "currency").unwrap_or("usd"),
        "livemode": false,
        "metadata": metadata(&form),
        "next_action": null,
        "last_payment_error": null,
        "latest_charge": null,
        "payment_method": null,
        "payment_method_types": ["card"],
        "status": "requires_payment_method",
    });
    if let Some(return_url) = param(&form, "return_url") {
        fake.return_urls.insert(id.clone(), return_url.to_owned());
    }
    let confirm = param(&form, "confirm") == Some("true");
    let payment_method = param(&form, "payment_method").map(str::to_owned);
    let failure = match (confirm, payment_method) {
        (true, Some(method)) => confirm_with(fake, &mut intent, &method),
        (false, Some(method)) => {
            intent["payment_method"] = json!(method);
            intent["status"] = json!("requires_confirmation");
            None
        }
        (_, None) => None,
    };
    fake.intents.insert(id, intent.clone());
    let reply = failure.unwrap_or((StatusCode::OK, intent));
    answer(fake, key, reply)
}

async fn retrieve_intent(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v1/payment_intents/{id}");
    if let Err(response) = admit(&mut fake, "GET", &path, &headers, &[]) {
        return *response;
    }
    match fake.intents.get(&id) {
        Some(intent) => (StatusCode::OK, Json(intent.clone())).into_response(),
        None => {
            let (status, body) = missing("payment_intent", &id);
            (status, Json(body)).into_response()
        }
    }
}

async fn confirm_intent(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v1/payment_intents/{id}/confirm");
    let (key, form) = match admit(&mut fake, "POST", &path, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let Some(mut intent) = fake.intents.get(&id).cloned() else {
        return answer(&mut fake, key, missing("payment_intent", &id));
    };
    let method = param(&form, "payment_method")
        .map(str::to_owned)
        .or_else(|| intent["payment_method"].as_str().map(str::to_owned));
    let failure = match method {
        Some(method) => confirm_with(&fake, &mut intent, &method),
        None => Some(unexpected_state(
            "no payment method to confirm with".to_owned(),
        )),
    };
    fake.intents.insert(id, intent.clone());
    let reply = failure.unwrap_or((StatusCode::OK, intent));
    answer(&mut fake, key, reply)
}

async fn capture_intent(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, delay) = {
        let mut fake = lock(&state);
        let path = format!("/v1/payment_intents/{id}/capture");
        let (key, form) = match admit(&mut fake, "POST", &path, &headers, &body) {
            Ok(admitted) => admitted,
            Err(response) => return *response,
        };
        let Some(mut intent) = fake.intents.get(&id).cloned() else {
            return answer(&mut fake, key, missing("payment_intent", &id));
        };
        if intent["status"] != "requires_capture" {
            let status = intent["status"].clone();
            let reply = unexpected_state(format!(
                "This PaymentIntent could not be captured because it has a status of {status}."
            ));
            return answer(&mut fake, key, reply);
        }
        let capturable = intent["amount_capturable"].as_i64().unwrap_or(0);
        let amount = param(&form, "amount_to_capture")
            .and_then(|a| a.parse().ok())
            .unwrap_or(capturable);
        if amount > capturable {
            let reply = stripe_error(
                StatusCode::BAD_REQUEST,
                json!({"type": "invalid_request_error", "code": "amount_too_large",
                       "message": "amount_to_capture is greater than amount_capturable"}),
            );
            return answer(&mut fake, key, reply);
        }
        let charge = fake.id("ch");
        intent["status"] = json!("succeeded");
        intent["amount_received"] = json!(amount);
        intent["amount_capturable"] = json!(0);
        intent["latest_charge"] = json!(charge);
        fake.intents.insert(id, intent.clone());
        fake.captures += 1;
        let delay = fake.delay_next_capture.take();
        (answer(&mut fake, key, (StatusCode::OK, intent)), delay)
    };
    // The capture is done; only its answer is late.
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

async fn cancel_intent(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v1/payment_intents/{id}/cancel");
    let (key, _) = match admit(&mut fake, "POST", &path, &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let Some(mut intent) = fake.intents.get(&id).cloned() else {
        return answer(&mut fake, key, missing("payment_intent", &id));
    };
    if intent["status"] == "succeeded" || intent["status"] == "canceled" {
        let status = intent["status"].clone();
        let reply = unexpected_state(format!(
            "You cannot cancel this PaymentIntent because it has a status of {status}."
        ));
        return answer(&mut fake, key, reply);
    }
    intent["status"] = json!("canceled");
    intent["canceled_at"] = json!(now());
    intent["cancellation_reason"] = json!("requested_by_customer");
    intent["amount_capturable"] = json!(0);
    fake.intents.insert(id, intent.clone());
    answer(&mut fake, key, (StatusCode::OK, intent))
}

async fn create_refund(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut fake = lock(&state);
    let (key, form) = match admit(&mut fake, "POST", "/v1/refunds", &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let intent_id = param(&form, "payment_intent")
        .unwrap_or_default()
        .to_owned();
    let Some(intent) = fake.intents.get(&intent_id).cloned() else {
        return answer(&mut fake, key, missing("payment_intent", &intent_id));
    };
    let received = intent["amount_received"].as_i64().unwrap_or(0);
    let refunded: i64 = fake
        .refunds
        .iter()
        .filter(|r| r["payment_intent"] == intent_id.as_str())
        .filter_map(|r| r["amount"].as_i64())
        .sum();
    let amount = param(&form, "amount")
        .and_then(|a| a.parse().ok())
        .unwrap_or(received - refunded);
    if received == 0 {
        let reply = stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "charge_not_captured",
                   "message": "This PaymentIntent has no captured charge to refund."}),
        );
        return answer(&mut fake, key, reply);
    }
    if amount > received - refunded {
        let reply = stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "charge_already_refunded",
                   "message": "Refund amount is greater than the unrefunded amount."}),
        );
        return answer(&mut fake, key, reply);
    }
    let id = fake.id("re");
    let refund = json!({
        "id": id,
        "object": "refund",
        "amount": amount,
        "charge": intent["latest_charge"].clone(),
        "created": now(),
        "currency": intent["currency"].clone(),
        "metadata": metadata(&form),
        "payment_intent": intent_id,
        "status": "succeeded",
    });
    fake.refunds.push(refund.clone());
    answer(&mut fake, key, (StatusCode::OK, refund))
}

async fn list_refunds(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    if let Err(response) = admit(&mut fake, "GET", "/v1/refunds", &headers, &[]) {
        return *response;
    }
    let intent_id = query.get("payment_intent").cloned();
    let data: Vec<Value> = fake
        .refunds
        .iter()
        .filter(|r| {
            intent_id
                .as_deref()
                .is_none_or(|id| r["payment_intent"] == id)
        })
        .cloned()
        .collect();
    Json(json!({"object": "list", "data": data, "has_more": false, "url": "/v1/refunds"}))
        .into_response()
}

async fn create_payment_method(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    let (key, form) = match admit(&mut fake, "POST", "/v1/payment_methods", &headers, &body) {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let Some(token) = param(&form, "card[token]").map(str::to_owned) else {
        let reply = stripe_error(
            StatusCode::BAD_REQUEST,
            json!({"type": "invalid_request_error", "code": "parameter_missing",
                   "param": "card", "message": "Missing required param: card."}),
        );
        return answer(&mut fake, key, reply);
    };
    let id = fake.id("pm");
    fake.token_methods.insert(id.clone(), token);
    let method = json!({
        "id": id,
        "object": "payment_method",
        "billing_details": {"address": null, "email": null, "name": null, "phone": null, "tax_id": null},
        "created": now(),
        "customer": null,
        "livemode": false,
        "metadata": {},
        "type": "card",
    });
    answer(&mut fake, key, (StatusCode::OK, method))
}
