//! `POST /v1/webhooks/stripe` and `POST /v1/webhooks/paypal`: no bearer
//! token; each delivery is verified by its provider's signature check, then
//! stored and answered at once (see `crate::webhooks`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use http_service::problem::Json;
use http_service::{routes, OpenApiRouter};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::{ApiError, GatewayState};
use crate::providers::{paypal, stripe, ProviderId, Providers, WebhookError};
use crate::webhooks;

pub fn router() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new()
        .routes(routes!(stripe_webhook))
        .routes(routes!(paypal_webhook))
}

/// The delivery was accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// The provider's event id.
    event_id: String,
    /// False when the provider had delivered this event before.
    first_delivery: bool,
}

/// A Stripe event, verified by its `Stripe-Signature`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/stripe",
    tag = "webhooks",
    request_body(content = String, description = "The event as Stripe sends it", content_type = "application/json"),
    responses(
        (status = OK, description = "Stored (now or before); processed shortly", body = Received),
        (status = BAD_REQUEST, description = "Signature missing, wrong or stale, or not an event"),
        (status = NOT_FOUND, description = "Stripe webhooks are not configured"),
        (status = PAYLOAD_TOO_LARGE),
        (status = SERVICE_UNAVAILABLE, description = "Verification needs the provider, which cannot be reached"),
    )
)]
#[tracing::instrument(skip_all)]
async fn stripe_webhook(
    State(pool): State<PgPool>,
    State(providers): State<Providers>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    receive(&pool, &providers, stripe::ID, &headers, &body).await
}

/// A PayPal event, verified by PayPal's `verify-webhook-signature`.
#[utoipa::path(
    post,
    path = "/v1/webhooks/paypal",
    tag = "webhooks",
    request_body(content = String, description = "The event as PayPal sends it", content_type = "application/json"),
    responses(
        (status = OK, description = "Stored (now or before); processed shortly", body = Received),
        (status = BAD_REQUEST, description = "Signature missing or wrong, or not an event"),
        (status = NOT_FOUND, description = "PayPal webhooks are not configured"),
        (status = PAYLOAD_TOO_LARGE),
        (status = SERVICE_UNAVAILABLE, description = "Verification needs PayPal, which cannot be reached"),
    )
)]
#[tracing::instrument(skip_all)]
async fn paypal_webhook(
    State(pool): State<PgPool>,
    State(providers): State<Providers>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    receive(&pool, &providers, paypal::ID, &headers, &body).await
}

async fn receive(
    pool: &PgPool,
    providers: &Providers,
    provider: ProviderId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Json<Received>, ApiError> {
    let not_configured = || {
        ApiError::Edge(http_service::Problem::not_found(format!(
            "{provider} webhooks are not configured"
        )))
    };
    let payment_provider = providers
        .get(provider.as_str())
        .ok_or_else(not_configured)?;
    let event = match payment_provider.verify_webhook(headers, body).await {
        Ok(event) => event,
        Err(WebhookError::NotSupported(_)) => return Err(not_configured()),
        Err(error @ (WebhookError::MissingSignature(_) | WebhookError::BadSignature)) => {
            tracing::warn!(%provider, error = %error, "webhook refused");
            return Err(ApiError::InvalidSignature(error.to_string()));
        }
        Err(WebhookError::Stale) => {
            tracing::warn!(%provider, "stale webhook refused");
            return Err(ApiError::StaleSignature);
        }
        Err(WebhookError::Malformed(detail)) => return Err(ApiError::MalformedWebhook(detail)),
        Err(WebhookError::Provider(error)) => return Err(ApiError::ProviderUnavailable(error)),
    };
    let first_delivery = webhooks::receive(pool, &event).await?;
    if !first_delivery {
        tracing::info!(%provider, event_id = %event.event_id, "webhook delivered again; stored before");
    }
    Ok(Json(Received {
        event_id: event.event_id,
        first_delivery,
    }))
}
