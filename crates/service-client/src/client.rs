//! [`ServiceClient`]: JSON calls to one peer service, each with a service
//! token, the caller's trace context and request id, and a timeout.

use std::{sync::Arc, time::Duration};

use http_service::{config::env_required, ConfigError, Problem};
use reqwest::{
    header::{self, HeaderValue},
    Method, StatusCode, Url,
};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::{Map, Value};
use trace_context::{RequestId, TraceParent};
use tracing::Instrument as _;

use crate::{
    error::{chain, CallError, Unavailable},
    token::{AccessToken, TokenSource},
};

/// How long a call may take, connection and body included, unless the
/// client is built with another timeout. Peers answer in milliseconds; a
/// peer that has not answered in this time is treated as down rather than
/// holding the caller's own client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The header a peer uses to recognise a retried command.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

const TRACEPARENT_HEADER: &str = "traceparent";
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Calls one peer service. Cheap to clone; clones share the connection pool
/// and the token cache.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    inner: Arc<Inner>,
    timeout: Duration,
}

#[derive(Debug)]
struct Inner {
    peer: String,
    /// Without a trailing slash: paths are appended to it.
    base: String,
    http: reqwest::Client,
    tokens: TokenSource,
}

/// A successful answer: its status (200 and 201 can mean different things)
/// and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<T> {
    pub status: StatusCode,
    pub body: T,
}

impl ServiceClient {
    /// A client for `peer` (its name, as logs and problems show it) at
    /// `base_url`, e.g. `http://catalog:8081`.
    pub fn new(
        peer: impl Into<String>,
        base_url: Url,
        tokens: TokenSource,
    ) -> Result<Self, ConfigError> {
        let peer = peer.into();
        // A peer that redirects is misconfigured; following would send the
        // service token to wherever it points.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError::Unusable {
                name: format!("{peer} base URL"),
                reason: format!("cannot build an HTTP client: {err}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                base: base_url.as_str().trim_end_matches('/').to_owned(),
                peer,
                http,
                tokens,
            }),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client for `peer` at the URL in the environment variable `var`
    /// (e.g. `HEYBLUE_CATALOG_URL`); errors name the variable.
    pub fn from_env(peer: &str, var: &str, tokens: TokenSource) -> Result<Self, ConfigError> {
        let base: Url = env_required(var)?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                name: var.to_owned(),
                value: base.to_string(),
                reason: "scheme must be http or https".to_owned(),
            });
        }
        Self::new(peer, base, tokens)
    }

    /// The same client with another per-call timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// `GET path`, decoding the body.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CallError> {
        Ok(self.request(Method::GET, path).send().await?.body)
    }

    /// `POST path` with a JSON body, decoding the answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        Ok(self
            .request(Method::POST, path)
            .json(body)
            .send()
            .await?
            .body)
    }

    /// `PUT path` with a JSON body, decoding the answer.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        Ok(self
            .request(Method::PUT, path)
            .json(body)
            .send()
            .await?
            .body)
    }

    /// `PATCH path` with a JSON body, decoding the answer.
    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, CallError> {
        Ok(self
            .request(Method::PATCH, path)
            .json(body)
            .send()
            .await?
            .body)
    }

    /// `DELETE path`; the body, if any, is not read.
    pub async fn delete(&self, path: &str) -> Result<StatusCode, CallError> {
        Ok(self
            .request(Method::DELETE, path)
            .send::<serde::de::IgnoredAny>()
            .await?
            .status)
    }

    /// A call with more to say: an `Idempotency-Key`, or a caller that needs
    /// the status of the answer.
    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            client: self,
            method,
            path: path.to_owned(),
            body: Ok(None),
            idempotency_key: None,
        }
    }

    fn rejected(&self, problem: Problem) -> CallError {
        CallError::Rejected {
            peer: self.inner.peer.clone(),
            problem,
        }
    }

    fn invalid(&self, reason: String) -> CallError {
        CallError::Invalid {
            peer: self.inner.peer.clone(),
            reason,
        }
    }
}

/// One call being put together; finish it with [`Call::send`].
#[must_use = "a call does nothing until it is sent"]
pub struct Call<'a> {
    client: &'a ServiceClient,
    method: Method,
    path: String,
    /// Serialised up front, so that a retry sends the same bytes.
    body: Result<Option<Vec<u8>>, String>,
    idempotency_key: Option<String>,
}

impl Call<'_> {
    /// Sends `body` as JSON.
    pub fn json<B: Serialize>(mut self, body: &B) -> Self {
        self.body = serde_json::to_vec(body)
            .map(Some)
            .map_err(|err| format!("body does not serialise: {err}"));
        self
    }

    /// Sends `Idempotency-Key: key`, so the peer answers a repeated command
    /// with its first answer.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends the call and decodes a 2xx body into `T` (an empty body
    /// decodes as JSON `null`, so `()` and `Option<_>` fit a 204).
    pub async fn send<T: DeserializeOwned>(self) -> Result<Reply<T>, CallError> {
        let span = tracing::info_span!(
            "peer_call",
            peer = %self.client.inner.peer,
            method = %self.method,
            path = %self.path,
            status = tracing::field::Empty,
        );
        let method = self.method.clone();
        let path = self.path.clone();
        let peer = self.client.inner.peer.clone();
        async move {
            let result = self.execute().await;
            match &result {
                Ok(reply) => {
                    tracing::Span::current().record("status", reply.status.as_u16());
                }
                Err(CallError::Rejected { problem, .. }) => {
                    tracing::Span::current().record("status", problem.status().as_u16());
                    tracing::debug!(code = problem.code(), "peer refused the call");
                }
                // The one place the cause is logged: the caller turns the
                // error into a 503 that says nothing about it.
                Err(CallError::Unavailable { cause, .. }) => {
                    tracing::warn!(%peer, %method, %path, error = %chain(cause), "peer unavailable");
                }
                Err(err @ CallError::Invalid { .. }) => {
                    tracing::error!(%peer, %method, %path, error = %err, "call could not be built");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn execute<T: DeserializeOwned>(self) -> Result<Reply<T>, CallError> {
        let client = self.client;
        let url = Url::parse(&format!("{}{}", client.inner.base, self.path))
            .map_err(|err| client.invalid(format!("path {:?}: {err}", self.path)))?;
        let body = self.body.clone().map_err(|reason| client.invalid(reason))?;
        // One span id per call (a retry is the same operation to the trace).
        let traceparent = TraceParent::current_or_new().to_string();
        let request_id = RequestId::current();

        let mut renewed = false;
        let response = loop {
            let token = client
                .inner
                .tokens
                .token()
                .await
                .map_err(|err| self.unavailable(Unavailable::Token(err)))?;
            let response = self
                .send_once(
                    &url,
                    body.as_deref(),
                    &token,
                    &traceparent,
                    request_id.as_ref(),
                )
                .await?;
            // A token the peer refuses may have been revoked or signed with
            // a key the provider has since rotated; one fresh token is worth
            // a try, a second refusal is not.
            if response.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && client.inner.tokens.invalidate(&token)
            {
                tracing::info!("peer refused the service token; renewing it");
                renewed = true;
                continue;
            }
            break response;
        };

        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?;
        if status.is_success() {
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            let body = serde_json::from_slice(bytes)
                .map_err(|err| self.unavailable(Unavailable::Malformed(err.to_string())))?;
            return Ok(Reply { status, body });
        }
        if status == StatusCode::UNAUTHORIZED {
            return Err(self.unavailable(Unavailable::TokenRefused));
        }
        if status.is_client_error() {
            return Err(client.rejected(problem_from(status, &bytes, &client.inner.peer)));
        }
        Err(self.unavailable(Unavailable::Status(status)))
    }

    async fn send_once(
        &self,
        url: &Url,
        body: Option<&[u8]>,
        token: &AccessToken,
        traceparent: &str,
        request_id: Option<&RequestId>,
    ) -> Result<reqwest::Response, CallError> {
        let mut request = self
            .client
            .inner
            .http
            .request(self.method.clone(), url.clone())
            .timeout(self.client.timeout)
            .bearer_auth(token.secret())
            .header(header::ACCEPT, "application/json")
            .header(TRACEPARENT_HEADER, traceparent);
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(id.as_str()).ok()) {
            request = request.header(REQUEST_ID_HEADER, id);
        }
        if let Some(key) = &self.idempotency_key {
            request = request.header(IDEMPOTENCY_KEY_HEADER, key);
        }
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        request
            .send()
            .await
            .map_err(|err| self.transport_error(err))
    }

    fn transport_error(&self, err: reqwest::Error) -> CallError {
        let cause = if err.is_timeout() {
            Unavailable::Timeout(self.client.timeout)
        } else if err.is_connect() {
            Unavailable::Connect(err)
        } else {
            Unavailable::Transport(err)
        };
        self.unavailable(cause)
    }

    fn unavailable(&self, cause: Unavailable) -> CallError {
        CallError::Unavailable {
            peer: self.client.inner.peer.clone(),
            cause,
        }
    }
}

/// The peer's problem+json as a [`Problem`] with the same status, `code`,
/// `title`, `detail` and extension members. A 4xx without a problem body
/// (which no service of the fleet sends) gets a code from its status.
fn problem_from(status: StatusCode, body: &[u8], peer: &str) -> Problem {
    let reason = status.canonical_reason().unwrap_or("Error");
    let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(body) else {
        return generic_problem(status, peer);
    };
    let Some(Value::String(code)) = members.remove("code") else {
        return generic_problem(status, peer);
    };
    let detail = match members.remove("detail") {
        Some(Value::String(detail)) => detail,
        _ => format!("{reason}."),
    };
    let mut problem = Problem::new(status, code, detail);
    if let Some(Value::String(title)) = members.remove("title") {
        problem = problem.with_title(title);
    }
    // `type` follows from `code` and `status` from the status line.
    members.remove("type");
    members.remove("status");
    extend(problem, members)
}

fn extend(mut problem: Problem, members: Map<String, Value>) -> Problem {
    for (key, value) in members {
        problem = problem.with(key, value);
    }
    problem
}

fn generic_problem(status: StatusCode, peer: &str) -> Problem {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    Problem::new(
        status,
        code,
        format!("The {peer} service answered: {reason}."),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_body_keeps_its_code_detail_title_and_members() {
        let body = serde_json::json!({
            "type": "https://errors.heyblue.example/payment_declined",
            "title": "Payment declined",
            "status": 402,
            "detail": "The card was declined.",
            "code": "payment_declined",
            "decline_code": "insufficient_funds",
        });
        let problem = problem_from(
            StatusCode::PAYMENT_REQUIRED,
            body.to_string().as_bytes(),
            "payment-gateway",
        );
        assert_eq!(problem.body(), body);
    }

    #[test]
    fn a_4xx_without_a_problem_body_gets_a_code_from_its_status() {
        let problem = problem_from(StatusCode::NOT_FOUND, b"nothing here", "catalog");
        assert_eq!(problem.status(), StatusCode::NOT_FOUND);
        assert_eq!(problem.code(), "not_found");
        assert_eq!(problem.detail(), "The catalog service answered: Not Found.");
    }
}
