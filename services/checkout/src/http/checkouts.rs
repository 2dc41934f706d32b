//! The checkouts resource (civilians and charities): `POST
//! /v1/checkouts/quote`, `POST /v1/checkouts` (`Idempotency-Key` required),
//! `POST /v1/checkouts/{id}/confirm` (`Idempotency-Key` optional) and
//! `GET /v1/checkouts/{id}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_service::auth::{AuthUser, Role};
use http_service::idempotency;
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use serde::{Deserialize, Serialize};
use service_host::ServiceState;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, CheckoutState};
use crate::domain::{
    points_budget, Checkout, CheckoutRequest, CheckoutStatus, PaymentChoice, Quote, ShippingAddress,
};
use crate::process::{Checkouts, Customer, Outcome, PricedCart};

/// Who may check out.
const SHOPPERS: &[Role] = &[Role::Civilian, Role::Charity];

pub fn router(state: &ServiceState) -> OpenApiRouter<CheckoutState> {
    // A retry whose first request died with the process takes the key over
    // once its lease, no longer renewed, runs out (seconds), and carries on
    // the checkout that request began.
    let create = OpenApiRouter::new().routes(routes!(create)).route_layer(
        axum::middleware::from_fn_with_state(state.idempotency_required(), idempotency::middleware),
    );
    let confirm = OpenApiRouter::new().routes(routes!(confirm)).route_layer(
        axum::middleware::from_fn_with_state(state.idempotency(), idempotency::middleware),
    );
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(get_checkout))
        .merge(create)
        .merge(confirm)
}

/// How many points to redeem; all available points when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct QuoteRequest {
    /// 0 or more, at most the available points.
    points_to_redeem: Option<i64>,
}

/// One cart line, priced.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuoteLineBody {
    pub offering_id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    /// Points that pay one unit in full.
    pub points_price: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub amount_due_minor: i64,
}

/// The cart priced with points (DESIGN §3's rule).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuoteBody {
    pub lines: Vec<QuoteLineBody>,
    pub currency: String,
    pub subtotal_minor: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub available_points: i64,
}

impl QuoteBody {
    fn new(quote: &Quote, currency: &str, available_points: i64) -> Self {
        QuoteBody {
            lines: quote
                .lines
                .iter()
                .map(|priced| QuoteLineBody {
                    offering_id: priced.line.offering_id,
                    business_id: priced.line.business_id,
                    title: priced.line.title.clone(),
                    quantity: priced.line.quantity.get(),
                    unit_price_minor: priced.line.unit_price_minor.get(),
                    points_price: priced.line.points_price.get(),
                    points_applied: priced.points_applied,
                    discount_minor: priced.discount_minor,
                    amount_due_minor: priced.amount_due_minor,
                })
                .collect(),
            currency: currency.to_owned(),
            subtotal_minor: quote.subtotal_minor,
            points_applied: quote.points_applied,
            discount_minor: quote.discount_minor,
            total_minor: quote.total_minor,
            available_points,
        }
    }
}

impl From<PricedCart> for QuoteBody {
    fn from(priced: PricedCart) -> Self {
        QuoteBody::new(&priced.quote, &priced.currency, priced.available_points)
    }
}

/// Where the order goes.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddressBody {
    name: String,
    line1: String,
    line2: Option<String>,
    city: String,
    postal_code: String,
    /// ISO 3166-1 alpha-2.
    country: String,
}

/// How to pay.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentRequest {
    /// `sandbox`, `stripe`, `paypal` or `apple_pay`.
    provider: String,
    /// The provider's payment method, e.g. `pm_card_visa`.
    payment_method: String,
}

/// A checkout of the caller's cart.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCheckoutRequest {
    /// 0 or more, at most the available points; all available points when absent.
    points_to_redeem: Option<i64>,
    /// Required when the total is above 0.
    payment: Option<PaymentRequest>,
    shipping_address: AddressBody,
    /// Where a 3-D Secure or PayPal approval page sends the customer back.
    return_url: Option<String>,
}

impl TryFrom<CreateCheckoutRequest> for CheckoutRequest {
    type Error = crate::domain::InvalidRequest;

    fn try_from(request: CreateCheckoutRequest) -> Result<Self, Self::Error> {
        let a = &request.shipping_address;
        let address = ShippingAddress::new(
            &a.name,
            &a.line1,
            a.line2.as_deref(),
            &a.city,
            &a.postal_code,
            &a.country,
        )?;
        let payment = request
            .payment
            .map(|p| PaymentChoice::new(&p.provider, &p.payment_method))
            .transpose()?;
        CheckoutRequest::new(
            request.points_to_redeem,
            payment,
            address,
            request.return_url.as_deref(),
        )
    }
}

/// How the order is paid.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentBody {
    /// Null when nothing was to be paid.
    pub authorization_id: Option<Uuid>,
    pub provider: Option<String>,
    /// `authorized` or `not_required`.
    pub status: String,
}

/// Where the customer goes to finish the payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextActionBody {
    /// `redirect_to_url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

/// A checkout. `payment` is present once it is completed, `next_action`
/// while it waits for the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutBody {
    pub id: Uuid,
    pub order_id: Uuid,
    /// `in_progress`, `requires_action`, `completed`, `failed` or `expired`.
    pub status: String,
    pub quote: QuoteBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextActionBody>,
    /// Past this an unfinished checkout cannot be finished.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Checkout> for CheckoutBody {
    fn from(checkout: &Checkout) -> Self {
        let payment = (checkout.status == CheckoutStatus::Completed).then(|| PaymentBody {
            authorization_id: checkout.authorization_id,
            provider: checkout.provider().map(str::to_owned),
            status: if checkout.authorization_id.is_some() {
                "authorized"
            } else {
                "not_required"
            }
            .to_owned(),
        });
        let next_action = checkout
            .next_action_url
            .clone()
            .filter(|_| checkout.status == CheckoutStatus::RequiresAction)
            .map(|url| NextActionBody {
                kind: "redirect_to_url".to_owned(),
                url,
            });
        CheckoutBody {
            id: checkout.id,
            order_id: checkout.order_id,
            status: checkout.status.as_str().to_owned(),
            quote: QuoteBody::new(
                &checkout.quote,
                &checkout.currency,
                checkout.available_points,
            ),
            payment,
            next_action,
            expires_at: checkout.expires_at,
            created_at: checkout.created_at,
        }
    }
}

fn respond(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Completed(checkout) => {
            (StatusCode::CREATED, Json(CheckoutBody::from(&checkout))).into_response()
        }
        Outcome::RequiresAction(checkout) => {
            (StatusCode::OK, Json(CheckoutBody::from(&checkout))).into_response()
        }
    }
}

/// Price the caller's cart with points.
#[utoipa::path(
    post,
    path = "/v1/checkouts/quote",
    tag = "checkouts",
    request_body = QuoteRequest,
    responses(
        (status = OK, description = "The quote", body = QuoteBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
        (status = CONFLICT, description = "Empty cart, more points than available, an offering not on sale or out of stock"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Negative points"),
        (status = SERVICE_UNAVAILABLE, description = "A peer cannot be asked"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn quote(
    caller: AuthUser,
    State(checkouts): State<Checkouts>,
    Json(request): Json<QuoteRequest>,
) -> Result<Json<QuoteBody>, ApiError> {
    caller.require_role(SHOPPERS)?;
    let budget = points_budget(request.points_to_redeem)?;
    Ok(Json(checkouts.quote(caller.id(), budget).await?.into()))
}

/// Check out the caller's cart: reserve the points, authorize the payment,
/// submit the order.
#[utoipa::path(
    post,
    path = "/v1/checkouts",
    tag = "checkouts",
    request_body = CreateCheckoutRequest,
    params(("Idempotency-Key" = String, Header, description = "Required; repeats answer the first request's answer")),
    responses(
        (status = CREATED, description = "Completed: the order is submitted", body = CheckoutBody),
        (status = OK, description = "Requires action: send the customer to next_action.url, then confirm", body = CheckoutBody),
        (status = BAD_REQUEST, description = "The body is not JSON, or no Idempotency-Key"),
        (status = UNAUTHORIZED),
        (status = PAYMENT_REQUIRED, description = "Declined; decline_code says why"),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
        (status = CONFLICT, description = "Empty cart, more points than available, an offering not on sale or out of stock"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "An invalid body, no payment for a total above 0, or a reused Idempotency-Key"),
        (status = SERVICE_UNAVAILABLE, description = "A peer cannot be asked; nothing is held"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id()))]
async fn create(
    caller: AuthUser,
    State(checkouts): State<Checkouts>,
    headers: HeaderMap,
    Json(request): Json<CreateCheckoutRequest>,
) -> Result<Response, ApiError> {
    caller.require_role(SHOPPERS)?;
    // The idempotency layer lets no request without a key through.
    let key = headers
        .get(idempotency::HEADER)
        .and_then(|key| key.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request = CheckoutRequest::try_from(request)?;
    let customer = Customer {
        id: caller.id(),
        email: caller.claims.email.clone(),
    };
    Ok(respond(checkouts.submit(customer, &key, request).await?))
}

/// Finish a checkout that required action; a completed one answers its 201 again.
#[utoipa::path(
    post,
    path = "/v1/checkouts/{checkout_id}/confirm",
    tag = "checkouts",
    params(
        ("checkout_id" = Uuid, Path, description = "The checkout"),
        ("Idempotency-Key" = Option<String>, Header, description = "Repeats answer the first request's answer"),
    ),
    responses(
        (status = CREATED, description = "Completed: the order is submitted", body = CheckoutBody),
        (status = OK, description = "Still requires action", body = CheckoutBody),
        (status = UNAUTHORIZED),
        (status = PAYMENT_REQUIRED, description = "Declined; decline_code says why"),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
        (status = NOT_FOUND, description = "No such checkout of the caller's"),
        (status = CONFLICT, description = "Expired, failed, or still being processed"),
        (status = UNPROCESSABLE_ENTITY, description = "A reused Idempotency-Key"),
        (status = SERVICE_UNAVAILABLE, description = "A peer cannot be asked; nothing is held"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %checkout_id))]
async fn confirm(
    caller: AuthUser,
    State(checkouts): State<Checkouts>,
    Path(checkout_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    caller.require_role(SHOPPERS)?;
    Ok(respond(checkouts.confirm(caller.id(), checkout_id).await?))
}

/// One of the caller's checkouts.
#[utoipa::path(
    get,
    path = "/v1/checkouts/{checkout_id}",
    tag = "checkouts",
    params(("checkout_id" = Uuid, Path, description = "The checkout")),
    responses(
        (status = OK, description = "The checkout", body = CheckoutBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not a civilian or a charity"),
        (status = NOT_FOUND, description = "No such checkout of the caller's"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %checkout_id))]
async fn get_checkout(
    caller: AuthUser,
    State(checkouts): State<Checkouts>,
    Path(checkout_id): Path<Uuid>,
) -> Result<Json<CheckoutBody>, ApiError> {
    caller.require_role(SHOPPERS)?;
    let checkout = checkouts.get(caller.id(), checkout_id).await?;
    Ok(Json(CheckoutBody::from(&checkout)))
}
