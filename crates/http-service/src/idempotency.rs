//! `Idempotency-Key` (DESIGN §2): a client that retries a request with the
//! same key gets the first answer again instead of a second effect.
//!
//! The rules, all enforced here and nowhere else:
//!
//! - a key is scoped to (caller `sub`, method, path): another user's key, or
//!   the same key on another path, is independent;
//! - it is looked up **before** the handler runs, so before any validation;
//! - the same key with the same parsed body returns the stored status and
//!   body (4xx and 402 included) and creates nothing; a 5xx is not stored, so
//!   the client's retry runs the handler again;
//! - a duplicate that arrives while the first is still running waits for it;
//! - the same key with another body (a malformed one included) is
//!   `422 idempotency_key_reused`;
//! - a required key that is missing is `400 idempotency_key_required`;
//! - keys are kept at least [`RETENTION`], then [`prune`]d.
//!
//! A service routes the POSTs that create something through [`middleware`]
//! with [`Idempotency::optional`], or [`Idempotency::required`] where DESIGN
//! says so. Only POSTs are affected: a GET sharing the route passes through
//! untouched, key or not.
//!
//! ```ignore
//! Router::new()
//!     .route("/v1/checkouts", post(create))
//!     .route_layer(axum::middleware::from_fn_with_state(
//!         Idempotency::required(pool.clone(), auth.clone()),
//!         idempotency::middleware,
//!     ))
//! ```
//!
//! Keys live in the service's own schema (`idempotency_keys`, installed by
//! [`install`]). The first request holds its key with a lease while its
//! handler runs; a duplicate polls until the answer is stored. Polling rather
//! than a row lock keeps no connection or transaction open across a handler
//! that may itself call a payment provider.
//!
//! A keyed handler runs to its end in a task of its own, even when the
//! caller hangs up: a client that gave up (or died) while its payment was
//! being authorized finds the answer stored when it retries, instead of a
//! half-done request. The lease is short and renewed while the handler
//! runs ([`LEASE`], renewed every third of it), so a key whose first
//! request died with its process is taken over within seconds, however long
//! a live handler takes.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::FutureExt;
use schema_versions::ComponentSchema;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use trace_context::{RequestId, TraceParent};
use tracing::Instrument;
use uuid::Uuid;

use crate::{auth::Authenticator, config::DEFAULT_BODY_LIMIT_BYTES, problem::Problem};

/// The request header that carries the key.
pub const HEADER: &str = "idempotency-key";
/// Set on an answer that was replayed from storage rather than produced now.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a key is kept at least (DESIGN §2: 24 h).
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// The longest key accepted; Stripe's limit, which clients know.
const MAX_KEY_LEN: usize = 255;
/// How long a running request holds its key without renewing it: what a
/// retry waits, at most, after the process of the first request died.
pub const LEASE: Duration = Duration::from_secs(10);

static SCHEMA: ComponentSchema = ComponentSchema {
    component: "idempotency",
    steps: &[r#"
        CREATE TABLE idempotency_keys (
            subject       UUID NOT NULL,
            method        TEXT NOT NULL,
            path          TEXT NOT NULL,
            key           TEXT NOT NULL,
            request_hash  BYTEA NOT NULL,
            -- NULL while the first request is still being handled.
            status        SMALLINT,
            content_type  TEXT,
            body          BYTEA,
            locked_until  TIMESTAMPTZ NOT NULL,
            created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (subject, method, path, key)
        );
        CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
    "#],
};

/// Creates the key table in the pool's schema.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    schema_versions::apply(pool, &SCHEMA).await.map(|_| ())
}

/// Deletes keys older than `retention`; returns how many went.
pub async fn prune(pool: &PgPool, retention: Duration) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(retention.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}

/// The middleware's settings: where keys are stored, how callers are
/// identified, and whether a key is required.
#[derive(Clone)]
pub struct Idempotency {
    pool: PgPool,
    auth: Authenticator,
    required: bool,
    /// How long a first request holds its key without renewing it before
    /// another may take over; renewed every third of it while it runs.
    lease: Duration,
    /// How long a duplicate waits for the first request's answer.
    wait: Duration,
    body_limit: usize,
}

impl Idempotency {
    /// A key is honoured when sent; requests without one run as usual.
    pub fn optional(pool: PgPool, auth: Authenticator) -> Self {
        Self {
            pool,
            auth,
            required: false,
            lease: LEASE,
            wait: Duration::from_secs(60),
            body_limit: DEFAULT_BODY_LIMIT_BYTES,
        }
    }

    /// A request without a key is refused with `400 idempotency_key_required`.
    pub fn required(pool: PgPool, auth: Authenticator) -> Self {
        Self {
            required: true,
            ..Self::optional(pool, auth)
        }
    }

    /// Replaces how long a first request holds its key without renewing it
    /// (tests shorten it).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }
}

/// What the stored row says about a key that someone else claimed first.
enum Existing {
    Gone,
    OtherBody,
    InFlight,
    Done(StoredAnswer),
}

struct StoredAnswer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl StoredAnswer {
    fn replay(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        if let Some(value) = self
            .content_type
            .and_then(|value| HeaderValue::from_str(&value).ok())
        {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

/// The scope a key belongs to.
struct Scope {
    subject: Uuid,
    method: String,
    path: String,
    key: String,
}

/// Applies the rules of the module docs around the handler `next`.
pub async fn middleware(
    State(settings): State<Idempotency>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != axum::http::Method::POST {
        return next.run(request).await;
    }
    let key = match request.headers().get(HEADER) {
        None if settings.required => {
            return Problem::bad_request(
                "idempotency_key_required",
                "This request needs an `Idempotency-Key` header.",
            )
            .into_response()
        }
        None => return next.run(request).await,
        Some(value) => match valid_key(value) {
            Some(key) => key,
            None => {
                return Problem::bad_request(
                    "invalid_idempotency_key",
                    format!(
                        "`Idempotency-Key` must be 1 to {MAX_KEY_LEN} visible ASCII characters."
                    ),
                )
                .into_response()
            }
        },
    };
    // Without a verified caller there is no scope to store the key in; the
    // handler answers 401 and nothing is remembered.
    let Ok(claims) = settings.auth.authenticate(request.headers()).await else {
        return next.run(request).await;
    };
    let scope = Scope {
        subject: claims.sub,
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        key,
    };

    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, settings.body_limit).await else {
        return Problem::payload_too_large().into_response();
    };
    let hash = fingerprint(&bytes);

    // The handler's own task, in the request's span, trace and request id:
    // a caller that hangs up drops this future, not the handler.
    let context = (TraceParent::current(), RequestId::current());
    let keyed = async move {
        match run_once(&settings, &scope, &hash, || {
            next.run(Request::from_parts(parts, Body::from(bytes)))
        })
        .await
        {
            Ok(response) => response,
            Err(error) => match crate::error::database_busy(&error) {
                // Overload: a retry with the same key replays the stored
                // answer, or runs the handler once the key is free.
                Some(busy) => busy,
                None => {
                    tracing::error!(error = ?error, key = %scope.key, "idempotency store failed");
                    Problem::internal().into_response()
                }
            },
        }
    };
    let task = tokio::spawn(in_context(context, keyed).instrument(tracing::Span::current()));
    match task.await {
        Ok(response) => response,
        Err(error) => {
            tracing::error!(error = %error, "a keyed request's task ended without an answer");
            Problem::internal().into_response()
        }
    }
}

/// Runs `future` in the trace context and request id it was spawned from.
async fn in_context<F: Future>(
    (trace, request_id): (Option<TraceParent>, Option<RequestId>),
    future: F,
) -> F::Output {
    match (trace, request_id) {
        (Some(trace), Some(id)) => trace.scope(id.scope(future)).await,
        (Some(trace), None) => trace.scope(future).await,
        (None, Some(id)) => id.scope(future).await,
        (None, None) => future.await,
    }
}

/// Claims the key and runs `handler`, or answers as the stored row says.
async fn run_once<F, Fut>(
    settings: &Idempotency,
    scope: &Scope,
    hash: &[u8],
    handler: F,
) -> Result<Response, sqlx::Error>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let deadline = tokio::time::Instant::now() + settings.wait;
    let mut pause = Duration::from_millis(5);
    loop {
        if claim(settings, scope, hash).await? {
            let handled = AssertUnwindSafe(renewing(settings, scope, handler()))
                .catch_unwind()
                .await;
            return match handled {
                Ok(response) => finish(settings, scope, response).await,
                Err(panic) => {
                    // Let the client's retry run the handler again, as after
                    // any 5xx, rather than wait out the lease.
                    forget(settings, scope).await?;
                    std::panic::resume_unwind(panic)
                }
            };
        }
        match existing(&settings.pool, scope, hash).await? {
            // The first request failed with a 5xx (or was pruned) between
            // our claim and our look: try to claim again.
            Existing::Gone => continue,
            Existing::OtherBody => {
                return Ok(Problem::unprocessable(
                    "idempotency_key_reused",
                    "This Idempotency-Key was used before with another request body.",
                )
                .into_response())
            }
            Existing::Done(answer) => return Ok(answer.replay()),
            Existing::InFlight => {
                if tokio::time::Instant::now() >= deadline {
                    return Ok(Problem::conflict(
                        "idempotency_key_in_flight",
                        "A request with this Idempotency-Key is still being handled; retry later.",
                    )
                    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
                    .into_response());
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// Runs `handler` while renewing the key's lease every third of it.
async fn renewing<Fut: Future<Output = Response>>(
    settings: &Idempotency,
    scope: &Scope,
    handler: Fut,
) -> Response {
    tokio::pin!(handler);
    let mut renew = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.lease / 3,
        settings.lease / 3,
    );
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            response = &mut handler => return response,
            _ = renew.tick() => {
                let renewed = sqlx::query(
                    "UPDATE idempotency_keys SET locked_until = now() + make_interval(secs => $5)
                     WHERE subject = $1 AND method = $2 AND path = $3 AND key = $4
                       AND status IS NULL",
                )
                .bind(scope.subject)
                .bind(&scope.method)
                .bind(&scope.path)
                .bind(&scope.key)
                .bind(settings.lease.as_secs_f64())
                .execute(&settings.pool)
                .await;
                if let Err(error) = renewed {
                    // The handler goes on; a duplicate may take the key over
                    // once the lease runs out, which handlers idempotent by
                    // their business key survive.
                    tracing::warn!(error = ?error, key = %scope.key, "failed to renew an idempotency lease");
                }
            }
        }
    }
}

/// Takes the key for this request: a new key, or one whose first request
/// died without an answer (its lease ran out). True when taken.
async fn claim(settings: &Idempotency, scope: &Scope, hash: &[u8]) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (subject, method, path, key, request_hash, locked_until)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
         ON CONFLICT (subject, method, path, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash,
             locked_until = EXCLUDED.locked_until,
             created_at = now()
         WHERE idempotency_keys.status IS NULL AND idempotency_keys.locked_until < now()
         RETURNING 1",
    )
    .bind(scope.subject)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(hash)
    .bind(settings.lease.as_secs_f64())
    .fetch_optional(&settings.pool)
    .await?;
    Ok(claimed.is_some())
}

async fn existing(pool: &PgPool, scope: &Scope, hash: &[u8]) -> Result<Existing, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, status, content_type, body FROM idempotency_keys
         WHERE subject = $1 AND method = $2 AND path = $3 AND key = $4",
    )
    .bind(scope.subject)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(Existing::Gone);
    };
    if row.get::<Vec<u8>, _>("request_hash") != hash {
        return Ok(Existing::OtherBody);
    }
    Ok(match row.get::<Option<i16>, _>("status") {
        None => Existing::InFlight,
        Some(status) => Existing::Done(StoredAnswer {
            status: u16::try_from(status)
                .ok()
                .and_then(|status| StatusCode::from_u16(status).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type: row.get("content_type"),
            body: row.get::<Option<Vec<u8>>, _>("body").unwrap_or_default(),
        }),
    })
}

/// Stores the handler's answer, or forgets the key after a 5xx so that the
/// client's retry runs the handler again.
async fn finish(
    settings: &Idempotency,
    scope: &Scope,
    response: Response,
) -> Result<Response, sqlx::Error> {
    let status = response.status();
    if status.is_server_error() {
        forget(settings, scope).await?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    // Handlers answer small JSON bodies; a body that cannot be read whole
    // was broken anyway and is passed on as the error it is.
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Ok(Problem::internal().into_response());
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    sqlx::query(
        "UPDATE idempotency_keys SET status = $5, content_type = $6, body = $7
         WHERE subject = $1 AND method = $2 AND path = $3 AND key = $4",
    )
    .bind(scope.subject)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .bind(i16::try_from(status.as_u16()).unwrap_or(i16::MAX))
    .bind(content_type)
    .bind(bytes.as_ref())
    .execute(&settings.pool)
    .await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Deletes the key, so that the client's retry runs the handler again.
async fn forget(settings: &Idempotency, scope: &Scope) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM idempotency_keys
         WHERE subject = $1 AND method = $2 AND path = $3 AND key = $4",
    )
    .bind(scope.subject)
    .bind(&scope.method)
    .bind(&scope.path)
    .bind(&scope.key)
    .execute(&settings.pool)
    .await?;
    Ok(())
}

fn valid_key(value: &HeaderValue) -> Option<String> {
    let key = value.to_str().ok()?;
    let valid = (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| key.to_owned())
}

/// The request body as compared between a key's uses: JSON by its parsed
/// value (so key order and white space do not matter), anything else by its
/// bytes.
fn fingerprint(body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            hasher.update(b"json:");
            write_canonical(&value, &mut hasher);
        }
        Err(_) => {
            hasher.update(b"raw:");
            hasher.update(body);
        }
    }
    hasher.finalize().to_vec()
}

/// Feeds `value` to the hasher with object keys sorted, whatever order the
/// JSON map keeps them in.
fn write_canonical(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (key, value) in entries {
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                write_canonical(value, hasher);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                write_canonical(item, hasher);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => hasher.update(scalar.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_compare_by_value_not_by_layout() {
        assert_eq!(
            fingerprint(br#"{"a": 1, "b": [true, null]}"#),
            fingerprint(br#"{"b":[true,null],"a":1}"#)
        );
        assert_ne!(fingerprint(br#"{"a": 1}"#), fingerprint(br#"{"a": 2}"#));
        assert_ne!(fingerprint(br#"{"a": 1"#), fingerprint(br#"{"a": 1}"#));
        assert_ne!(fingerprint(b"\"1\""), fingerprint(b"1"));
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(valid_key(&HeaderValue::from_static("order-1")).is_some());
        assert!(valid_key(&HeaderValue::from_static("has space")).is_none());
        assert!(valid_key(&HeaderValue::from_static("")).is_none());
        let long = HeaderValue::from_str(&"k".repeat(MAX_KEY_LEN + 1)).ok();
        assert!(long.is_some_and(|value| valid_key(&value).is_none()));
    }
}
