//! The operational endpoints every service serves: `/healthz`, `/readyz`,
//! `/metrics` and `/openapi.json`.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{openapi::OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::{complete, document_problems};
use crate::problem::Problem;

/// How long one readiness check may take. Orchestrators probe often and with
/// short timeouts of their own; a check that hangs counts as failed.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency `/readyz` probes, such as the database or the broker.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// The key under `checks` in the `/readyz` answer.
    fn name(&self) -> &str;

    /// `Err` carries the reason, which is logged but not served: 5xx bodies
    /// say nothing internal.
    async fn check(&self) -> Result<(), String>;
}

/// Builds the router of the operational endpoints. `/openapi.json` serves
/// the service's document joined with theirs.
///
/// ```ignore
/// let (routes, openapi) = http::router(state).split_for_parts();
/// let routes = CommonRoutes::new(registry.clone(), openapi)
///     .readiness_check(DatabaseCheck(pool.clone()))
///     .router();
/// ```
pub struct CommonRoutes {
    registry: Registry,
    openapi: OpenApi,
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

struct Shared {
    registry: Registry,
    openapi: Value,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    /// The checks that failed at the last probe: an orchestrator probes
    /// every few seconds (the launcher every 100 ms), so a check is logged
    /// when it starts or stops failing, not at every probe.
    failing: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl CommonRoutes {
    /// `registry` is the one passed to [`crate::server::layered`], so that
    /// `/metrics` includes the HTTP metrics next to the service's own;
    /// `openapi` is the service's document.
    pub fn new(registry: Registry, openapi: OpenApi) -> Self {
        Self {
            registry,
            openapi,
            checks: Vec::new(),
        }
    }

    pub fn readiness_check(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    pub fn readiness_check_arc(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// A router to merge into the service's own, whatever its state type.
    pub fn router<S>(self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        self.api().split_for_parts().0
    }

    /// The operational endpoints with their documentation: the document is
    /// the service's and theirs, completed with the bearer scheme and the
    /// `Problem` schema. The router serves exactly this document.
    pub fn api<S>(self) -> OpenApiRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let operational: OpenApiRouter<Arc<Shared>> = OpenApiRouter::new()
            .routes(routes!(healthz))
            .routes(routes!(readyz))
            .routes(routes!(metrics))
            .routes(routes!(openapi));
        let mut document = self.openapi;
        document.merge(operational.get_openapi().clone());
        document_problems(&mut document, &[]);
        complete(&mut document);
        let shared = Arc::new(Shared {
            registry: self.registry,
            // The document never changes after start-up; render it once.
            openapi: serde_json::to_value(&document).unwrap_or_else(|error| {
                tracing::error!(%error, "the OpenAPI document does not serialize");
                Value::Null
            }),
            checks: self.checks,
            failing: std::sync::Mutex::default(),
        });
        let (router, _) = operational.split_for_parts();
        let mut api = OpenApiRouter::from(router.with_state(shared));
        *api.get_openapi_mut() = document;
        api
    }
}

/// `/healthz`'s answer.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// `/readyz`'s answer when every check passed.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// Always `ready`.
    status: &'static str,
    /// Each check's name and `ok`.
    checks: BTreeMap<String, String>,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = OK, description = "Alive", body = Health))
)]
async fn healthz() -> Response {
    axum::Json(Health { status: "ok" }).into_response()
}

/// Readiness: every dependency answered in time.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = OK, description = "Ready", body = Readiness),
        (status = SERVICE_UNAVAILABLE, description = "A dependency did not answer; `checks` names it"),
    )
)]
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    // Checks run concurrently so the answer takes as long as the slowest
    // check, bounded by the timeout, not their sum.
    let outcomes = futures::future::join_all(shared.checks.iter().map(|check| async move {
        let outcome = match tokio::time::timeout(READINESS_TIMEOUT, check.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(("failed", reason)),
            Err(_) => Err((
                "timed_out",
                format!("no answer within {READINESS_TIMEOUT:?}"),
            )),
        };
        (check.name().to_owned(), outcome)
    }))
    .await;

    let mut checks = BTreeMap::new();
    let mut failing = Vec::new();
    for (name, outcome) in outcomes {
        match outcome {
            Ok(()) => {
                if shared
                    .failing
                    .lock()
                    .is_ok_and(|mut failed| failed.remove(&name))
                {
                    tracing::info!(check = %name, "readiness check passes again");
                }
                checks.insert(name, "ok");
            }
            Err((state, reason)) => {
                if shared
                    .failing
                    .lock()
                    .is_ok_and(|mut failed| failed.insert(name.clone()))
                {
                    tracing::warn!(check = %name, %reason, "readiness check {state}");
                } else {
                    tracing::debug!(check = %name, %reason, "readiness check still {state}");
                }
                checks.insert(name.clone(), state);
                failing.push(name);
            }
        }
    }

    if failing.is_empty() {
        let checks = checks
            .into_iter()
            .map(|(name, state)| (name, state.to_owned()))
            .collect();
        axum::Json(Readiness {
            status: "ready",
            checks,
        })
        .into_response()
    } else {
        Problem::service_unavailable("not_ready", format!("Not ready: {}.", failing.join(", ")))
            .with("checks", json!(checks))
            .into_response()
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses(
        (status = OK, description = "Metrics", body = String, content_type = "text/plain"),
        (status = INTERNAL_SERVER_ERROR, description = "The metrics did not encode"),
    )
)]
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    if let Err(err) = encoder.encode(&shared.registry.gather(), &mut body) {
        tracing::error!(error = %err, "failed to encode metrics");
        return Problem::internal().into_response();
    }
    let content_type = HeaderValue::from_str(encoder.format_type())
        .unwrap_or_else(|_| HeaderValue::from_static("text/plain; version=0.0.4"));
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    security(()),
    responses((status = OK, description = "The OpenAPI 3.1 document", body = Object))
)]
async fn openapi(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.openapi.clone()).into_response()
}
