//! The HTTP edge of user-points: one router per resource, declared with
//! `routes!` so each route carries its documentation, and the one error type
//! they answer with.

mod awards;
mod balance;
mod charities;
mod donations;
mod ledger;
mod reservations;

use http_service::{service_api, ErrorTable, OpenApiRouter};
use uuid::Uuid;

use crate::domain::{AwardError, Bound, CharityError, PointsError, ReservationError};
use service_host::ServiceState;

/// The service's routes with their OpenAPI document.
pub fn router(state: ServiceState) -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .merge(balance::router())
        .merge(ledger::router())
        .merge(awards::router(&state))
        .merge(reservations::router())
        .merge(charities::router())
        .merge(donations::router(&state))
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
        #[error("{0}")]
        InvalidReservation(#[from] ReservationError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("{0}")]
        InvalidCharity(#[from] CharityError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("{0}")]
        InvalidPoints(#[from] PointsError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("more points than are available")]
        InsufficientPoints => (CONFLICT, "insufficient_points"),
        #[error("no reservation {0} exists")]
        ReservationNotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("{0}; only the order's commands change it")]
        ReservationBound(Bound) => (CONFLICT, "reservation_bound"),
        #[error("charity {0} is registered under another name")]
        CharityAlreadyRegistered(Uuid) => (CONFLICT, "charity_already_registered"),
        #[error("the charity is not registered")]
        UnknownCharity => (UNPROCESSABLE_ENTITY, "unknown_charity"),
    }
    // The other named constraints (`accounts_reserved_not_negative`,
    // `accounts_balance_identity`, the `reservations_*` checks) guard the
    // ledger's own arithmetic: no request can break them, so a violation is
    // a bug, an internal 500.
    constraints {
        "accounts_available_not_negative" => ApiError::InsufficientPoints,
        "donations_charity_registered" => ApiError::UnknownCharity,
    }
}
