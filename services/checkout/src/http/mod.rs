//! The HTTP edge of checkout: the checkouts resource and the one error type
//! its handlers answer with.

mod checkouts;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::http::StatusCode;
use http_service::auth::Authenticator;
use http_service::{service_api, ErrorTable, OpenApiRouter, Problem};
use job_queue::Clock;
use service_client::CallError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::InvalidRequest;
use crate::process::Checkouts;
use service_host::ServiceState;

pub use checkouts::{CheckoutBody, QuoteBody};

/// What checkout's handlers share: the service's own state and the
/// checkout process with its peers.
#[derive(Clone)]
pub struct CheckoutState {
    pub service: ServiceState,
    pub checkouts: Checkouts,
}

impl FromRef<CheckoutState> for PgPool {
    fn from_ref(state: &CheckoutState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<CheckoutState> for Authenticator {
    fn from_ref(state: &CheckoutState) -> Self {
        state.service.auth.clone()
    }
}

impl FromRef<CheckoutState> for Arc<dyn Clock> {
    fn from_ref(state: &CheckoutState) -> Self {
        state.service.clock.clone()
    }
}

impl FromRef<CheckoutState> for Checkouts {
    fn from_ref(state: &CheckoutState) -> Self {
        state.checkouts.clone()
    }
}

http_service::error_table! {
    /// Everything a checkout handler can answer besides success: each variant's
    /// status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidRequest(#[from] InvalidRequest) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("payment is required: the total is {0} minor units")]
        PaymentMissing(i64) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("the cart is empty")]
        CartEmpty => (CONFLICT, "cart_empty"),
        #[error("{requested} points asked for, {available} available")]
        InsufficientPoints { requested: i64, available: i64 } => (CONFLICT, "insufficient_points"),
        #[error("offering {0} is not on sale")]
        OfferingUnavailable(Uuid) => (CONFLICT, "offering_unavailable"),
        #[error("offering {0} has fewer units in stock than the cart holds")]
        OutOfStock(Uuid) => (CONFLICT, "out_of_stock"),
        /// Answered through [`ApiError::declined`], which adds `decline_code`.
        #[error("the payment was declined")]
        PaymentDeclined => (PAYMENT_REQUIRED, "payment_declined"),
        #[error("no checkout {0} exists")]
        NotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("checkout {0} was left unconfirmed past its reservation; nothing is held")]
        CheckoutExpired(Uuid) => (CONFLICT, "checkout_expired"),
        #[error("checkout {0} failed; start a new one")]
        CheckoutFailed(Uuid) => (CONFLICT, "checkout_failed"),
        #[error("checkout {0} is still being processed")]
        CheckoutInProgress(Uuid) => (CONFLICT, "checkout_in_progress"),
        #[error("{0}")]
        DependencyUnavailable(#[source] CallError) => (SERVICE_UNAVAILABLE, "dependency_unavailable"),
    }
    // Every constraint guards what checkout itself writes from parsed
    // values: a violation is a bug, an internal 500.
    constraints {}
}

impl ApiError {
    /// `402 payment_declined` with the provider's reason in `decline_code`.
    pub fn declined(decline_code: &str) -> ApiError {
        ApiError::from(
            Problem::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "The payment was declined; nothing was charged and no points were spent.",
            )
            .with("decline_code", decline_code),
        )
    }
}

impl From<CallError> for ApiError {
    /// A peer's own refusals pass through as it gave them; a peer down,
    /// slow or failing is this service's 503.
    fn from(error: CallError) -> Self {
        if error.is_unavailable() {
            ApiError::DependencyUnavailable(error)
        } else {
            ApiError::from(Problem::from(error))
        }
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: CheckoutState) -> OpenApiRouter {
    let routes = checkouts::router(&state.service).with_state(state);
    service_api(
        routes,
        "checkout",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}
