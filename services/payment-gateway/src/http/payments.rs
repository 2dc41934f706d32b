//! `/v1/payments`: what checkout calls (authorize, confirm, void one
//! authorization or whatever an order has) and what operators read (an
//! authorization with its captures and refunds). All for the service role;
//! reading also for admins.

use axum::extract::State;
use axum::http::StatusCode;
use http_service::auth::{AuthUser, Role};
use http_service::idempotency;
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, GatewayState};
use crate::authorizations::{self, NewAuthorization};
use crate::domain::{
    Authorization, AuthorizationId, AuthorizationState, CallState, Currency, CustomerId, Money,
};
use crate::providers::{PaymentMethod, Providers};
use crate::store;
use service_host::ServiceState;

pub fn router(service: &ServiceState) -> OpenApiRouter<GatewayState> {
    let authorize = OpenApiRouter::new().routes(routes!(authorize)).route_layer(
        axum::middleware::from_fn_with_state(
            service.idempotency_required(),
            idempotency::middleware,
        ),
    );
    let others = OpenApiRouter::new()
        .routes(routes!(confirm))
        .routes(routes!(void))
        .routes(routes!(void_order))
        .route_layer(axum::middleware::from_fn_with_state(
            service.idempotency(),
            idempotency::middleware,
        ));
    OpenApiRouter::new()
        .merge(authorize)
        .merge(others)
        .routes(routes!(show))
}

/// An amount to authorize for an order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AuthorizationRequest {
    /// One authorization per order: asking again returns the first.
    order_id: Uuid,
    checkout_id: Uuid,
    customer_id: Uuid,
    /// At least 1, and at least the provider's minimum.
    amount_minor: i64,
    /// ISO 4217, e.g. `USD`.
    currency: String,
    /// `sandbox`, `stripe`, `apple_pay` or `paypal`, as configured.
    provider: String,
    /// The provider's payment method: a sandbox test method
    /// (`pm_card_visa`), a Stripe PaymentMethod, an Apple Pay token, `paypal`.
    payment_method: String,
    /// Where a 3-D Secure or approval page sends the customer back; http(s).
    return_url: Option<String>,
}

impl TryFrom<AuthorizationRequest> for NewAuthorization {
    type Error = ApiError;

    fn try_from(request: AuthorizationRequest) -> Result<Self, ApiError> {
        let currency = Currency::new(&request.currency).map_err(ApiError::InvalidBody)?;
        let amount = Money::new(request.amount_minor, currency).map_err(ApiError::InvalidBody)?;
        let payment_method =
            PaymentMethod::new(&request.payment_method).map_err(ApiError::InvalidBody)?;
        if let Some(url) = &request.return_url {
            let is_http = url.starts_with("https://") || url.starts_with("http://");
            if !is_http || url.len() > 2048 {
                return Err(ApiError::InvalidBody(
                    "return_url must be an http(s) URL of at most 2048 characters".to_owned(),
                ));
            }
        }
        Ok(NewAuthorization {
            order_id: request.order_id,
            checkout_id: request.checkout_id,
            customer_id: CustomerId(request.customer_id),
            amount,
            provider: request.provider.trim().to_owned(),
            payment_method,
            return_url: request.return_url,
        })
    }
}

/// Where the customer must go to finish the payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextAction {
    /// Always `redirect_to_url`.
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

/// How an authorization stands for checkout.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationBody {
    authorization_id: Uuid,
    /// `authorized`, `requires_action` or `declined` (also `voided` or
    /// `captured` once that happened).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_action: Option<NextAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<String>,
}

impl From<Authorization> for AuthorizationBody {
    fn from(authorization: Authorization) -> Self {
        let next_action = match (authorization.state, authorization.redirect_url) {
            (AuthorizationState::RequiresAction, Some(url)) => Some(NextAction {
                kind: "redirect_to_url",
                url,
            }),
            _ => None,
        };
        AuthorizationBody {
            authorization_id: authorization.authorization_id.0,
            status: authorization.state.as_str(),
            next_action,
            decline_code: authorization.decline_code,
        }
    }
}

/// Authorize an amount for an order (service; `Idempotency-Key` required).
/// A decline is recorded too, and answered 201 with its `decline_code`.
#[utoipa::path(
    post,
    path = "/v1/payments/authorizations",
    tag = "payments",
    request_body = AuthorizationRequest,
    responses(
        (status = CREATED, description = "Authorized, declined, or waiting for the customer's action", body = AuthorizationBody),
        (status = BAD_REQUEST, description = "The body is not JSON, or no Idempotency-Key"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = CONFLICT, description = "The order was voided, or its authorization is still in flight"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid body, unknown provider, amount below the provider's minimum, or refused by the provider"),
        (status = SERVICE_UNAVAILABLE, description = "The provider cannot be reached or its answer was lost; void the order (a hold the provider made meanwhile is found and released)"),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id(), order_id = tracing::field::Empty))]
async fn authorize(
    caller: AuthUser,
    State(pool): State<PgPool>,
    State(providers): State<Providers>,
    Json(request): Json<AuthorizationRequest>,
) -> Result<(StatusCode, Json<AuthorizationBody>), ApiError> {
    caller.require_role(&[Role::Service])?;
    let request = NewAuthorization::try_from(request)?;
    tracing::Span::current().record("order_id", tracing::field::display(request.order_id));
    let authorization = authorizations::authorize(&pool, &providers, request).await?;
    Ok((StatusCode::CREATED, Json(authorization.into())))
}

/// Finish an authorization after the customer's action (service).
#[utoipa::path(
    post,
    path = "/v1/payments/{authorization_id}/confirm",
    tag = "payments",
    params(("authorization_id" = Uuid, Path, description = "The authorization")),
    responses(
        (status = OK, description = "Authorized or declined (or as it stood)", body = AuthorizationBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = NOT_FOUND, description = "No such authorization"),
        (status = CONFLICT, description = "Voided, or still in flight"),
        (status = UNPROCESSABLE_ENTITY, description = "Refused by the provider"),
        (status = SERVICE_UNAVAILABLE, description = "The provider cannot be reached; confirm again later"),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id(), %authorization_id))]
async fn confirm(
    caller: AuthUser,
    State(pool): State<PgPool>,
    State(providers): State<Providers>,
    Path(authorization_id): Path<Uuid>,
) -> Result<Json<AuthorizationBody>, ApiError> {
    caller.require_role(&[Role::Service])?;
    let authorization =
        authorizations::confirm(&pool, &providers, AuthorizationId(authorization_id)).await?;
    Ok(Json(authorization.into()))
}

/// A voided authorization.
#[derive(Debug, Serialize, ToSchema)]
pub struct VoidBody {
    authorization_id: Uuid,
    /// Always `voided`.
    status: &'static str,
}

/// Release an authorization without taking anything (service); again →
/// the same answer.
#[utoipa::path(
    post,
    path = "/v1/payments/{authorization_id}/void",
    tag = "payments",
    params(("authorization_id" = Uuid, Path, description = "The authorization")),
    responses(
        (status = OK, description = "Voided, now or before", body = VoidBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = NOT_FOUND, description = "No such authorization"),
        (status = CONFLICT, description = "Captured already, declined, or still in flight"),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id(), %authorization_id))]
async fn void(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(authorization_id): Path<Uuid>,
) -> Result<Json<VoidBody>, ApiError> {
    caller.require_role(&[Role::Service])?;
    let authorization = authorizations::void(&pool, AuthorizationId(authorization_id)).await?;
    Ok(Json(VoidBody {
        authorization_id: authorization.authorization_id.0,
        status: AuthorizationState::Voided.as_str(),
    }))
}

/// What an order void did.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderVoidBody {
    order_id: Uuid,
    /// The order's authorization, when it has one that holds (or held) money.
    voided: Vec<Uuid>,
}

/// Void whatever the order has, now or when it arrives (service): for a
/// checkout that never learnt its authorization's id. Idempotent.
#[utoipa::path(
    post,
    path = "/v1/payments/orders/{order_id}/void",
    tag = "payments",
    params(("order_id" = Uuid, Path, description = "The order")),
    responses(
        (status = OK, description = "Voided (or nothing to void); later authorizations for the order are refused", body = OrderVoidBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service role"),
        (status = CONFLICT, description = "The order's authorization was captured already"),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id(), %order_id))]
async fn void_order(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(order_id): Path<Uuid>,
) -> Result<Json<OrderVoidBody>, ApiError> {
    caller.require_role(&[Role::Service])?;
    let voided = authorizations::void_order(&pool, order_id).await?;
    Ok(Json(OrderVoidBody {
        order_id,
        voided: voided.into_iter().map(|id| id.0).collect(),
    }))
}

/// One capture of an authorization.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureBody {
    amount_minor: i64,
    /// `pending`, `succeeded` or `failed`.
    status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// One refund of an authorization's capture.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundBody {
    refund_id: Uuid,
    amount_minor: i64,
    /// `pending`, `succeeded` or `failed`.
    status: &'static str,
    reason: String,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

/// An authorization with everything done with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentBody {
    authorization_id: Uuid,
    order_id: Uuid,
    provider: String,
    /// `pending`, `requires_action`, `authorized`, `declined`, `voided` or `captured`.
    status: &'static str,
    amount_minor: i64,
    currency: String,
    /// The provider's id of the captured payment, once captured.
    transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<String>,
    captures: Vec<CaptureBody>,
    refunds: Vec<RefundBody>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// An authorization, its capture and its refunds (service or admin).
#[utoipa::path(
    get,
    path = "/v1/payments/{authorization_id}",
    tag = "payments",
    params(("authorization_id" = Uuid, Path, description = "The authorization")),
    responses(
        (status = OK, body = PaymentBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not the service or admin role"),
        (status = NOT_FOUND, description = "No such authorization"),
    )
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id(), %authorization_id))]
async fn show(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Path(authorization_id): Path<Uuid>,
) -> Result<Json<PaymentBody>, ApiError> {
    caller.require_role(&[Role::Service, Role::Admin])?;
    let authorization_id = AuthorizationId(authorization_id);
    let mut conn = pool.acquire().await?;
    let authorization = store::authorization(&mut conn, authorization_id)
        .await?
        .ok_or(ApiError::AuthorizationNotFound(authorization_id))?;
    let capture = store::capture(&mut conn, authorization_id).await?;
    let refunds = store::refunds_of(&mut conn, authorization_id).await?;
    let transaction_id = capture
        .as_ref()
        .filter(|capture| capture.state == CallState::Succeeded)
        .and_then(|capture| capture.transaction_id.clone());
    Ok(Json(PaymentBody {
        authorization_id: authorization_id.0,
        order_id: authorization.order_id,
        provider: authorization.provider,
        status: authorization.state.as_str(),
        amount_minor: authorization.amount.amount_minor(),
        currency: authorization.amount.currency().to_string(),
        transaction_id,
        decline_code: authorization.decline_code,
        captures: capture
            .into_iter()
            .map(|capture| CaptureBody {
                amount_minor: capture.amount_minor,
                status: capture.state.as_str(),
                at: capture.updated_at,
            })
            .collect(),
        refunds: refunds
            .into_iter()
            .map(|refund| RefundBody {
                refund_id: refund.refund_id.0,
                amount_minor: refund.amount_minor,
                status: refund.state.as_str(),
                reason: refund.reason,
                at: refund.updated_at,
            })
            .collect(),
        created_at: authorization.created_at,
        updated_at: authorization.updated_at,
    }))
}
