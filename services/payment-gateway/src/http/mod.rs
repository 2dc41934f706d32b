//! The HTTP edge of payment-gateway: one router per resource (payments for
//! checkout and operators, the sandbox's authentication page, provider
//! webhooks), declared with `routes!` so each route carries its
//! documentation, and [`ApiError`], the one error every handler answers with.

mod payments;
mod sandbox;
mod webhooks;

use axum::extract::FromRef;
use http_service::auth::Authenticator;
use http_service::{service_api, ErrorTable, OpenApiRouter};
use sqlx::PgPool;
use uuid::Uuid;

use crate::authorizations::PaymentError;
use crate::domain::AuthorizationId;
use crate::providers::{ProviderError, Providers};
use service_host::ServiceState;

/// What the gateway's handlers share: the service's own state and the
/// configured providers.
#[derive(Clone)]
pub struct GatewayState {
    pub service: ServiceState,
    pub providers: Providers,
}

impl FromRef<GatewayState> for PgPool {
    fn from_ref(state: &GatewayState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<GatewayState> for Authenticator {
    fn from_ref(state: &GatewayState) -> Self {
        state.service.auth.clone()
    }
}

impl FromRef<GatewayState> for Providers {
    fn from_ref(state: &GatewayState) -> Self {
        state.providers.clone()
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: GatewayState) -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .merge(payments::router(&state.service))
        .merge(sandbox::router())
        .merge(webhooks::router())
        .with_state(state);
    service_api(
        routes,
        "payment-gateway",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}

http_service::error_table! {
    /// Everything a payment-gateway handler can answer besides success: each variant's
    /// status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidBody(String) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("provider {0:?} is not configured here")]
        UnknownProvider(String) => (UNPROCESSABLE_ENTITY, "unknown_provider"),
        #[error("{0}")]
        AmountBelowMinimum(String) => (UNPROCESSABLE_ENTITY, "amount_below_minimum"),
        #[error("{0}")]
        PaymentRefused(String) => (UNPROCESSABLE_ENTITY, "payment_refused"),
        #[error("no authorization {0} exists")]
        AuthorizationNotFound(AuthorizationId) => (NOT_FOUND, "not_found"),
        #[error("order {0} was voided; its payment is not taken")]
        OrderVoided(Uuid) => (CONFLICT, "order_voided"),
        #[error("authorization {0} is still waiting for its provider's answer")]
        AuthorizationInProgress(AuthorizationId) => (CONFLICT, "authorization_in_progress"),
        #[error("authorization {0} was captured; it can only be refunded")]
        AlreadyCaptured(AuthorizationId) => (CONFLICT, "already_captured"),
        #[error("authorization {0} was declined; nothing is held")]
        NotVoidable(AuthorizationId) => (CONFLICT, "not_voidable"),
        #[error("authorization {0} was voided")]
        AuthorizationVoided(AuthorizationId) => (CONFLICT, "authorization_voided"),
        #[error("the payment provider cannot be reached")]
        ProviderUnavailable(#[source] ProviderError) => (SERVICE_UNAVAILABLE, "dependency_unavailable"),
        #[error("{0}")]
        InvalidSignature(String) => (BAD_REQUEST, "invalid_signature"),
        #[error("the webhook's signature is older than the tolerance")]
        StaleSignature => (BAD_REQUEST, "stale_signature"),
        #[error("{0}")]
        MalformedWebhook(String) => (BAD_REQUEST, "malformed_webhook"),
    }
    // Requests are parsed before they reach the database, and each
    // once-per-key rule is an `ON CONFLICT DO NOTHING`: a constraint broken
    // anyway is a bug, an internal 500.
    constraints {}
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::UnknownProvider(provider) => ApiError::UnknownProvider(provider),
            error @ PaymentError::AmountBelowMinimum { .. } => {
                ApiError::AmountBelowMinimum(error.to_string())
            }
            PaymentError::OrderVoided(order_id) => ApiError::OrderVoided(order_id),
            PaymentError::InProgress(id) => ApiError::AuthorizationInProgress(id),
            PaymentError::NotFound(id) => ApiError::AuthorizationNotFound(id),
            PaymentError::AlreadyCaptured(id) => ApiError::AlreadyCaptured(id),
            PaymentError::NotVoidable(id) => ApiError::NotVoidable(id),
            PaymentError::Voided(id) => ApiError::AuthorizationVoided(id),
            PaymentError::Refused(message) => ApiError::PaymentRefused(message),
            PaymentError::ProviderUnavailable(error) => ApiError::ProviderUnavailable(error),
            PaymentError::Database(error) => ApiError::from(error),
            PaymentError::Internal(error) => ApiError::Internal(error),
        }
    }
}
