//! Running a service's router: the middleware stack every service shares
//! ([`layered`]), the operational endpoints ([`CommonRoutes`]), the OpenAPI
//! document generated from the handlers, and serving with graceful shutdown.
//!
//! A service wires them as:
//!
//! ```ignore
//! let (routes, openapi) = http::router(state).split_for_parts();
//! let router = routes
//!     .merge(CommonRoutes::new(registry.clone(), openapi).readiness_check(db).router());
//! let app = layered(router, &config.http, &registry);
//! serve(listener, app, shutdown).await?;
//! ```

mod metrics;
mod openapi;
mod routes;

use std::{any::Any, net::SocketAddr};

use axum::{
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderName, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    Router,
};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use trace_context::{RequestId, TraceParent};
use tracing::Level;

pub use openapi::{
    complete, document_problems, documented_operations, service_api, BEARER_SCHEME,
    PROBLEM_CODES_EXTENSION,
};
pub use routes::{CommonRoutes, ReadinessCheck, READINESS_TIMEOUT};

use crate::{
    config::HttpConfig,
    problem::{method_not_allowed_fallback, not_found_fallback, Problem},
};

/// The header that carries the request id in and out.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Wraps a service's complete router (its routes and [`CommonRoutes`], state
/// already applied) in the shared middleware, outermost first:
///
/// 1. request id: the incoming `x-request-id` is kept, else a UUID is
///    assigned; either way the response echoes it;
/// 2. `Authorization` and `Cookie` are marked sensitive, so no logger
///    prints them;
/// 3. a tracing span per request with `method`, `path`, `request_id`,
///    `trace_id` (and `user_id` once [`crate::auth::AuthUser`] has run); the
///    request runs in the trace context of its `traceparent` header (or a new
///    trace), which the outbox passes on to the events it writes;
/// 4. `http_requests_total` and `http_request_duration_seconds` by method,
///    matched route and status, registered into `registry`;
/// 5. bare error responses (axum's 405, tower-http's 413, a handler's bare
///    `StatusCode`) rewritten into problem+json;
/// 6. a panic becomes a 500 `internal_error` that reveals nothing;
/// 7. bodies over `body_limit_bytes` answer 413, whether the
///    `Content-Length` says so up front or a chunked body turns out too large
///    while it is read.
///
/// Unknown paths answer 404 `not_found` and known paths with another method
/// 405 `method_not_allowed`. Call it once, on the finished router: the 405
/// fallback only covers routes that exist when it is applied.
pub fn layered(router: Router, config: &HttpConfig, registry: &Registry) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let http_metrics = metrics::HttpMetrics::new(registry);

    // Listed innermost first: each `Router::layer` call wraps the previous
    // ones, and boxing between them keeps every stage's body types simple.
    router
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_response))
                // Both limits are needed: the tower-http layer refuses an
                // announced oversized body before reading it and caps bodies
                // of unknown length while they stream; axum's limit is what
                // its body extractors check (its own default is 2 MB, above
                // DESIGN's 1 MiB).
                .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
                .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
        )
        .layer(middleware::from_fn_with_state(
            config.body_limit_bytes,
            drain_announced_oversized,
        ))
        .layer(middleware::map_response(problem_for_bare_errors))
        .layer(middleware::from_fn_with_state(http_metrics, metrics::track))
        .layer(middleware::from_fn(in_trace_context))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                ),
        )
}

/// Bodies up to this size are read and thrown away before a 413 is sent.
const DRAIN_AT_MOST: u64 = 16 * 1024 * 1024;
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers 413 to a body whose `Content-Length` is over the limit, after
/// reading (and discarding) it. Answering and closing while the client is
/// still uploading makes the kernel reset the connection, and the client may
/// then see a broken pipe instead of the 413; a bounded drain lets it finish
/// sending and read the answer (what nginx calls a lingering close).
async fn drain_announced_oversized(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: Request,
    next: middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => {
            if length <= DRAIN_AT_MOST {
                let mut body = request.into_body().into_data_stream();
                let drain =
                    async { while let Some(Ok(_)) = futures::StreamExt::next(&mut body).await {} };
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
            }
            let mut response = crate::problem::Problem::payload_too_large().into_response();
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            response
        }
        _ => next.run(request).await,
    }
}

const TRACEPARENT_HEADER: &str = "traceparent";

fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http_request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
        trace_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    )
}

/// Runs the request in the trace context its `traceparent` header names (a
/// new span of that trace), or in a new trace: events the handler writes to
/// an outbox carry it on. Its request id is made current too, for calls the
/// handler makes to other services.
async fn in_trace_context(request: Request, next: middleware::Next) -> Response {
    let context = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceParent::parse)
        .map(|parent| parent.child())
        .unwrap_or_else(TraceParent::new_root);
    tracing::Span::current().record("trace_id", context.trace_id_hex());
    // Set by the request-id layer outside this one, so always present.
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(RequestId::new);
    match request_id {
        Some(id) => context.scope(id.scope(next.run(request))).await,
        None => context.scope(next.run(request)).await,
    }
}

/// Gives every error response a problem+json body. Responses that already
/// carry a body of their own type (problem+json, or JSON a handler chose) are
/// left alone; only bodiless or plain-text errors, which come from the
/// framework or a bare `StatusCode`, are rewritten.
async fn problem_for_bare_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let bare = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(content_type) => content_type
            .to_str()
            .is_ok_and(|value| value.starts_with("text/plain")),
    };
    if !bare {
        return response;
    }

    // The status line and headers such as `Allow` or the request id stay;
    // only the body and its framing are replaced.
    let (mut parts, _body) = response.into_parts();
    let (replacement, body) = problem_for_status(status).into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    for (name, value) in &replacement.headers {
        if !parts.headers.contains_key(name) {
            parts.headers.insert(name.clone(), value.clone());
        }
    }
    Response::from_parts(parts, body)
}

fn problem_for_status(status: StatusCode) -> Problem {
    match status {
        StatusCode::NOT_FOUND => Problem::not_found("No resource exists at this path."),
        StatusCode::METHOD_NOT_ALLOWED => Problem::method_not_allowed(),
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(),
        StatusCode::UNAUTHORIZED => Problem::unauthorized("Authentication is required."),
        StatusCode::FORBIDDEN => Problem::forbidden("The caller may not do this."),
        StatusCode::INTERNAL_SERVER_ERROR => Problem::internal(),
        other => {
            let reason = other.canonical_reason().unwrap_or("Error");
            let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
            Problem::new(other, code, format!("{reason}."))
        }
    }
}

/// The panic payload is logged inside the request span and never sent: it
/// can hold anything the code had in hand.
fn panic_response(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    tracing::error!(panic = %message, "handler panicked");
    Problem::internal().into_response()
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops
/// accepting connections and waits for requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving HTTP");
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

/// Cancels `token` on SIGTERM (how orchestrators stop a container) or
/// Ctrl-C (how people stop the local stack). Must be called inside a Tokio
/// runtime.
pub fn shutdown_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = async {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %err, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();

        tokio::select! {
            () = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
            () = terminate => tracing::info!("SIGTERM received, shutting down"),
        }
        token.cancel();
    });
}
