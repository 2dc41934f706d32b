//! The `paypal` provider: Orders v2 with `intent: AUTHORIZE` over reqwest.
//! Authorize creates an order and answers the buyer's approval link as
//! `requires_action`; confirm authorizes the approved order; capture,
//! void and refund act on the authorization and its capture. OAuth2 client
//! credentials, with the token cached until shortly before it expires and
//! renewed once when PayPal answers 401. Every write carries a
//! `PayPal-Request-Id` derived from our ids.
//!
//! The provider's reference is the order id (`{order_id}`) until the order
//! is authorized, then `{order_id}/{authorization_id}`: capture needs the
//! authorization, and lookups read the order, which lists its
//! authorizations, captures and refunds.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use http::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::{sync::Mutex, time::Instant};
use uuid::Uuid;

use self::wire::{
    AccessTokenWire, AuthorizationStatus, CaptureStatus, CaptureWire, ErrorWire, OrderStatus,
    OrderWire, RefundStatus, RefundWire, VerifyWire,
};
use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureRequest, Captured, ConfirmRequest, IdempotencyKey,
    Lookup, PaymentProvider, PaymentState, ProviderError, ProviderId, ProviderReference,
    RefundRequest, Refunded, VoidRequest, WebhookError, WebhookEvent, WebhookEventKind,
};
use crate::domain::{AuthorizationId, Currency, Money, RefundId};
use crate::settings::{GatewaySettings, PayPalSettings};

pub const ID: ProviderId = ProviderId::new("paypal");

pub fn register(settings: &GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>> {
    match &settings.paypal {
        None => Ok(None),
        Some(paypal) => Ok(Some(Arc::new(PayPal::new(
            paypal,
            &settings.public_base_url,
        )?))),
    }
}

/// Renew a token this long before PayPal says it expires (at most a tenth
/// of its lifetime, for short-lived tokens), so a request never starts with
/// a token about to lapse.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

pub struct PayPal {
    http: reqwest::Client,
    api_base: String,
    client_id: String,
    client_secret: SecretString,
    webhook_id: Option<String>,
    /// Where the buyer lands after cancelling at PayPal, when the checkout
    /// gave no return URL.
    public_base_url: String,
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: SecretString,
    renew_at: Instant,
}

impl std::fmt::Debug for PayPal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPal")
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// A non-2xx answer, in PayPal's error shape.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    name: String,
    /// The first `details[].issue` (`INSTRUMENT_DECLINED`,
    /// `ORDER_NOT_APPROVED`).
    issue: Option<String>,
    message: String,
}

enum CallError {
    Api(ApiError),
    Failed(ProviderError),
}

impl From<ProviderError> for CallError {
    fn from(error: ProviderError) -> Self {
        CallError::Failed(error)
    }
}

impl CallError {
    /// Classifies a failed call by what the caller may do next.
    fn into_provider_error(self) -> ProviderError {
        match self {
            CallError::Failed(error) => error,
            CallError::Api(error) => {
                let detail = format!(
                    "{} {}: {}",
                    error.status.as_u16(),
                    error.name,
                    error.message
                );
                match error.status.as_u16() {
                    401 | 403 => ProviderError::Misconfigured {
                        provider: ID,
                        detail,
                    },
                    429 => ProviderError::Unavailable {
                        provider: ID,
                        detail,
                    },
                    500..=599 => ProviderError::OutcomeUnknown {
                        provider: ID,
                        detail,
                    },
                    _ => ProviderError::Refused {
                        provider: ID,
                        code: error.issue.unwrap_or(error.name).to_ascii_lowercase(),
                        message: error.message,
                    },
                }
            }
        }
    }
}

fn transport_error(error: reqwest::Error) -> ProviderError {
    let detail = format!("{error:#}");
    if error.is_connect() {
        ProviderError::Unavailable {
            provider: ID,
            detail,
        }
    } else {
        ProviderError::OutcomeUnknown {
            provider: ID,
            detail,
        }
    }
}

fn unexpected(detail: String) -> ProviderError {
    ProviderError::OutcomeUnknown {
        provider: ID,
        detail,
    }
}

impl PayPal {
    pub fn new(settings: &PayPalSettings, public_base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .context("failed to build the PayPal HTTP client")?;
        Ok(PayPal {
            http,
            api_base: settings.api_base.trim_end_matches('/').to_owned(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            webhook_id: settings.webhook_id.clone(),
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            token: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one by client
    /// credentials. The lock is held while fetching so concurrent calls
    /// share one token request.
    async fn access_token(&self) -> Result<SecretString, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            if Instant::now() < token.renew_at {
                return Ok(token.value.clone());
            }
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth2/token", self.api_base))
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| match transport_error(e) {
                // Asking for a token moves no money: whatever happened,
                // asking again is safe.
                ProviderError::OutcomeUnknown { detail, .. } => ProviderError::Unavailable {
                    provider: ID,
                    detail,
                },
                other => other,
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ProviderError::Misconfigured {
                provider: ID,
                detail: "PayPal refused the client id and secret".to_owned(),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::Unavailable {
                provider: ID,
                detail: format!("token request answered {status}"),
            });
        }
        let token: AccessTokenWire =
            response
                .json()
                .await
                .map_err(|e| ProviderError::Unavailable {
                    provider: ID,
                    detail: format!("token response: {e}"),
                })?;
        let lifetime = Duration::from_secs(token.expires_in);
        let margin = RENEW_MARGIN.min(lifetime / 10);
        let value = SecretString::from(token.access_token);
        *cached = Some(CachedToken {
            value: value.clone(),
            renew_at: Instant::now() + lifetime - margin,
        });
        Ok(value)
    }

    /// Forgets `used` if it is still the cached token (another call may
    /// already have renewed it).
    async fn forget_token(&self, used: &SecretString) {
        let mut cached = self.token.lock().await;
        if cached
            .as_ref()
            .is_some_and(|token| token.value.expose_secret() == used.expose_secret())
        {
            *cached = None;
        }
    }

    /// One API call: bearer token, `PayPal-Request-Id` for writes, JSON
    /// both ways. A 401 renews the token and tries once more: PayPal did
    /// nothing with the first attempt.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        request_id: Option<&IdempotencyKey>,
        body: Option<serde_json::Value>,
    ) -> Result<Option<T>, CallError> {
        let mut renewed = false;
        loop {
            let token = self.access_token().await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.api_base))
                .bearer_auth(token.expose_secret())
                .header("Prefer", "return=representation");
            if let Some(request_id) = request_id {
                request = request.header("PayPal-Request-Id", request_id.as_str());
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                tracing::info!("PayPal token refused; renewing it");
                self.forget_token(&token).await;
                renewed = true;
                continue;
            }
            let bytes = response.bytes().await.map_err(transport_error)?;
            if status.is_success() {
                if bytes.is_empty() {
                    return Ok(None);
                }
                return serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| CallError::Failed(unexpected(format!("{path}: {e}"))));
            }
            let error: ErrorWire = serde_json::from_slice(&bytes).unwrap_or_default();
            return Err(CallError::Api(ApiError {
                status,
                name: error.name.unwrap_or_else(|| status.to_string()),
                issue: error.details.into_iter().find_map(|d| d.issue),
                message: error.message.unwrap_or_default(),
            }));
        }
    }

    async fn call_required<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        request_id: Option<&IdempotencyKey>,
        body: Option<serde_json::Value>,
    ) -> Result<T, CallError> {
        self.call(method, path, request_id, body)
            .await?
            .ok_or_else(|| CallError::Failed(unexpected(format!("{path}: empty answer"))))
    }

    async fn get_order(&self, order_id: &str) -> Result<OrderWire, CallError> {
        self.call_required(
            Method::GET,
            &format!("/v2/checkout/orders/{order_id}"),
            None,
            None,
        )
        .await
    }

    fn order_reference(order_id: &str) -> ProviderReference {
        ProviderReference::new(order_id)
    }

    fn authorized_reference(order_id: &str, authorization_id: &str) -> ProviderReference {
        ProviderReference::new(format!("{order_id}/{authorization_id}"))
    }

    /// `(order_id, authorization_id)` of a reference.
    fn split(reference: &ProviderReference) -> (&str, Option<&str>) {
        match reference.as_str().split_once('/') {
            Some((order, authorization)) => (order, Some(authorization)),
            None => (reference.as_str(), None),
        }
    }

    fn authorization_of(reference: &ProviderReference) -> Result<(&str, &str), ProviderError> {
        match Self::split(reference) {
            (order, Some(authorization)) => Ok((order, authorization)),
            (order, None) => Err(ProviderError::Refused {
                provider: ID,
                code: "order_not_authorized".to_owned(),
                message: format!("order {order} was never authorized"),
            }),
        }
    }

    fn money_body(amount: &Money) -> serde_json::Value {
        json!({"currency_code": amount.currency().as_str(), "value": amount.to_decimal_string()})
    }

    /// What an order that has just been authorized (or read back) means.
    fn outcome_of_order(order: &OrderWire) -> Result<AuthorizeOutcome, ProviderError> {
        if let Some(authorization) = order.authorizations().next() {
            let reference = Self::authorized_reference(&order.id, &authorization.id);
            return match authorization.status {
                AuthorizationStatus::Created
                | AuthorizationStatus::Captured
                | AuthorizationStatus::PartiallyCaptured => {
                    Ok(AuthorizeOutcome::Authorized { reference })
                }
                AuthorizationStatus::Denied => Ok(AuthorizeOutcome::Declined {
                    decline_code: "denied".to_owned(),
                }),
                AuthorizationStatus::Voided | AuthorizationStatus::Expired => {
                    Ok(AuthorizeOutcome::Declined {
                        decline_code: "canceled".to_owned(),
                    })
                }
                AuthorizationStatus::Pending | AuthorizationStatus::Unrecognized => {
                    Err(unexpected(format!(
                        "authorization {} is pending at PayPal",
                        authorization.id
                    )))
                }
            };
        }
        match order.status {
            OrderStatus::Created | OrderStatus::PayerActionRequired | OrderStatus::Saved => {
                match order.approval_link() {
                    Some(redirect_url) => Ok(AuthorizeOutcome::RequiresAction {
                        reference: Self::order_reference(&order.id),
                        redirect_url: redirect_url.to_owned(),
                    }),
                    None => Err(unexpected(format!(
                        "order {} has no approval link",
                        order.id
                    ))),
                }
            }
            OrderStatus::Voided => Ok(AuthorizeOutcome::Declined {
                decline_code: "canceled".to_owned(),
            }),
            OrderStatus::Approved | OrderStatus::Completed | OrderStatus::Unrecognized => {
                Err(unexpected(format!(
                    "order {} is {:?} without an authorization",
                    order.id, order.status
                )))
            }
        }
    }
}

#[async_trait]
impl PaymentProvider for PayPal {
    fn id(&self) -> ProviderId {
        ID
    }

    fn method_kind(&self) -> shared_events::PaymentMethod {
        shared_events::PaymentMethod::PayPal
    }

    fn minimum_amount(&self, _currency: &Currency) -> Option<Money> {
        None
    }

    /// Creates the order; the buyer approves it at PayPal.
    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, ProviderError> {
        let ours = request.authorization_id.to_string();
        let return_url = request
            .return_url
            .clone()
            .unwrap_or_else(|| format!("{}/", self.public_base_url));
        let body = json!({
            "intent": "AUTHORIZE",
            "purchase_units": [{
                "reference_id": ours,
                "custom_id": ours,
                "amount": Self::money_body(&request.amount),
            }],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": return_url,
                "cancel_url": return_url,
                "user_action": "PAY_NOW",
            }}},
        });
        let order: OrderWire = self
            .call_required(
                Method::POST,
                "/v2/checkout/orders",
                Some(&IdempotencyKey::authorize(request.authorization_id)),
                Some(body),
            )
            .await
            .map_err(CallError::into_provider_error)?;
        Self::outcome_of_order(&order)
    }

    /// Authorizes the approved order. An order the buyer has not approved
    /// yet answers `requires_action` again, with its link.
    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn confirm(&self, request: &ConfirmRequest) -> Result<AuthorizeOutcome, ProviderError> {
        let (order_id, authorization) = Self::split(&request.reference);
        if authorization.is_some() {
            let order = self
                .get_order(order_id)
                .await
                .map_err(CallError::into_provider_error)?;
            return Self::outcome_of_order(&order);
        }
        // Only an approved order is authorized: PayPal answers a repeated
        // `PayPal-Request-Id` with its first answer, so asking before the
        // buyer approved would pin "not approved" to this confirm's key.
        let order = self
            .get_order(order_id)
            .await
            .map_err(CallError::into_provider_error)?;
        if order.authorizations().next().is_some() || order.status != OrderStatus::Approved {
            return Self::outcome_of_order(&order);
        }
        let authorized = self
            .call_required::<OrderWire>(
                Method::POST,
                &format!("/v2/checkout/orders/{order_id}/authorize"),
                Some(&IdempotencyKey::confirm(request.authorization_id)),
                Some(json!({})),
            )
            .await;
        match authorized {
            Ok(order) => Self::outcome_of_order(&order),
            Err(CallError::Api(error)) if error.status == StatusCode::UNPROCESSABLE_ENTITY => {
                match error.issue.as_deref() {
                    Some("ORDER_NOT_APPROVED" | "ORDER_ALREADY_AUTHORIZED") => {
                        let order = self
                            .get_order(order_id)
                            .await
                            .map_err(CallError::into_provider_error)?;
                        Self::outcome_of_order(&order)
                    }
                    Some(issue) => Ok(AuthorizeOutcome::Declined {
                        decline_code: issue.to_ascii_lowercase(),
                    }),
                    None => Err(CallError::Api(error).into_provider_error()),
                }
            }
            Err(error) => Err(error.into_provider_error()),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn capture(&self, request: &CaptureRequest) -> Result<Captured, ProviderError> {
        let (_, authorization_id) = Self::authorization_of(&request.reference)?;
        let capture: CaptureWire = self
            .call_required(
                Method::POST,
                &format!("/v2/payments/authorizations/{authorization_id}/capture"),
                Some(&IdempotencyKey::capture(request.authorization_id)),
                Some(json!({
                    "amount": Self::money_body(&request.amount),
                    "final_capture": true,
                    "invoice_id": request.authorization_id.to_string(),
                })),
            )
            .await
            .map_err(CallError::into_provider_error)?;
        match capture.status {
            // A pending capture exists and holds the money; PayPal settles it.
            CaptureStatus::Completed
            | CaptureStatus::Pending
            | CaptureStatus::PartiallyRefunded
            | CaptureStatus::Refunded => Ok(Captured {
                transaction_id: ProviderReference::new(capture.id),
                amount: request.amount.clone(),
            }),
            CaptureStatus::Declined | CaptureStatus::Failed => Err(ProviderError::Refused {
                provider: ID,
                code: "capture_declined".to_owned(),
                message: format!("capture {} was {:?}", capture.id, capture.status),
            }),
            CaptureStatus::Unrecognized => Err(unexpected(format!(
                "capture {} has a status this gateway does not know",
                capture.id
            ))),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn void(&self, request: &VoidRequest) -> Result<(), ProviderError> {
        let (order_id, authorization) = Self::split(&request.reference);
        let Some(authorization_id) = authorization else {
            // An order never authorized holds nothing; PayPal lets it lapse.
            tracing::info!(order_id, "PayPal order never authorized: nothing to void");
            return Ok(());
        };
        self.call::<serde_json::Value>(
            Method::POST,
            &format!("/v2/payments/authorizations/{authorization_id}/void"),
            Some(&IdempotencyKey::void(request.authorization_id)),
            None,
        )
        .await
        .map_err(CallError::into_provider_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, refund_id = %request.refund_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<Refunded, ProviderError> {
        let refund: RefundWire = self
            .call_required(
                Method::POST,
                &format!("/v2/payments/captures/{}/refund", request.transaction_id),
                Some(&IdempotencyKey::refund(request.refund_id)),
                Some(json!({
                    "amount": Self::money_body(&request.amount),
                    "custom_id": request.refund_id.to_string(),
                })),
            )
            .await
            .map_err(CallError::into_provider_error)?;
        let pending = match refund.status {
            RefundStatus::Completed => false,
            RefundStatus::Pending | RefundStatus::Unrecognized => true,
            RefundStatus::Failed | RefundStatus::Cancelled => {
                return Err(ProviderError::Refused {
                    provider: ID,
                    code: "refund_failed".to_owned(),
                    message: format!("refund {} was {:?}", refund.id, refund.status),
                })
            }
        };
        Ok(Refunded {
            refund_reference: ProviderReference::new(refund.id),
            amount: request.amount.clone(),
            pending,
        })
    }

    #[tracing::instrument(skip_all, fields(provider = %ID))]
    async fn lookup(&self, lookup: &Lookup) -> Result<PaymentState, ProviderError> {
        let reference = match lookup {
            Lookup::Authorization { reference, .. } | Lookup::Refund { reference, .. } => reference,
        };
        let (order_id, _) = Self::split(reference);
        let order = match self.get_order(order_id).await {
            Ok(order) => order,
            Err(CallError::Api(error)) if error.status == StatusCode::NOT_FOUND => {
                return Ok(PaymentState::NotFound)
            }
            Err(error) => return Err(error.into_provider_error()),
        };
        match lookup {
            Lookup::Authorization { .. } => Ok(wire::order_state(&order)),
            Lookup::Refund { refund_id, .. } => Ok(wire::refund_state(&order, *refund_id)),
        }
    }

    /// Asks PayPal whether the delivery is genuine
    /// (`verify-webhook-signature`), then translates the event.
    #[tracing::instrument(skip_all, fields(provider = %ID))]
    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let webhook_id = self
            .webhook_id
            .as_ref()
            .ok_or(WebhookError::NotSupported(ID))?;
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
                .ok_or_else(|| WebhookError::MissingSignature(format!("no {name} header")))
        };
        let event =
            std::str::from_utf8(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        // The event goes back byte for byte: PayPal's check covers the body
        // as it was sent, and re-serializing could reorder it.
        let event = serde_json::value::RawValue::from_string(event.to_owned())
            .map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let request = json!({
            "auth_algo": header("paypal-auth-algo")?,
            "cert_url": header("paypal-cert-url")?,
            "transmission_id": header("paypal-transmission-id")?,
            "transmission_sig": header("paypal-transmission-sig")?,
            "transmission_time": header("paypal-transmission-time")?,
            "webhook_id": webhook_id,
            "webhook_event": event,
        });
        let verdict: VerifyWire = self
            .call_required(
                Method::POST,
                "/v1/notifications/verify-webhook-signature",
                None,
                Some(request),
            )
            .await
            .map_err(CallError::into_provider_error)?;
        if verdict.verification_status != "SUCCESS" {
            return Err(WebhookError::BadSignature);
        }
        wire::parse_event(body)
    }
}

/// PayPal's wire types; they never leave this module. Status enums list
/// every documented value and fall back to `Unrecognized`, which callers
/// match by name.
mod wire {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    pub struct AccessTokenWire {
        pub access_token: String,
        pub expires_in: u64,
    }

    #[derive(Deserialize, Default)]
    pub struct ErrorWire {
        pub name: Option<String>,
        pub message: Option<String>,
        #[serde(default)]
        pub details: Vec<ErrorDetailWire>,
    }

    #[derive(Deserialize)]
    pub struct ErrorDetailWire {
        pub issue: Option<String>,
    }

    #[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum OrderStatus {
        Created,
        Saved,
        Approved,
        Voided,
        Completed,
        PayerActionRequired,
        #[serde(other)]
        Unrecognized,
    }

    #[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum AuthorizationStatus {
        Created,
        Captured,
        Denied,
        PartiallyCaptured,
        Voided,
        Pending,
        Expired,
        #[serde(other)]
        Unrecognized,
    }

    #[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum CaptureStatus {
        Completed,
        Declined,
        PartiallyRefunded,
        Pending,
        Refunded,
        Failed,
        #[serde(other)]
        Unrecognized,
    }

    #[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    pub enum RefundStatus {
        Cancelled,
        Failed,
        Pending,
        Completed,
        #[serde(other)]
        Unrecognized,
    }

    #[derive(Deserialize)]
    pub struct LinkWire {
        pub href: String,
        pub rel: String,
    }

    #[derive(Deserialize)]
    pub struct AmountWire {
        pub currency_code: String,
        pub value: String,
    }

    impl AmountWire {
        pub fn minor(&self) -> Option<i64> {
            let currency = Currency::new(&self.currency_code).ok()?;
            Money::from_decimal_str(&self.value, currency).map(|m| m.amount_minor())
        }
    }

    #[derive(Deserialize)]
    pub struct OrderWire {
        pub id: String,
        pub status: OrderStatus,
        #[serde(default)]
        pub links: Vec<LinkWire>,
        #[serde(default)]
        pub purchase_units: Vec<PurchaseUnitWire>,
    }

    #[derive(Deserialize)]
    pub struct PurchaseUnitWire {
        pub payments: Option<PaymentsWire>,
    }

    #[derive(Deserialize, Default)]
    pub struct PaymentsWire {
        #[serde(default)]
        pub authorizations: Vec<AuthorizationWire>,
        #[serde(default)]
        pub captures: Vec<CaptureWire>,
        #[serde(default)]
        pub refunds: Vec<RefundWire>,
    }

    #[derive(Deserialize)]
    pub struct AuthorizationWire {
        pub id: String,
        pub status: AuthorizationStatus,
    }

    #[derive(Deserialize)]
    pub struct CaptureWire {
        pub id: String,
        pub status: CaptureStatus,
        pub amount: Option<AmountWire>,
    }

    #[derive(Deserialize)]
    pub struct RefundWire {
        pub id: String,
        pub status: RefundStatus,
        pub amount: Option<AmountWire>,
        pub custom_id: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct VerifyWire {
        pub verification_status: String,
    }

    impl OrderWire {
        fn payments(&self) -> impl Iterator<Item = &PaymentsWire> {
            self.purchase_units
                .iter()
                .filter_map(|unit| unit.payments.as_ref())
        }

        pub fn authorizations(&self) -> impl Iterator<Item = &AuthorizationWire> {
            self.payments().flat_map(|p| p.authorizations.iter())
        }

        pub fn captures(&self) -> impl Iterator<Item = &CaptureWire> {
            self.payments().flat_map(|p| p.captures.iter())
        }

        pub fn refunds(&self) -> impl Iterator<Item = &RefundWire> {
            self.payments().flat_map(|p| p.refunds.iter())
        }

        /// The link the buyer approves the order at (`payer-action` when the
        /// order named its payment source, `approve` otherwise).
        pub fn approval_link(&self) -> Option<&str> {
            self.links
                .iter()
                .find(|link| link.rel == "payer-action" || link.rel == "approve")
                .map(|link| link.href.as_str())
        }
    }

    /// An order read back, for `lookup`.
    pub fn order_state(order: &OrderWire) -> PaymentState {
        if let Some(capture) = order.captures().next() {
            return match capture.status {
                CaptureStatus::Completed
                | CaptureStatus::Pending
                | CaptureStatus::PartiallyRefunded
                | CaptureStatus::Refunded => PaymentState::Captured {
                    transaction_id: ProviderReference::new(capture.id.clone()),
                    amount_minor: capture
                        .amount
                        .as_ref()
                        .and_then(AmountWire::minor)
                        .unwrap_or(0),
                },
                CaptureStatus::Declined | CaptureStatus::Failed => PaymentState::Declined {
                    decline_code: "capture_declined".to_owned(),
                },
                CaptureStatus::Unrecognized => PaymentState::Processing,
            };
        }
        if let Some(authorization) = order.authorizations().next() {
            return match authorization.status {
                AuthorizationStatus::Created => PaymentState::Authorized,
                AuthorizationStatus::Captured | AuthorizationStatus::PartiallyCaptured => {
                    // Captured, but the order did not list the capture yet.
                    PaymentState::Processing
                }
                AuthorizationStatus::Denied => PaymentState::Declined {
                    decline_code: "denied".to_owned(),
                },
                AuthorizationStatus::Voided | AuthorizationStatus::Expired => PaymentState::Voided,
                AuthorizationStatus::Pending | AuthorizationStatus::Unrecognized => {
                    PaymentState::Processing
                }
            };
        }
        match order.status {
            OrderStatus::Created | OrderStatus::Saved | OrderStatus::PayerActionRequired => {
                PaymentState::RequiresAction {
                    redirect_url: order.approval_link().map(str::to_owned),
                }
            }
            // Approved by the buyer, waiting for our confirm.
            OrderStatus::Approved => PaymentState::RequiresAction { redirect_url: None },
            OrderStatus::Voided => PaymentState::Voided,
            OrderStatus::Completed | OrderStatus::Unrecognized => PaymentState::Processing,
        }
    }

    /// Our refund among the order's refunds, for `lookup`.
    pub fn refund_state(order: &OrderWire, refund_id: RefundId) -> PaymentState {
        let ours = refund_id.to_string();
        let Some(refund) = order
            .refunds()
            .find(|refund| refund.custom_id.as_deref() == Some(ours.as_str()))
        else {
            return PaymentState::NotFound;
        };
        let refund_reference = ProviderReference::new(refund.id.clone());
        let amount_minor = refund
            .amount
            .as_ref()
            .and_then(AmountWire::minor)
            .unwrap_or(0);
        match refund.status {
            RefundStatus::Completed => PaymentState::Refunded {
                refund_reference,
                amount_minor,
                pending: false,
            },
            RefundStatus::Pending => PaymentState::Refunded {
                refund_reference,
                amount_minor,
                pending: true,
            },
            RefundStatus::Failed | RefundStatus::Cancelled => PaymentState::RefundFailed {
                reason: format!("refund {} {:?}", refund.id, refund.status),
            },
            RefundStatus::Unrecognized => PaymentState::Processing,
        }
    }

    #[derive(Deserialize)]
    struct EventWire {
        id: String,
        event_type: String,
        resource: Option<ResourceWire>,
    }

    #[derive(Deserialize)]
    struct ResourceWire {
        id: Option<String>,
        custom_id: Option<String>,
        #[serde(default)]
        purchase_units: Vec<EventPurchaseUnitWire>,
    }

    #[derive(Deserialize)]
    struct EventPurchaseUnitWire {
        custom_id: Option<String>,
    }

    /// Translates a verified event.
    pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
        let event: EventWire =
            serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(e.to_string()))?;
        let kind = match event.event_type.as_str() {
            "CHECKOUT.ORDER.APPROVED" => WebhookEventKind::CustomerApproved,
            "PAYMENT.AUTHORIZATION.CREATED" => WebhookEventKind::PaymentAuthorized,
            "PAYMENT.AUTHORIZATION.VOIDED" => WebhookEventKind::PaymentCanceled,
            "PAYMENT.CAPTURE.COMPLETED" => WebhookEventKind::PaymentCaptured,
            "PAYMENT.CAPTURE.DENIED" | "PAYMENT.CAPTURE.DECLINED" => {
                WebhookEventKind::PaymentFailed
            }
            "PAYMENT.CAPTURE.REFUNDED" => WebhookEventKind::RefundSucceeded,
            _ => WebhookEventKind::Other,
        };
        let resource = event.resource;
        // Orders carry our id on their purchase unit; authorizations and
        // captures echo it as `custom_id`; a refund's `custom_id` is ours.
        let custom_id = resource.as_ref().and_then(|r| {
            r.custom_id
                .clone()
                .or_else(|| r.purchase_units.iter().find_map(|u| u.custom_id.clone()))
        });
        let custom_uuid = custom_id.as_deref().and_then(|id| Uuid::parse_str(id).ok());
        let is_refund = kind == WebhookEventKind::RefundSucceeded;
        Ok(WebhookEvent {
            provider: ID,
            event_id: event.id,
            event_type: event.event_type,
            kind,
            object_id: resource.and_then(|r| r.id),
            authorization_id: custom_uuid.filter(|_| !is_refund).map(AuthorizationId),
            refund_id: custom_uuid.filter(|_| is_refund).map(RefundId),
        })
    }
}
