//! The webhook plugin against a local business server that checks every
//! signature the way a business would: parts delivered once, retried on 5xx
//! and timeouts, declined as `dispatch_failed` after the last try, a pending
//! delivery surviving a restart; and the business's signed answers.

// The business's server is a third party, not one of our documented routers.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatcher::settings::{DeliverySettings, WebhookSettings};
use dispatcher::Settings;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use shared_events::dispatch::DispatchEvent;
use sqlx::Connection;
use support::{ready, types};
use time::OffsetDateTime;
use uuid::Uuid;

const SECRET: &str = "business-webhook-secret-0001";

/// What the business server does with one request.
#[derive(Debug, Clone, Copy)]
enum Reply {
    Ok,
    ServerError,
    /// Answers only after longer than the dispatcher waits.
    Hang,
}

#[derive(Debug, Default)]
struct Seen {
    /// Every request, in order: (dispatch id header, signature valid, body).
    requests: Vec<(String, bool, Value)>,
    /// Dispatch ids the business accepted (answered 2xx to).
    accepted: Vec<String>,
    /// Statuses the dispatcher answered the business's inline confirms with.
    inline_answers: Vec<u16>,
    /// The `Heyblue-Event` of each request, in order.
    events: Vec<String>,
}

#[derive(Clone)]
struct Business {
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// What to do once the script is used up.
    then: Reply,
    seen: Arc<Mutex<Seen>>,
    /// When set, the dispatcher's URL: the business confirms each part there
    /// before it answers the delivery, as a fast business may.
    confirm_inline: Arc<Mutex<Option<String>>>,
}

fn hex_hmac(secret: &str, message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

async fn receive(State(business): State<Business>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let timestamp = header("heyblue-timestamp");
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&body);
    let expected = format!("v1={}", hex_hmac(SECRET, &signed));
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|ts| (OffsetDateTime::now_utc().unix_timestamp() - ts).abs() < 300);
    let valid = fresh && header("heyblue-signature") == expected;
    let dispatch_id = header("heyblue-dispatch-id");
    let event = header("heyblue-event");
    if event == "part_withdrawn" {
        let mut seen = business.seen.lock().expect("lock");
        seen.events.push(event);
        seen.requests.push((
            dispatch_id,
            valid,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ));
        return StatusCode::NO_CONTENT.into_response();
    }
    let reply = {
        let mut seen = business.seen.lock().expect("lock");
        seen.events.push(event);
        seen.requests.push((
            dispatch_id.clone(),
            valid,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
        ));
        business
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(business.then)
    };
    if !valid {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match reply {
        Reply::Ok => {
            let dispatcher = business.confirm_inline.lock().expect("lock").clone();
            if let Some(dispatcher) = dispatcher {
                let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let status = confirm(&dispatcher, &parsed).await;
                business
                    .seen
                    .lock()
                    .expect("lock")
                    .inline_answers
                    .push(status);
            }
            let mut seen = business.seen.lock().expect("lock");
            // A business drops repeats by dispatch id.
            if !seen.accepted.contains(&dispatch_id) {
                seen.accepted.push(dispatch_id);
            }
            axum::Json(json!({"reference": "WH-77"})).into_response()
        }
        Reply::ServerError => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK.into_response()
        }
    }
}

/// Confirms the part described by `part` at the dispatcher, signed.
async fn confirm(dispatcher: &str, part: &Value) -> u16 {
    let business = part["business_id"].as_str().unwrap_or_default();
    let body = json!({"order_id": part["order_id"], "action": "confirm"}).to_string();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let signature = format!(
        "v1={}",
        hex_hmac(SECRET, format!("{timestamp}.{body}").as_bytes())
    );
    reqwest::Client::new()
        .post(format!("{dispatcher}/v1/dispatch/webhooks/{business}"))
        .header("content-type", "application/json")
        .header("heyblue-timestamp", timestamp.to_string())
        .header("heyblue-signature", signature)
        .body(body)
        .send()
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}

/// Starts the business's server; returns its URL and what it saw.
async fn business_server(script: Vec<Reply>, then: Reply) -> (String, Arc<Mutex<Seen>>) {
    let (url, seen, _) = business_server_answering(script, then).await;
    (url, seen)
}

/// [`business_server`], and where to tell it the dispatcher's URL so that it
/// confirms each part while receiving it.
async fn business_server_answering(
    script: Vec<Reply>,
    then: Reply,
) -> (String, Arc<Mutex<Seen>>, Arc<Mutex<Option<String>>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let confirm_inline = Arc::new(Mutex::new(None));
    let business = Business {
        script: Arc::new(Mutex::new(script.into())),
        then,
        seen: seen.clone(),
        confirm_inline: confirm_inline.clone(),
    };
    let app = axum::Router::new()
        .route("/orders", axum::routing::post(receive))
        .with_state(business);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!(
        "http://{}/orders",
        listener.local_addr().expect("an address")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen, confirm_inline)
}

fn settings(attempts: u32, backoff: Duration) -> Settings {
    Settings {
        delivery: DeliverySettings {
            attempts,
            base_backoff: backoff,
            max_backoff: backoff * 4,
        },
        webhook: WebhookSettings {
            timeout: Duration::from_millis(500),
            ..WebhookSettings::default()
        },
        ..Settings::default()
    }
}

async fn with_webhook(settings: Settings, url: &str) -> (support::Dispatcher, Uuid) {
    let d = support::start_with(settings, None).await;
    let business = Uuid::new_v4();
    d.integrate(business, "webhook", json!({"url": url, "secret": SECRET}))
        .await
        .expect_status(200);
    (d, business)
}

async fn wait_for_requests(seen: &Arc<Mutex<Seen>>, count: usize) {
    test_harness::eventually(
        Duration::from_secs(20),
        &format!("the business got {count} requests"),
        || async { seen.lock().expect("lock").requests.len() >= count },
    )
    .await;
}

#[tokio::test]
async fn a_part_is_posted_signed_once_even_when_its_order_arrives_twice() {
    let (url, seen) = business_server(vec![], Reply::Ok).await;
    let (d, business) = with_webhook(settings(3, Duration::from_millis(50)), &url).await;
    let order = Uuid::new_v4();
    let paid = ready(order, &[business]);
    d.publish_ready(&paid).await;
    d.publish_ready(&paid).await;

    let events = d.events_of(order, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requests = seen.lock().expect("lock").requests.clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (dispatch_id, valid, body) = &requests[0];
    assert!(valid, "the signature checks out");
    assert_eq!(body["dispatch_id"], json!(dispatch_id));
    assert_eq!(body["order_id"], json!(order));
    assert_eq!(body["business_id"], json!(business));
    assert_eq!(body["lines"][0]["title"], "Coffee beans");
    assert_eq!(body["shipping_address"]["postal_code"], "12345");
    match &events[..] {
        [DispatchEvent::OrderDispatched(e)] => {
            assert_eq!(e.dispatch_id.to_string(), *dispatch_id);
            assert_eq!(e.reference.as_deref(), Some("WH-77"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");
    // The delivery's job ended in the commit that recorded it.
    let mut conn = sqlx::PgConnection::connect(&d.db.admin_url)
        .await
        .expect("admin connection");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatcher.job_queue")
        .fetch_one(&mut conn)
        .await
        .expect("count jobs");
    assert_eq!(jobs, 0, "the delivery job left the queue");
}

#[tokio::test]
async fn a_delivery_is_retried_after_server_errors_and_timeouts_with_the_same_dispatch_id() {
    let (url, seen) = business_server(
        vec![Reply::ServerError, Reply::Hang, Reply::ServerError],
        Reply::Ok,
    )
    .await;
    let (d, business) = with_webhook(settings(5, Duration::from_millis(50)), &url).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;

    let events = d.events_of(order, 1).await;
    assert_eq!(types(&events), ["order_dispatched"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 4, "{:?}", seen.requests);
    let ids: Vec<&String> = seen.requests.iter().map(|(id, _, _)| id).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one dispatch id throughout: {ids:?}"
    );
    assert!(seen.requests.iter().all(|(_, valid, _)| *valid));
    assert_eq!(seen.accepted.len(), 1);
}

#[tokio::test]
async fn after_the_last_try_the_part_is_declined_as_dispatch_failed() {
    let (url, seen) = business_server(vec![], Reply::ServerError).await;
    let (d, business) = with_webhook(settings(3, Duration::from_millis(50)), &url).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;

    let events = d.events_of(order, 2).await;
    assert_eq!(types(&events), ["dispatch_failed", "order_declined"]);
    match &events[..] {
        [DispatchEvent::DispatchFailed(failed), DispatchEvent::OrderDeclined(declined)] => {
            assert!(failed.error.contains("500"), "{}", failed.error);
            assert_eq!(declined.reason, "dispatch_failed");
            assert_eq!(declined.dispatch_id, failed.dispatch_id);
        }
        other => panic!("unexpected {other:?}"),
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.lock().expect("lock").requests.len(), 3);
    let part = &d.queue(business, "").await[0];
    assert_eq!(part["status"], "declined");
    assert_eq!(part["reason"], "dispatch_failed");
    let metrics = d.api.metrics().await;
    assert!(
        metrics.contains("dispatch_failed_total{plugin=\"webhook\"} 1"),
        "an operator sees the failure: {metrics}"
    );
}

#[tokio::test]
async fn a_business_that_refuses_the_part_is_not_retried() {
    let (url, seen) = business_server(vec![], Reply::Ok).await;
    // The business checks signatures: with another secret it answers 401.
    let d = support::start_with(settings(5, Duration::from_millis(50)), None).await;
    let business = Uuid::new_v4();
    d.integrate(
        business,
        "webhook",
        json!({"url": url, "secret": "not-the-business-secret"}),
    )
    .await
    .expect_status(200);
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;

    let events = d.events_of(order, 2).await;
    assert_eq!(types(&events), ["dispatch_failed", "order_declined"]);
    assert_eq!(seen.lock().expect("lock").requests.len(), 1);
}

#[tokio::test]
async fn a_delivery_pending_across_a_restart_is_made_once() {
    let (url, seen) = business_server(vec![Reply::ServerError], Reply::Ok).await;
    // The retry waits 2.5 to 5 s: long enough to restart in between.
    let (d, business) = with_webhook(settings(5, Duration::from_secs(5)), &url).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    wait_for_requests(&seen, 1).await;

    let d = d.restart().await;
    let events = d.events_of(order, 1).await;
    assert_eq!(types(&events), ["order_dispatched"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.requests.len(), 2, "{:?}", seen.requests);
    assert_eq!(seen.accepted.len(), 1);
}

/// Sends a business's answer to the dispatcher, signed with `secret` at `at`.
async fn answer(
    d: &support::Dispatcher,
    business: Uuid,
    body: &Value,
    secret: &str,
    at: OffsetDateTime,
) -> test_harness::Answer {
    let body = body.to_string();
    let timestamp = at.unix_timestamp();
    let signature = format!(
        "v1={}",
        hex_hmac(secret, format!("{timestamp}.{body}").as_bytes())
    );
    d.api
        .post(&format!("/v1/dispatch/webhooks/{business}"))
        .header("heyblue-timestamp", &timestamp.to_string())
        .header("heyblue-signature", &signature)
        .raw_json(body)
        .send()
        .await
}

#[tokio::test]
async fn a_business_answers_by_signed_webhook_and_bad_or_stale_signatures_are_refused() {
    let (url, _seen) = business_server(vec![], Reply::Ok).await;
    let (d, business) = with_webhook(settings(3, Duration::from_millis(50)), &url).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.events_of(order, 1).await;
    let now = OffsetDateTime::now_utc();
    let confirm = json!({"order_id": order, "action": "confirm", "reference": "R-9"});

    answer(&d, business, &confirm, "another-secret-entirely", now)
        .await
        .expect_problem(401, "invalid_signature");
    answer(
        &d,
        business,
        &confirm,
        SECRET,
        now - time::Duration::hours(1),
    )
    .await
    .expect_problem(401, "invalid_signature");
    d.api
        .post(&format!("/v1/dispatch/webhooks/{business}"))
        .raw_json(confirm.to_string())
        .send()
        .await
        .expect_problem(401, "invalid_signature");
    // A business on the portal has no webhook secret to sign with.
    answer(&d, Uuid::new_v4(), &confirm, SECRET, now)
        .await
        .expect_problem(401, "invalid_signature");
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");

    let confirmed = answer(&d, business, &confirm, SECRET, now)
        .await
        .expect_status(200)
        .body;
    assert_eq!(confirmed["status"], "confirmed");
    answer(
        &d,
        business,
        &json!({"order_id": order, "action": "shipped", "carrier": "DHL"}),
        SECRET,
        now,
    )
    .await
    .expect_problem(422, "invalid_body");
    answer(
        &d,
        business,
        &json!({"order_id": order, "action": "teleport"}),
        SECRET,
        now,
    )
    .await
    .expect_problem(422, "invalid_body");
    answer(
        &d,
        business,
        &json!({"order_id": Uuid::new_v4(), "action": "confirm"}),
        SECRET,
        now,
    )
    .await
    .expect_problem(404, "not_found");
    answer(
        &d,
        business,
        &json!({"order_id": order, "action": "shipped", "carrier": "DHL", "tracking_number": "JD01"}),
        SECRET,
        now,
    )
    .await
    .expect_status(200);
    answer(
        &d,
        business,
        &json!({"order_id": order, "action": "confirm"}),
        SECRET,
        now,
    )
    .await
    .expect_problem(409, "invalid_transition");

    let events = d.events_of(order, 3).await;
    assert_eq!(
        types(&events),
        ["order_dispatched", "order_confirmed", "order_shipped"]
    );
}

#[tokio::test]
async fn a_business_that_confirms_while_receiving_its_part_is_heard() {
    let (url, seen, confirm_inline) = business_server_answering(vec![], Reply::Ok).await;
    let (d, business) = with_webhook(settings(3, Duration::from_millis(50)), &url).await;
    *confirm_inline.lock().expect("lock") = Some(d.service.base_url.clone());
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;

    let events = d.events_of(order, 2).await;
    assert_eq!(types(&events), ["order_dispatched", "order_confirmed"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d.events_now(order).await.len(), 2);
    assert_eq!(seen.lock().expect("lock").inline_answers, [200]);
    assert_eq!(d.queue(business, "").await[0]["status"], "confirmed");
}

#[tokio::test]
async fn a_part_withdrawn_after_it_reached_the_business_is_called_back() {
    let (url, seen) = business_server(vec![], Reply::Ok).await;
    let (d, business) = with_webhook(settings(3, Duration::from_millis(50)), &url).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    d.events_of(order, 1).await;

    d.withdraw(order).await.expect_status(200);
    wait_for_requests(&seen, 2).await;
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.events, ["part_placed", "part_withdrawn"]);
    let (dispatch_id, valid, body) = &seen.requests[1];
    assert!(valid, "the call-back is signed");
    assert_eq!(*dispatch_id, seen.requests[0].0);
    assert_eq!(body["order_id"], json!(order));
    assert_eq!(body["dispatch_id"], json!(dispatch_id));
}
