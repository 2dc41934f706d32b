//! The HTTP edge of catalog: businesses and offerings, one router per
//! resource declared with `routes!` so each route carries its
//! documentation, and the one error type they answer with.

mod businesses;
mod offerings;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use http_service::{service_api, ErrorTable, OpenApiRouter};
use service_host::ServiceState;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{ShopCurrency, ValidationError};
use crate::store::StoreError;

/// What catalog's handlers share: the service's own state and the currency
/// the shop sells in.
#[derive(Clone)]
pub struct CatalogState {
    pub service: ServiceState,
    pub shop_currency: ShopCurrency,
}

impl FromRef<CatalogState> for PgPool {
    fn from_ref(state: &CatalogState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<CatalogState> for Authenticator {
    fn from_ref(state: &CatalogState) -> Self {
        state.service.auth.clone()
    }
}

impl FromRef<CatalogState> for ShopCurrency {
    fn from_ref(state: &CatalogState) -> Self {
        state.shop_currency
    }
}

http_service::error_table! {
    /// Everything a catalog handler can answer besides success: each
    /// variant's status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidBody(#[from] ValidationError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("{0}")]
        InvalidSearch(ValidationError) => (UNPROCESSABLE_ENTITY, "invalid_search"),
        #[error("business {0} is not registered")]
        UnknownBusiness(Uuid) => (UNPROCESSABLE_ENTITY, "unknown_business"),
        #[error("no business {0} exists")]
        BusinessNotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("no offering {0} exists")]
        OfferingNotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("a business acts only for its own business_id")]
        OtherBusiness => (FORBIDDEN, "forbidden"),
    }
    // Requests are parsed into domain types that enforce what the offerings'
    // CHECKs state, so no request can break one: a violation is a bug, an
    // internal 500. The business foreign key is mapped by the store.
    constraints {}
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownBusiness(business_id) => ApiError::UnknownBusiness(business_id),
            StoreError::ForeignKey => ApiError::Edge(http_service::Problem::unprocessable(
                http_service::pagination::INVALID_PAGINATION,
                "cursor belongs to another listing",
            )),
            StoreError::Database(error) => error.into(),
        }
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: CatalogState) -> OpenApiRouter {
    // The POSTs that create a business or an offering honour an
    // `Idempotency-Key`; the middleware lets every other method through.
    let idempotency = state.service.idempotency();
    let routes = OpenApiRouter::new()
        .merge(businesses::router())
        .merge(offerings::router())
        .route_layer(axum::middleware::from_fn_with_state(
            idempotency,
            http_service::idempotency::middleware,
        ))
        .with_state(state);
    service_api(
        routes,
        "catalog",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}
