//! Calls from the pages to the services, as the signed-in user: the
//! session's bearer token, JSON both ways, and every failure turned into a
//! sentence a page can show.
//!
//! `service_client` is not used here on purpose: it calls with this
//! service's own `service` token, while a page must act as its user so that
//! each service applies its own rules (a user sees only their own orders).

use std::sync::Arc;
use std::time::Duration;

use fleet::Service;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::settings::PeerUrls;

/// The services, as the pages call them.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    peers: Arc<PeerUrls>,
}

impl Api {
    pub fn new(peers: PeerUrls, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Api {
            http,
            peers: Arc::new(peers),
        })
    }

    /// The HTTP client, shared with the API proxy.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn peers(&self) -> &PeerUrls {
        &self.peers
    }

    pub fn get(&self, service: Service, path: impl Into<String>) -> Call<'_> {
        self.call(Method::GET, service, path)
    }

    pub fn post(&self, service: Service, path: impl Into<String>) -> Call<'_> {
        self.call(Method::POST, service, path)
    }

    pub fn put(&self, service: Service, path: impl Into<String>) -> Call<'_> {
        self.call(Method::PUT, service, path)
    }

    pub fn patch(&self, service: Service, path: impl Into<String>) -> Call<'_> {
        self.call(Method::PATCH, service, path)
    }

    pub fn delete(&self, service: Service, path: impl Into<String>) -> Call<'_> {
        self.call(Method::DELETE, service, path)
    }

    fn call(&self, method: Method, service: Service, path: impl Into<String>) -> Call<'_> {
        Call {
            api: self,
            service,
            method,
            path: path.into(),
            token: None,
            body: None,
            idempotency_key: None,
        }
    }
}

/// One call being put together; [`Call::send`] sends it.
#[must_use = "a call does nothing until it is sent"]
pub struct Call<'a> {
    api: &'a Api,
    service: Service,
    method: Method,
    path: String,
    token: Option<&'a str>,
    body: Option<Value>,
    idempotency_key: Option<String>,
}

impl<'a> Call<'a> {
    /// As the user this token belongs to.
    pub fn bearer(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn json(mut self, body: &impl Serialize) -> Self {
        // Our own request types always serialise; a failure would be a bug,
        // and sending no body makes the service say what is missing.
        self.body = serde_json::to_value(body).ok();
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Sends the call; a 2xx body decodes into `T` (an empty one as `null`).
    pub async fn send<T: DeserializeOwned>(self) -> Result<Answer<T>, ApiError> {
        let service = self.service.name;
        let Some(base) = self.api.peers.of(&self.service) else {
            tracing::error!(service, "no URL configured for the service");
            return Err(ApiError::Unavailable { service });
        };
        let url = format!("{}{}", base.as_str().trim_end_matches('/'), self.path);
        let mut request = self.api.http.request(self.method.clone(), &url);
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = &self.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(service, method = %self.method, path = %self.path, error = %error, "service unavailable");
                return Err(ApiError::Unavailable { service });
            }
        };
        let status = response.status();
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(service, error = %error, "service's answer was cut off");
                return Err(ApiError::Unavailable { service });
            }
        };
        if status.is_success() {
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return match serde_json::from_slice(bytes) {
                Ok(body) => Ok(Answer { status, body }),
                Err(error) => {
                    tracing::error!(service, path = %self.path, error = %error, "service's answer does not decode");
                    Err(ApiError::Unavailable { service })
                }
            };
        }
        if status.is_client_error() {
            let problem: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(ApiError::Refused(Refusal::from_problem(status, &problem)));
        }
        tracing::warn!(service, method = %self.method, path = %self.path, %status, "service failed");
        Err(ApiError::Unavailable { service })
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer<T> {
    pub status: StatusCode,
    pub body: T,
}

/// Why a call did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The service refused the request (4xx), for a reason of its own.
    #[error("{}", .0.message)]
    Refused(Refusal),
    /// The service could not be reached or failed (5xx, timeout).
    #[error("{service} is unavailable")]
    Unavailable { service: &'static str },
}

impl ApiError {
    /// What a page tells the user.
    pub fn message(&self) -> String {
        match self {
            ApiError::Refused(refusal) => refusal.message.clone(),
            ApiError::Unavailable { service } => format!(
                "The {service} service is not answering right now. Nothing was changed; please try again in a moment."
            ),
        }
    }

    /// The problem's `code` of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused(refusal) => Some(&refusal.code),
            ApiError::Unavailable { .. } => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Refused(refusal) => refusal.status,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// A service's 4xx problem, read for people.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// The whole problem, for members such as `decline_code`.
    pub problem: Value,
}

impl Refusal {
    fn from_problem(status: StatusCode, problem: &Value) -> Self {
        let text = |field: &str| {
            problem[field]
                .as_str()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
        };
        let message = text("detail").or_else(|| text("title")).unwrap_or_else(|| {
            match status.canonical_reason() {
                Some(reason) => format!("The request was refused ({reason})."),
                None => "The request was refused.".to_owned(),
            }
        });
        Refusal {
            status,
            code: text("code").unwrap_or_default(),
            message: sentence(&message),
            problem: problem.clone(),
        }
    }
}

/// `text` with a capital letter and a full stop, as a page shows it.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_its_detail_as_a_sentence() {
        let refusal = Refusal::from_problem(
            StatusCode::CONFLICT,
            &serde_json::json!({"title": "Conflict", "detail": "not enough points available", "code": "insufficient_points"}),
        );
        assert_eq!(refusal.message, "Not enough points available.");
        assert_eq!(refusal.code, "insufficient_points");
    }

    #[test]
    fn a_refusal_without_a_body_still_says_something() {
        let refusal = Refusal::from_problem(StatusCode::NOT_FOUND, &Value::Null);
        assert_eq!(refusal.message, "The request was refused (Not Found).");
    }
}
