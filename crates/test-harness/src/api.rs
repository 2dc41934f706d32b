//! Calling a service's HTTP API as its users do: a bearer token for a role,
//! a JSON body, an `Idempotency-Key`, and the answer read as status, body
//! and headers in one value. Every answer is checked against the service's
//! own OpenAPI document ([`crate::contract`]), so a test fails on an answer
//! the document does not promise, whatever else it asserts.

use std::sync::Arc;
use std::time::Duration;

use http_service::auth::Role;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::contract::{Answered, Contract};
use crate::token;

/// A service's API at `base_url`.
#[derive(Debug, Clone)]
pub struct Api {
    base_url: String,
    http: reqwest::Client,
    /// The service's document, read on the first answer; `None` inside
    /// when it documents no operation.
    contract: Arc<tokio::sync::OnceCell<Option<Contract>>>,
}

impl Api {
    pub fn new(base_url: impl Into<String>) -> Api {
        Api {
            base_url: base_url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            contract: Arc::default(),
        }
    }

    /// An API whose answers are not held to the document at `base_url`:
    /// for one that forwards to other services (the webshop's `/v1/...`),
    /// whose own document does not describe what it forwards.
    pub fn unchecked(base_url: impl Into<String>) -> Api {
        let api = Api::new(base_url);
        let _ = api.contract.set(None);
        api
    }

    /// The service's contract, once its `/openapi.json` could be read.
    async fn contract(&self) -> Option<&Contract> {
        let read = self
            .contract
            .get_or_try_init(|| async {
                let response = self.http.get(self.url("/openapi.json")).send().await?;
                if !response.status().is_success() {
                    return Err(anyhow::anyhow!(
                        "/openapi.json answered {}",
                        response.status()
                    ));
                }
                let document: Value = response.json().await?;
                anyhow::Ok(Contract::new(document))
            })
            .await;
        read.ok().and_then(Option::as_ref)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn request(&self, method: Method, path: &str) -> Call {
        Call {
            request: self.http.request(method.clone(), self.url(path)),
            api: self.clone(),
            method,
            path: path.to_owned(),
        }
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
pub struct Call {
    request: RequestBuilder,
    api: Api,
    method: Method,
    path: String,
}

impl Call {
    fn with(self, change: impl FnOnce(RequestBuilder) -> RequestBuilder) -> Call {
        Call {
            request: change(self.request),
            ..self
        }
    }

    /// Signed in as `sub` with `role` (an HS256 token of the test secret).
    pub fn as_user(self, sub: Uuid, role: Role) -> Call {
        self.with(|request| request.bearer_auth(token(sub, role)))
    }

    /// With this exact bearer token (a forged or expired one, say).
    pub fn bearer(self, token: &str) -> Call {
        self.with(|request| request.bearer_auth(token))
    }

    pub fn json(self, body: &Value) -> Call {
        self.with(|request| request.json(body))
    }

    /// A body sent as it is, with `Content-Type: application/json`: for
    /// malformed or oversized bodies.
    pub fn raw_json(self, body: impl Into<String>) -> Call {
        self.with(|request| {
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.into())
        })
    }

    pub fn idempotency_key(self, key: &str) -> Call {
        self.with(|request| request.header("idempotency-key", key))
    }

    pub fn header(self, name: &str, value: &str) -> Call {
        self.with(|request| request.header(name, value))
    }

    /// Sends the request, reads the whole answer and checks it against the
    /// service's document.
    ///
    /// # Panics
    /// When the service cannot be reached, the answer cannot be read, or
    /// it breaks the service's document.
    pub async fn send(self) -> Answer {
        let response = self.request.send().await.expect("the service answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("the answer has a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(contract) = self.api.contract().await {
            let content_type = headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            let answered = Answered {
                method: &self.method,
                path: &self.path,
                status,
                content_type,
                body: &text,
            };
            if let Some(breach) = contract.breach(&answered) {
                panic!("the answer breaks the service's document: {breach}\nbody: {text}");
            }
        }
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
