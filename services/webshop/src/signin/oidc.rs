//! Sign-in through an OpenID Connect provider: the authorization code flow
//! with PKCE (S256), by the `openidconnect` crate.
//!
//! `GET /sign-in/oidc` sends the browser to the provider with a fresh
//! `state`, `nonce` and PKCE challenge. The `state` is kept twice: hashed in
//! a row with the nonce and verifier (so the callback may reach any replica)
//! and in an HttpOnly cookie (so only the browser that started a sign-in can
//! finish it). `GET /sign-in/oidc/callback` deletes that row as it reads it,
//! so a `state` works once; the provider spends the code on its first
//! exchange, so a replayed code is refused there too. The ID token's
//! signature, issuer, audience, expiry and nonce are checked by
//! `openidconnect`; the access token, which the webshop calls the services
//! with, is verified as the services verify it (`http_service`'s
//! [`Authenticator`] against the provider's JWKS), and its claims say who
//! the user is and in which role, as they do for every service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use http_service::{AuthConfig, Authenticator, Role};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use reqwest::Url;
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::OnceCell;

use super::{home, local_path, start_session};
use crate::pages::{PageError, PageQuery};
use crate::session::{cookie_value, same_secret, Identity, User};
use crate::settings::OidcSettings;
use crate::AppState;

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/sign-in/oidc/callback";
/// The cookie that ties a sign-in to the browser that started it.
const STATE_COOKIE: &str = "heyblue_oidc_state";
/// How long a sign-in may take at the provider.
const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The webshop as a client of one provider.
#[derive(Clone)]
pub struct OidcSignIn {
    settings: OidcSettings,
    redirect: RedirectUrl,
    http: reqwest::Client,
    /// The provider's discovery document and keys, fetched on the first
    /// sign-in, so the webshop starts while its provider is still coming up.
    provider: Arc<OnceCell<Provider>>,
}

struct Provider {
    metadata: CoreProviderMetadata,
    access_tokens: Authenticator,
}

impl OidcSignIn {
    pub fn new(settings: OidcSettings, public_base_url: &Url) -> anyhow::Result<Self> {
        let redirect = RedirectUrl::new(format!(
            "{}{CALLBACK_PATH}",
            public_base_url.as_str().trim_end_matches('/')
        ))
        .context("HEYBLUE_PUBLIC_BASE_URL does not make a redirect URI")?;
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer send the
            // webshop's requests anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("failed to build the HTTP client for the identity provider")?;
        Ok(OidcSignIn {
            settings,
            redirect,
            http,
            provider: Arc::new(OnceCell::new()),
        })
    }

    async fn provider(&self) -> Result<&Provider, PageError> {
        self.provider
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(
                    self.settings
                        .issuer
                        .as_str()
                        .trim_end_matches('/')
                        .to_owned(),
                )
                .context("the issuer is not a URL")?;
                let metadata = CoreProviderMetadata::discover_async(issuer.clone(), &self.http)
                    .await
                    .with_context(|| format!("discovery of {} failed", issuer.as_str()))?;
                let access_tokens = Authenticator::new(AuthConfig {
                    jwks_url: Some(metadata.jwks_uri().url().to_string()),
                    issuer: Some(issuer.as_str().to_owned()),
                    ..AuthConfig::default()
                })
                .context("the provider's JWKS URL is unusable")?;
                anyhow::Ok(Provider {
                    metadata,
                    access_tokens,
                })
            })
            .await
            .map_err(|error| {
                tracing::warn!(error = ?error, "the identity provider is unavailable");
                PageError::Unavailable(
                    "Signing in is not possible right now: the identity provider is not answering. Please try again in a moment."
                        .to_owned(),
                )
            })
    }

    fn client(&self, provider: &Provider) -> Client {
        CoreClient::from_provider_metadata(
            provider.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(self.redirect.clone())
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /sign-in/oidc`: on to the provider.
pub async fn start(
    State(state): State<AppState>,
    PageQuery(query): PageQuery<StartQuery>,
) -> Result<Response, PageError> {
    let Some(oidc) = &state.oidc else {
        return Err(PageError::NotFound);
    };
    let next = local_path(query.next.as_deref());
    let provider = oidc.provider().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = oidc
        .client(provider)
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    sqlx::query(
        "INSERT INTO oidc_logins (state_hash, nonce, pkce_verifier, next_path, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(csrf.secret()))
    .bind(nonce.secret())
    .bind(verifier.secret())
    .bind(&next)
    .bind(OffsetDateTime::now_utc() + LOGIN_TTL)
    .execute(state.sessions.pool())
    .await
    .context("failed to store a sign-in on its way")
    .map_err(PageError::internal)?;
    let cookie = state
        .sessions
        .cookie_with(STATE_COOKIE, csrf.secret(), LOGIN_TTL.as_secs());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// A sign-in on its way, as `start` stored it.
struct Pending {
    nonce: String,
    pkce_verifier: String,
    next: String,
}

/// `GET /sign-in/oidc/callback`: the provider sent the browser back.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(query): PageQuery<CallbackQuery>,
) -> Result<Response, PageError> {
    let Some(oidc) = &state.oidc else {
        return Err(PageError::NotFound);
    };
    let forget = state.sessions.cookie_with(STATE_COOKIE, "", 0);
    let refuse = |message: &str| {
        (
            [(header::SET_COOKIE, forget.clone())],
            PageError::Forbidden(message.to_owned()),
        )
            .into_response()
    };
    let sent = query.state.unwrap_or_default();
    let kept = cookie_value(&headers, STATE_COOKIE).unwrap_or_default();
    if sent.is_empty() || kept.is_empty() || !same_secret(&sent, kept) {
        return Ok(refuse(
            "This sign-in was not started in this browser, or it was finished already. Please sign in again.",
        ));
    }
    let Some(pending) = take_pending(state.sessions.pool(), &sent)
        .await
        .map_err(PageError::internal)?
    else {
        return Ok(refuse(
            "This sign-in was finished already or took too long. Please sign in again.",
        ));
    };
    if let Some(error) = query.error {
        tracing::info!(error, "the identity provider did not sign the user in");
        return Ok(refuse(
            "The identity provider did not sign you in. Please try again.",
        ));
    }
    let Some(code) = query.code.filter(|code| !code.is_empty()) else {
        return Ok(refuse(
            "The identity provider sent no sign-in code. Please try again.",
        ));
    };
    let provider = oidc.provider().await?;
    let client = oidc.client(provider);
    let exchanged: Result<CoreTokenResponse, _> =
        match client.exchange_code(AuthorizationCode::new(code)) {
            Ok(request) => {
                request
                    .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
                    .request_async(&oidc.http)
                    .await
            }
            Err(error) => {
                tracing::error!(error = %error, "the identity provider has no token endpoint");
                return Err(PageError::Unavailable(
                    "Signing in is not possible right now. Please try again later.".to_owned(),
                ));
            }
        };
    let tokens = match exchanged {
        Ok(tokens) => tokens,
        Err(error) => {
            // A code used before, expired, or not ours; or the provider failed.
            tracing::warn!(error = %error, "the identity provider refused the code");
            return Ok(refuse(
                "The identity provider did not accept this sign-in (it may have been used already). Please sign in again.",
            ));
        }
    };
    let identity = match identity(&client, provider, &tokens, &pending.nonce).await {
        Ok(identity) => identity,
        Err(why) => {
            tracing::warn!(why, "a sign-in's tokens were refused");
            return Ok(refuse(
                "This sign-in could not be verified. Please sign in again.",
            ));
        }
    };
    let next = match pending.next.as_str() {
        "/" => home(identity.user.role).to_owned(),
        path => path.to_owned(),
    };
    let mut response = start_session(&state, &identity, &next).await?;
    if let Ok(value) = forget.parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Who signed in, from tokens whose every check passed.
async fn identity(
    client: &Client,
    provider: &Provider,
    tokens: &CoreTokenResponse,
    nonce: &str,
) -> Result<Identity, &'static str> {
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let id_claims = id_token
        .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
        .map_err(|_| "the ID token does not verify")?;
    let access_token = tokens.access_token().secret();
    let claims = provider
        .access_tokens
        .verify(access_token)
        .await
        .map_err(|_| "the access token does not verify")?;
    if claims.sub.to_string() != id_claims.subject().as_str() {
        return Err("the tokens name different users");
    }
    if claims.role == Role::Service {
        return Err("a service's token signs nobody in");
    }
    Ok(Identity {
        user: User {
            id: claims.sub,
            role: claims.role,
            email: claims
                .email
                .or_else(|| id_claims.email().map(|email| email.as_str().to_owned())),
            business_id: claims.business_id,
        },
        method: "oidc",
        access_token: access_token.clone(),
    })
}

/// Reads and deletes the sign-in `state` names, if it has not expired.
async fn take_pending(pool: &PgPool, state: &str) -> anyhow::Result<Option<Pending>> {
    let row = sqlx::query(
        "DELETE FROM oidc_logins WHERE state_hash = $1
         RETURNING nonce, pkce_verifier, next_path, expires_at > now() AS live",
    )
    .bind(hash(state))
    .fetch_optional(pool)
    .await
    .context("failed to read a sign-in on its way")?;
    let Some(row) = row else {
        return Ok(None);
    };
    if !row.try_get::<bool, _>("live")? {
        return Ok(None);
    }
    Ok(Some(Pending {
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        next: row.try_get("next_path")?,
    }))
}

/// Deletes sign-ins that were never finished.
pub async fn prune(pool: &PgPool) -> anyhow::Result<u64> {
    let done = sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= now()")
        .execute(pool)
        .await
        .context("failed to prune unfinished sign-ins")?;
    Ok(done.rows_affected())
}

fn hash(state: &str) -> Vec<u8> {
    Sha256::digest(state.as_bytes()).to_vec()
}
