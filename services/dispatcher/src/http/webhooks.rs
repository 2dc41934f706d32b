//! `POST /v1/dispatch/webhooks/{business_id}`: a business on the `webhook`
//! plugin answers about its parts, signed with its secret the way its parts
//! were (see `plugins::webhook`). No bearer token: the signature is the
//! credential, so a bad or stale one is 401.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter, Problem};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::body::PartBody;
use super::parts::apply;
use super::{ApiError, DispatchState};
use crate::domain::{Action, ActionError, Carrier, DeclineReason, Reference, TrackingNumber};
use crate::plugins::webhook::{self, WebhookConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::store;

pub fn router() -> OpenApiRouter<DispatchState> {
    OpenApiRouter::new().routes(routes!(inbound))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InboundAction {
    Confirm,
    Decline,
    Shipped,
    Delivered,
}

/// A business's answer about its part of an order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct InboundAnswer {
    order_id: Uuid,
    action: InboundAction,
    /// With `confirm`: the business's own id for the part.
    reference: Option<String>,
    /// Required with `decline`.
    reason: Option<String>,
    /// Required with `shipped`.
    carrier: Option<String>,
    /// Required with `shipped`.
    tracking_number: Option<String>,
}

impl TryFrom<InboundAnswer> for Action {
    type Error = ActionError;

    fn try_from(answer: InboundAnswer) -> Result<Self, ActionError> {
        let required = |value: Option<String>, field: &'static str| {
            value.ok_or(ActionError::Missing { field })
        };
        Ok(match answer.action {
            InboundAction::Confirm => Action::Confirm {
                reference: answer
                    .reference
                    .as_deref()
                    .map(Reference::new)
                    .transpose()?,
            },
            InboundAction::Decline => Action::Decline {
                reason: DeclineReason::new(&required(answer.reason, "reason")?)?,
            },
            InboundAction::Shipped => Action::Ship {
                carrier: Carrier::new(&required(answer.carrier, "carrier")?)?,
                tracking_number: TrackingNumber::new(&required(
                    answer.tracking_number,
                    "tracking_number",
                )?)?,
            },
            InboundAction::Delivered => Action::Deliver,
        })
    }
}

/// A business's signed answer about its part (webhook plugin).
///
/// Headers `Heyblue-Timestamp` (Unix seconds) and `Heyblue-Signature:
/// v1=<hex HMAC-SHA256 over "{timestamp}.{body}">` with the business's secret.
#[utoipa::path(
    post,
    path = "/v1/dispatch/webhooks/{business_id}",
    tag = "dispatch",
    params(("business_id" = Uuid, Path, description = "The business answering")),
    request_body = InboundAnswer,
    responses(
        (status = OK, description = "Accepted", body = PartBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED, description = "Signature missing, wrong or stale, or the business has no webhook integration"),
        (status = NOT_FOUND, description = "No part of this order is the business's"),
        (status = CONFLICT, description = "The part was withdrawn, or the action is out of order"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Invalid answer"),
    )
)]
#[tracing::instrument(skip_all, fields(%business_id))]
async fn inbound(
    State(state): State<DispatchState>,
    Path(business_id): Path<Uuid>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PartBody>, ApiError> {
    let now = state.service.clock.now();
    let mut conn = state.service.pool.acquire().await?;
    let integration = store::integration(&mut conn, business_id).await?;
    drop(conn);
    let config = integration
        .filter(|row| row.plugin == webhook::NAME)
        .and_then(|row| WebhookConfig::parse(&row.config).ok())
        .ok_or_else(|| {
            ApiError::InvalidSignature("the business has no webhook integration".to_owned())
        })?;
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    webhook::verify(
        &config.secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now,
        state.settings.webhook.signature_tolerance,
    )
    .map_err(|error| ApiError::InvalidSignature(error.to_string()))?;

    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|error| {
        Problem::bad_request("malformed_json", format!("the body is not JSON: {error}"))
    })?;
    let answer = InboundAnswer::deserialize(value)
        .map_err(|error| Problem::unprocessable("invalid_body", error.to_string()))?;
    let order_id = answer.order_id;
    let action = Action::try_from(answer)?;
    let part = apply(&state.service.pool, now, order_id, business_id, action).await?;
    Ok(Json(part.into()))
}
