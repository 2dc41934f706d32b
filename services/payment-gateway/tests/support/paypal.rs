//! A local server that speaks PayPal's REST API as the provider uses it:
//! OAuth2 client credentials with a TTL the test sets, Orders v2 with
//! `intent: AUTHORIZE`, authorizations, captures, refunds, their GETs,
//! `verify-webhook-signature`, PayPal's error shape, and `PayPal-Request-Id`
//! replay.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, value::RawValue, Value};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "heyblue-client";
pub const CLIENT_SECRET: &str = "heyblue-secret";
pub const WEBHOOK_ID: &str = "WH-HEYBLUE-1";

#[derive(Clone)]
struct Order {
    id: String,
    status: &'static str,
    amount: Value,
    custom_id: Option<String>,
    approved: bool,
    authorization: Option<(String, &'static str)>,
    capture: Option<(String, &'static str, Value)>,
    refunds: Vec<Value>,
}

#[derive(Default)]
struct Fake {
    base_url: String,
    next_id: u64,
    token_ttl: Duration,
    tokens: HashMap<String, Instant>,
    token_requests: usize,
    orders: HashMap<String, Order>,
    replies: HashMap<String, (StatusCode, Value)>,
    request_ids: Vec<(String, String)>,
}

impl Fake {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:013}", self.next_id)
    }

    fn order_json(&self, order: &Order) -> Value {
        let mut payments = serde_json::Map::new();
        if let Some((id, status)) = &order.authorization {
            payments.insert(
                "authorizations".to_owned(),
                json!([{"id": id, "status": status, "amount": order.amount, "custom_id": order.custom_id}]),
            );
        }
        if let Some((id, status, amount)) = &order.capture {
            payments.insert(
                "captures".to_owned(),
                json!([{"id": id, "status": status, "amount": amount, "custom_id": order.custom_id}]),
            );
        }
        if !order.refunds.is_empty() {
            payments.insert("refunds".to_owned(), json!(order.refunds));
        }
        let mut links = vec![json!({
            "href": format!("{}/v2/checkout/orders/{}", self.base_url, order.id),
            "rel": "self", "method": "GET"
        })];
        if !order.approved {
            links.push(json!({
                "href": format!("{}/checkoutnow?token={}", self.base_url, order.id),
                "rel": "payer-action", "method": "GET"
            }));
        }
        json!({
            "id": order.id,
            "intent": "AUTHORIZE",
            "status": order.status,
            "purchase_units": [{
                "reference_id": order.custom_id,
                "custom_id": order.custom_id,
                "amount": order.amount,
                "payments": payments,
            }],
            "links": links,
        })
    }

    fn order_with_authorization(&self, authorization_id: &str) -> Option<String> {
        self.orders
            .values()
            .find(|o| {
                o.authorization
                    .as_ref()
                    .is_some_and(|(id, _)| id == authorization_id)
            })
            .map(|o| o.id.clone())
    }

    fn order_with_capture(&self, capture_id: &str) -> Option<String> {
        self.orders
            .values()
            .find(|o| {
                o.capture
                    .as_ref()
                    .is_some_and(|(id, _, _)| id == capture_id)
            })
            .map(|o| o.id.clone())
    }
}

type Shared = Arc<Mutex<Fake>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Fake> {
    state.lock().expect("fake PayPal state poisoned")
}

pub struct FakePayPal {
    pub base_url: String,
    state: Shared,
}

impl FakePayPal {
    pub async fn start(token_ttl: Duration) -> FakePayPal {
        let state: Shared = Arc::default();
        lock(&state).token_ttl = token_ttl;
        let app = Router::new()
            .route("/v1/oauth2/token", post(token))
            .route("/v2/checkout/orders", post(create_order))
            .route("/v2/checkout/orders/{id}", get(get_order))
            .route("/v2/checkout/orders/{id}/authorize", post(authorize_order))
            .route("/v2/payments/authorizations/{id}", get(get_authorization))
            .route("/v2/payments/authorizations/{id}/capture", post(capture))
            .route("/v2/payments/authorizations/{id}/void", post(void))
            .route("/v2/payments/captures/{id}", get(get_capture))
            .route("/v2/payments/captures/{id}/refund", post(refund))
            .route(
                "/v1/notifications/verify-webhook-signature",
                post(verify_webhook_signature),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake PayPal");
        let base_url = format!("http://{}", listener.local_addr().expect("local addr"));
        lock(&state).base_url = base_url.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake PayPal serves");
        });
        FakePayPal { base_url, state }
    }

    pub fn token_requests(&self) -> usize {
        lock(&self.state).token_requests
    }

    /// Every token issued so far stops working (PayPal revoked or expired
    /// them), whatever the client thinks their lifetime is.
    pub fn expire_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    /// The buyer approves the order at PayPal.
    pub fn approve(&self, order_id: &str) {
        let mut fake = lock(&self.state);
        let order = fake.orders.get_mut(order_id).expect("an order to approve");
        order.approved = true;
        order.status = "APPROVED";
    }

    pub fn order(&self, order_id: &str) -> Option<Value> {
        let fake = lock(&self.state);
        fake.orders.get(order_id).map(|o| fake.order_json(o))
    }

    /// `(path, PayPal-Request-Id)` of every write.
    pub fn request_ids(&self) -> Vec<(String, String)> {
        lock(&self.state).request_ids.clone()
    }

    /// The headers PayPal sends with a webhook delivery of `body`.
    pub fn webhook_headers(body: &[u8]) -> Vec<(&'static str, String)> {
        let transmission_id = "b2384410-f8d2-11e4-8bf3-77c8bb0d9d7f".to_owned();
        let time = "2026-11-06T14:30:00Z".to_owned();
        vec![
            ("paypal-auth-algo", "SHA256withRSA".to_owned()),
            (
                "paypal-cert-url",
                "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1".to_owned(),
            ),
            (
                "paypal-transmission-sig",
                signature(&transmission_id, &time, WEBHOOK_ID, body),
            ),
            ("paypal-transmission-id", transmission_id),
            ("paypal-transmission-time", time),
        ]
    }
}

/// The fake's stand-in for PayPal's RSA signature: a digest over the same
/// fields PayPal signs (transmission id, time, webhook id, the body).
fn signature(transmission_id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(format!("{transmission_id}|{time}|{webhook_id}|").as_bytes());
    digest.update(body);
    base64::engine::general_purpose::STANDARD.encode(digest.finalize())
}

fn error(status: StatusCode, name: &str, issue: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({
            "name": name,
            "message": message,
            "debug_id": "f00dfeed",
            "details": [{"issue": issue, "description": message}],
        }),
    )
}

fn not_found(what: &str) -> (StatusCode, Value) {
    error(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_FOUND",
        "INVALID_RESOURCE_ID",
        &format!("Specified resource ID does not exist: {what}"),
    )
}

fn reply((status, body): (StatusCode, Value)) -> Response {
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (status, Json(body)).into_response()
}

/// Checks the bearer token, records the request id, and replays an
/// answer already given for it.
fn admit(
    fake: &mut Fake,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<String>, Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let valid = token
        .and_then(|t| fake.tokens.get(t))
        .is_some_and(|expires| Instant::now() < *expires);
    if !valid {
        return Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_token",
                        "error_description": "Access Token not found in cache"})),
            )
                .into_response(),
        ));
    }
    let request_id = headers
        .get("paypal-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(request_id) = &request_id {
        fake.request_ids.push((path.to_owned(), request_id.clone()));
        if let Some(stored) = fake.replies.get(request_id) {
            return Err(Box::new(reply(stored.clone())));
        }
    }
    Ok(request_id)
}

fn answer(fake: &mut Fake, request_id: Option<String>, answer: (StatusCode, Value)) -> Response {
    if let Some(request_id) = request_id {
        fake.replies.insert(request_id, answer.clone());
    }
    reply(answer)
}

async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut fake = lock(&state);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client Authentication failed"})),
        )
            .into_response();
    }
    if !form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    fake.token_requests += 1;
    let access_token = fake.id("A21AA");
    let ttl = fake.token_ttl;
    fake.tokens
        .insert(access_token.clone(), Instant::now() + ttl);
    Json(json!({
        "scope": "https://uri.paypal.com/services/payments/payment",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": ttl.as_secs(),
        "nonce": "2026-11-06T14:30:00Zfake",
    }))
    .into_response()
}

#[derive(Deserialize)]
struct CreateOrder {
    intent: String,
    purchase_units: Vec<PurchaseUnit>,
}

#[derive(Deserialize)]
struct PurchaseUnit {
    custom_id: Option<String>,
    amount: Value,
}

async fn create_order(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut fake = lock(&state);
    let request_id = match admit(&mut fake, "/v2/checkout/orders", &headers) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Ok(request) = serde_json::from_slice::<CreateOrder>(&body) else {
        let bad = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "MALFORMED_REQUEST_JSON",
            "bad JSON",
        );
        return answer(&mut fake, request_id, bad);
    };
    let Some(unit) = request.purchase_units.into_iter().next() else {
        let bad = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "MISSING_REQUIRED_PARAMETER",
            "purchase_units",
        );
        return answer(&mut fake, request_id, bad);
    };
    if request.intent != "AUTHORIZE" && request.intent != "CAPTURE" {
        let bad = error(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "INVALID_PARAMETER_VALUE",
            "intent",
        );
        return answer(&mut fake, request_id, bad);
    }
    let id = fake.id("5O19");
    let order = Order {
        id: id.clone(),
        status: "PAYER_ACTION_REQUIRED",
        amount: unit.amount,
        custom_id: unit.custom_id,
        approved: false,
        authorization: None,
        capture: None,
        refunds: Vec::new(),
    };
    let body = fake.order_json(&order);
    fake.orders.insert(id, order);
    answer(&mut fake, request_id, (StatusCode::CREATED, body))
}

async fn get_order(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    if let Err(response) = admit(&mut fake, "", &headers) {
        return *response;
    }
    match fake.orders.get(&id) {
        Some(order) => reply((StatusCode::OK, fake.order_json(order))),
        None => reply(not_found(&id)),
    }
}

async fn authorize_order(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v2/checkout/orders/{id}/authorize");
    let request_id = match admit(&mut fake, &path, &headers) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Some(mut order) = fake.orders.get(&id).cloned() else {
        return answer(&mut fake, request_id, not_found(&id));
    };
    if !order.approved {
        let refused = error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "ORDER_NOT_APPROVED",
            "Payer has not yet approved the Order for payment.",
        );
        return answer(&mut fake, request_id, refused);
    }
    if order.authorization.is_some() {
        let refused = error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "ORDER_ALREADY_AUTHORIZED",
            "Order already authorized.",
        );
        return answer(&mut fake, request_id, refused);
    }
    order.authorization = Some((fake.id("0VF5"), "CREATED"));
    order.status = "COMPLETED";
    let body = fake.order_json(&order);
    fake.orders.insert(id, order);
    answer(&mut fake, request_id, (StatusCode::CREATED, body))
}

async fn get_authorization(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    if let Err(response) = admit(&mut fake, "", &headers) {
        return *response;
    }
    let Some(order_id) = fake.order_with_authorization(&id) else {
        return reply(not_found(&id));
    };
    let order = &fake.orders[&order_id];
    let status = order.authorization.as_ref().map(|(_, s)| *s);
    reply((
        StatusCode::OK,
        json!({"id": id, "status": status, "amount": order.amount, "custom_id": order.custom_id}),
    ))
}

#[derive(Deserialize)]
struct CaptureBody {
    amount: Option<Value>,
}

async fn capture(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v2/payments/authorizations/{id}/capture");
    let request_id = match admit(&mut fake, &path, &headers) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Some(order_id) = fake.order_with_authorization(&id) else {
        return answer(&mut fake, request_id, not_found(&id));
    };
    let mut order = fake.orders[&order_id].clone();
    if order.authorization.as_ref().map(|(_, s)| *s) != Some("CREATED") {
        let refused = error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "AUTHORIZATION_ALREADY_CAPTURED",
            "Authorization has already been captured or voided.",
        );
        return answer(&mut fake, request_id, refused);
    }
    let amount = serde_json::from_slice::<CaptureBody>(&body)
        .ok()
        .and_then(|b| b.amount)
        .unwrap_or_else(|| order.amount.clone());
    let capture_id = fake.id("3C67");
    order.capture = Some((capture_id.clone(), "COMPLETED", amount.clone()));
    order.authorization = order.authorization.map(|(id, _)| (id, "CAPTURED"));
    fake.orders.insert(order_id, order.clone());
    let body = json!({"id": capture_id, "status": "COMPLETED", "amount": amount,
                      "custom_id": order.custom_id, "final_capture": true});
    answer(&mut fake, request_id, (StatusCode::CREATED, body))
}

async fn void(State(state): State<Shared>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v2/payments/authorizations/{id}/void");
    let request_id = match admit(&mut fake, &path, &headers) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Some(order_id) = fake.order_with_authorization(&id) else {
        return answer(&mut fake, request_id, not_found(&id));
    };
    let order = fake.orders.get_mut(&order_id).expect("order exists");
    if order.authorization.as_ref().map(|(_, s)| *s) != Some("CREATED") {
        let refused = error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "PREVIOUSLY_CAPTURED",
            "Authorization has been previously captured and hence cannot be voided.",
        );
        return answer(&mut fake, request_id, refused);
    }
    order.authorization = order.authorization.take().map(|(id, _)| (id, "VOIDED"));
    answer(&mut fake, request_id, (StatusCode::NO_CONTENT, Value::Null))
}

async fn get_capture(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut fake = lock(&state);
    if let Err(response) = admit(&mut fake, "", &headers) {
        return *response;
    }
    let Some(order_id) = fake.order_with_capture(&id) else {
        return reply(not_found(&id));
    };
    let (capture_id, status, amount) = fake.orders[&order_id].capture.clone().expect("captured");
    reply((
        StatusCode::OK,
        json!({"id": capture_id, "status": status, "amount": amount}),
    ))
}

#[derive(Deserialize)]
struct RefundBody {
    amount: Option<Value>,
    custom_id: Option<String>,
}

async fn refund(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    let path = format!("/v2/payments/captures/{id}/refund");
    let request_id = match admit(&mut fake, &path, &headers) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let Some(order_id) = fake.order_with_capture(&id) else {
        return answer(&mut fake, request_id, not_found(&id));
    };
    let request: RefundBody = serde_json::from_slice(&body).unwrap_or(RefundBody {
        amount: None,
        custom_id: None,
    });
    let refund_id = fake.id("1JU0");
    let order = fake.orders.get_mut(&order_id).expect("order exists");
    let amount = request.amount.unwrap_or_else(|| {
        order
            .capture
            .as_ref()
            .map(|c| c.2.clone())
            .unwrap_or_default()
    });
    let refund = json!({"id": refund_id, "status": "COMPLETED", "amount": amount,
                        "custom_id": request.custom_id});
    order.refunds.push(refund.clone());
    answer(&mut fake, request_id, (StatusCode::CREATED, refund))
}

#[derive(Deserialize)]
struct VerifyRequest {
    auth_algo: String,
    cert_url: String,
    transmission_id: String,
    transmission_sig: String,
    transmission_time: String,
    webhook_id: String,
    webhook_event: Box<RawValue>,
}

async fn verify_webhook_signature(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut fake = lock(&state);
    if let Err(response) = admit(&mut fake, "", &headers) {
        return *response;
    }
    let Ok(request) = serde_json::from_slice::<VerifyRequest>(&body) else {
        return reply(error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "MISSING_REQUIRED_PARAMETER",
            "Invalid request - see details",
        ));
    };
    let expected = signature(
        &request.transmission_id,
        &request.transmission_time,
        &request.webhook_id,
        request.webhook_event.get().as_bytes(),
    );
    let genuine = request.webhook_id == WEBHOOK_ID
        && request.auth_algo == "SHA256withRSA"
        && !request.cert_url.is_empty()
        && request.transmission_sig == expected;
    let status = if genuine { "SUCCESS" } else { "FAILURE" };
    reply((StatusCode::OK, json!({"verification_status": status})))
}
