//! The built-in `sandbox` provider: offline, deterministic, no minimum
//! amount. Its payment methods mirror Stripe's test cards (DESIGN §3), and
//! every outcome is derived from the payment method, so the provider holds
//! no state: its reference carries the payment method along
//! (`sandbox:{authorization_id}:{payment_method}`), and the one thing it
//! cannot derive, the customer's verdict on the authentication page, is
//! recorded by the gateway and passed to `confirm`.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureRequest, Captured, ConfirmRequest, CustomerVerdict,
    Lookup, PaymentProvider, PaymentState, ProviderError, ProviderId, ProviderReference,
    RefundRequest, Refunded, VoidRequest,
};
use crate::domain::{AuthorizationId, Currency, Money};
use crate::settings::GatewaySettings;

pub const ID: ProviderId = ProviderId::new("sandbox");

pub fn register(settings: &GatewaySettings) -> anyhow::Result<Option<Arc<dyn PaymentProvider>>> {
    Ok(Some(Arc::new(Sandbox::new(&settings.public_base_url))))
}

/// The sandbox's test payment methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestMethod {
    /// `pm_card_visa`: authorizes and captures.
    Visa,
    /// `pm_card_chargeDeclined`: declined, `generic_decline`.
    ChargeDeclined,
    /// `pm_card_chargeDeclinedInsufficientFunds`: declined,
    /// `insufficient_funds`.
    InsufficientFunds,
    /// `pm_card_authenticationRequired`: needs the customer's action, then
    /// authorizes on confirm unless the customer failed it.
    AuthenticationRequired,
    /// `pm_sandbox_capture_fails`: authorizes, but its capture is refused.
    CaptureFails,
}

impl TestMethod {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pm_card_visa" => Some(TestMethod::Visa),
            "pm_card_chargeDeclined" => Some(TestMethod::ChargeDeclined),
            "pm_card_chargeDeclinedInsufficientFunds" => Some(TestMethod::InsufficientFunds),
            "pm_card_authenticationRequired" => Some(TestMethod::AuthenticationRequired),
            "pm_sandbox_capture_fails" => Some(TestMethod::CaptureFails),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TestMethod::Visa => "pm_card_visa",
            TestMethod::ChargeDeclined => "pm_card_chargeDeclined",
            TestMethod::InsufficientFunds => "pm_card_chargeDeclinedInsufficientFunds",
            TestMethod::AuthenticationRequired => "pm_card_authenticationRequired",
            TestMethod::CaptureFails => "pm_sandbox_capture_fails",
        }
    }
}

/// The decline code a failed authentication reports.
pub const AUTHENTICATION_FAILED: &str = "authentication_failed";

#[derive(Debug, Clone)]
pub struct Sandbox {
    public_base_url: String,
}

impl Sandbox {
    pub fn new(public_base_url: &str) -> Self {
        Sandbox {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The gateway's own page where the customer approves or fails a
    /// sandbox authentication.
    pub fn authentication_url(&self, authorization_id: AuthorizationId) -> String {
        format!(
            "{}/v1/payments/sandbox/authentications/{authorization_id}",
            self.public_base_url
        )
    }

    fn reference(authorization_id: AuthorizationId, method: TestMethod) -> ProviderReference {
        ProviderReference::new(format!("sandbox:{authorization_id}:{}", method.as_str()))
    }

    /// The test method a reference was made for.
    fn method_of(reference: &ProviderReference) -> Result<TestMethod, ProviderError> {
        reference
            .as_str()
            .strip_prefix("sandbox:")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(_, method)| TestMethod::parse(method))
            .ok_or_else(|| refused("invalid_reference", "not a sandbox reference"))
    }

    /// The outcome of a first authorization attempt.
    fn authorization(
        &self,
        authorization_id: AuthorizationId,
        method: TestMethod,
    ) -> AuthorizeOutcome {
        let reference = Self::reference(authorization_id, method);
        match method {
            TestMethod::Visa | TestMethod::CaptureFails => {
                AuthorizeOutcome::Authorized { reference }
            }
            TestMethod::ChargeDeclined => AuthorizeOutcome::Declined {
                decline_code: "generic_decline".to_owned(),
            },
            TestMethod::InsufficientFunds => AuthorizeOutcome::Declined {
                decline_code: "insufficient_funds".to_owned(),
            },
            TestMethod::AuthenticationRequired => AuthorizeOutcome::RequiresAction {
                reference,
                redirect_url: self.authentication_url(authorization_id),
            },
        }
    }
}

fn refused(code: &str, message: &str) -> ProviderError {
    ProviderError::Refused {
        provider: ID,
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

#[async_trait]
impl PaymentProvider for Sandbox {
    fn id(&self) -> ProviderId {
        ID
    }

    fn method_kind(&self) -> shared_events::PaymentMethod {
        shared_events::PaymentMethod::CreditCard
    }

    fn minimum_amount(&self, _currency: &Currency) -> Option<Money> {
        None
    }

    #[tracing::instrument(skip_all, fields(authorization_id = %request.authorization_id))]
    async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizeOutcome, ProviderError> {
        let method = TestMethod::parse(request.payment_method.as_str()).ok_or_else(|| {
            refused(
                "invalid_payment_method",
                &format!(
                    "the sandbox has no payment method {:?}",
                    request.payment_method.as_str()
                ),
            )
        })?;
        Ok(self.authorization(request.authorization_id, method))
    }

    #[tracing::instrument(skip_all, fields(authorization_id = %request.authorization_id))]
    async fn confirm(&self, request: &ConfirmRequest) -> Result<AuthorizeOutcome, ProviderError> {
        let method = Self::method_of(&request.reference)?;
        match (method, request.customer_verdict) {
            // A client that never opened the page still authorizes: only a
            // recorded failure declines.
            (TestMethod::AuthenticationRequired, Some(CustomerVerdict::Failed)) => {
                Ok(AuthorizeOutcome::Declined {
                    decline_code: AUTHENTICATION_FAILED.to_owned(),
                })
            }
            (TestMethod::AuthenticationRequired, Some(CustomerVerdict::Approved) | None) => {
                Ok(AuthorizeOutcome::Authorized {
                    reference: request.reference.clone(),
                })
            }
            (
                TestMethod::Visa
                | TestMethod::CaptureFails
                | TestMethod::ChargeDeclined
                | TestMethod::InsufficientFunds,
                _,
            ) => Ok(self.authorization(request.authorization_id, method)),
        }
    }

    #[tracing::instrument(skip_all, fields(authorization_id = %request.authorization_id))]
    async fn capture(&self, request: &CaptureRequest) -> Result<Captured, ProviderError> {
        match Self::method_of(&request.reference)? {
            TestMethod::CaptureFails => Err(refused(
                "capture_failed",
                "the sandbox refuses captures of pm_sandbox_capture_fails",
            )),
            TestMethod::Visa | TestMethod::AuthenticationRequired => Ok(Captured {
                transaction_id: ProviderReference::new(format!(
                    "sandbox_capture:{}",
                    request.authorization_id
                )),
                amount: request.amount.clone(),
            }),
            TestMethod::ChargeDeclined | TestMethod::InsufficientFunds => Err(refused(
                "payment_intent_unexpected_state",
                "a declined authorization cannot be captured",
            )),
        }
    }

    #[tracing::instrument(skip_all, fields(authorization_id = %request.authorization_id))]
    async fn void(&self, request: &VoidRequest) -> Result<(), ProviderError> {
        Self::method_of(&request.reference).map(|_| ())
    }

    #[tracing::instrument(skip_all, fields(refund_id = %request.refund_id))]
    async fn refund(&self, request: &RefundRequest) -> Result<Refunded, ProviderError> {
        Self::method_of(&request.reference)?;
        Ok(Refunded {
            refund_reference: ProviderReference::new(format!(
                "sandbox_refund:{}",
                request.refund_id
            )),
            amount: request.amount.clone(),
            pending: false,
        })
    }

    /// The sandbox answers in-process and never loses an answer; its lookup
    /// reports what the deterministic call produces (an authorization that
    /// needs action reports that, as no verdict is known here).
    async fn lookup(&self, lookup: &Lookup) -> Result<PaymentState, ProviderError> {
        match lookup {
            Lookup::Authorization {
                authorization_id,
                reference,
            } => {
                let method = Self::method_of(reference)?;
                Ok(match self.authorization(*authorization_id, method) {
                    AuthorizeOutcome::Authorized { .. } => PaymentState::Authorized,
                    AuthorizeOutcome::RequiresAction { redirect_url, .. } => {
                        PaymentState::RequiresAction {
                            redirect_url: Some(redirect_url),
                        }
                    }
                    AuthorizeOutcome::Declined { decline_code } => {
                        PaymentState::Declined { decline_code }
                    }
                })
            }
            // A sandbox refund keeps no record, and making it again is
            // harmless: "not found" tells the caller to do just that.
            Lookup::Refund { reference, .. } => {
                Self::method_of(reference)?;
                Ok(PaymentState::NotFound)
            }
        }
    }
}
