//! Where a service's bearer token for calling its peers comes from: minted
//! with the fleet's HS256 secret, or fetched from an identity provider by the
//! OAuth2 client-credentials grant (RFC 6749 §4.4). Either way the token is
//! cached and renewed shortly before it expires.
//!
//! The grant is one form-encoded POST, so it is written here rather than
//! taken from the `oauth2` crate: that crate brings its own HTTP adapter and
//! `chrono`, and the part that needs care — one shared cache, one fetch in
//! flight, dropping a token a peer refused — would sit on top of it anyway.

use std::{
    fmt,
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use http_service::{
    auth::{mint_hs256, Claims, Role},
    config::{env_parsed, env_required, env_secret, AuthConfig, ConfigError},
};
use reqwest::{header, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::{sync::Mutex, time::Instant};
use uuid::Uuid;

/// How long a self-minted HS256 service token is valid.
pub const HS256_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// A token is renewed this long before it expires (or at 90 % of a shorter
/// lifetime), so that it does not expire between leaving here and being
/// checked by the peer.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(30);

/// Lifetime assumed for a token whose response omits `expires_in` (the field
/// is only RECOMMENDED). Short, since a peer's 401 is then the only other
/// sign that it has expired.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(60);

/// Timeout for one token request: callers wait for it before their own call
/// even starts.
const TOKEN_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Namespace of the service subjects: `sub` = UUID v5 of the service name in
/// it, so a service keeps its identity across restarts and replicas.
const SERVICE_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_7a3c_59d2_4f0e_9c41_2d8b_30a5_e917);

/// The stable subject of `service`'s HS256 tokens.
pub fn service_subject(service: &str) -> Uuid {
    Uuid::new_v5(&SERVICE_NAMESPACE, service.as_bytes())
}

/// A bearer token ready to send. Its `Debug` output hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Arc<str>);

impl AccessToken {
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

/// Settings of the client-credentials grant.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// `scope` form parameter, space-separated, when the provider wants one.
    pub scope: Option<String>,
    /// `audience` form parameter, which several providers require to pick
    /// the API the token is for.
    pub audience: Option<String>,
}

impl ClientCredentials {
    pub fn new(token_url: Url, client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self {
            token_url,
            client_id: client_id.into(),
            client_secret,
            scope: None,
            audience: None,
        }
    }

    /// Reads `HEYBLUE_OAUTH_TOKEN_URL`, `HEYBLUE_OAUTH_CLIENT_ID`,
    /// `HEYBLUE_OAUTH_CLIENT_SECRET` and the optional `HEYBLUE_OAUTH_SCOPE`
    /// and `HEYBLUE_OAUTH_AUDIENCE`; `None` when no token URL is set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(token_url) = env_parsed::<Url>("HEYBLUE_OAUTH_TOKEN_URL")? else {
            // A client id or secret without a token URL is a half-finished
            // configuration, not a request for HS256.
            for name in ["HEYBLUE_OAUTH_CLIENT_ID", "HEYBLUE_OAUTH_CLIENT_SECRET"] {
                if env_secret(name)?.is_some() {
                    return Err(ConfigError::Unusable {
                        name: "HEYBLUE_OAUTH_TOKEN_URL".to_owned(),
                        reason: format!("missing, but {name} is set"),
                    });
                }
            }
            return Ok(None);
        };
        if !matches!(token_url.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                name: "HEYBLUE_OAUTH_TOKEN_URL".to_owned(),
                value: token_url.to_string(),
                reason: "scheme must be http or https".to_owned(),
            });
        }
        let client_id = env_required::<String>("HEYBLUE_OAUTH_CLIENT_ID")?;
        let client_secret =
            env_secret("HEYBLUE_OAUTH_CLIENT_SECRET")?.ok_or_else(|| ConfigError::Missing {
                name: "HEYBLUE_OAUTH_CLIENT_SECRET".to_owned(),
            })?;
        Ok(Some(Self {
            token_url,
            client_id,
            client_secret,
            scope: env_parsed("HEYBLUE_OAUTH_SCOPE")?,
            audience: env_parsed("HEYBLUE_OAUTH_AUDIENCE")?,
        }))
    }
}

/// Why no token could be had. Callers see it as their peer being
/// unavailable; the detail is for the log.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token request to {url} failed")]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    #[error("identity provider refused the token request with {status}: {error} {description}")]
    Refused {
        status: reqwest::StatusCode,
        /// The RFC 6749 §5.2 `error` code, e.g. `invalid_client`.
        error: String,
        description: String,
    },
    #[error("identity provider answered an unreadable token response: {0}")]
    Malformed(String),
}

/// The shared source of a service's bearer tokens. Cheap to clone: every
/// clone shares the cached token, so all clients of one service fetch one
/// token between them.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Hs256 { service, .. } => f
                .debug_struct("TokenSource::Hs256")
                .field("service", service)
                .finish_non_exhaustive(),
            Kind::ClientCredentials { settings, .. } => f
                .debug_struct("TokenSource::ClientCredentials")
                .field("token_url", &settings.token_url.as_str())
                .field("client_id", &settings.client_id)
                .finish_non_exhaustive(),
        }
    }
}

struct Inner {
    kind: Kind,
    cached: RwLock<Option<Cached>>,
    /// Held while a token is obtained, so that callers arriving meanwhile
    /// wait for that one token instead of each fetching their own.
    renewing: Mutex<()>,
}

enum Kind {
    Hs256 {
        secret: SecretString,
        service: String,
        subject: Uuid,
    },
    ClientCredentials {
        settings: ClientCredentials,
        http: reqwest::Client,
    },
}

#[derive(Clone)]
struct Cached {
    token: AccessToken,
    renew_at: Instant,
}

impl TokenSource {
    /// Tokens minted with the fleet's HS256 secret, `role: service` and
    /// `sub` = [`service_subject`]`(service)`.
    pub fn hs256(secret: SecretString, service: impl Into<String>) -> Self {
        let service = service.into();
        Self::with_kind(Kind::Hs256 {
            secret,
            subject: service_subject(&service),
            service,
        })
    }

    /// Tokens from an identity provider by the client-credentials grant.
    pub fn client_credentials(settings: ClientCredentials) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(TOKEN_FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError::Unusable {
                name: "HEYBLUE_OAUTH_TOKEN_URL".to_owned(),
                reason: format!("cannot build an HTTP client: {err}"),
            })?;
        Ok(Self::with_kind(Kind::ClientCredentials { settings, http }))
    }

    /// The token source `service` uses in production: client credentials
    /// when `HEYBLUE_OAUTH_TOKEN_URL` is set, else HS256 with the secret the
    /// service verifies tokens with (`HEYBLUE_JWT_SECRET`, in `auth`).
    pub fn from_env(service: &str, auth: &AuthConfig) -> Result<Self, ConfigError> {
        if let Some(settings) = ClientCredentials::from_env()? {
            return Self::client_credentials(settings);
        }
        match &auth.jwt_secret {
            Some(secret) => Ok(Self::hs256(secret.clone(), service)),
            None => Err(ConfigError::Missing {
                name: "HEYBLUE_JWT_SECRET or HEYBLUE_OAUTH_TOKEN_URL".to_owned(),
            }),
        }
    }

    fn with_kind(kind: Kind) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                cached: RwLock::new(None),
                renewing: Mutex::new(()),
            }),
        }
    }

    /// A token valid for a while yet: the cached one, or a new one.
    pub async fn token(&self) -> Result<AccessToken, TokenError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _renewing = self.inner.renewing.lock().await;
        // Whoever held the lock before may have renewed it meanwhile.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let (token, lifetime) = match &self.inner.kind {
            Kind::Hs256 {
                secret,
                service,
                subject,
            } => {
                tracing::debug!(service, "minting a service token");
                let claims = Claims::new(*subject, Role::Service, HS256_TOKEN_TTL);
                let token = mint_hs256(secret.expose_secret(), &claims);
                (AccessToken(token.into()), HS256_TOKEN_TTL)
            }
            Kind::ClientCredentials { settings, http } => fetch(http, settings).await?,
        };
        let cached = Cached {
            token: token.clone(),
            renew_at: Instant::now() + lifetime - renew_margin(lifetime),
        };
        *self
            .inner
            .cached
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(cached);
        Ok(token)
    }

    /// Forgets `refused` after a peer answered 401 to it, and says whether
    /// asking again can help. A refused HS256 token would be minted again
    /// with the same secret, so only an identity provider's token is worth
    /// renewing. Another caller may already have replaced `refused`; that
    /// newer token is kept.
    pub fn invalidate(&self, refused: &AccessToken) -> bool {
        if matches!(self.inner.kind, Kind::Hs256 { .. }) {
            return false;
        }
        let mut cached = self
            .inner
            .cached
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cached.as_ref().is_some_and(|c| c.token == *refused) {
            *cached = None;
        }
        true
    }

    fn fresh(&self) -> Option<AccessToken> {
        self.inner
            .cached
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .as_ref()
            .filter(|cached| Instant::now() < cached.renew_at)
            .map(|cached| cached.token.clone())
    }
}

fn renew_margin(lifetime: Duration) -> Duration {
    RENEW_BEFORE_EXPIRY.min(lifetime / 10)
}

/// One client-credentials grant: the token and how long it lives.
async fn fetch(
    http: &reqwest::Client,
    settings: &ClientCredentials,
) -> Result<(AccessToken, Duration), TokenError> {
    #[derive(Deserialize)]
    struct TokenResponse {
        access_token: String,
        token_type: String,
        expires_in: Option<u64>,
    }
    #[derive(Deserialize)]
    struct ErrorResponse {
        error: String,
        #[serde(default)]
        error_description: String,
    }

    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = &settings.scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = &settings.audience {
        form.push(("audience", audience));
    }
    let url = settings.token_url.clone();
    tracing::debug!(%url, client_id = settings.client_id, "requesting a service token");
    let response = http
        .post(url.clone())
        .header(
            header::AUTHORIZATION,
            client_secret_basic(&settings.client_id, settings.client_secret.expose_secret()),
        )
        .header(header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|source| TokenError::Request {
            url: url.clone(),
            source,
        })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|source| TokenError::Request { url, source })?;
    if !status.is_success() {
        let (error, description) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(refusal) => (refusal.error, refusal.error_description),
            Err(_) => ("unknown".to_owned(), String::new()),
        };
        return Err(TokenError::Refused {
            status,
            error,
            description,
        });
    }
    let token: TokenResponse =
        serde_json::from_slice(&body).map_err(|err| TokenError::Malformed(err.to_string()))?;
    if !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Malformed(format!(
            "token_type {:?} is not Bearer",
            token.token_type
        )));
    }
    let lifetime = token
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(ASSUMED_LIFETIME);
    Ok((AccessToken(token.access_token.into()), lifetime))
}

/// `Authorization: Basic` for a client (RFC 6749 §2.3.1): id and secret are
/// form-urlencoded before they are joined and base64-encoded, which plain
/// HTTP basic auth does not do.
fn client_secret_basic(client_id: &str, client_secret: &str) -> String {
    let encode =
        |value: &str| form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_basic_form_encodes_before_base64() {
        // RFC 6749 §2.3.1: "a b" → "a+b", ":" → "%3A".
        assert_eq!(
            client_secret_basic("checkout", "a b:c"),
            format!("Basic {}", STANDARD.encode("checkout:a+b%3Ac"))
        );
    }

    #[test]
    fn a_service_keeps_its_subject_and_services_differ() {
        assert_eq!(service_subject("checkout"), service_subject("checkout"));
        assert_ne!(service_subject("checkout"), service_subject("order"));
        assert_eq!(service_subject("checkout").get_version_num(), 5);
    }

    #[test]
    fn short_lifetimes_are_renewed_at_ninety_percent() {
        assert_eq!(renew_margin(Duration::from_secs(3600)), RENEW_BEFORE_EXPIRY);
        assert_eq!(
            renew_margin(Duration::from_secs(2)),
            Duration::from_millis(200)
        );
    }

    #[tokio::test]
    async fn an_hs256_token_is_minted_once_and_reused() {
        let source = TokenSource::hs256(SecretString::from("s3cret"), "checkout");
        let first = source.token().await.unwrap();
        let second = source.token().await.unwrap();
        assert_eq!(first, second);
        assert!(!source.invalidate(&first));
    }
}
