//! The HTTP edge of cart: the cart resource and the one error type its
//! handlers answer with.

mod carts;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use http_service::{service_api, ErrorTable, OpenApiRouter};
use service_client::CallError;
use sqlx::PgPool;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::domain::QuantityOutOfRange;
use service_host::ServiceState;

/// What cart's handlers share: the service's own state and catalog.
#[derive(Clone)]
pub struct CartState {
    pub service: ServiceState,
    pub catalog: Catalog,
}

impl FromRef<CartState> for PgPool {
    fn from_ref(state: &CartState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<CartState> for Authenticator {
    fn from_ref(state: &CartState) -> Self {
        state.service.auth.clone()
    }
}

impl FromRef<CartState> for Catalog {
    fn from_ref(state: &CartState) -> Self {
        state.catalog.clone()
    }
}

http_service::error_table! {
    /// Everything a cart handler can answer besides success: each variant's
    /// status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidQuantity(#[from] QuantityOutOfRange) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("no offering {0} exists")]
        UnknownOffering(Uuid) => (NOT_FOUND, "not_found"),
        #[error("offering {0} is not on sale")]
        OfferingUnavailable(Uuid) => (CONFLICT, "offering_unavailable"),
        #[error("catalog cannot be asked: {0}")]
        CatalogUnavailable(#[source] CallError) => (SERVICE_UNAVAILABLE, "dependency_unavailable"),
    }
    // The quantity's CHECK cannot be broken by a request, which is parsed
    // into a `Quantity` first: every database error is internal.
    constraints {}
}

impl From<CallError> for ApiError {
    /// catalog's own refusals pass through as it gave them; catalog being
    /// down, slow or failing is this service's 503.
    fn from(error: CallError) -> Self {
        if error.is_unavailable() {
            ApiError::CatalogUnavailable(error)
        } else {
            ApiError::from(http_service::Problem::from(error))
        }
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: CartState) -> OpenApiRouter {
    let routes = carts::router().with_state(state);
    service_api(routes, "cart", env!("CARGO_PKG_VERSION"), ApiError::CODES)
}
