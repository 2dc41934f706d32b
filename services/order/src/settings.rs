//! order's own settings, beyond what every service reads.

use std::time::Duration;

use http_service::config::{env_or, env_required, ConfigError};
use reqwest::Url;
use service_host::ServiceSettings;

/// How long an open order may wait in one status before it counts as stuck.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_DISPATCHER_URL`: where a customer's cancel withdraws the parts.
    pub dispatcher_url: Url,
    /// `HEYBLUE_ORDER_STUCK_AFTER_SECONDS` (default 900): an open order
    /// unchanged this long is counted in `/metrics` and re-driven.
    pub stuck_after: Duration,
}

impl Settings {
    pub fn new(dispatcher_url: Url) -> Self {
        Settings {
            dispatcher_url,
            stuck_after: DEFAULT_STUCK_AFTER,
        }
    }
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        let seconds: u64 = env_or(
            "HEYBLUE_ORDER_STUCK_AFTER_SECONDS",
            DEFAULT_STUCK_AFTER.as_secs(),
        )?;
        Ok(Settings {
            dispatcher_url: env_required("HEYBLUE_DISPATCHER_URL")?,
            stuck_after: Duration::from_secs(seconds),
        })
    }
}
