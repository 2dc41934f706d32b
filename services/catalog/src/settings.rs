//! catalog's own settings, beyond what every service has.

use http_service::config::{env_or, ConfigError};
use service_host::ServiceSettings;

use crate::domain::{Currency, ShopCurrency};

#[derive(Debug, Clone, Default)]
pub struct CatalogSettings {
    /// `HEYBLUE_SHOP_CURRENCY` (default `USD`): the one currency offerings
    /// are priced in.
    pub shop_currency: ShopCurrency,
}

impl ServiceSettings for CatalogSettings {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(CatalogSettings {
            shop_currency: ShopCurrency(env_or("HEYBLUE_SHOP_CURRENCY", Currency::USD)?),
        })
    }
}
