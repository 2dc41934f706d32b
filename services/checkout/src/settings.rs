//! checkout's own settings, beyond what every service reads: where its four
//! peers are, and how long it waits for them and holds points.

use std::time::Duration;

use http_service::config::{env_or, env_required, ConfigError};
use reqwest::Url;
use service_host::ServiceSettings;

/// A peer answers in milliseconds; a customer waiting on the checkout page
/// should not wait long for one that does not.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long points stay held for an unfinished checkout (3-D Secure or a
/// PayPal approval page in another tab).
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);
/// A checkout whose reservation expires within this margin is not finished:
/// the `order_submitted` that binds the reservation must reach user-points
/// before user-points releases it.
pub const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_CATALOG_URL`: offerings' prices, points prices and stock.
    pub catalog_url: Url,
    /// `HEYBLUE_CART_URL`: the customer's cart.
    pub cart_url: Url,
    /// `HEYBLUE_USER_POINTS_URL`: balances and reservations.
    pub user_points_url: Url,
    /// `HEYBLUE_PAYMENT_GATEWAY_URL`: authorizations.
    pub payment_gateway_url: Url,
    /// `HEYBLUE_CHECKOUT_PEER_TIMEOUT_MS`: how long one call to a peer may take.
    pub peer_timeout: Duration,
    /// `HEYBLUE_CHECKOUT_RESERVATION_TTL_SECONDS`: how long points are held
    /// (and a checkout without points may stay unconfirmed).
    pub reservation_ttl: Duration,
    /// `HEYBLUE_CHECKOUT_EXPIRY_MARGIN_SECONDS`: see [`DEFAULT_EXPIRY_MARGIN`].
    pub expiry_margin: Duration,
}

impl Settings {
    /// The given peers with the default tuning.
    pub fn new(
        catalog_url: Url,
        cart_url: Url,
        user_points_url: Url,
        payment_gateway_url: Url,
    ) -> Self {
        Settings {
            catalog_url,
            cart_url,
            user_points_url,
            payment_gateway_url,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
            reservation_ttl: DEFAULT_RESERVATION_TTL,
            expiry_margin: DEFAULT_EXPIRY_MARGIN,
        }
    }
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        let millis = |name: &str, default: Duration| {
            env_or(name, default.as_millis() as u64).map(Duration::from_millis)
        };
        let seconds = |name: &str, default: Duration| {
            env_or(name, default.as_secs()).map(Duration::from_secs)
        };
        let settings = Settings {
            catalog_url: env_required(&fleet::CATALOG.url_variable())?,
            cart_url: env_required(&fleet::CART.url_variable())?,
            user_points_url: env_required(&fleet::USER_POINTS.url_variable())?,
            payment_gateway_url: env_required(&fleet::PAYMENT_GATEWAY.url_variable())?,
            peer_timeout: millis("HEYBLUE_CHECKOUT_PEER_TIMEOUT_MS", DEFAULT_PEER_TIMEOUT)?,
            reservation_ttl: seconds(
                "HEYBLUE_CHECKOUT_RESERVATION_TTL_SECONDS",
                DEFAULT_RESERVATION_TTL,
            )?,
            expiry_margin: seconds(
                "HEYBLUE_CHECKOUT_EXPIRY_MARGIN_SECONDS",
                DEFAULT_EXPIRY_MARGIN,
            )?,
        };
        // user-points holds points for 1 s to 24 h; a margin as long as the
        // hold would refuse every checkout that needs a second step.
        if settings.reservation_ttl.is_zero()
            || settings.reservation_ttl > Duration::from_secs(86_400)
        {
            return Err(ConfigError::Invalid {
                name: "HEYBLUE_CHECKOUT_RESERVATION_TTL_SECONDS".to_owned(),
                value: settings.reservation_ttl.as_secs().to_string(),
                reason: "must be 1 to 86400".to_owned(),
            });
        }
        if settings.expiry_margin >= settings.reservation_ttl {
            return Err(ConfigError::Invalid {
                name: "HEYBLUE_CHECKOUT_EXPIRY_MARGIN_SECONDS".to_owned(),
                value: settings.expiry_margin.as_secs().to_string(),
                reason: "must be shorter than the reservation TTL".to_owned(),
            });
        }
        Ok(settings)
    }
}
