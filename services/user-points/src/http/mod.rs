//! The HTTP edge of user-points: one router per resource and the one error
//! type they answer with.

mod awards;
mod balance;
mod ledger;

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_service::problem::Problem;
use http_service::server::OpenApi;

use service_host::ServiceState;

pub fn router(state: ServiceState) -> Router {
    Router::new()
        .merge(balance::router())
        .merge(ledger::router())
        .merge(awards::router())
        .with_state(state)
}

pub fn openapi() -> OpenApi {
    OpenApi::new("user-points", env!("CARGO_PKG_VERSION"))
        .path(
            Method::GET,
            "/v1/points/balance",
            "The caller's points balance",
            &[(200, "The balance"), (401, "No or bad token")],
        )
        .path(
            Method::GET,
            "/v1/points/ledger",
            "The caller's ledger entries, newest first",
            &[
                (200, "A page of entries"),
                (401, "No or bad token"),
                (422, "Bad limit or cursor"),
            ],
        )
        .path(
            Method::POST,
            "/v1/points/awards",
            "Credit an award once per award_id (admin or service)",
            &[
                (201, "Credited, now or before"),
                (401, "No or bad token"),
                (403, "Not admin or service"),
                (422, "Invalid award, or award_id reused with other fields"),
            ],
        )
}

/// Everything a user-points handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0:?}")]
    Problem(Problem),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        ApiError::Problem(problem)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::Internal(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Problem(problem) => problem.into_response(),
            ApiError::Internal(error) => {
                tracing::error!(error = ?error, "request failed");
                Problem::internal().into_response()
            }
        }
    }
}
