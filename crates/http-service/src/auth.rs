//! Bearer-token authentication: the claims every service reads, the
//! [`Authenticator`] that verifies tokens (HS256 shared secret and/or keys
//! from a JWKS URL), and the [`AuthUser`] extractor handlers take.
//!
//! Handlers never see a token: they get verified [`Claims`] or the request is
//! answered 401 before the handler runs.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, RwLock},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{FromRef, FromRequestParts, OptionalFromRequestParts},
    http::{header, request::Parts, HeaderMap, HeaderValue},
};
use jsonwebtoken::{
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, PublicKeyUse},
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::{sync::Mutex, time::Instant};
use uuid::Uuid;

use crate::{
    config::{AuthConfig, ConfigError},
    problem::Problem,
};

/// How often an unknown `kid` may trigger a JWKS download. Identity providers
/// rotate keys rarely, while anyone can send tokens with made-up key ids; the
/// interval bounds the load such tokens put on the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Tolerated clock difference between the token issuer and this host.
const CLOCK_LEEWAY_SECS: u64 = 30;

/// Timeout for one JWKS download; a slow identity provider must not hold
/// requests for long.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the caller is, as the `role` claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Civilian,
    Charity,
    Officer,
    Business,
    Admin,
    /// Another service of the fleet, calling with a client-credentials token.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Civilian => "civilian",
            Role::Charity => "charity",
            Role::Officer => "officer",
            Role::Business => "business",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verified claims of a bearer token (DESIGN §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The business a `business` caller acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_id: Option<Uuid>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Identity providers send `aud` as a string or an array; both parse.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "one_or_many"
    )]
    pub aud: Vec<String>,
}

impl Claims {
    /// Claims for `sub` acting as `role`, expiring `ttl` from now.
    pub fn new(sub: Uuid, role: Role, ttl: Duration) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let exp = now.saturating_add(ttl).as_secs();
        Self {
            sub,
            role,
            email: None,
            business_id: None,
            exp: i64::try_from(exp).unwrap_or(i64::MAX),
            iss: None,
            aud: Vec::new(),
        }
    }

    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    pub fn with_business_id(mut self, business_id: Uuid) -> Self {
        self.business_id = Some(business_id);
        self
    }

    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.iss = Some(issuer.into());
        self
    }

    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.aud.push(audience.into());
        self
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

/// Signs `claims` with HS256, as the local stack's demo tokens and tests do.
pub fn mint_hs256(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    // HMAC accepts keys of any length and `Claims` always serialises, so
    // signing has no failure path to report.
    .expect("HS256 signing of Claims cannot fail")
}

/// Why a token was refused. Every variant answers 401; the distinction is
/// for logs and tests.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    MissingToken,
    #[error("Authorization header is not `Bearer <token>`")]
    NotBearer,
    #[error("token has expired")]
    Expired,
    #[error("token is invalid: {0}")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    #[error("token algorithm {0:?} is not accepted by this service")]
    AlgorithmNotAccepted(Algorithm),
    #[error("no key matches the token's key id {0:?}")]
    UnknownKey(Option<String>),
    #[error("failed to fetch the JWKS")]
    JwksFetch(#[source] reqwest::Error),
}

impl From<jsonwebtoken::errors::Error> for AuthError {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(err),
        }
    }
}

impl From<AuthError> for Problem {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::MissingToken => Problem::unauthorized("A bearer token is required."),
            AuthError::Expired => invalid_token("The bearer token has expired."),
            AuthError::JwksFetch(source) => {
                // The caller may be fine and the identity provider down; say
                // so in the log, where an operator will look.
                tracing::warn!(error = %source, "could not fetch signing keys");
                invalid_token("The bearer token could not be verified.")
            }
            other => {
                tracing::debug!(reason = %other, "bearer token refused");
                invalid_token("The bearer token is invalid.")
            }
        }
    }
}

/// 401 whose challenge says the token, not its absence, was the problem
/// (RFC 6750 §3.1).
fn invalid_token(detail: &str) -> Problem {
    Problem::unauthorized(detail).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    )
}

/// Verifies bearer tokens. Cheap to clone: the keys and the JWKS cache are
/// shared, so every clone benefits from one download.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksCache>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("hs256", &self.inner.hs256.is_some())
            .field(
                "jwks_url",
                &self.inner.jwks.as_ref().map(|j| j.url.as_str()),
            )
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish()
    }
}

impl Authenticator {
    /// Builds the verifier. Keys from a JWKS URL are fetched lazily, on the
    /// first token that needs them, so a service can start while its identity
    /// provider is still coming up.
    pub fn new(config: AuthConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let hs256 = config
            .jwt_secret
            .as_ref()
            .map(|secret| DecodingKey::from_secret(secret.expose_secret().as_bytes()));
        let jwks = match &config.jwks_url {
            Some(url) => Some(JwksCache::new(url)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                hs256,
                jwks,
                issuer: config.issuer,
                audience: config.audience,
            }),
        })
    }

    /// Verifies a compact JWT and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let key = match header.alg {
            // Only the shared secret may verify HMAC tokens: a JWKS could
            // publish an `oct` key, and accepting it would let anyone who can
            // read the key set mint tokens.
            Algorithm::HS256 => match &self.inner.hs256 {
                Some(key) => key.clone(),
                None => return Err(AuthError::AlgorithmNotAccepted(header.alg)),
            },
            Algorithm::HS384 | Algorithm::HS512 => {
                return Err(AuthError::AlgorithmNotAccepted(header.alg))
            }
            asymmetric => match &self.inner.jwks {
                Some(jwks) => jwks.key_for(header.kid.as_deref(), asymmetric).await?,
                None => return Err(AuthError::AlgorithmNotAccepted(asymmetric)),
            },
        };

        let mut validation = Validation::new(header.alg);
        validation.leeway = CLOCK_LEEWAY_SECS;
        // A configured issuer or audience must also be present in the token,
        // not merely correct when present.
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.inner.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.inner.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            // Without a configured audience a token's `aud` is not checked;
            // the library would otherwise refuse any token that carries one.
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);

        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)?;
        Ok(data.claims)
    }

    /// Verifies the `Authorization` header of a request.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, AuthError> {
        let token = bearer_token(headers)?.ok_or(AuthError::MissingToken)?;
        self.verify(token).await
    }
}

/// The token from `Authorization: Bearer <token>`, `None` without the header.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::NotBearer);
    }
    Ok(Some(token.trim()))
}

/// Signing keys from a JWKS URL, cached by `kid`.
struct JwksCache {
    url: reqwest::Url,
    client: reqwest::Client,
    keys: RwLock<HashMap<String, JwksKey>>,
    /// When keys were last downloaded. Held across the download so that a
    /// burst of tokens with a new `kid` causes one request, not one each.
    last_fetch: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct JwksKey {
    key: DecodingKey,
    /// The `alg` the key set pins the key to, if any.
    alg: Option<Algorithm>,
}

impl JwksCache {
    fn new(url: &str) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(url).map_err(|err| ConfigError::Invalid {
            name: "HEYBLUE_JWKS_URL".to_owned(),
            value: url.to_owned(),
            reason: err.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(JWKS_FETCH_TIMEOUT)
            .build()
            .map_err(|err| ConfigError::Unusable {
                name: "HEYBLUE_JWKS_URL".to_owned(),
                reason: format!("cannot build an HTTP client: {err}"),
            })?;
        Ok(Self {
            url,
            client,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        })
    }

    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        let key = match self.cached(kid) {
            Some(key) => key,
            None => {
                let mut last_fetch = self.last_fetch.lock().await;
                // Another request may have refreshed the keys while this one
                // waited for the lock.
                match self.cached(kid) {
                    Some(key) => key,
                    None => {
                        if last_fetch.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
                            return Err(AuthError::UnknownKey(kid.map(str::to_owned)));
                        }
                        *last_fetch = Some(Instant::now());
                        self.fetch().await?;
                        self.cached(kid)
                            .ok_or_else(|| AuthError::UnknownKey(kid.map(str::to_owned)))?
                    }
                }
            }
        };
        if key.alg.is_some_and(|pinned| pinned != alg) {
            return Err(AuthError::AlgorithmNotAccepted(alg));
        }
        Ok(key.key)
    }

    /// The key named `kid`; a token without `kid` may use the only key of a
    /// single-key set, which is how small providers publish theirs.
    fn cached(&self, kid: Option<&str>) -> Option<JwksKey> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    async fn fetch(&self) -> Result<(), AuthError> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let set: RawSet = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(AuthError::JwksFetch)?
            .json()
            .await
            .map_err(AuthError::JwksFetch)?;

        // Keys are parsed one by one so that a key type this library does not
        // know (or an encryption key) does not hide the signing keys.
        let mut keys = HashMap::new();
        for raw in set.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
                continue;
            };
            if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature)
                || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|alg| alg.to_string().parse::<Algorithm>().ok());
            let kid = jwk.common.key_id.clone().unwrap_or_default();
            keys.insert(kid, JwksKey { key, alg });
        }
        tracing::info!(url = %self.url, keys = keys.len(), "fetched signing keys");
        *self
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        Ok(())
    }
}

/// The authenticated caller. Extracting it answers 401 for a missing,
/// malformed, expired or unverifiable token.
///
/// The router state must provide the [`Authenticator`] through
/// `FromRef<S>` (derive `axum::extract::FromRef` on the state struct).
/// `Option<AuthUser>` is also an extractor: `None` without an
/// `Authorization` header, 401 with a bad one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub claims: Claims,
}

impl AuthUser {
    pub fn id(&self) -> Uuid {
        self.claims.sub
    }

    pub fn role(&self) -> Role {
        self.claims.role
    }

    pub fn has_role(&self, roles: &[Role]) -> bool {
        roles.contains(&self.claims.role)
    }

    /// 403 `forbidden` unless the caller has one of `roles`.
    pub fn require_role(&self, roles: &[Role]) -> Result<(), Problem> {
        if self.has_role(roles) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "This action is not allowed for the caller's role.",
            ))
        }
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Several extractors of one request (a guard and the handler) share
        // one verification.
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let claims = Authenticator::from_ref(state)
            .authenticate(&parts.headers)
            .await?;
        tracing::Span::current().record("user_id", tracing::field::display(claims.sub));
        let user = AuthUser { claims };
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

impl<S> OptionalFromRequestParts<S> for AuthUser
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn roles_use_snake_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&Role::Service).unwrap(),
            "\"service\""
        );
        assert_eq!(
            serde_json::from_str::<Role>("\"civilian\"").unwrap(),
            Role::Civilian
        );
    }

    #[test]
    fn audience_parses_from_a_string_or_an_array() {
        let sub = Uuid::nil();
        let one: Claims = serde_json::from_value(serde_json::json!({
            "sub": sub, "role": "admin", "exp": 1, "aud": "shop"
        }))
        .unwrap();
        assert_eq!(one.aud, vec!["shop"]);
        let many: Claims = serde_json::from_value(serde_json::json!({
            "sub": sub, "role": "admin", "exp": 1, "aud": ["a", "b"]
        }))
        .unwrap();
        assert_eq!(many.aud, vec!["a", "b"]);
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers).unwrap(), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(bearer_token(&headers), Err(AuthError::NotBearer)));
    }
}
