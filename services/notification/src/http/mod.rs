//! The HTTP edge of notification: one router per resource, declared with
//! `routes!` so each route carries its documentation, and the one error type
//! they answer with.

mod notifications;

use http_service::{service_api, ErrorTable, OpenApiRouter};
use uuid::Uuid;

use service_host::ServiceState;

/// The service's routes with their OpenAPI document.
pub fn router(state: ServiceState) -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .merge(notifications::router())
        .with_state(state);
    service_api(
        routes,
        "notification",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}

http_service::error_table! {
    /// Everything a notification handler can answer besides success: each
    /// variant's status and stable `code` in one table.
    pub enum ApiError {
        /// Another user's notification answers the same: its existence is
        /// not revealed.
        #[error("no notification {0} exists")]
        NotificationNotFound(Uuid) => (NOT_FOUND, "not_found"),
    }
    // No request writes what the named constraints guard (only the event
    // handlers do), so every database error here is an internal 500.
    constraints {}
}
