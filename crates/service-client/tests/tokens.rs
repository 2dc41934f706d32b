//! Service tokens from the local identity provider by client credentials:
//! one fetch for many callers, renewal when a token expires or a peer
//! refuses it, and what a caller sees when no token can be had.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

mod support;

use std::time::Duration;

use http_service::{auth::Role, Claims, Problem};
use reqwest::{StatusCode, Url};
use secrecy::SecretString;
use serde_json::Value;
use service_client::{
    CallError, ClientCredentials, ServiceClient, TokenError, TokenSource, Unavailable,
};
use test_harness::IdentityProvider;

const CLIENT_ID: &str = "checkout";
const CLIENT_SECRET: &str = "checkout-client-secret";

fn credentials(idp: &IdentityProvider, secret: &str) -> ClientCredentials {
    ClientCredentials::new(
        Url::parse(&idp.token_url()).unwrap(),
        CLIENT_ID,
        SecretString::from(secret),
    )
}

struct Setup {
    idp: IdentityProvider,
    peer: support::Peer,
    tokens: TokenSource,
    client: ServiceClient,
}

async fn setup() -> Setup {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let peer = support::start_peer(idp.auth_config()).await;
    let tokens = TokenSource::client_credentials(credentials(&idp, CLIENT_SECRET)).unwrap();
    let client = ServiceClient::new("catalog", peer.base.clone(), tokens.clone()).unwrap();
    Setup {
        idp,
        peer,
        tokens,
        client,
    }
}

#[tokio::test]
async fn the_peer_accepts_the_providers_token_as_the_service_role() {
    let Setup {
        idp,
        client,
        peer: _peer,
        ..
    } = setup().await;
    let claims: Claims = client.get("/whoami").await.unwrap();
    assert_eq!(claims.role, Role::Service);
    assert_eq!(claims.iss.as_deref(), Some(idp.issuer()));
}

#[tokio::test]
async fn a_hundred_concurrent_calls_fetch_one_token() {
    let Setup {
        idp, peer, client, ..
    } = setup().await;
    let calls = (0..100).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get::<Claims>("/whoami").await })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap().unwrap();
    }
    assert_eq!(peer.requests(), 100);
    assert_eq!(idp.token_requests(), 1);
}

#[tokio::test]
async fn an_expired_token_is_renewed_once() {
    let Setup {
        idp,
        client,
        peer: _peer,
        ..
    } = setup().await;
    idp.set_token_ttl(Duration::from_secs(1));

    for _ in 0..3 {
        client.get::<Claims>("/whoami").await.unwrap();
    }
    assert_eq!(idp.token_requests(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        client.get::<Claims>("/whoami").await.unwrap();
    }
    assert_eq!(idp.token_requests(), 2);
}

#[tokio::test]
async fn a_refused_token_is_renewed_and_the_call_retried_once() {
    let Setup {
        idp,
        peer,
        tokens,
        client,
    } = setup().await;
    client.get::<Claims>("/whoami").await.unwrap();
    let first = tokens.token().await.unwrap();
    peer.revoke(first.secret());

    let claims: Claims = client.get("/whoami").await.unwrap();
    assert_eq!(claims.role, Role::Service);
    assert_eq!(idp.token_requests(), 2);
    // The first call, the refused attempt and its retry.
    assert_eq!(peer.requests(), 3);
    assert_ne!(tokens.token().await.unwrap(), first);
}

#[tokio::test]
async fn a_peer_that_refuses_every_token_is_unavailable_after_one_renewal() {
    let Setup {
        idp, peer, client, ..
    } = setup().await;
    peer.refuse_all_tokens();

    let err = client.get::<Value>("/whoami").await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Unavailable {
                cause: Unavailable::TokenRefused,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(Problem::from(err).code(), "dependency_unavailable");
    assert_eq!(peer.requests(), 2);
    assert_eq!(idp.token_requests(), 2);
}

#[tokio::test]
async fn a_provider_refusing_the_client_makes_the_peer_unavailable() {
    let idp = IdentityProvider::start().await;
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let peer = support::start_peer(idp.auth_config()).await;
    let tokens = TokenSource::client_credentials(credentials(&idp, "wrong-secret")).unwrap();
    let client = ServiceClient::new("catalog", peer.base.clone(), tokens).unwrap();

    let err = client.get::<Value>("/whoami").await.unwrap_err();
    match &err {
        CallError::Unavailable {
            cause: Unavailable::Token(TokenError::Refused { status, error, .. }),
            ..
        } => {
            assert_eq!(*status, StatusCode::UNAUTHORIZED);
            assert_eq!(error, "invalid_client");
        }
        other => panic!("expected a refused token request, got {other:?}"),
    }
    let problem = Problem::from(err);
    assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        problem.detail(),
        "The catalog service is unavailable. Please try again shortly."
    );
    assert_eq!(peer.requests(), 0, "no call goes out without a token");
}

#[tokio::test]
async fn a_provider_that_is_down_makes_the_peer_unavailable() {
    let peer = support::start_peer(http_service::AuthConfig::hs256("unused")).await;
    let token_url = support::unused_url().await.join("/token").unwrap();
    let tokens = TokenSource::client_credentials(ClientCredentials::new(
        token_url,
        CLIENT_ID,
        SecretString::from(CLIENT_SECRET),
    ))
    .unwrap();
    let client = ServiceClient::new("catalog", peer.base.clone(), tokens).unwrap();
    let err = client.get::<Value>("/whoami").await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Unavailable {
                cause: Unavailable::Token(TokenError::Request { .. }),
                ..
            }
        ),
        "{err:?}"
    );
}
