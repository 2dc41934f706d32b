//! What keeps a service answering when it is asked too much: a cap on the
//! requests in flight that refuses the excess at once, and a deadline per
//! request. Both answer `503` problem+json with `Retry-After`, and both are
//! counted in `http_requests_refused_total{reason}`.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
    BoxError,
};
use prometheus::IntCounterVec;
use tokio::sync::Semaphore;

use crate::problem::Problem;

/// The operational endpoints, which an orchestrator probes to decide
/// whether to restart or route to the service. They have their own budget,
/// so a service busy with real work still says it is alive.
pub(crate) const OPERATIONAL_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Requests in flight allowed on the operational endpoints. Small: probes
/// and scrapes come a few at a time, and a flood of them must not become a
/// way around the cap (`/readyz` uses a database connection).
pub(crate) const OPERATIONAL_BUDGET: usize = 16;

/// What a refused client is told to wait before it tries again. Short: a
/// refusal means the service is busy right now, not that it is down.
const RETRY_AFTER_SECONDS: HeaderValue = HeaderValue::from_static("1");

/// The budgets requests draw from. Clones share them.
#[derive(Clone)]
pub(crate) struct Admission {
    requests: Arc<Semaphore>,
    operational: Arc<Semaphore>,
    refused: IntCounterVec,
}

impl Admission {
    pub(crate) fn new(max_concurrent_requests: usize, refused: IntCounterVec) -> Self {
        Self {
            requests: Arc::new(Semaphore::new(max_concurrent_requests)),
            operational: Arc::new(Semaphore::new(OPERATIONAL_BUDGET)),
            refused,
        }
    }
}

/// Runs the request if its budget has room, else answers `503 overloaded`
/// at once. Refusing instead of waiting for room is the point: a queue would
/// hold every waiting client's connection and memory, and under a steady
/// overload it only grows until clients time out anyway. The permit is held
/// until the response head is ready, or until the request is dropped (its
/// client went away, or the timeout inside ended it).
pub(crate) async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response {
    let budget = if OPERATIONAL_PATHS.contains(&request.uri().path()) {
        &admission.operational
    } else {
        &admission.requests
    };
    match Arc::clone(budget).try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => {
            admission.refused.with_label_values(&["overloaded"]).inc();
            overloaded().into_response()
        }
    }
}

/// `503 overloaded`: too many requests in flight.
pub fn overloaded() -> Problem {
    Problem::service_unavailable(
        "overloaded",
        "The service is handling as many requests as it can. Try again shortly.",
    )
    .with_header(header::RETRY_AFTER, RETRY_AFTER_SECONDS)
}

/// `503 request_timeout`: the request ran past its deadline. 503 rather than
/// 504 because no gateway is involved: it is this service that was too slow.
pub fn request_timed_out(limit: Duration) -> Problem {
    Problem::service_unavailable(
        "request_timeout",
        format!(
            "The request did not finish within {} ms.",
            limit.as_millis()
        ),
    )
    .with_header(header::RETRY_AFTER, RETRY_AFTER_SECONDS)
}

/// Turns the error of `tower::timeout::Timeout` into its answer (for axum's
/// `HandleErrorLayer`). The timeout drops the handler's future, which frees
/// its database connection and its permit; a handler that must finish even
/// then (an idempotent one, see [`crate::idempotency`]) runs in a task of
/// its own and is not affected.
pub(crate) fn timeout_answer(
    limit: Duration,
    refused: IntCounterVec,
) -> impl Fn(BoxError) -> std::future::Ready<Response> + Clone + Send + 'static {
    move |error: BoxError| {
        let response = if error.is::<tower::timeout::error::Elapsed>() {
            refused.with_label_values(&["request_timeout"]).inc();
            tracing::warn!(limit_ms = limit.as_millis(), "request timed out");
            request_timed_out(limit).into_response()
        } else {
            // The routes below are infallible, so only the timeout itself
            // can fail here; anything else is logged and hidden.
            tracing::error!(%error, "request failed in the middleware");
            Problem::internal().into_response()
        };
        std::future::ready(response)
    }
}
