//! The HTTP edge of order. For now it serves only the operational
//! endpoints every service has (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`); each resource gets a module of its own here.
//!
//! Each resource module declares its handlers with `#[utoipa::path]` and
//! registers them with `routes!` on an `OpenApiRouter`, so the route and its
//! documentation are one declaration; [`ApiError`] is the one error every
//! handler answers with.

use http_service::{service_api, ErrorTable, OpenApiRouter};

use service_host::ServiceState;

http_service::error_table! {
    /// Everything a order handler can answer besides success: each variant's
    /// status and stable `code` in one table.
    pub enum ApiError {}
}

/// The service's routes with their OpenAPI document.
pub fn router(state: ServiceState) -> OpenApiRouter {
    let routes = OpenApiRouter::new().with_state(state);
    service_api(routes, "order", env!("CARGO_PKG_VERSION"), ApiError::CODES)
}
