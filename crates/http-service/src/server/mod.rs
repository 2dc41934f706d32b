//! Running a service's router: the middleware stack every service shares
//! ([`layered`]), the operational endpoints ([`CommonRoutes`]), the OpenAPI
//! document generated from the handlers, the limits that keep a service
//! answering under abuse, and serving with graceful shutdown.
//!
//! A service wires them as:
//!
//! ```ignore
//! let (routes, openapi) = http::router(state).split_for_parts();
//! let router = routes
//!     .merge(CommonRoutes::new(registry.clone(), openapi).readiness_check(db).router());
//! let app = layered(router, &config.http, &registry);
//! serve_with_config(listener, app, &config.http, shutdown).await?;
//! ```

mod fault;
mod limits;
mod metrics;
mod openapi;
mod routes;
mod security_headers;

use std::{any::Any, time::Duration};

use axum::{
    error_handling::HandleErrorLayer,
    extract::{ConnectInfo, DefaultBodyLimit, Request},
    http::{header, HeaderName, StatusCode},
    middleware,
    response::{IntoResponse, Response},
    Router,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{timeout::TimeoutLayer, ServiceBuilder, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::RequestBodyTimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use trace_context::{RequestId, TraceParent};
use tracing::Level;

pub use fault::FAULT_PANIC_ROUTE_ENV;
pub use limits::{overloaded, request_timed_out};
pub use openapi::{
    complete, document_problems, documented_operations, service_api, BEARER_SCHEME,
    PROBLEM_CODES_EXTENSION,
};
pub use routes::{CommonRoutes, ReadinessCheck, READINESS_TIMEOUT};
pub use security_headers::{content_security_policy, HTML_CONTENT_SECURITY_POLICY};

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
/// 4. security headers: `X-Content-Type-Options: nosniff` and
///    `Referrer-Policy: no-referrer` on every response, and on HTML pages
///    `X-Frame-Options: DENY` and [`HTML_CONTENT_SECURITY_POLICY`] (unless
///    the page set its own);
/// 5. `http_requests_total` and `http_request_duration_seconds` by method,
///    matched route and status, and `http_requests_refused_total` by reason,
///    registered into `registry`;
/// 6. at most `max_concurrent_requests` requests in flight; the next ones
///    answer `503 overloaded` with `Retry-After` at once. `/healthz`,
///    `/readyz` and `/metrics` draw on a small budget of their own, so a
///    busy service still answers its probes;
/// 7. a request still running after `request_timeout` answers
///    `503 request_timeout` with `Retry-After`;
/// 8. bare error responses (axum's 405, tower-http's 413, a handler's bare
///    `StatusCode`) rewritten into problem+json;
/// 9. a panic becomes a 500 `internal_error` that reveals nothing;
/// 10. a request body that stays silent for `body_read_timeout` fails to
///     read (the handler's extractor answers it as a bad body);
/// 11. bodies over `body_limit_bytes` answer 413, whether the
///     `Content-Length` says so up front or a chunked body turns out too
///     large while it is read.
///
/// In a debug build, [`FAULT_PANIC_ROUTE_ENV`] can plant a panic on one
/// route, inside the catch-panic layer, to prove the fuzzing catches it.
///
/// Unknown paths answer 404 `not_found` and known paths with another method
/// 405 `method_not_allowed`. Call it once, on the finished router: the 405
/// fallback only covers routes that exist when it is applied. Serve it with
/// [`serve_with_config`], which bounds how long a request head may take.
pub fn layered(router: Router, config: &HttpConfig, registry: &Registry) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let http_metrics = metrics::HttpMetrics::new(registry);
    let admission =
        limits::Admission::new(config.max_concurrent_requests, http_metrics.refused.clone());

    // Listed innermost first: each `Router::layer` call wraps the previous
    // ones, and boxing between them keeps every stage's body types simple.
    let mut router = router
        .fallback(not_found_fallback)
        .method_not_allowed_fallback(method_not_allowed_fallback);
    if let Some(fault) = fault::PanicRoute::from_env() {
        router = router.layer(middleware::from_fn_with_state(fault, fault::panic_on_route));
    }
    let router = router
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(RequestBodyTimeoutLayer::new(config.body_read_timeout))
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
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(limits::timeout_answer(
                    config.request_timeout,
                    http_metrics.refused.clone(),
                )))
                .layer(TimeoutLayer::new(config.request_timeout)),
        )
        .layer(middleware::from_fn_with_state(admission, limits::admit))
        .layer(middleware::from_fn_with_state(http_metrics, metrics::track));
    security_headers::apply(router)
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
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        .on_failure(log_failure),
                ),
        )
}

/// Logs a request that failed on the server's side. A 503 is an answer
/// the service chose (not ready yet, overloaded, a peer away) and the code
/// that chose it logged why; at ERROR, every probe of a starting service
/// would be an error line. Anything else is an error.
fn log_failure(
    failure: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    match failure {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::debug!(?latency, "answered 503");
        }
        failure => tracing::error!(classification = %failure, ?latency, "response failed"),
    }
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

/// Serves `router` on `listener` until `shutdown` is cancelled, with the
/// default limits of [`HttpConfig`]; see [`serve_with_config`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with_config(listener, router, &HttpConfig::with_port(0), shutdown).await
}

/// Serves `router` (HTTP/1.1) on `listener` until `shutdown` is cancelled,
/// then stops accepting connections and waits for requests in flight to
/// finish.
///
/// A client must send a request's head within `header_read_timeout`, and
/// an idle keep-alive connection is closed after as long: without it, a
/// client that opens connections and trickles bytes (or nothing) would hold
/// them, and their memory, for ever. hyper enforces it, but only with a
/// timer, which `axum::serve` does not give it; hence this loop.
pub async fn serve_with_config(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, "serving HTTP");
    }
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    // Each connection's task holds a receiver; `closed` resolves once the
    // last of them has finished.
    let (connections, _) = tokio::sync::watch::channel(());

    loop {
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
        };
        // Answers are small and written whole; Nagle's delay would only add
        // latency to them.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            },
        ));
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let shutdown = shutdown.clone();
        let open = connections.subscribe();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = shutdown.cancelled() => {
                    // Finishes the request in flight, if any, then closes.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // Clients that hang up, time out or send garbage end here; that
            // is their problem, not the service's.
            if let Err(error) = ended {
                tracing::debug!(%error, %remote, "connection ended with an error");
            }
            drop(open);
        });
    }

    drop(listener);
    connections.closed().await;
    Ok(())
}

/// Waits a little after a failed `accept`. Errors of one connection (reset
/// before it was accepted) need no pause; running out of file descriptors
/// does: retrying at once would spin while nothing can be accepted anyway.
async fn pause_after_accept_error(error: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
