//! The webshop's own settings, beyond what every service reads.

use std::time::Duration;

use fleet::Service;
use http_service::config::{env_or, env_parsed, env_required, env_secret, ConfigError};
use reqwest::Url;
use secrecy::SecretString;
use service_host::ServiceSettings;

/// How long a sign-in lasts: a working day.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// How long the webshop waits for a service. Checkout authorizes the payment
/// while the customer waits, so this is generous.
pub const DEFAULT_PEER_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Settings {
    /// `HEYBLUE_<SERVICE>_URL` of every service behind the webshop.
    pub peers: PeerUrls,
    /// `HEYBLUE_PUBLIC_BASE_URL`: where browsers reach the webshop. Payment
    /// pages send the customer back below it, and an `https` address makes
    /// the session cookie `Secure`.
    pub public_base_url: Url,
    /// `HEYBLUE_WEBSHOP_DEMO_SIGNIN` (default false): offer the demo users
    /// on the sign-in page. Only the local stack turns it on: anyone who
    /// reaches the page can be anyone of them.
    pub demo_sign_in: bool,
    /// `HEYBLUE_WEBSHOP_SESSION_TTL_SECONDS` (default 43200).
    pub session_ttl: Duration,
    /// `HEYBLUE_WEBSHOP_PEER_TIMEOUT_MS` (default 30000).
    pub peer_timeout: Duration,
    /// Sign-in through an OpenID Connect provider, when
    /// `HEYBLUE_WEBSHOP_OIDC_ISSUER` is set.
    pub oidc: Option<OidcSettings>,
    /// `HEYBLUE_SHOP_CURRENCY` (default `USD`), as catalog reads it: the
    /// currency a business's new offerings are priced in.
    pub shop_currency: String,
}

/// The webshop as a client of an OpenID Connect provider. Its redirect URI
/// is `<HEYBLUE_PUBLIC_BASE_URL>/sign-in/oidc/callback`, which the
/// provider must have registered for the client.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// `HEYBLUE_WEBSHOP_OIDC_ISSUER`: the provider's issuer; its discovery
    /// document is below it.
    pub issuer: Url,
    /// `HEYBLUE_WEBSHOP_OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `HEYBLUE_WEBSHOP_OIDC_CLIENT_SECRET`.
    pub client_secret: SecretString,
}

impl Settings {
    /// Settings with the defaults, for tests and tools.
    pub fn new(peers: PeerUrls, public_base_url: Url) -> Self {
        Settings {
            peers,
            public_base_url,
            demo_sign_in: false,
            session_ttl: DEFAULT_SESSION_TTL,
            peer_timeout: DEFAULT_PEER_TIMEOUT,
            oidc: None,
            shop_currency: "USD".to_owned(),
        }
    }

    /// Whether browsers reach the webshop over TLS, so cookies may say `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_base_url.scheme() == "https"
    }
}

impl ServiceSettings for Settings {
    fn from_env() -> Result<Self, ConfigError> {
        let peers = fleet::ALL
            .iter()
            .filter(|service| service.name != fleet::WEBSHOP.name)
            .map(|service| Ok((*service, env_required(&service.url_variable())?)))
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let session_seconds: u64 = env_or(
            "HEYBLUE_WEBSHOP_SESSION_TTL_SECONDS",
            DEFAULT_SESSION_TTL.as_secs(),
        )?;
        let timeout_ms: u64 = env_or(
            "HEYBLUE_WEBSHOP_PEER_TIMEOUT_MS",
            DEFAULT_PEER_TIMEOUT.as_millis() as u64,
        )?;
        let default_base = format!("http://127.0.0.1:{}", fleet::WEBSHOP.port);
        let default_base = Url::parse(&default_base).map_err(|error| ConfigError::Invalid {
            name: "HEYBLUE_PUBLIC_BASE_URL".to_owned(),
            value: default_base.clone(),
            reason: error.to_string(),
        })?;
        Ok(Settings {
            peers: PeerUrls(peers),
            public_base_url: env_or("HEYBLUE_PUBLIC_BASE_URL", default_base)?,
            demo_sign_in: env_or("HEYBLUE_WEBSHOP_DEMO_SIGNIN", false)?,
            session_ttl: Duration::from_secs(session_seconds),
            peer_timeout: Duration::from_millis(timeout_ms),
            oidc: OidcSettings::from_env()?,
            shop_currency: env_or("HEYBLUE_SHOP_CURRENCY", "USD".to_owned())?,
        })
    }
}

impl OidcSettings {
    /// `None` unless `HEYBLUE_WEBSHOP_OIDC_ISSUER` is set; then the client
    /// id and secret are required.
    fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(issuer) = env_parsed::<String>("HEYBLUE_WEBSHOP_OIDC_ISSUER")? else {
            return Ok(None);
        };
        let issuer = Url::parse(&issuer).map_err(|error| ConfigError::Invalid {
            name: "HEYBLUE_WEBSHOP_OIDC_ISSUER".to_owned(),
            value: issuer.clone(),
            reason: error.to_string(),
        })?;
        let client_secret = env_secret("HEYBLUE_WEBSHOP_OIDC_CLIENT_SECRET")?.ok_or_else(|| {
            ConfigError::Missing {
                name: "HEYBLUE_WEBSHOP_OIDC_CLIENT_SECRET".to_owned(),
            }
        })?;
        Ok(Some(OidcSettings {
            issuer,
            client_id: env_required("HEYBLUE_WEBSHOP_OIDC_CLIENT_ID")?,
            client_secret,
        }))
    }
}

/// Where each service behind the webshop listens.
#[derive(Debug, Clone)]
pub struct PeerUrls(pub Vec<(Service, Url)>);

impl PeerUrls {
    /// The base URL of `service`, when the webshop was told one.
    pub fn of(&self, service: &Service) -> Option<&Url> {
        self.0
            .iter()
            .find(|(known, _)| known.name == service.name)
            .map(|(_, url)| url)
    }
}
