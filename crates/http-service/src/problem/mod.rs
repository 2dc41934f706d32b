//! RFC 9457 problem details: the one error body every service answers with,
//! the extractors that turn axum's rejections into problems, and the
//! fallbacks for unknown routes and methods.
//!
//! Services keep their own error enum and convert it into [`Problem`]; this
//! module only fixes the wire shape (`type`, `title`, `status`, `detail`,
//! `code`, plus extra members) so that clients can rely on `code` alone.

mod extract;

use std::{borrow::Cow, fmt};

use axum::{
    http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value};

pub use extract::{Json, Path, Query};

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of the `type` URI; the stable `code` completes it. The URI is an
/// identifier, not a promise that documentation is served there.
pub const PROBLEM_TYPE_BASE: &str = "https://errors.heyblue.example/";

/// Members the problem itself owns; `with` cannot overwrite them, so an
/// extra field can never contradict the status line.
const RESERVED_MEMBERS: [&str; 5] = ["type", "title", "status", "detail", "code"];

/// An error response in `application/problem+json`.
///
/// The fields live behind one box so that `Result<T, Problem>` stays one
/// pointer wide on the success path every handler takes.
#[derive(Clone, PartialEq)]
pub struct Problem {
    inner: Box<Inner>,
}

#[derive(Clone, PartialEq)]
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    title: Option<Cow<'static, str>>,
    detail: String,
    extra: Map<String, Value>,
    headers: HeaderMap,
}

impl Problem {
    /// A problem with a stable machine `code` and a human `detail`.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            inner: Box::new(Inner {
                status,
                code: code.into(),
                title: None,
                detail: detail.into(),
                extra: Map::new(),
                headers: HeaderMap::new(),
            }),
        }
    }

    /// Adds an extension member such as `decline_code` or `available_points`.
    /// The standard members are kept as they are.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        if !RESERVED_MEMBERS.contains(&key.as_str()) {
            self.inner.extra.insert(key, value.into());
        }
        self
    }

    /// Replaces the title, which otherwise is the status's reason phrase.
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.inner.title = Some(title.into());
        self
    }

    /// Adds a response header, e.g. `Retry-After` on a 503.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.inner.headers.insert(name, value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.inner.status
    }

    pub fn code(&self) -> &str {
        &self.inner.code
    }

    pub fn title(&self) -> &str {
        match &self.inner.title {
            Some(title) => title,
            None => self.inner.status.canonical_reason().unwrap_or("Error"),
        }
    }

    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    pub fn extra(&self) -> &Map<String, Value> {
        &self.inner.extra
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.inner.headers
    }

    /// The JSON body: extension members first, then the standard ones.
    pub fn body(&self) -> Value {
        let mut body = self.inner.extra.clone();
        body.insert(
            "type".to_owned(),
            Value::String(format!("{PROBLEM_TYPE_BASE}{}", self.inner.code)),
        );
        body.insert("title".to_owned(), Value::String(self.title().to_owned()));
        body.insert("status".to_owned(), Value::from(self.inner.status.as_u16()));
        body.insert(
            "detail".to_owned(),
            Value::String(self.inner.detail.clone()),
        );
        body.insert(
            "code".to_owned(),
            Value::String(self.inner.code.to_string()),
        );
        Value::Object(body)
    }

    pub fn bad_request(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// Well-formed input whose values break a rule (DESIGN §2: 422).
    pub fn unprocessable(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 401 `unauthorized`, with the `WWW-Authenticate: Bearer` challenge that
    /// RFC 9110 requires on every 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not_found`. Also the answer for another user's resource, so the
    /// detail must not hint whether the id exists.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: impl Into<Cow<'static, str>>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body exceeds the size limit.",
        )
    }

    /// 500 `internal_error`. The detail is fixed on purpose: whatever went
    /// wrong is logged where it happened, and the client learns nothing about
    /// the internals.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected error occurred. It has been logged.",
        )
    }

    pub fn service_unavailable(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "The method is not allowed on this resource.",
        )
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.inner.status.as_u16())
            .field("code", &self.inner.code)
            .field("detail", &self.inner.detail)
            .field("extra", &self.inner.extra)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.inner.status.as_u16(),
            self.inner.code,
            self.inner.detail
        )
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut response = (self.inner.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        headers.extend(self.inner.headers);
        response
    }
}

/// Router fallback for paths no route matches.
pub async fn not_found_fallback() -> Problem {
    Problem::not_found("No resource exists at this path.")
}

/// Fallback for a known path with a method it does not serve; axum still adds
/// the `Allow` header.
pub async fn method_not_allowed_fallback() -> Problem {
    Problem::method_not_allowed()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_standard_members_and_extras() {
        let problem = Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
            "The card was declined.",
        )
        .with("decline_code", "insufficient_funds");
        let body = problem.body();
        assert_eq!(
            body["type"],
            "https://errors.heyblue.example/payment_declined"
        );
        assert_eq!(body["title"], "Payment Required");
        assert_eq!(body["status"], 402);
        assert_eq!(body["detail"], "The card was declined.");
        assert_eq!(body["code"], "payment_declined");
        assert_eq!(body["decline_code"], "insufficient_funds");
    }

    #[test]
    fn extras_cannot_overwrite_standard_members() {
        let body = Problem::not_found("gone").with("status", 200).body();
        assert_eq!(body["status"], 404);
    }

    #[test]
    fn response_is_problem_json_with_headers() {
        let response = Problem::unauthorized("no token").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            PROBLEM_CONTENT_TYPE
        );
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}
