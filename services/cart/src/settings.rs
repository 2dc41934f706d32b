//! cart's own settings, beyond what every service reads.

use http_service::config::{env_required, ConfigError};
use reqwest::Url;
use service_host::ServiceSettings;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_CATALOG_URL`: where offerings are looked up when added.
    pub catalog_url: Url,
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Settings {
            catalog_url: env_required("HEYBLUE_CATALOG_URL")?,
        })
    }
}
