//! dispatcher's own settings: the confirmation deadline, where its pages are
//! reached (the email plugin's links), the links' secret and lifetime, and how
//! the webhook plugin calls businesses.

use std::time::Duration;

use http_service::config::{env_or, env_secret, ConfigError};
use mail::MailSettings;
use secrecy::SecretString;
use service_host::ServiceSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_DISPATCH_CONFIRM_DEADLINE_SECS` (default 48 h): a part its
    /// business has not confirmed by then is declined with reason `timeout`.
    pub confirm_deadline: Duration,
    /// `HEYBLUE_PUBLIC_BASE_URL`: where businesses reach this service's
    /// pages (the email plugin's action links), without a trailing slash.
    pub public_base_url: String,
    /// `HEYBLUE_DISPATCH_LINK_SECRET`: signs the email plugin's action links.
    /// Without it, a secret generated once and kept in the service's schema
    /// is used, so links survive restarts and work on every replica.
    pub link_secret: Option<SecretString>,
    /// `HEYBLUE_DISPATCH_LINK_TTL_SECS` (default 7 days): how long an
    /// action link works.
    pub link_ttl: Duration,
    pub delivery: DeliverySettings,
    pub webhook: WebhookSettings,
    /// How the email plugin sends (`HEYBLUE_SMTP_URL`, `HEYBLUE_MAIL_DIR`,
    /// `HEYBLUE_MAIL_FROM`; see the `mail` crate).
    pub mail: MailSettings,
}

/// How a plugin's delivery (webhook, email) is retried.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// `HEYBLUE_DISPATCH_DELIVERY_ATTEMPTS` (default 8): tries in all before
    /// the part is declined as `dispatch_failed`.
    pub attempts: u32,
    /// `HEYBLUE_DISPATCH_DELIVERY_BACKOFF_MS` (default 2 s): the wait before
    /// the first retry; it doubles with each further one, with jitter.
    pub base_backoff: Duration,
    /// `HEYBLUE_DISPATCH_DELIVERY_MAX_BACKOFF_MS` (default 15 min).
    pub max_backoff: Duration,
}

/// How the webhook plugin calls a business and checks its answers.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `HEYBLUE_WEBHOOK_TIMEOUT_MS` (default 10 s): one call's limit; a call
    /// that outlasts it counts as failed and is retried.
    pub timeout: Duration,
    /// How far an inbound webhook's timestamp may be from our clock before
    /// its signature counts as stale (default 5 min).
    pub signature_tolerance: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            confirm_deadline: Duration::from_secs(48 * 3600),
            public_base_url: "http://127.0.0.1:8087".to_owned(),
            link_secret: None,
            link_ttl: Duration::from_secs(7 * 24 * 3600),
            delivery: DeliverySettings::default(),
            webhook: WebhookSettings::default(),
            // Not the working directory: a test that builds default
            // settings must not leave files in the repository.
            mail: MailSettings::files(std::env::temp_dir().join("heyblue-dispatcher-mail")),
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            attempts: 8,
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(10),
            signature_tolerance: Duration::from_secs(5 * 60),
        }
    }
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        let defaults = Settings::default();
        let public_base_url: String = env_or("HEYBLUE_PUBLIC_BASE_URL", defaults.public_base_url)?;
        if !public_base_url.starts_with("http://") && !public_base_url.starts_with("https://") {
            return Err(ConfigError::Invalid {
                name: "HEYBLUE_PUBLIC_BASE_URL".to_owned(),
                value: public_base_url,
                reason: "must be an http(s) URL".to_owned(),
            });
        }
        let attempts: u32 = env_or(
            "HEYBLUE_DISPATCH_DELIVERY_ATTEMPTS",
            defaults.delivery.attempts,
        )?;
        if attempts == 0 {
            return Err(invalid(
                "HEYBLUE_DISPATCH_DELIVERY_ATTEMPTS",
                "0",
                "must be at least 1",
            ));
        }
        Ok(Settings {
            confirm_deadline: seconds(
                "HEYBLUE_DISPATCH_CONFIRM_DEADLINE_SECS",
                defaults.confirm_deadline,
            )?,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            link_secret: env_secret("HEYBLUE_DISPATCH_LINK_SECRET")?,
            link_ttl: seconds("HEYBLUE_DISPATCH_LINK_TTL_SECS", defaults.link_ttl)?,
            delivery: DeliverySettings {
                attempts,
                base_backoff: millis(
                    "HEYBLUE_DISPATCH_DELIVERY_BACKOFF_MS",
                    defaults.delivery.base_backoff,
                )?,
                max_backoff: millis(
                    "HEYBLUE_DISPATCH_DELIVERY_MAX_BACKOFF_MS",
                    defaults.delivery.max_backoff,
                )?,
            },
            webhook: WebhookSettings {
                timeout: millis("HEYBLUE_WEBHOOK_TIMEOUT_MS", defaults.webhook.timeout)?,
                signature_tolerance: defaults.webhook.signature_tolerance,
            },
            mail: MailSettings::from_env()?,
        })
    }
}

fn invalid(name: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn seconds(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let secs: u64 = env_or(name, default.as_secs())?;
    if secs == 0 {
        return Err(invalid(name, "0", "must be at least 1 second"));
    }
    Ok(Duration::from_secs(secs))
}

fn millis(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let millis: u64 = env_or(name, u64::try_from(default.as_millis()).unwrap_or(u64::MAX))?;
    if millis == 0 {
        return Err(invalid(name, "0", "must be at least 1 ms"));
    }
    Ok(Duration::from_millis(millis))
}
