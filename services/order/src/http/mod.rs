//! The HTTP edge of order: the orders resource and the one error type its
//! handlers answer with.

mod orders;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use http_service::{service_api, ErrorTable, OpenApiRouter};
use service_client::CallError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::dispatcher::Dispatcher;
use service_host::ServiceState;

/// What order's handlers share: the service's own state and the dispatcher.
#[derive(Clone)]
pub struct OrderState {
    pub service: ServiceState,
    pub dispatcher: Dispatcher,
}

impl FromRef<OrderState> for PgPool {
    fn from_ref(state: &OrderState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<OrderState> for Authenticator {
    fn from_ref(state: &OrderState) -> Self {
        state.service.auth.clone()
    }
}

http_service::error_table! {
    /// Everything an order handler can answer besides success: each
    /// variant's status and stable `code` in one table.
    pub enum ApiError {
        #[error("no order {0} exists")]
        OrderNotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("{0:?} is not an order status")]
        InvalidStatusFilter(String) => (UNPROCESSABLE_ENTITY, "invalid_status"),
        #[error("a part of the order is confirmed by its business; it can no longer be cancelled")]
        NotCancellable => (CONFLICT, "not_cancellable"),
        #[error("the payment is being captured; try again once it is done")]
        PaymentInProgress => (CONFLICT, "payment_in_progress"),
        #[error("the dispatcher cannot be asked: {0}")]
        DispatcherUnavailable(#[source] CallError) => (SERVICE_UNAVAILABLE, "dependency_unavailable"),
    }
    // The orders' CHECKs state what the saga itself guarantees; no request
    // writes an order directly, so a violation is a bug, an internal 500.
    constraints {}
}

impl From<CallError> for ApiError {
    /// The dispatcher being down, slow or failing is this service's 503; its
    /// other refusals pass through as it gave them.
    fn from(error: CallError) -> Self {
        if error.is_unavailable() {
            ApiError::DispatcherUnavailable(error)
        } else {
            ApiError::from(http_service::Problem::from(error))
        }
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: OrderState) -> OpenApiRouter {
    let routes = orders::router().with_state(state);
    service_api(routes, "order", env!("CARGO_PKG_VERSION"), ApiError::CODES)
}
