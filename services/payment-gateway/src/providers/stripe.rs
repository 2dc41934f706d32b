//! The `stripe` provider, through async-stripe: PaymentIntents with
//! `capture_method=manual` (authorize, 3-D Secure, confirm, capture,
//! cancel), Refunds, and signed webhooks. Every call carries an
//! `Idempotency-Key` derived from our ids; a call whose answer times out is
//! [`ProviderError::OutcomeUnknown`] and is settled by retrieving the
//! PaymentIntent or listing its refunds.
//!
//! The provider's reference is the PaymentIntent id (`pi_…`), which is also
//! the `transaction_id` of a capture, as the order service expects.

mod transformers;

use std::{collections::HashMap, str::FromStr, sync::Arc};

use anyhow::Context;
use async_trait::async_trait;
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, RequestStrategy, StripeError, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, ConfirmPaymentIntent, CreatePaymentIntent,
    RetrievePaymentIntent,
};
use stripe_core::refund::{CreateRefund, ListRefund};
use stripe_core::{PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod};

use self::transformers::{
    authorize_outcome, decline_of, intent_state, parse_event, provider_error, refund_state,
    verify_signature, RefundStatus, META_AUTHORIZATION_ID, META_CUSTOMER_ID, META_REFUND_ID,
};
use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureRequest, Captured, ConfirmRequest, IdempotencyKey,
    Lookup, PaymentProvider, PaymentState, ProviderError, ProviderId, ProviderReference,
    RefundRequest, Refunded, VoidRequest, WebhookError, WebhookEvent,
};
use crate::domain::{Currency, Money};
use crate::settings::{GatewaySettings, StripeSettings};

pub const ID: ProviderId = ProviderId::new("stripe");

pub fn register(settings: &GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>> {
    match &settings.stripe {
        None => Ok(None),
        Some(stripe) => Ok(Some(Arc::new(Stripe::new(stripe)?))),
    }
}

/// Stripe's minimum charge per currency (its documented table, for the
/// currencies the shop may sell in); others have no minimum here and Stripe
/// answers `amount_too_small` itself.
fn minimum_minor(currency: &str) -> Option<i64> {
    match currency {
        "USD" | "EUR" | "CAD" | "AUD" | "NZD" | "CHF" | "SGD" | "BRL" => Some(50),
        "GBP" => Some(30),
        "DKK" => Some(250),
        "NOK" | "SEK" => Some(300),
        "JPY" => Some(50),
        "MXN" => Some(1000),
        "HKD" => Some(400),
        _ => None,
    }
}

#[derive(Clone)]
pub struct Stripe {
    client: Client,
    webhook_secret: Option<SecretString>,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe").finish_non_exhaustive()
    }
}

impl Stripe {
    pub fn new(settings: &StripeSettings) -> anyhow::Result<Self> {
        // The client appends `v1/…` to the base as it is.
        let mut api_base = settings.api_base.clone();
        if !api_base.ends_with('/') {
            api_base.push('/');
        }
        let client = ClientBuilder::new(settings.secret_key.expose_secret())
            .url(api_base)
            .timeout(settings.timeout)
            // Each call sets its own key; never retry behind the caller's
            // back, which decides after a lookup.
            .request_strategy(RequestStrategy::Once)
            .build()
            .context("HEYBLUE_STRIPE_SECRET_KEY / HEYBLUE_STRIPE_API_BASE: invalid Stripe client settings")?;
        Ok(Stripe {
            client,
            webhook_secret: settings.webhook_secret.clone(),
        })
    }

    fn strategy(key: &IdempotencyKey) -> Result<RequestStrategy, ProviderError> {
        stripe::IdempotencyKey::new(key.as_str())
            .map(RequestStrategy::Idempotent)
            .map_err(|e| ProviderError::Misconfigured {
                provider: ID,
                detail: format!("idempotency key {:?}: {e}", key.as_str()),
            })
    }

    fn currency(currency: &Currency) -> stripe_types::Currency {
        let lower = currency.as_str().to_ascii_lowercase();
        match stripe_types::Currency::from_str(&lower) {
            Ok(currency) => currency,
            Err(never) => match never {},
        }
    }

    /// Authorizes `payment_method` (a Stripe PaymentMethod id). Apple Pay
    /// comes through here once its token became a PaymentMethod.
    pub(crate) async fn authorize_payment_method(
        &self,
        request: &AuthorizeRequest,
        payment_method: &str,
    ) -> Result<AuthorizeOutcome, ProviderError> {
        let metadata = HashMap::from([
            (
                META_AUTHORIZATION_ID.to_owned(),
                request.authorization_id.to_string(),
            ),
            (META_CUSTOMER_ID.to_owned(), request.customer_id.to_string()),
        ]);
        let mut create = CreatePaymentIntent::new(
            request.amount.amount_minor(),
            Self::currency(request.amount.currency()),
        )
        .capture_method(PaymentIntentCaptureMethod::Manual)
        .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
        .payment_method(payment_method)
        .confirm(true)
        .metadata(metadata);
        if let Some(return_url) = &request.return_url {
            create = create.return_url(return_url);
        }
        let result = create
            .customize()
            .request_strategy(Self::strategy(&IdempotencyKey::authorize(
                request.authorization_id,
            ))?)
            .send(&self.client)
            .await;
        match result {
            Ok(intent) => authorize_outcome(&intent),
            Err(error) => match decline_of(&error) {
                Some(decline_code) => Ok(AuthorizeOutcome::Declined { decline_code }),
                None => Err(provider_error(error)),
            },
        }
    }

    /// Turns a Stripe token (`tok_…`, e.g. from an Apple Pay payment) into a
    /// PaymentMethod id, keyed by the authorization so a retry makes one.
    pub(crate) async fn payment_method_from_token(
        &self,
        request: &AuthorizeRequest,
        token: &str,
    ) -> Result<String, ProviderError> {
        use stripe_payment::payment_method::{
            CreatePaymentMethod, CreatePaymentMethodCard, CreatePaymentMethodTokenParams,
            CreatePaymentMethodType,
        };
        let key = format!("payment_method:{}", request.authorization_id);
        let created = CreatePaymentMethod::new()
            .type_(CreatePaymentMethodType::Card)
            .card(CreatePaymentMethodCard::TokenParams(
                CreatePaymentMethodTokenParams::new(token),
            ))
            .customize()
            .request_strategy(
                stripe::IdempotencyKey::new(&key)
                    .map(RequestStrategy::Idempotent)
                    .map_err(|e| ProviderError::Misconfigured {
                        provider: ID,
                        detail: e.to_string(),
                    })?,
            )
            .send(&self.client)
            .await;
        match created {
            Ok(method) => Ok(method.id.as_str().to_owned()),
            Err(error) => Err(provider_error(error)),
        }
    }

    async fn retrieve(
        &self,
        reference: &ProviderReference,
    ) -> Result<stripe_core::PaymentIntent, StripeError> {
        RetrievePaymentIntent::new(reference.as_str())
            .send(&self.client)
            .await
    }
}

#[async_trait]
impl PaymentProvider for Stripe {
    fn id(&self) -> ProviderId {
        ID
    }

    fn method_kind(&self) -> shared_events::PaymentMethod {
        shared_events::PaymentMethod::CreditCard
    }

    fn minimum_amount(&self, currency: &Currency) -> Option<Money> {
        minimum_minor(currency.as_str()).and_then(|minor| Money::new(minor, currency.clone()).ok())
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, ProviderError> {
        self.authorize_payment_method(request, request.payment_method.as_str())
            .await
    }

    /// After 3-D Secure, Stripe moves the PaymentIntent on by itself; this
    /// reads where it stands and confirms it only if Stripe still waits for
    /// a confirmation.
    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn confirm(&self, request: &ConfirmRequest) -> Result<AuthorizeOutcome, ProviderError> {
        let intent = self
            .retrieve(&request.reference)
            .await
            .map_err(provider_error)?;
        match transformers::IntentStatus::from(&intent.status) {
            transformers::IntentStatus::RequiresConfirmation => {
                let mut confirm = ConfirmPaymentIntent::new(intent.id.clone());
                if let Some(return_url) = &request.return_url {
                    confirm = confirm.return_url(return_url);
                }
                let result = confirm
                    .customize()
                    .request_strategy(Self::strategy(&IdempotencyKey::confirm(
                        request.authorization_id,
                    ))?)
                    .send(&self.client)
                    .await;
                match result {
                    Ok(intent) => authorize_outcome(&intent),
                    Err(error) => match decline_of(&error) {
                        Some(decline_code) => Ok(AuthorizeOutcome::Declined { decline_code }),
                        None => Err(provider_error(error)),
                    },
                }
            }
            transformers::IntentStatus::RequiresPaymentMethod
            | transformers::IntentStatus::RequiresAction
            | transformers::IntentStatus::Processing
            | transformers::IntentStatus::RequiresCapture
            | transformers::IntentStatus::Succeeded
            | transformers::IntentStatus::Canceled
            | transformers::IntentStatus::Unrecognized(_) => authorize_outcome(&intent),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn capture(&self, request: &CaptureRequest) -> Result<Captured, ProviderError> {
        let intent = CapturePaymentIntent::new(request.reference.as_str())
            .amount_to_capture(request.amount.amount_minor())
            .customize()
            .request_strategy(Self::strategy(&IdempotencyKey::capture(
                request.authorization_id,
            ))?)
            .send(&self.client)
            .await
            .map_err(provider_error)?;
        match intent_state(&intent) {
            PaymentState::Captured {
                transaction_id,
                amount_minor,
            } => Ok(Captured {
                transaction_id,
                amount: Money::new(amount_minor, request.amount.currency().clone())
                    .unwrap_or_else(|_| request.amount.clone()),
            }),
            PaymentState::Processing => Err(ProviderError::OutcomeUnknown {
                provider: ID,
                detail: format!("capture of {} is still processing", intent.id.as_str()),
            }),
            other => Err(ProviderError::Refused {
                provider: ID,
                code: "payment_intent_unexpected_state".to_owned(),
                message: format!("capture left {} {other:?}", intent.id.as_str()),
            }),
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn void(&self, request: &VoidRequest) -> Result<(), ProviderError> {
        CancelPaymentIntent::new(request.reference.as_str())
            .customize()
            .request_strategy(Self::strategy(&IdempotencyKey::void(
                request.authorization_id,
            ))?)
            .send(&self.client)
            .await
            .map_err(provider_error)?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, refund_id = %request.refund_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<Refunded, ProviderError> {
        let refund = CreateRefund::new()
            .payment_intent(request.reference.as_str())
            .amount(request.amount.amount_minor())
            .metadata(HashMap::from([
                (META_REFUND_ID.to_owned(), request.refund_id.to_string()),
                (
                    META_AUTHORIZATION_ID.to_owned(),
                    request.authorization_id.to_string(),
                ),
            ]))
            .customize()
            .request_strategy(Self::strategy(&IdempotencyKey::refund(request.refund_id))?)
            .send(&self.client)
            .await
            .map_err(provider_error)?;
        let pending = match RefundStatus::of(&refund) {
            RefundStatus::Succeeded => false,
            RefundStatus::Pending | RefundStatus::RequiresAction => true,
            RefundStatus::Unrecognized(status) => {
                tracing::warn!(
                    refund = refund.id.as_str(),
                    status,
                    "unrecognized Refund status"
                );
                true
            }
            RefundStatus::Failed | RefundStatus::Canceled => {
                return Err(ProviderError::Refused {
                    provider: ID,
                    code: refund
                        .failure_reason
                        .clone()
                        .unwrap_or_else(|| "refund_failed".to_owned()),
                    message: format!("refund {} failed", refund.id.as_str()),
                })
            }
        };
        Ok(Refunded {
            refund_reference: ProviderReference::new(refund.id.as_str()),
            amount: Money::new(refund.amount, request.amount.currency().clone())
                .unwrap_or_else(|_| request.amount.clone()),
            pending,
        })
    }

    #[tracing::instrument(skip_all, fields(provider = %ID))]
    async fn lookup(&self, lookup: &Lookup) -> Result<PaymentState, ProviderError> {
        match lookup {
            Lookup::Authorization { reference, .. } => match self.retrieve(reference).await {
                Ok(intent) => Ok(intent_state(&intent)),
                Err(StripeError::Stripe(_, 404)) => Ok(PaymentState::NotFound),
                Err(error) => Err(provider_error(error)),
            },
            Lookup::Refund {
                refund_id,
                reference,
                ..
            } => {
                // Refunds of one PaymentIntent are few (one per declined
                // part at most); the first page holds them all.
                let refunds = ListRefund::new()
                    .payment_intent(reference.as_str())
                    .limit(100)
                    .send(&self.client)
                    .await
                    .map_err(provider_error)?;
                let ours = refund_id.to_string();
                Ok(refunds
                    .data
                    .iter()
                    .find(|refund| {
                        refund
                            .metadata
                            .as_ref()
                            .and_then(|m| m.get(META_REFUND_ID))
                            .is_some_and(|id| *id == ours)
                    })
                    .map(refund_state)
                    .unwrap_or(PaymentState::NotFound))
            }
        }
    }

    #[tracing::instrument(skip_all, fields(provider = %ID))]
    async fn verify_webhook(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        let secret = self
            .webhook_secret
            .as_ref()
            .ok_or(WebhookError::NotSupported(ID))?;
        let header = headers
            .get("stripe-signature")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(|| {
                WebhookError::MissingSignature("no Stripe-Signature header".to_owned())
            })?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        verify_signature(header, body, secret.expose_secret(), now)?;
        parse_event(body)
    }
}
