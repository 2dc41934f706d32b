//! The local identity provider as a client and a service see it: discovery,
//! both grants on the wire, and tokens the fleet's `Authenticator` accepts.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use std::time::Duration;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use http_service::{auth::Role, AuthConfig, Authenticator};
use reqwest::{header, redirect, StatusCode, Url};
use serde_json::Value;
use sha2::{Digest, Sha256};
use test_harness::{IdentityProvider, IdpUser};
use uuid::Uuid;

const CLIENT_ID: &str = "checkout";
const CLIENT_SECRET: &str = "checkout secret:with+odd chars";

fn http() -> reqwest::Client {
    // The redirect of `/authorize` is what the tests look at, not its target.
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

async fn client_credentials(idp: &IdentityProvider, secret: &str) -> reqwest::Response {
    http()
        .post(idp.token_url())
        .basic_auth(
            form_encode(CLIENT_ID),
            Some(form_encode(secret)), // RFC 6749 §2.3.1
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A PKCE verifier (43 characters) and its S256 challenge.
fn pkce_pair() -> (String, String) {
    let mut random = Uuid::new_v4().as_bytes().to_vec();
    random.extend_from_slice(Uuid::new_v4().as_bytes());
    let verifier = URL_SAFE_NO_PAD.encode(random);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

const REDIRECT_URI: &str = "http://127.0.0.1:8080/auth/callback";

/// Follows `/authorize` to its redirect and returns the query the client
/// receives back.
async fn authorize(idp: &IdentityProvider, challenge: &str) -> Vec<(String, String)> {
    let response = http()
        .get(idp.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "xyz-state"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("scope", "openid email"),
            ("nonce", "n-0S6"),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = Url::parse(response.headers()[header::LOCATION].to_str().unwrap()).unwrap();
    assert_eq!(
        location.as_str().split('?').next().unwrap(),
        REDIRECT_URI,
        "sent back to the client"
    );
    location.query_pairs().into_owned().collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn exchange(idp: &IdentityProvider, code: &str, verifier: &str) -> reqwest::Response {
    http()
        .post(idp.token_url())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn discovery_names_the_endpoints_grants_and_s256() {
    let idp = IdentityProvider::start().await;
    let doc: Value = http()
        .get(idp.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], idp.issuer());
    assert_eq!(doc["token_endpoint"], idp.token_url());
    assert_eq!(doc["authorization_endpoint"], idp.authorize_url());
    assert_eq!(doc["jwks_uri"], idp.jwks_url());
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["client_credentials", "authorization_code"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    let jwks: Value = http()
        .get(idp.jwks_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(jwks["keys"][0]["kid"].is_string());
}

#[tokio::test]
async fn a_client_credentials_token_is_accepted_by_the_authenticator_as_a_service() {
    let idp = IdentityProvider::start().await;
    let sub = idp.register_client(CLIENT_ID, CLIENT_SECRET);

    let response = client_credentials(&idp, CLIENT_SECRET).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);

    let authenticator = Authenticator::new(idp.auth_config()).unwrap();
    let claims = authenticator
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, sub);
    assert_eq!(claims.role, Role::Service);
    assert_eq!(claims.iss.as_deref(), Some(idp.issuer()));
    assert_eq!(idp.tokens_issued(), 1);
}

#[tokio::test]
async fn client_secret_post_works_and_a_wrong_secret_is_invalid_client() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);

    let response = http()
        .post(idp.token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = client_credentials(&idp, "not the secret").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    assert_eq!(idp.token_requests(), 2);
    assert_eq!(idp.tokens_issued(), 1);
}

#[tokio::test]
async fn the_token_ttl_and_audience_can_be_set() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.set_token_ttl(Duration::from_secs(7));
    idp.set_audience("heyblue-fleet");

    let body: Value = client_credentials(&idp, CLIENT_SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["expires_in"], 7);
    let token = body["access_token"].as_str().unwrap();

    let claims = Authenticator::new(idp.auth_config())
        .unwrap()
        .verify(token)
        .await
        .unwrap();
    assert_eq!(claims.aud, vec!["heyblue-fleet"]);

    let elsewhere = AuthConfig {
        audience: Some("another-api".to_owned()),
        ..idp.auth_config()
    };
    assert!(Authenticator::new(elsewhere)
        .unwrap()
        .verify(token)
        .await
        .is_err());
}

#[tokio::test]
async fn authorization_code_with_pkce_signs_in_the_selected_user() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let user = IdpUser::new(Role::Business)
        .with_email("shop@example.com")
        .with_business_id(Uuid::new_v4());
    idp.sign_in_as(user.clone());

    let (verifier, challenge) = pkce_pair();
    let query = authorize(&idp, &challenge).await;
    assert_eq!(param(&query, "state"), Some("xyz-state"));
    let code = param(&query, "code").expect("a code");

    let response = exchange(&idp, code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();

    let claims = Authenticator::new(idp.auth_config())
        .unwrap()
        .verify(body["access_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(claims.sub, user.sub);
    assert_eq!(claims.role, Role::Business);
    assert_eq!(claims.email, user.email);
    assert_eq!(claims.business_id, user.business_id);

    // The ID token is for the client: its audience is the client id.
    let id_token = body["id_token"].as_str().unwrap();
    let payload = id_token.split('.').nth(1).unwrap();
    let id_claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(id_claims["aud"], CLIENT_ID);
    assert_eq!(id_claims["sub"], user.sub.to_string());
    assert_eq!(id_claims["iss"], idp.issuer());
    assert_eq!(id_claims["nonce"], "n-0S6");
}

#[tokio::test]
async fn a_wrong_code_verifier_fails_and_spends_the_code() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.sign_in_as(IdpUser::new(Role::Civilian));

    let (verifier, challenge) = pkce_pair();
    let query = authorize(&idp, &challenge).await;
    let code = param(&query, "code").unwrap();

    let (other_verifier, _) = pkce_pair();
    let response = exchange(&idp, code, &other_verifier).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    // The right verifier is too late now: a code is good for one exchange.
    let response = exchange(&idp, code, &verifier).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.tokens_issued(), 0);
}

#[tokio::test]
async fn a_code_is_used_once() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.sign_in_as(IdpUser::new(Role::Civilian));
    let (verifier, challenge) = pkce_pair();
    let query = authorize(&idp, &challenge).await;
    let code = param(&query, "code").unwrap();

    assert_eq!(
        exchange(&idp, code, &verifier).await.status(),
        StatusCode::OK
    );
    let again = exchange(&idp, code, &verifier).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn without_a_signed_in_user_authorize_redirects_with_login_required() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let (_, challenge) = pkce_pair();
    let query = authorize(&idp, &challenge).await;
    assert_eq!(param(&query, "error"), Some("login_required"));
    assert_eq!(param(&query, "state"), Some("xyz-state"));
    assert_eq!(param(&query, "code"), None);
}

#[tokio::test]
async fn an_unknown_client_is_not_redirected() {
    let idp = IdentityProvider::start().await;
    let response = http()
        .get(idp.authorize_url())
        .query(&[
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
}
