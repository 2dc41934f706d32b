//! payment-gateway's own settings: the public URL its pages are reached at,
//! and each provider's endpoint and credentials. A provider whose
//! credentials are absent is not registered; the sandbox always is.

use std::time::Duration;

use http_service::config::{env_or, env_parsed, env_secret, ConfigError};
use secrecy::SecretString;
use service_host::ServiceSettings;

/// Providers answer a card payment in well under a second; past this the
/// answer counts as lost and the payment is looked up instead.
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// `HEYBLUE_PUBLIC_BASE_URL`: where customers reach the gateway's own
    /// pages (the sandbox's authentication page), without a trailing slash.
    pub public_base_url: String,
    pub stripe: Option<StripeSettings>,
    pub paypal: Option<PayPalSettings>,
}

#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `HEYBLUE_STRIPE_SECRET_KEY`.
    pub secret_key: SecretString,
    /// `HEYBLUE_STRIPE_API_BASE` (default `https://api.stripe.com/`).
    pub api_base: String,
    /// `HEYBLUE_STRIPE_WEBHOOK_SECRET`: the endpoint's signing secret
    /// (`whsec_…`); without it Stripe webhooks are refused.
    pub webhook_secret: Option<SecretString>,
    /// `HEYBLUE_STRIPE_TIMEOUT_MS`.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct PayPalSettings {
    /// `HEYBLUE_PAYPAL_CLIENT_ID`.
    pub client_id: String,
    /// `HEYBLUE_PAYPAL_CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// `HEYBLUE_PAYPAL_API_BASE` (default PayPal's sandbox,
    /// `https://api-m.sandbox.paypal.com`).
    pub api_base: String,
    /// `HEYBLUE_PAYPAL_WEBHOOK_ID`: the id PayPal gave our webhook; without
    /// it PayPal webhooks are refused.
    pub webhook_id: Option<String>,
    /// `HEYBLUE_PAYPAL_TIMEOUT_MS`.
    pub timeout: Duration,
}

impl Default for GatewaySettings {
    /// The sandbox alone, its pages on the design's local port.
    fn default() -> Self {
        GatewaySettings {
            public_base_url: "http://127.0.0.1:8085".to_owned(),
            stripe: None,
            paypal: None,
        }
    }
}

impl StripeSettings {
    pub const DEFAULT_API_BASE: &'static str = "https://api.stripe.com/";

    /// Settings for a Stripe-speaking server at `api_base`.
    pub fn new(secret_key: &str, api_base: &str) -> Self {
        StripeSettings {
            secret_key: secret_key.to_owned().into(),
            api_base: api_base.to_owned(),
            webhook_secret: None,
            timeout: DEFAULT_PROVIDER_TIMEOUT,
        }
    }
}

impl PayPalSettings {
    pub const DEFAULT_API_BASE: &'static str = "https://api-m.sandbox.paypal.com";

    /// Settings for a PayPal-speaking server at `api_base`.
    pub fn new(client_id: &str, client_secret: &str, api_base: &str) -> Self {
        PayPalSettings {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned().into(),
            api_base: api_base.to_owned(),
            webhook_id: None,
            timeout: DEFAULT_PROVIDER_TIMEOUT,
        }
    }
}

impl ServiceSettings for GatewaySettings {
    fn from_env() -> Result<Self, ConfigError> {
        let defaults = GatewaySettings::default();
        let public_base_url: String = env_or("HEYBLUE_PUBLIC_BASE_URL", defaults.public_base_url)?;
        let stripe = match env_secret("HEYBLUE_STRIPE_SECRET_KEY")? {
            None => None,
            Some(secret_key) => Some(StripeSettings {
                secret_key,
                api_base: env_or(
                    "HEYBLUE_STRIPE_API_BASE",
                    StripeSettings::DEFAULT_API_BASE.to_owned(),
                )?,
                webhook_secret: env_secret("HEYBLUE_STRIPE_WEBHOOK_SECRET")?,
                timeout: timeout_from_env("HEYBLUE_STRIPE_TIMEOUT_MS")?,
            }),
        };
        let paypal = match env_parsed::<String>("HEYBLUE_PAYPAL_CLIENT_ID")? {
            None => None,
            Some(client_id) => Some(PayPalSettings {
                client_id,
                // A client id without its secret is a half-done deployment:
                // refuse to start rather than run without PayPal.
                client_secret: env_secret("HEYBLUE_PAYPAL_CLIENT_SECRET")?.ok_or_else(|| {
                    ConfigError::Missing {
                        name: "HEYBLUE_PAYPAL_CLIENT_SECRET".to_owned(),
                    }
                })?,
                api_base: env_or(
                    "HEYBLUE_PAYPAL_API_BASE",
                    PayPalSettings::DEFAULT_API_BASE.to_owned(),
                )?,
                webhook_id: env_parsed("HEYBLUE_PAYPAL_WEBHOOK_ID")?,
                timeout: timeout_from_env("HEYBLUE_PAYPAL_TIMEOUT_MS")?,
            }),
        };
        if !public_base_url.starts_with("http://") && !public_base_url.starts_with("https://") {
            return Err(ConfigError::Invalid {
                name: "HEYBLUE_PUBLIC_BASE_URL".to_owned(),
                value: public_base_url,
                reason: "must be an http(s) URL".to_owned(),
            });
        }
        Ok(GatewaySettings {
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            stripe,
            paypal,
        })
    }
}

fn timeout_from_env(name: &str) -> Result<Duration, ConfigError> {
    let millis: u64 = env_or(name, DEFAULT_PROVIDER_TIMEOUT.as_millis() as u64)?;
    if millis == 0 {
        return Err(ConfigError::Invalid {
            name: name.to_owned(),
            value: "0".to_owned(),
            reason: "must be at least 1 ms".to_owned(),
        });
    }
    Ok(Duration::from_millis(millis))
}
