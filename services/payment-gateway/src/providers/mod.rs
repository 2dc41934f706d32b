//! The anti-corruption layer over payment providers: one [`PaymentProvider`]
//! trait in the gateway's own terms (minor units, our ids, our outcomes), one
//! file per provider that translates to and from its wire format, and the
//! [`Providers`] registry built from settings.
//!
//! Provider wire types never leave their file: the gateway core sees
//! [`AuthorizeOutcome`], [`PaymentState`], [`ProviderError`] and
//! [`WebhookEvent`], whatever the provider calls them.
//!
//! # Adding a provider
//!
//! 1. Write `providers/<name>.rs` with a type implementing [`PaymentProvider`]
//!    and a `pub fn register(&GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>>`
//!    that answers `None` when the provider's credentials are not configured
//!    (its settings, if it has any, go in `settings.rs`).
//! 2. Add `<name>::register,` to [`REGISTRY`] below (and `pub mod <name>;`).
//!
//! Nothing else changes: the gateway core looks providers up by the name a
//! checkout sends (`"stripe"`), and never matches on which one it has.
//!
//! # Idempotency and lost answers
//!
//! Every call that moves money carries a key derived from our ids
//! ([`IdempotencyKey`]): `authorize:{authorization_id}`,
//! `capture:{authorization_id}`, `refund:{refund_id}`… so a retried call is
//! answered with the first call's result and never charges twice. When a
//! call's answer is lost ([`ProviderError::OutcomeUnknown`]), the caller asks
//! [`PaymentProvider::lookup`] before deciding whether to call again.

pub mod apple_pay;
pub mod paypal;
pub mod sandbox;
pub mod stripe;

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use http::HeaderMap;

use crate::domain::{AuthorizationId, Currency, CustomerId, Money, RefundId};
use crate::settings::GatewaySettings;

/// One registration per provider; a provider whose settings are missing
/// registers nothing.
type Register = fn(&GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>>;

/// Every provider the gateway knows. Adding a provider is one line here.
const REGISTRY: &[Register] = &[
    sandbox::register,
    stripe::register,
    apple_pay::register,
    paypal::register,
];

/// The configured providers, by name.
#[derive(Clone)]
pub struct Providers {
    providers: Vec<Arc<dyn PaymentProvider>>,
}

impl Providers {
    /// Registers every provider whose settings are present (the sandbox
    /// always is).
    pub fn from_settings(settings: &GatewaySettings) -> anyhow::Result<Self> {
        let mut providers = Vec::with_capacity(REGISTRY.len());
        for register in REGISTRY {
            if let Some(provider) = register(settings)? {
                tracing::info!(provider = %provider.id(), "payment provider registered");
                providers.push(provider);
            }
        }
        Ok(Providers { providers })
    }

    /// The provider a checkout named (`"sandbox"`, `"stripe"`…), if configured.
    pub fn get(&self, name: &str) -> Option<Arc<dyn PaymentProvider>> {
        self.providers
            .iter()
            .find(|provider| provider.id().as_str() == name)
            .cloned()
    }

    /// The names of the configured providers, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.providers.iter().map(|p| p.id().as_str()).collect()
    }
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// A provider's name as checkouts send it and events carry it (`provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProviderId(&'static str);

impl ProviderId {
    pub const fn new(name: &'static str) -> Self {
        ProviderId(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// What the customer pays with, as the checkout sent it: a sandbox test
/// method (`pm_card_visa`), a Stripe PaymentMethod id, an Apple Pay token
/// processed by Stripe, or `paypal`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentMethod(String);

impl PaymentMethod {
    pub fn new(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() || value.len() > 255 {
            return Err("payment_method must be 1 to 255 characters".to_owned());
        }
        Ok(PaymentMethod(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The provider's handle on a payment (a Stripe PaymentIntent id, a PayPal
/// order and authorization), returned by one call and handed back to the
/// next. Opaque to the gateway core, which only stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderReference(String);

impl ProviderReference {
    pub fn new(value: impl Into<String>) -> Self {
        ProviderReference(value.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The idempotency key a provider call carries, derived from our ids so a
/// retry (by us, after a crash, or a re-driven command) is the same call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn authorize(id: AuthorizationId) -> Self {
        IdempotencyKey(format!("authorize:{id}"))
    }

    pub fn confirm(id: AuthorizationId) -> Self {
        IdempotencyKey(format!("confirm:{id}"))
    }

    pub fn capture(id: AuthorizationId) -> Self {
        IdempotencyKey(format!("capture:{id}"))
    }

    pub fn void(id: AuthorizationId) -> Self {
        IdempotencyKey(format!("void:{id}"))
    }

    pub fn refund(id: RefundId) -> Self {
        IdempotencyKey(format!("refund:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Authorize `amount` on the customer's payment method; nothing is taken
/// until [`PaymentProvider::capture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub authorization_id: AuthorizationId,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    /// Where a 3-D Secure or approval page sends the customer back.
    pub return_url: Option<String>,
}

/// Finish an authorization after the customer's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmRequest {
    pub authorization_id: AuthorizationId,
    pub reference: ProviderReference,
    pub return_url: Option<String>,
    /// What the gateway's own authentication page recorded, for providers
    /// whose action page the gateway serves (the sandbox). `None`: the
    /// customer never answered there. Real providers keep their own verdict.
    pub customer_verdict: Option<CustomerVerdict>,
}

/// The customer's answer on an authentication page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomerVerdict {
    Approved,
    Failed,
}

/// How an authorization stands after `authorize` or `confirm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// The amount is held; capture or void it later with `reference`.
    Authorized { reference: ProviderReference },
    /// The customer must act at `redirect_url` (3-D Secure, PayPal
    /// approval); then call `confirm` with `reference`.
    RequiresAction {
        reference: ProviderReference,
        redirect_url: String,
    },
    /// The provider refused the payment method; final.
    Declined { decline_code: String },
}

/// Take (part of) an authorized amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    pub authorization_id: AuthorizationId,
    pub reference: ProviderReference,
    pub amount: Money,
}

/// The money was taken; `transaction_id` names it at the provider (the
/// `transaction_id` of `payment_successful`, and what refunds refer to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub transaction_id: ProviderReference,
    pub amount: Money,
}

/// Release an authorization without taking anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidRequest {
    pub authorization_id: AuthorizationId,
    pub reference: ProviderReference,
}

/// Give (part of) a captured amount back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub refund_id: RefundId,
    pub authorization_id: AuthorizationId,
    /// The authorization's reference.
    pub reference: ProviderReference,
    /// The capture's [`Captured::transaction_id`].
    pub transaction_id: ProviderReference,
    pub amount: Money,
}

/// The provider accepted the refund. `pending`: it has not reached the
/// customer yet, which a webhook or lookup reports later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refunded {
    pub refund_reference: ProviderReference,
    pub amount: Money,
    pub pending: bool,
}

/// What to ask the provider about, when a call's answer was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// An authorization, and whether it was captured or voided.
    Authorization {
        authorization_id: AuthorizationId,
        reference: ProviderReference,
    },
    /// Our refund `refund_id` of that authorization's capture.
    Refund {
        refund_id: RefundId,
        reference: ProviderReference,
        transaction_id: ProviderReference,
    },
}

/// What the provider says a payment or refund is, in our terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    /// The provider has no record of it: the call never arrived, and is safe
    /// to make again.
    NotFound,
    /// Waiting for the customer's action.
    RequiresAction {
        redirect_url: Option<String>,
    },
    /// The provider is still working on it; ask again later.
    Processing,
    Authorized,
    Declined {
        decline_code: String,
    },
    Voided,
    Captured {
        transaction_id: ProviderReference,
        amount_minor: i64,
    },
    Refunded {
        refund_reference: ProviderReference,
        amount_minor: i64,
        pending: bool,
    },
    RefundFailed {
        reason: String,
    },
}

/// Why a provider call did not produce its outcome. The variants tell the
/// caller what it may do next.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered and refused; calling again changes nothing.
    #[error("{provider} refused: {code}: {message}")]
    Refused {
        provider: ProviderId,
        code: String,
        message: String,
    },
    /// The request may have reached the provider but its answer did not
    /// reach us (timeout, connection lost, a provider 5xx). Ask
    /// [`PaymentProvider::lookup`] before calling again.
    #[error("{provider}: outcome unknown: {detail}")]
    OutcomeUnknown {
        provider: ProviderId,
        detail: String,
    },
    /// Nothing was sent (no connection, rate limited): safe to retry.
    #[error("{provider} unavailable: {detail}")]
    Unavailable {
        provider: ProviderId,
        detail: String,
    },
    /// Our credentials or settings are wrong; an operator must fix them.
    #[error("{provider} misconfigured: {detail}")]
    Misconfigured {
        provider: ProviderId,
        detail: String,
    },
}

impl ProviderError {
    /// True when the same call may be made again at once.
    pub fn is_safe_to_retry(&self) -> bool {
        matches!(self, ProviderError::Unavailable { .. })
    }

    /// True when the caller must [`PaymentProvider::lookup`] before retrying.
    pub fn requires_lookup(&self) -> bool {
        matches!(self, ProviderError::OutcomeUnknown { .. })
    }
}

/// A provider's webhook, verified and translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub provider: ProviderId,
    /// The provider's event id: the gateway stores events by it, so a
    /// redelivered webhook is processed once.
    pub event_id: String,
    /// The provider's own event type, for logs.
    pub event_type: String,
    pub kind: WebhookEventKind,
    /// The provider object the event is about (PaymentIntent, order,
    /// capture, refund id).
    pub object_id: Option<String>,
    /// Our ids, where the provider echoes the metadata we sent.
    pub authorization_id: Option<AuthorizationId>,
    pub refund_id: Option<RefundId>,
}

/// What a webhook tells the gateway, in our words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEventKind {
    /// The customer finished the provider's action (PayPal approval): the
    /// gateway may confirm.
    CustomerApproved,
    CustomerActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentCanceled,
    RefundSucceeded,
    RefundFailed,
    /// An event type the gateway does not act on.
    Other,
}

/// Why a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("{0} has no webhooks")]
    NotSupported(ProviderId),
    #[error("webhook signature missing or malformed: {0}")]
    MissingSignature(String),
    #[error("webhook signature does not match")]
    BadSignature,
    #[error("webhook signature is older than the tolerance")]
    Stale,
    #[error("webhook body is not a valid event: {0}")]
    Malformed(String),
    /// Verification needs the provider, and asking it failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// A payment provider, in the gateway's terms. Each implementation
/// translates these calls into its provider's API and back.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// The name checkouts use.
    fn id(&self) -> ProviderId;

    /// How the payment appears in `payment_successful` (`Credit Card`,
    /// `PayPal`, `Apple Pay`).
    fn method_kind(&self) -> shared_events::PaymentMethod;

    /// The smallest amount the provider accepts in `currency`; `None` when
    /// it has no minimum.
    fn minimum_amount(&self, currency: &Currency) -> Option<Money>;

    /// Holds the amount on the customer's payment method.
    async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, ProviderError>;

    /// Finishes an authorization after the customer's action.
    async fn confirm(&self, request: &ConfirmRequest) -> Result<AuthorizeOutcome, ProviderError>;

    /// Takes `amount` of the authorization.
    async fn capture(&self, request: &CaptureRequest) -> Result<Captured, ProviderError>;

    /// Releases the authorization.
    async fn void(&self, request: &VoidRequest) -> Result<(), ProviderError>;

    /// Gives `amount` of a capture back.
    async fn refund(&self, request: &RefundRequest) -> Result<Refunded, ProviderError>;

    /// Asks the provider what became of a payment or refund whose answer
    /// was lost.
    async fn lookup(&self, lookup: &Lookup) -> Result<PaymentState, ProviderError>;

    /// Verifies a webhook delivery and translates it. Providers without
    /// webhooks refuse every delivery.
    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let _ = (headers, body);
        Err(WebhookError::NotSupported(self.id()))
    }
}
