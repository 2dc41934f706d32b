//! Request metrics: a counter and a latency histogram per method, matched
//! route and status, and a counter of requests refused or cut off to keep
//! the service answering, registered into the service's own registry.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

const LABELS: [&str; 3] = ["method", "path", "status"];

/// Label for requests no route matched. Using the raw path instead would let
/// any client create unbounded label values.
const UNMATCHED_PATH: &str = "unmatched";

#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    /// By `reason`: `overloaded` (over the concurrency cap) or
    /// `request_timeout` (past the request deadline).
    pub(crate) refused: IntCounterVec,
}

impl HttpMetrics {
    /// Creates the collectors and registers them into `registry`.
    ///
    /// Registering twice into one registry fails; the middleware then still
    /// works with collectors nobody scrapes, which only happens when a test
    /// layers two routers over one registry and is not worth failing start-up
    /// over.
    pub(crate) fn new(registry: &Registry) -> Self {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served."),
            &LABELS,
        )
        .expect("metric name, help and labels are valid constants");
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving an HTTP request to producing its response head.",
            ),
            &LABELS,
        )
        .expect("metric name, help and labels are valid constants");
        let refused = IntCounterVec::new(
            Opts::new(
                "http_requests_refused_total",
                "HTTP requests answered 503 to keep the service responsive: over the concurrency cap, or past the request timeout.",
            ),
            &["reason"],
        )
        .expect("metric name, help and labels are valid constants");

        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(duration.clone()),
            Box::new(refused.clone()),
        ] {
            if let Err(err) = registry.register(collector) {
                tracing::warn!(error = %err, "HTTP metrics are not registered");
            }
        }
        Self {
            requests,
            duration,
            refused,
        }
    }
}

pub(crate) async fn track(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_PATH, MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();

    let response = next.run(request).await;

    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), path.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics
        .duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
