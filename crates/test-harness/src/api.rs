//! Calling a service's HTTP API as its users do: a bearer token for a role,
//! a JSON body, an `Idempotency-Key`, and the answer read as status, body
//! and headers in one value.

use std::time::Duration;

use http_service::auth::Role;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::token;

/// A service's API at `base_url`.
#[derive(Debug, Clone)]
pub struct Api {
    base_url: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base_url: impl Into<String>) -> Api {
        Api {
            base_url: base_url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn request(&self, method: Method, path: &str) -> Call {
        Call(self.http.request(method, self.url(path)))
    }

    pub fn get(&self, path: &str) -> Call {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> Call {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> Call {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> Call {
        self.request(Method::DELETE, path)
    }

    /// `GET /metrics` as Prometheus text.
    pub async fn metrics(&self) -> String {
        let answer = self.get("/metrics").send().await;
        assert_eq!(answer.status, StatusCode::OK, "GET /metrics");
        answer.text
    }
}

/// One request being put together.
#[must_use = "a call does nothing until it is sent"]
pub struct Call(RequestBuilder);

impl Call {
    /// Signed in as `sub` with `role` (an HS256 token of the test secret).
    pub fn as_user(self, sub: Uuid, role: Role) -> Call {
        Call(self.0.bearer_auth(token(sub, role)))
    }

    /// With this exact bearer token (a forged or expired one, say).
    pub fn bearer(self, token: &str) -> Call {
        Call(self.0.bearer_auth(token))
    }

    pub fn json(self, body: &Value) -> Call {
        Call(self.0.json(body))
    }

    /// A body sent as it is, with `Content-Type: application/json`: for
    /// malformed or oversized bodies.
    pub fn raw_json(self, body: impl Into<String>) -> Call {
        Call(
            self.0
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.into()),
        )
    }

    pub fn idempotency_key(self, key: &str) -> Call {
        Call(self.0.header("idempotency-key", key))
    }

    pub fn header(self, name: &str, value: &str) -> Call {
        Call(self.0.header(name, value))
    }

    /// Sends the request and reads the whole answer.
    ///
    /// # Panics
    /// When the service cannot be reached or the answer cannot be read.
    pub async fn send(self) -> Answer {
        let response = self.0.send().await.expect("the service answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the answer has a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }
}

/// What a service answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON, `Null` when it is not JSON.
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// The problem's stable `code`, or "" for an answer without one.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    /// Asserts the status, showing the body when it differs.
    ///
    /// # Panics
    /// When the status is another.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Answer {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts a problem+json answer with this status and code.
    ///
    /// # Panics
    /// When the status, the media type or the code is another.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Answer {
        let answer = self.expect_status(status);
        let media_type = answer
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert_eq!(media_type, "application/problem+json", "{}", answer.text);
        assert_eq!(answer.code(), code, "{}", answer.text);
        answer
    }
}
