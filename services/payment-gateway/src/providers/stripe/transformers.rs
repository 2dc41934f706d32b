//! Stripe's wire types translated into the gateway's terms: PaymentIntent
//! and Refund statuses into outcomes and states, Stripe's errors into
//! [`ProviderError`], and webhook events (with their `Stripe-Signature`)
//! into [`WebhookEvent`]. Nothing here leaves the `stripe` module.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use stripe::StripeError;
use stripe_core::{PaymentIntent, PaymentIntentStatus, Refund};
use uuid::Uuid;

use super::ID;
use crate::domain::{AuthorizationId, RefundId};
use crate::providers::{
    AuthorizeOutcome, PaymentState, ProviderError, ProviderReference, WebhookError, WebhookEvent,
    WebhookEventKind,
};

/// Metadata keys we set on PaymentIntents and Refunds, so webhooks and
/// lookups lead back to our ids.
pub const META_AUTHORIZATION_ID: &str = "authorization_id";
pub const META_CUSTOMER_ID: &str = "customer_id";
pub const META_REFUND_ID: &str = "refund_id";

/// Stripe's `decline_code` when an error carries none.
const GENERIC_DECLINE: &str = "generic_decline";

/// A PaymentIntent's status, matched without a catch-all: the library's
/// enum is `#[non_exhaustive]`, so a status it adds later arrives here as
/// `Unrecognized` and is reported, never silently mapped.
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Succeeded,
    Canceled,
    Unrecognized(String),
}

impl From<&PaymentIntentStatus> for IntentStatus {
    fn from(status: &PaymentIntentStatus) -> Self {
        match status {
            PaymentIntentStatus::RequiresPaymentMethod => IntentStatus::RequiresPaymentMethod,
            PaymentIntentStatus::RequiresConfirmation => IntentStatus::RequiresConfirmation,
            PaymentIntentStatus::RequiresAction => IntentStatus::RequiresAction,
            PaymentIntentStatus::Processing => IntentStatus::Processing,
            PaymentIntentStatus::RequiresCapture => IntentStatus::RequiresCapture,
            PaymentIntentStatus::Succeeded => IntentStatus::Succeeded,
            PaymentIntentStatus::Canceled => IntentStatus::Canceled,
            PaymentIntentStatus::Unknown(other) => IntentStatus::Unrecognized(other.clone()),
            other => IntentStatus::Unrecognized(other.as_str().to_owned()),
        }
    }
}

/// The redirect of a `requires_action` PaymentIntent, if it is one.
fn redirect_url(intent: &PaymentIntent) -> Option<String> {
    intent
        .next_action
        .as_ref()
        .and_then(|action| action.redirect_to_url.as_ref())
        .and_then(|redirect| redirect.url.clone())
}

/// Why the last attempt failed, as a decline code.
fn last_decline_code(intent: &PaymentIntent) -> String {
    intent
        .last_payment_error
        .as_ref()
        .and_then(|error| {
            error
                .decline_code
                .clone()
                .or_else(|| error.code.as_ref().map(|code| code.as_str().to_owned()))
        })
        .unwrap_or_else(|| GENERIC_DECLINE.to_owned())
}

/// What an authorize or confirm call's PaymentIntent means.
pub fn authorize_outcome(intent: &PaymentIntent) -> Result<AuthorizeOutcome, ProviderError> {
    let reference = ProviderReference::new(intent.id.as_str());
    match IntentStatus::from(&intent.status) {
        IntentStatus::RequiresCapture => Ok(AuthorizeOutcome::Authorized { reference }),
        IntentStatus::RequiresAction => match redirect_url(intent) {
            Some(redirect_url) => Ok(AuthorizeOutcome::RequiresAction {
                reference,
                redirect_url,
            }),
            // Stripe asks for its own SDK when no return_url was given; the
            // gateway always sends one, so this is our configuration.
            None => Err(ProviderError::Misconfigured {
                provider: ID,
                detail: format!(
                    "PaymentIntent {} requires an action without a redirect (no return_url sent)",
                    intent.id.as_str()
                ),
            }),
        },
        // A failed attempt (including a failed 3-D Secure) puts the intent
        // back to waiting for a payment method.
        IntentStatus::RequiresPaymentMethod => Ok(AuthorizeOutcome::Declined {
            decline_code: last_decline_code(intent),
        }),
        IntentStatus::Canceled => Ok(AuthorizeOutcome::Declined {
            decline_code: "canceled".to_owned(),
        }),
        // Manual capture never reaches `succeeded` before capture; if it did,
        // the money is held all the same.
        IntentStatus::Succeeded => Ok(AuthorizeOutcome::Authorized { reference }),
        IntentStatus::Processing | IntentStatus::RequiresConfirmation => {
            Err(ProviderError::OutcomeUnknown {
                provider: ID,
                detail: format!(
                    "PaymentIntent {} is still {}; look it up later",
                    intent.id.as_str(),
                    intent.status.as_str()
                ),
            })
        }
        IntentStatus::Unrecognized(status) => Err(unrecognized(intent.id.as_str(), &status)),
    }
}

/// What a PaymentIntent says, for `lookup`.
pub fn intent_state(intent: &PaymentIntent) -> PaymentState {
    match IntentStatus::from(&intent.status) {
        IntentStatus::RequiresPaymentMethod => match intent.last_payment_error {
            Some(_) => PaymentState::Declined {
                decline_code: last_decline_code(intent),
            },
            None => PaymentState::RequiresAction { redirect_url: None },
        },
        IntentStatus::RequiresConfirmation | IntentStatus::RequiresAction => {
            PaymentState::RequiresAction {
                redirect_url: redirect_url(intent),
            }
        }
        IntentStatus::Processing => PaymentState::Processing,
        IntentStatus::RequiresCapture => PaymentState::Authorized,
        IntentStatus::Succeeded => PaymentState::Captured {
            transaction_id: ProviderReference::new(intent.id.as_str()),
            amount_minor: intent.amount_received,
        },
        IntentStatus::Canceled => PaymentState::Voided,
        IntentStatus::Unrecognized(status) => {
            tracing::warn!(
                payment_intent = intent.id.as_str(),
                status,
                "unrecognized PaymentIntent status"
            );
            PaymentState::Processing
        }
    }
}

/// A Refund's `status`: `pending`, `requires_action`, `succeeded`,
/// `failed` or `canceled`.
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    Unrecognized(String),
}

impl RefundStatus {
    pub fn of(refund: &Refund) -> Self {
        match refund.status.as_deref() {
            Some("pending") => RefundStatus::Pending,
            Some("requires_action") => RefundStatus::RequiresAction,
            Some("succeeded") => RefundStatus::Succeeded,
            Some("failed") => RefundStatus::Failed,
            Some("canceled") => RefundStatus::Canceled,
            other => RefundStatus::Unrecognized(other.unwrap_or("none").to_owned()),
        }
    }
}

/// What a Refund says, for `lookup`.
pub fn refund_state(refund: &Refund) -> PaymentState {
    let refund_reference = ProviderReference::new(refund.id.as_str());
    match RefundStatus::of(refund) {
        RefundStatus::Succeeded => PaymentState::Refunded {
            refund_reference,
            amount_minor: refund.amount,
            pending: false,
        },
        RefundStatus::Pending | RefundStatus::RequiresAction => PaymentState::Refunded {
            refund_reference,
            amount_minor: refund.amount,
            pending: true,
        },
        RefundStatus::Failed | RefundStatus::Canceled => PaymentState::RefundFailed {
            reason: refund
                .failure_reason
                .clone()
                .unwrap_or_else(|| "refund failed".to_owned()),
        },
        RefundStatus::Unrecognized(status) => {
            tracing::warn!(
                refund = refund.id.as_str(),
                status,
                "unrecognized Refund status"
            );
            PaymentState::Processing
        }
    }
}

fn unrecognized(id: &str, status: &str) -> ProviderError {
    ProviderError::OutcomeUnknown {
        provider: ID,
        detail: format!("{id} has a status this gateway does not know: {status}"),
    }
}

/// A card error on authorize or confirm: the card was declined, and its
/// decline code is the answer, not an error.
pub fn decline_of(error: &StripeError) -> Option<String> {
    match error {
        StripeError::Stripe(api_error, 402) => Some(
            api_error
                .decline_code
                .clone()
                .or_else(|| api_error.code.as_ref().map(|code| code.as_str().to_owned()))
                .unwrap_or_else(|| GENERIC_DECLINE.to_owned()),
        ),
        _ => None,
    }
}

/// Classifies a failed call by what the caller may do next.
pub fn provider_error(error: StripeError) -> ProviderError {
    match error {
        StripeError::Stripe(api_error, status) => {
            let code = api_error
                .decline_code
                .clone()
                .or_else(|| api_error.code.as_ref().map(|code| code.as_str().to_owned()))
                .unwrap_or_else(|| api_error.type_.as_str().to_owned());
            let message = api_error.message.clone().unwrap_or_default();
            match status {
                401 | 403 => ProviderError::Misconfigured {
                    provider: ID,
                    detail: format!("{status} {code}: {message}"),
                },
                // Rate limited: Stripe did not process the request.
                429 => ProviderError::Unavailable {
                    provider: ID,
                    detail: format!("{status} {code}: {message}"),
                },
                // 409: the same idempotency key is still in flight; 5xx:
                // Stripe may have done it. Either way, look it up.
                409 | 500..=599 => ProviderError::OutcomeUnknown {
                    provider: ID,
                    detail: format!("{status} {code}: {message}"),
                },
                _ => ProviderError::Refused {
                    provider: ID,
                    code,
                    message,
                },
            }
        }
        StripeError::Timeout => ProviderError::OutcomeUnknown {
            provider: ID,
            detail: "no answer before the timeout".to_owned(),
        },
        // async-stripe flattens hyper's errors into text; hyper names a
        // failed connection "client error (Connect)", and then nothing was
        // sent. Anything else may have reached Stripe.
        StripeError::ClientError(detail) if detail.contains("(Connect)") => {
            ProviderError::Unavailable {
                provider: ID,
                detail,
            }
        }
        StripeError::ClientError(detail) | StripeError::JSONDeserialize(detail) => {
            ProviderError::OutcomeUnknown {
                provider: ID,
                detail,
            }
        }
        StripeError::ConfigError(detail) => ProviderError::Misconfigured {
            provider: ID,
            detail,
        },
    }
}

/// How old a signed webhook may be: Stripe's own libraries allow 300 s.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// Verifies a `Stripe-Signature` header (`t=…,v1=…[,v1=…]`): one `v1` must
/// be the HMAC-SHA256 of `{t}.{body}` under the endpoint secret, and `t`
/// within the tolerance of `now` (either side, for clock skew).
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now_unix: i64,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp =
        timestamp.ok_or_else(|| WebhookError::MissingSignature("no timestamp `t=`".to_owned()))?;
    if signatures.is_empty() {
        return Err(WebhookError::MissingSignature(
            "no `v1=` signature".to_owned(),
        ));
    }
    let matches = signatures.iter().any(|signature| {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&signature).is_ok()
    });
    if !matches {
        return Err(WebhookError::BadSignature);
    }
    if (now_unix - timestamp).abs() > SIGNATURE_TOLERANCE_SECONDS {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// The parts of a Stripe event the gateway reads.
#[derive(Deserialize)]
struct EventWire {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    data: EventDataWire,
}

#[derive(Deserialize)]
struct EventDataWire {
    object: EventObjectWire,
}

#[derive(Deserialize)]
struct EventObjectWire {
    id: Option<String>,
    #[serde(default)]
    metadata: Option<std::collections::HashMap<String, String>>,
}

/// Parses a verified event body.
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let event: EventWire =
        serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
    let kind = match event.event_type.as_str() {
        "payment_intent.amount_capturable_updated" => WebhookEventKind::PaymentAuthorized,
        "payment_intent.requires_action" => WebhookEventKind::CustomerActionRequired,
        "payment_intent.succeeded" => WebhookEventKind::PaymentCaptured,
        "payment_intent.payment_failed" => WebhookEventKind::PaymentFailed,
        "payment_intent.canceled" => WebhookEventKind::PaymentCanceled,
        "refund.created" | "refund.updated" | "charge.refunded" => {
            WebhookEventKind::RefundSucceeded
        }
        "refund.failed" => WebhookEventKind::RefundFailed,
        _ => WebhookEventKind::Other,
    };
    let metadata = event.data.object.metadata.unwrap_or_default();
    let our_id = |key: &str| metadata.get(key).and_then(|v| Uuid::parse_str(v).ok());
    Ok(WebhookEvent {
        provider: ID,
        event_id: event.id,
        event_type: event.event_type,
        kind,
        object_id: event.data.object.id,
        authorization_id: our_id(META_AUTHORIZATION_ID).map(AuthorizationId),
        refund_id: our_id(META_REFUND_ID).map(RefundId),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_signature_is_checked_against_secret_body_and_time() {
        let body = br#"{"id":"evt_1"}"#;
        let now = 1_800_000_000;
        let header = sign("whsec_a", now - 10, body);
        assert!(verify_signature(&header, body, "whsec_a", now).is_ok());
        assert!(matches!(
            verify_signature(&header, body, "whsec_b", now),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&header, br#"{"id":"evt_2"}"#, "whsec_a", now),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&header, body, "whsec_a", now + 400),
            Err(WebhookError::Stale)
        ));
        assert!(matches!(
            verify_signature("v1=00", body, "whsec_a", now),
            Err(WebhookError::MissingSignature(_))
        ));
    }
}
