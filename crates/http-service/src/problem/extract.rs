//! Drop-in replacements for axum's `Json`, `Query` and `Path` whose
//! rejections are problems with stable codes instead of plain-text bodies.
//!
//! The status follows DESIGN §2: input that cannot be read is 400, input that
//! reads but does not fit the type is 422, a path id that cannot parse is 404
//! (an id that cannot exist is simply unknown), an oversized body is 413.

use std::error::Error as _;

use axum::{
    extract::{
        rejection::{JsonRejection, PathRejection, QueryRejection},
        FromRequest, FromRequestParts, Request,
    },
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use super::Problem;

/// JSON request body or response body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection_to_problem(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection_to_problem(rejection: JsonRejection) -> Problem {
    let status = rejection.status();
    // serde's own message ("name: invalid type: integer `1`, expected a
    // string at line 1 column 9") is more useful to a client than axum's
    // wrapper text and reveals nothing beyond what the client sent.
    let cause = rejection
        .source()
        .map(ToString::to_string)
        .unwrap_or_else(|| rejection.body_text());
    match rejection {
        JsonRejection::JsonDataError(_) => Problem::unprocessable("invalid_body", cause),
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request(
            "malformed_json",
            format!("The body is not valid JSON: {cause}"),
        ),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Expected a body with `Content-Type: application/json`.",
        ),
        // The remaining rejections come from reading the body; the limit is
        // the only one a client can cause on purpose, the rest are broken
        // connections.
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(),
        _ => Problem::bad_request("malformed_body", "The request body could not be read."),
    }
}

/// Query-string parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            // A query string has no syntax of its own apart from its values,
            // so every failure is one bad request line: 400, with serde's
            // message naming the parameter.
            Err(QueryRejection::FailedToDeserializeQueryString(err)) => Err(Problem::bad_request(
                "invalid_query",
                err.source()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| err.body_text()),
            )),
            Err(other) => Err(Problem::bad_request("invalid_query", other.body_text())),
        }
    }
}

/// Path parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(err)) => {
                tracing::debug!(error = %err.body_text(), "path parameter does not parse");
                Err(Problem::not_found("No resource exists at this path."))
            }
            // Missing parameters mean the route and the extractor disagree:
            // a bug in the service, not in the request.
            Err(other) => {
                tracing::error!(error = %other.body_text(), "path extractor does not match its route");
                Err(Problem::internal())
            }
        }
    }
}
