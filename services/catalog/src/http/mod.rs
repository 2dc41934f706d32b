//! The HTTP edge of catalog. For now it serves only the operational
//! endpoints every service has (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`); each resource gets a module of its own here.

use axum::Router;
use http_service::server::OpenApi;

use service_host::ServiceState;

pub fn router(state: ServiceState) -> Router {
    Router::new().with_state(state)
}

pub fn openapi() -> OpenApi {
    OpenApi::new("catalog", env!("CARGO_PKG_VERSION"))
}
