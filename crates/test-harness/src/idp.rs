//! A local OpenID Connect identity provider for tests, speaking the real wire
//! format on 127.0.0.1: discovery, a JWKS, the client-credentials grant for
//! services and the authorization-code grant with PKCE (S256) for people.
//!
//! There is no login page: the test decides who is signed in
//! ([`IdentityProvider::sign_in_as`]) and `GET /authorize` sends the browser
//! straight back with a code. Tokens are RS256, signed with a fixed key that
//! is embedded for tests only (generating a 2048-bit key in a debug build
//! takes seconds).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Json, Router,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine as _,
};
use http_service::{
    auth::{Claims, Role},
    AuthConfig,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// TEST KEY ONLY. A 2048-bit RSA key generated once with `openssl genrsa`
/// for this test provider; it is public in the repository and must never
/// sign anything outside tests.
const TEST_ONLY_PRIVATE_KEY_PEM: &str = include_str!("../keys/idp-test-only-rsa.pem");
/// The public half of the test key as JWK members (base64url, big-endian).
const TEST_ONLY_KEY_MODULUS: &str = "rP_0_vs3OGFjAePy5wbX6eB5ZzH_aHgyl83We0WWfabGCAXLaPVt3IXLUQ77zwUEIDQDa5coGCwlIv4PpE54sGusNSjIMog57du_Xte11OUjmVnm9XMsozxt1XGOppf9Q2bT9U2df139AOpbWeSIWzu3c73y2Uem4Ua-n4KjnXZ_psipsV4_bxe-Fj4uvUaTdjZNOdDpfbIjj6Gj00rSbQvwn3g4KXOd6GBRXXfT8BSPgdToV6-G5pwQRi1Hz8JR3mU2aWcM_F0B03KE4Zy6RAXbDGrzzTRrUgX8oShBArpQrESA_D-IOcAouNkIYH-sZXHv_0PfolF7Wi-uaRD_6w";
const TEST_ONLY_KEY_EXPONENT: &str = "AQAB";
const KEY_ID: &str = "heyblue-test-idp-2048";

/// Token lifetime until a test sets another.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// How long an authorization code may wait for its exchange (RFC 6749
/// §4.1.2 recommends at most ten minutes).
const CODE_TTL: Duration = Duration::from_secs(60);

/// A person who can sign in at the provider; their claims go into the
/// access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUser {
    pub sub: Uuid,
    pub role: Role,
    pub email: Option<String>,
    pub business_id: Option<Uuid>,
}

impl IdpUser {
    /// A new user (random `sub`) in `role`.
    pub fn new(role: Role) -> Self {
        Self {
            sub: Uuid::new_v4(),
            role,
            email: None,
            business_id: None,
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
}

/// The running provider. Dropping it stops the server.
pub struct IdentityProvider {
    issuer: String,
    state: Arc<ProviderState>,
    shutdown: CancellationToken,
}

struct ProviderState {
    issuer: String,
    key: EncodingKey,
    settings: Mutex<Settings>,
    token_requests: AtomicUsize,
    tokens_issued: AtomicUsize,
}

struct Settings {
    clients: HashMap<String, Client>,
    signed_in: Option<IdpUser>,
    ttl: Duration,
    audience: Option<String>,
    codes: HashMap<String, PendingCode>,
}

struct Client {
    secret: String,
    /// `sub` of the client's own (client-credentials) tokens.
    sub: Uuid,
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    user: IdpUser,
    expires_at: Instant,
}

impl IdentityProvider {
    /// Serves a new provider on a free port of 127.0.0.1.
    ///
    /// # Panics
    /// When the port cannot be bound or the embedded key does not parse.
    pub async fn start() -> Self {
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(error) => panic!("identity provider cannot bind a port: {error}"),
        };
        let issuer = match listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(error) => panic!("identity provider has no local address: {error}"),
        };
        let key = match EncodingKey::from_rsa_pem(TEST_ONLY_PRIVATE_KEY_PEM.as_bytes()) {
            Ok(key) => key,
            Err(error) => panic!("the embedded test key does not parse: {error}"),
        };
        let state = Arc::new(ProviderState {
            issuer: issuer.clone(),
            key,
            settings: Mutex::new(Settings {
                clients: HashMap::new(),
                signed_in: None,
                ttl: DEFAULT_TOKEN_TTL,
                audience: None,
                codes: HashMap::new(),
            }),
            token_requests: AtomicUsize::new(0),
            tokens_issued: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Self {
            issuer,
            state,
            shutdown,
        }
    }

    /// The `iss` of its tokens, which is also its base URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.issuer)
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// How a service verifies this provider's tokens: its JWKS and issuer
    /// (and audience, when one is set).
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            issuer: Some(self.issuer.clone()),
            audience: self.settings().audience.clone(),
            ..AuthConfig::jwks(self.jwks_url())
        }
    }

    /// Registers a confidential client and returns the `sub` of its
    /// client-credentials tokens.
    pub fn register_client(&self, client_id: &str, client_secret: &str) -> Uuid {
        let sub = Uuid::new_v4();
        self.settings().clients.insert(
            client_id.to_owned(),
            Client {
                secret: client_secret.to_owned(),
                sub,
            },
        );
        sub
    }

    /// Makes `user` the one signed in: `GET /authorize` issues codes for them.
    pub fn sign_in_as(&self, user: IdpUser) {
        self.settings().signed_in = Some(user);
    }

    /// Nobody is signed in: `GET /authorize` answers `login_required`.
    pub fn sign_out(&self) {
        self.settings().signed_in = None;
    }

    /// Lifetime of tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.settings().ttl = ttl;
    }

    /// `aud` of access tokens issued from now on.
    pub fn set_audience(&self, audience: impl Into<String>) {
        self.settings().audience = Some(audience.into());
    }

    /// `POST /token` requests received, refused ones included.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Access tokens issued.
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.state.settings()
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl ProviderState {
    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Signs `claims`, adding a unique `jti` and `iat`: RS256 signatures are
    /// deterministic, and two tokens issued within one second must still
    /// differ (a peer may have revoked the first).
    fn sign(&self, claims: &impl serde::Serialize) -> Result<String, OAuthError> {
        let mut claims = serde_json::to_value(claims)
            .map_err(|err| OAuthError::server(format!("claims do not serialise: {err}")))?;
        if let Value::Object(members) = &mut claims {
            members.insert("jti".to_owned(), json!(Uuid::new_v4()));
            members.entry("iat").or_insert_with(|| json!(unix_now()));
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KEY_ID.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|err| OAuthError::server(format!("signing failed: {err}")))
    }
}

async fn discovery(State(state): State<Arc<ProviderState>>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "email"],
    }))
}

async fn jwks() -> Json<Value> {
    Json(json!({
        "keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": KEY_ID,
            "n": TEST_ONLY_KEY_MODULUS,
            "e": TEST_ONLY_KEY_EXPONENT,
        }]
    }))
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

/// `GET /authorize`: redirects back to the client with a code for the
/// signed-in user, or with an error (RFC 6749 §4.1.2). A request whose client
/// or redirect URI is unusable is answered here instead: redirecting it
/// would send the browser somewhere nobody vouched for (§4.1.2.1).
async fn authorize(
    State(state): State<Arc<ProviderState>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    let mut settings = state.settings();
    let Some(client_id) = params
        .client_id
        .filter(|id| settings.clients.contains_key(id))
    else {
        return OAuthError::bad_request("invalid_request", "unknown client_id").into_response();
    };
    let Some((redirect_uri, mut back)) = params.redirect_uri.and_then(|uri| {
        Url::parse(&uri)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .map(|url| (uri, url))
    }) else {
        return OAuthError::bad_request("invalid_request", "redirect_uri is missing or invalid")
            .into_response();
    };

    let outcome = if params.response_type.as_deref() != Some("code") {
        Err(("unsupported_response_type", "only `code` is supported"))
    } else if params.code_challenge_method.as_deref() != Some("S256") {
        Err(("invalid_request", "code_challenge_method must be S256"))
    } else if let Some(challenge) = params.code_challenge.filter(|c| c.len() == 43) {
        match settings.signed_in.clone() {
            Some(user) => {
                let code = Uuid::new_v4().simple().to_string();
                settings.codes.insert(
                    code.clone(),
                    PendingCode {
                        client_id,
                        redirect_uri,
                        code_challenge: challenge,
                        nonce: params.nonce,
                        user,
                        expires_at: Instant::now() + CODE_TTL,
                    },
                );
                Ok(code)
            }
            None => Err(("login_required", "nobody is signed in")),
        }
    } else {
        Err((
            "invalid_request",
            "code_challenge must be a base64url SHA-256",
        ))
    };

    {
        let mut query = back.query_pairs_mut();
        match &outcome {
            Ok(code) => query.append_pair("code", code),
            Err((error, description)) => query
                .append_pair("error", error)
                .append_pair("error_description", description),
        };
        if let Some(client_state) = &params.state {
            query.append_pair("state", client_state);
        }
    }
    Redirect::to(back.as_str()).into_response()
}

/// `POST /token`: the client-credentials and authorization-code grants.
async fn token(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, OAuthError> {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let client_id = authenticate_client(&state, &headers, &form)?;
    let body = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => client_credentials_grant(&state, &client_id)?,
        Some("authorization_code") => authorization_code_grant(&state, &client_id, &form)?,
        Some(_) => {
            return Err(OAuthError::bad_request(
                "unsupported_grant_type",
                "use client_credentials or authorization_code",
            ))
        }
        None => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "grant_type is missing",
            ))
        }
    };
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    // Token responses must not be cached (RFC 6749 §5.1).
    Ok((
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        Json(body),
    )
        .into_response())
}

/// The client's id after checking its secret, from `Authorization: Basic`
/// (form-urlencoded id and secret, RFC 6749 §2.3.1) or from the form.
fn authenticate_client(
    state: &ProviderState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let (client_id, secret) = match headers.get(header::AUTHORIZATION) {
        Some(value) => basic_credentials(value).ok_or_else(OAuthError::invalid_client)?,
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return Err(OAuthError::invalid_client()),
        },
    };
    let settings = state.settings();
    match settings.clients.get(&client_id) {
        Some(client) if client.secret == secret => Ok(client_id),
        _ => Err(OAuthError::invalid_client()),
    }
}

fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let encoded = value.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id), form_decode(secret)))
}

/// Decodes one form-urlencoded component (`+` is a space).
fn form_decode(component: &str) -> String {
    form_urlencoded::parse(format!("v={component}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn client_credentials_grant(state: &ProviderState, client_id: &str) -> Result<Value, OAuthError> {
    let (sub, ttl, audience) = {
        let settings = state.settings();
        let sub = settings
            .clients
            .get(client_id)
            .map(|client| client.sub)
            .ok_or_else(OAuthError::invalid_client)?;
        (sub, settings.ttl, settings.audience.clone())
    };
    let mut claims = Claims::new(sub, Role::Service, ttl).with_issuer(&state.issuer);
    if let Some(audience) = audience {
        claims = claims.with_audience(audience);
    }
    Ok(json!({
        "access_token": state.sign(&claims)?,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
    }))
}

fn authorization_code_grant(
    state: &ProviderState,
    client_id: &str,
    form: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let invalid_grant = |why: &str| OAuthError::bad_request("invalid_grant", why);
    let (Some(code), Some(verifier)) = (form.get("code"), form.get("code_verifier")) else {
        return Err(OAuthError::bad_request(
            "invalid_request",
            "code and code_verifier are required",
        ));
    };
    let (pending, ttl, audience) = {
        let mut settings = state.settings();
        // A code is spent by its first exchange, good or bad (RFC 6749 §4.1.2).
        let pending = settings
            .codes
            .remove(code)
            .ok_or_else(|| invalid_grant("unknown or used code"))?;
        (pending, settings.ttl, settings.audience.clone())
    };
    if pending.expires_at < Instant::now() {
        return Err(invalid_grant("the code has expired"));
    }
    if pending.client_id != client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    if form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return Err(invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    // RFC 7636 §4.1: 43 to 128 characters; §4.6: S256 comparison.
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !(43..=128).contains(&verifier.len()) || challenge != pending.code_challenge {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }

    let user = pending.user;
    let mut claims = Claims::new(user.sub, user.role, ttl).with_issuer(&state.issuer);
    if let Some(email) = &user.email {
        claims = claims.with_email(email);
    }
    if let Some(business_id) = user.business_id {
        claims = claims.with_business_id(business_id);
    }
    if let Some(audience) = audience {
        claims = claims.with_audience(audience);
    }
    let mut id_token = json!({
        "iss": state.issuer,
        "sub": user.sub,
        "aud": client_id,
        "exp": claims.exp,
    });
    if let Some(email) = &user.email {
        id_token["email"] = json!(email);
    }
    if let Some(nonce) = pending.nonce {
        id_token["nonce"] = json!(nonce);
    }
    Ok(json!({
        "access_token": state.sign(&claims)?,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "id_token": state.sign(&id_token)?,
    }))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }

    fn invalid_client() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication failed".to_owned(),
        }
    }

    fn server(description: String) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.error, "error_description": self.description}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"heyblue-test-idp\""),
            );
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
