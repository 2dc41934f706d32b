//! The HTTP edge of user-points: one router per resource, declared with
//! `routes!` so each route carries its documentation, and the one error type
//! they answer with.

mod awards;
mod balance;
mod ledger;

use http_service::{service_api, ErrorTable, OpenApiRouter};
use uuid::Uuid;

use crate::domain::AwardError;
use service_host::ServiceState;

/// The service's routes with their OpenAPI document.
pub fn router(state: ServiceState) -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .merge(balance::router())
        .merge(ledger::router())
        .merge(awards::router())
        .with_state(state);
    service_api(
        routes,
        "user-points",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}

http_service::error_table! {
    /// Everything a user-points handler can answer besides success: each
    /// variant's status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidAward(#[from] AwardError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("award {0} was credited before with other fields")]
        AwardIdReused(Uuid) => (UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
        #[error("more points than are available")]
        InsufficientPoints => (CONFLICT, "insufficient_points"),
    }
    // The other named constraints (`accounts_reserved_not_negative`,
    // `accounts_balance_identity`) guard the ledger's own arithmetic: no
    // request can break them, so a violation is a bug, an internal 500.
    constraints {
        "accounts_available_not_negative" => ApiError::InsufficientPoints,
    }
}
