//! The `apple_pay` provider: an Apple Pay payment processed through Stripe.
//! The wallet hands the checkout a Stripe token (`tok_…`, made from the
//! Apple Pay payment token by Stripe's SDK) or a PaymentMethod (`pm_…`);
//! this provider turns a token into a PaymentMethod and delegates every
//! call to the [`Stripe`] provider. It is registered whenever Stripe is.

use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderMap;

use super::stripe::Stripe;
use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureRequest, Captured, ConfirmRequest, Lookup,
    PaymentProvider, PaymentState, ProviderError, ProviderId, RefundRequest, Refunded, VoidRequest,
    WebhookError, WebhookEvent,
};
use crate::domain::{Currency, Money};
use crate::settings::GatewaySettings;

pub const ID: ProviderId = ProviderId::new("apple_pay");

pub fn register(settings: &GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>> {
    match &settings.stripe {
        None => Ok(None),
        Some(stripe) => Ok(Some(Arc::new(ApplePay::new(Stripe::new(stripe)?)))),
    }
}

#[derive(Debug, Clone)]
pub struct ApplePay {
    stripe: Stripe,
}

impl ApplePay {
    pub fn new(stripe: Stripe) -> Self {
        ApplePay { stripe }
    }
}

#[async_trait]
impl PaymentProvider for ApplePay {
    fn id(&self) -> ProviderId {
        ID
    }

    fn method_kind(&self) -> shared_events::PaymentMethod {
        shared_events::PaymentMethod::ApplePay
    }

    fn minimum_amount(&self, currency: &Currency) -> Option<Money> {
        self.stripe.minimum_amount(currency)
    }

    #[tracing::instrument(skip_all, fields(provider = %ID, authorization_id = %request.authorization_id))]
    async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, ProviderError> {
        let payment_method = request.payment_method.as_str();
        let payment_method = if payment_method.starts_with("tok_") {
            self.stripe
                .payment_method_from_token(request, payment_method)
                .await?
        } else {
            payment_method.to_owned()
        };
        self.stripe
            .authorize_payment_method(request, &payment_method)
            .await
    }

    async fn confirm(&self, request: &ConfirmRequest) -> Result<AuthorizeOutcome, ProviderError> {
        self.stripe.confirm(request).await
    }

    async fn capture(&self, request: &CaptureRequest) -> Result<Captured, ProviderError> {
        self.stripe.capture(request).await
    }

    async fn void(&self, request: &VoidRequest) -> Result<(), ProviderError> {
        self.stripe.void(request).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refunded, ProviderError> {
        self.stripe.refund(request).await
    }

    async fn lookup(&self, lookup: &Lookup) -> Result<PaymentState, ProviderError> {
        self.stripe.lookup(lookup).await
    }

    /// Apple Pay payments are Stripe PaymentIntents: their events arrive on
    /// Stripe's webhook, so this one has none of its own.
    async fn verify_webhook(
        &self,
        _headers: &HeaderMap,
        _body: &[u8],
    ) -> Result<WebhookEvent, WebhookError> {
        Err(WebhookError::NotSupported(ID))
    }
}
