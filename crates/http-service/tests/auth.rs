//! Black-box tests of bearer authentication: HS256 with the shared secret and
//! RS256 with keys from a local JWKS server speaking the real format.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

mod support;

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};

use axum::{extract::FromRef, routing::get, Router};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http_service::{mint_hs256, AuthConfig, AuthUser, Authenticator, Claims, Json, Problem, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use prometheus::Registry;
use reqwest::{header, StatusCode};
use rsa::{pkcs1::EncodeRsaPrivateKey, traits::PublicKeyParts, RsaPrivateKey};
use serde_json::{json, Value};
use uuid::Uuid;

const SECRET: &str = "local-stack-secret-for-tests";

#[derive(Clone, FromRef)]
struct AppState {
    auth: Authenticator,
}

async fn me(user: AuthUser) -> Json<Claims> {
    Json(user.claims)
}

async fn admin_only(user: AuthUser) -> Result<Json<Value>, Problem> {
    user.require_role(&[Role::Admin, Role::Service])?;
    Ok(Json(json!({"ok": true})))
}

async fn maybe_me(user: Option<AuthUser>) -> Json<Value> {
    Json(json!({"sub": user.map(|user| user.claims.sub)}))
}

async fn start(config: AuthConfig) -> support::TestServer {
    let state = AppState {
        auth: Authenticator::new(config).unwrap(),
    };
    let router = Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin_only))
        .route("/maybe-me", get(maybe_me))
        .with_state(state);
    support::start(router, Registry::new()).await
}

async fn get_with_token(
    server: &support::TestServer,
    path: &str,
    token: &str,
) -> reqwest::Response {
    support::client()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn assert_unauthorized(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");
}

fn civilian() -> Claims {
    Claims::new(Uuid::new_v4(), Role::Civilian, Duration::from_secs(300))
}

#[tokio::test]
async fn valid_hs256_token_is_accepted_and_its_claims_reach_the_handler() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let claims = Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(300))
        .with_email("shop@example.com")
        .with_business_id(Uuid::new_v4());
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &claims)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Claims = response.json().await.unwrap();
    assert_eq!(echoed, claims);
}

#[tokio::test]
async fn missing_authorization_header_answers_401_with_challenge() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let response = support::client()
        .get(server.url("/me"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;
}

#[tokio::test]
async fn token_signed_with_another_secret_answers_401() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let token = mint_hs256("some-other-secret", &civilian());
    assert_unauthorized(get_with_token(&server, "/me", &token).await).await;
}

#[tokio::test]
async fn expired_token_answers_401() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let mut claims = civilian();
    claims.exp -= 3600;
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &claims)).await;
    assert_unauthorized(response).await;
}

#[tokio::test]
async fn garbage_token_answers_401() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    assert_unauthorized(get_with_token(&server, "/me", "not.a.jwt").await).await;
    let response = support::client()
        .get(server.url("/me"))
        .header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;
}

#[tokio::test]
async fn token_with_an_unknown_role_answers_401() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": Uuid::new_v4(), "role": "superuser", "exp": civilian().exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_unauthorized(get_with_token(&server, "/me", &token).await).await;
}

#[tokio::test]
async fn caller_without_the_required_role_answers_403() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let response = get_with_token(&server, "/admin", &mint_hs256(SECRET, &civilian())).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "forbidden");

    let service = Claims::new(Uuid::new_v4(), Role::Service, Duration::from_secs(60));
    let response = get_with_token(&server, "/admin", &mint_hs256(SECRET, &service)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn optional_caller_is_none_without_a_header_and_401_with_a_bad_one() {
    let server = start(AuthConfig::hs256(SECRET)).await;
    let response = support::client()
        .get(server.url("/maybe-me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["sub"], Value::Null);

    assert_unauthorized(get_with_token(&server, "/maybe-me", "garbage").await).await;
}

#[tokio::test]
async fn configured_issuer_and_audience_are_required() {
    let config = AuthConfig {
        issuer: Some("https://id.heyblue.example".to_owned()),
        audience: Some("heyblue-shop".to_owned()),
        ..AuthConfig::hs256(SECRET)
    };
    let server = start(config).await;

    let good = civilian()
        .with_issuer("https://id.heyblue.example")
        .with_audience("heyblue-shop");
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &good)).await;
    assert_eq!(response.status(), StatusCode::OK);

    let without_audience = civilian().with_issuer("https://id.heyblue.example");
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &without_audience)).await;
    assert_unauthorized(response).await;

    let wrong_issuer = civilian()
        .with_issuer("https://evil.example")
        .with_audience("heyblue-shop");
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &wrong_issuer)).await;
    assert_unauthorized(response).await;
}

// --- RS256 through a JWKS ---------------------------------------------------

/// One RSA key for the whole test binary: generating 2048-bit keys is slow
/// in debug builds, and ring refuses smaller ones.
fn rsa_key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap())
}

fn sign_rs256(kid: &str, claims: &Claims) -> String {
    let pem = rsa_key().to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A stand-in identity provider: serves the key set and counts downloads.
struct FakeIdentityProvider {
    jwks_url: String,
    fetches: Arc<AtomicUsize>,
}

async fn identity_provider(kid: &str) -> FakeIdentityProvider {
    let public = rsa_key().to_public_key();
    let jwks = json!({
        "keys": [
            // An encryption key and an unsupported key type must not hide
            // the signing key.
            {"kty": "RSA", "kid": "enc-1", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "XYZ", "kid": "future-1"},
            {
                "kty": "RSA",
                "kid": kid,
                "use": "sig",
                "alg": "RS256",
                "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
            }
        ]
    });
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = Router::new().route(
        "/.well-known/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    FakeIdentityProvider {
        jwks_url: format!("http://{address}/.well-known/jwks.json"),
        fetches,
    }
}

#[tokio::test]
async fn rs256_token_verified_with_a_key_from_the_jwks_is_accepted() {
    let idp = identity_provider("key-2024").await;
    let server = start(AuthConfig::jwks(&idp.jwks_url)).await;
    let claims = civilian();
    let response = get_with_token(&server, "/me", &sign_rs256("key-2024", &claims)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed: Claims = response.json().await.unwrap();
    assert_eq!(echoed, claims);

    // The key is cached: a second token costs no second download.
    let response = get_with_token(&server, "/me", &sign_rs256("key-2024", &civilian())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rs256_token_with_a_tampered_signature_answers_401() {
    let idp = identity_provider("key-2024").await;
    let server = start(AuthConfig::jwks(&idp.jwks_url)).await;
    let token = sign_rs256("key-2024", &civilian());
    let (unsigned, signature) = token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[0] ^= 0x01;
    let tampered = format!("{unsigned}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_unauthorized(get_with_token(&server, "/me", &tampered).await).await;
}

#[tokio::test]
async fn expired_rs256_token_answers_401() {
    let idp = identity_provider("key-2024").await;
    let server = start(AuthConfig::jwks(&idp.jwks_url)).await;
    let mut claims = civilian();
    claims.exp -= 3600;
    assert_unauthorized(get_with_token(&server, "/me", &sign_rs256("key-2024", &claims)).await)
        .await;
}

#[tokio::test]
async fn unknown_key_id_refetches_the_jwks_at_most_once_per_interval() {
    let idp = identity_provider("key-2024").await;
    let server = start(AuthConfig::jwks(&idp.jwks_url)).await;

    for _ in 0..3 {
        let token = sign_rs256("rotated-away", &civilian());
        assert_unauthorized(get_with_token(&server, "/me", &token).await).await;
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // Known keys keep working from the cache meanwhile.
    let response = get_with_token(&server, "/me", &sign_rs256("key-2024", &civilian())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hs256_token_is_refused_when_only_a_jwks_is_configured() {
    let idp = identity_provider("key-2024").await;
    let server = start(AuthConfig::jwks(&idp.jwks_url)).await;
    let token = mint_hs256(SECRET, &civilian());
    assert_unauthorized(get_with_token(&server, "/me", &token).await).await;
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn secret_and_jwks_together_accept_both_algorithms() {
    let idp = identity_provider("key-2024").await;
    let config = AuthConfig {
        jwks_url: Some(idp.jwks_url.clone()),
        ..AuthConfig::hs256(SECRET)
    };
    let server = start(config).await;
    let response = get_with_token(&server, "/me", &mint_hs256(SECRET, &civilian())).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = get_with_token(&server, "/me", &sign_rs256("key-2024", &civilian())).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unreachable_jwks_answers_401_not_500() {
    // Bind and drop to get a port nothing listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let server = start(AuthConfig::jwks(format!("http://{address}/jwks.json"))).await;
    let token = sign_rs256("key-2024", &civilian());
    assert_unauthorized(get_with_token(&server, "/me", &token).await).await;
}
