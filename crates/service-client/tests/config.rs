//! Settings from the environment: which token source a service gets, and
//! errors that name the variable to fix.
//!
//! One test in its own binary: the process environment is shared by all
//! tests of a binary, and these set and clear the same variables.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use std::env;

use http_service::{auth::Role, AuthConfig, Authenticator};
use service_client::{ServiceClient, TokenSource};
use test_harness::IdentityProvider;

const VARS: [&str; 5] = [
    "HEYBLUE_OAUTH_TOKEN_URL",
    "HEYBLUE_OAUTH_CLIENT_ID",
    "HEYBLUE_OAUTH_CLIENT_SECRET",
    "HEYBLUE_OAUTH_SCOPE",
    "HEYBLUE_OAUTH_AUDIENCE",
];

fn error_of(auth: &AuthConfig) -> String {
    TokenSource::from_env("checkout", auth)
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn the_token_source_follows_the_environment_and_errors_name_the_variable() {
    for name in VARS {
        env::remove_var(name);
    }
    let hs256 = AuthConfig::hs256("fleet-secret");

    // Without an identity provider, the fleet secret mints the tokens.
    let source = TokenSource::from_env("checkout", &hs256).unwrap();
    assert!(format!("{source:?}").contains("Hs256"), "{source:?}");
    assert_eq!(
        error_of(&AuthConfig::jwks("http://127.0.0.1:1/jwks")),
        "HEYBLUE_JWT_SECRET or HEYBLUE_OAUTH_TOKEN_URL: missing"
    );

    env::set_var("HEYBLUE_OAUTH_CLIENT_ID", "checkout");
    assert_eq!(
        error_of(&hs256),
        "HEYBLUE_OAUTH_TOKEN_URL: missing, but HEYBLUE_OAUTH_CLIENT_ID is set"
    );
    env::remove_var("HEYBLUE_OAUTH_CLIENT_ID");

    env::set_var("HEYBLUE_OAUTH_TOKEN_URL", "not a url");
    assert!(error_of(&hs256).starts_with("HEYBLUE_OAUTH_TOKEN_URL: invalid value \"not a url\""));

    let idp = IdentityProvider::start().await;
    idp.register_client("checkout", "client-secret");
    env::set_var("HEYBLUE_OAUTH_TOKEN_URL", idp.token_url());
    assert_eq!(error_of(&hs256), "HEYBLUE_OAUTH_CLIENT_ID: missing");
    env::set_var("HEYBLUE_OAUTH_CLIENT_ID", "checkout");
    assert_eq!(error_of(&hs256), "HEYBLUE_OAUTH_CLIENT_SECRET: missing");

    // Complete: tokens come from the provider, and the secret stays out of
    // debug output.
    env::set_var("HEYBLUE_OAUTH_CLIENT_SECRET", "client-secret");
    let source = TokenSource::from_env("checkout", &hs256).unwrap();
    assert!(
        !format!("{source:?}").contains("client-secret"),
        "{source:?}"
    );
    let token = source.token().await.unwrap();
    let claims = Authenticator::new(idp.auth_config())
        .unwrap()
        .verify(token.secret())
        .await
        .unwrap();
    assert_eq!(claims.role, Role::Service);
    assert_eq!(idp.tokens_issued(), 1);

    let err = ServiceClient::from_env("catalog", "HEYBLUE_CATALOG_URL_UNSET", source.clone())
        .unwrap_err();
    assert_eq!(err.to_string(), "HEYBLUE_CATALOG_URL_UNSET: missing");
    env::set_var("HEYBLUE_CATALOG_URL_FTP", "ftp://catalog:8081");
    let err = ServiceClient::from_env("catalog", "HEYBLUE_CATALOG_URL_FTP", source).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("HEYBLUE_CATALOG_URL_FTP: invalid value"),
        "{err}"
    );

    for name in VARS {
        env::remove_var(name);
    }
}
