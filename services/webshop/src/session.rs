//! Sign-in sessions: the browser holds only a random id in an HttpOnly,
//! SameSite=Lax cookie; the row it names (by the id's SHA-256) holds who
//! signed in and the token the webshop calls the services with.
//!
//! Forms are protected by a synchronizer token: every session has a random
//! CSRF token that each form repeats in a hidden field, and [`CsrfForm`]
//! refuses a POST whose token does not match its session's. Before sign-in
//! there is no session, so the sign-in form uses a double-submit cookie
//! instead (see [`crate::signin`]).

use std::time::Duration;

use anyhow::Context;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_service::Role;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::pages::PageError;

/// The session cookie's name.
pub const COOKIE: &str = "heyblue_session";

/// Who is signed in.
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub role: Role,
    pub email: Option<String>,
    pub business_id: Option<Uuid>,
}

/// What a sign-in method hands over to start a session.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    /// `demo`, or later the identity provider's name.
    pub method: &'static str,
    /// The bearer token the webshop calls the services with for this user.
    pub access_token: String,
}

/// A signed-in browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    id_hash: Vec<u8>,
    pub user: User,
    pub access_token: String,
    pub csrf_token: String,
    pub pending_checkout: Option<Uuid>,
}

impl Session {
    /// The token for calls to the services as this user.
    pub fn token(&self) -> &str {
        &self.access_token
    }
}

/// The session table and the cookie's attributes.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    ttl: Duration,
    secure: bool,
}

impl Sessions {
    pub fn new(pool: PgPool, ttl: Duration, secure: bool) -> Self {
        Sessions { pool, ttl, secure }
    }

    /// The webshop's database, for the sign-in methods' own rows.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores a new session for `identity`; the cookie that names it.
    #[tracing::instrument(skip_all, fields(user_id = %identity.user.id, method = identity.method))]
    pub async fn start(&self, identity: &Identity) -> anyhow::Result<String> {
        let id = random_token();
        let expires_at = OffsetDateTime::now_utc() + self.ttl;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, role, email, business_id, sign_in_method,
                                   access_token, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(hash(&id))
        .bind(identity.user.id)
        .bind(identity.user.role.as_str())
        .bind(&identity.user.email)
        .bind(identity.user.business_id)
        .bind(identity.method)
        .bind(&identity.access_token)
        .bind(random_token())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .context("failed to store a new session")?;
        Ok(self.cookie(&id))
    }

    /// The live session the request's cookie names, if any.
    pub async fn find(&self, headers: &HeaderMap) -> anyhow::Result<Option<Session>> {
        let Some(id) = cookie_value(headers, COOKIE) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT id_hash, user_id, role, email, business_id, access_token, csrf_token,
                    pending_checkout_id
               FROM sessions
              WHERE id_hash = $1 AND expires_at > now()",
        )
        .bind(hash(id))
        .fetch_optional(&self.pool)
        .await
        .context("failed to read a session")?;
        let Some(row) = row else {
            return Ok(None);
        };
        let role: String = row.try_get("role")?;
        let Ok(role) = serde_json::from_value::<Role>(serde_json::Value::String(role.clone()))
        else {
            tracing::warn!(
                role,
                "a session names an unknown role; treated as signed out"
            );
            return Ok(None);
        };
        Ok(Some(Session {
            id_hash: row.try_get("id_hash")?,
            user: User {
                id: row.try_get("user_id")?,
                role,
                email: row.try_get("email")?,
                business_id: row.try_get("business_id")?,
            },
            access_token: row.try_get("access_token")?,
            csrf_token: row.try_get("csrf_token")?,
            pending_checkout: row.try_get("pending_checkout_id")?,
        }))
    }

    /// Ends `session` on the server: its cookie names nothing any more.
    pub async fn end(&self, session: &Session) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&session.id_hash)
            .execute(&self.pool)
            .await
            .context("failed to delete a session")?;
        Ok(())
    }

    /// Remembers (or forgets) the checkout waiting at the payment provider.
    pub async fn set_pending_checkout(
        &self,
        session: &Session,
        checkout: Option<Uuid>,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE sessions SET pending_checkout_id = $2 WHERE id_hash = $1")
            .bind(&session.id_hash)
            .bind(checkout)
            .execute(&self.pool)
            .await
            .context("failed to remember the pending checkout")?;
        Ok(())
    }

    /// Deletes expired sessions; how many.
    pub async fn prune(pool: &PgPool) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= now()")
            .execute(pool)
            .await
            .context("failed to prune expired sessions")?;
        Ok(done.rows_affected())
    }

    /// `Set-Cookie` for a session id.
    fn cookie(&self, id: &str) -> String {
        self.cookie_with(COOKIE, id, self.ttl.as_secs())
    }

    /// `Set-Cookie` that makes the browser forget its session cookie.
    pub fn clear_cookie(&self) -> String {
        self.cookie_with(COOKIE, "", 0)
    }

    /// A cookie with the attributes every cookie of the webshop has:
    /// unreadable to scripts, not sent on cross-site POSTs, `Secure` over TLS.
    pub fn cookie_with(&self, name: &str, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }
}

/// 256 random bits, URL-safe base64.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::rng().random::<[u8; 32]>())
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// Whether two secrets are equal, in time that does not depend on where
/// they first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The request's session, if it has one.
pub struct MaybeSession(pub Option<Session>);

impl<S> FromRequestParts<S> for MaybeSession
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let sessions = Sessions::from_ref(state);
        let session = sessions
            .find(&parts.headers)
            .await
            .map_err(PageError::internal)?;
        Ok(MaybeSession(session))
    }
}

/// A signed-in request; without a session a page asks to sign in first.
pub struct SignedIn(pub Session);

impl<S> FromRequestParts<S> for SignedIn
where
    Sessions: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let MaybeSession(session) = MaybeSession::from_request_parts(parts, state).await?;
        match session {
            Some(session) => Ok(SignedIn(session)),
            None => Err(PageError::SignInRequired {
                next: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            }),
        }
    }
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

/// A form POSTed by a signed-in session, carrying that session's CSRF
/// token; anything else is refused with a 403 page.
pub struct CsrfForm<T> {
    pub session: Session,
    pub form: T,
}

impl<S, T> FromRequest<S> for CsrfForm<T>
where
    Sessions: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let MaybeSession(session) = MaybeSession::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| PageError::BadForm)?;
        let Some(session) = session else {
            return Err(PageError::Forbidden(
                "Your session has ended. Please sign in again and repeat what you were doing."
                    .to_owned(),
            ));
        };
        let sent = serde_urlencoded::from_bytes::<CsrfField>(&bytes)
            .ok()
            .and_then(|field| field.csrf)
            .unwrap_or_default();
        if !same_secret(&sent, &session.csrf_token) {
            return Err(PageError::Forbidden(
                "This form was not sent from a page of this shop, or it is too old. Please go back, reload the page and try again."
                    .to_owned(),
            ));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::BadForm)?;
        Ok(CsrfForm { session, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "a=1; heyblue_session=abc; b=2".parse().expect("header"),
        );
        assert_eq!(cookie_value(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers, "c"), None);
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn random_tokens_hold_256_bits() {
        let token = random_token();
        assert_eq!(URL_SAFE_NO_PAD.decode(&token).expect("base64").len(), 32);
        assert_ne!(token, random_token());
    }
}
