//! Sign-in through OpenID Connect against test-harness's local identity
//! provider: the authorization code flow with PKCE, a `state` that works
//! once and only in the browser that started it, a code the provider
//! spends on its first exchange, and signing out ending the session.

mod support;

use http_service::Role;
use reqwest::Url;
use secrecy::SecretString;
use support::{settings, Shop};
use test_harness::{Browser, IdentityProvider, IdpUser, Page};
use webshop::session::COOKIE;
use webshop::settings::OidcSettings;

const PUBLIC: &str = "http://127.0.0.1:8080";

async fn shop_with(idp: &IdentityProvider) -> Shop {
    idp.register_client("webshop", "webshop-secret");
    let mut settings = settings(PUBLIC);
    settings.demo_sign_in = false;
    settings.oidc = Some(OidcSettings {
        issuer: Url::parse(idp.issuer()).expect("the issuer"),
        client_id: "webshop".to_owned(),
        client_secret: SecretString::from("webshop-secret"),
    });
    Shop::start_with(settings).await
}

/// Starts a sign-in from the sign-in page's link and follows it through
/// the provider; the callback's path and query, not yet visited.
async fn through_the_provider(browser: &Browser, next: &str) -> String {
    let page = browser.get(&format!("/sign-in?next={next}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page
        .body
        .find("href=\"/sign-in/oidc?")
        .unwrap_or_else(|| panic!("no sign-in link:\n{}", page.body))
        + "href=\"".len();
    let link = page.body[at..at + page.body[at..].find('"').expect("end")].replace("&#x2f;", "/");
    let started = browser.get(&link).await;
    assert_eq!(started.status, 303, "{}", started.body);
    let authorize = started.location.clone().expect("on to the provider");
    let url = Url::parse(&authorize).expect("an absolute URL");
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert!(param("nonce").is_some() && param("state").is_some());
    assert_eq!(
        param("redirect_uri").as_deref(),
        Some("http://127.0.0.1:8080/sign-in/oidc/callback")
    );
    let back = browser.get(&authorize).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let callback = back.location.expect("back to the shop");
    callback
        .strip_prefix(PUBLIC)
        .unwrap_or_else(|| panic!("not the shop's callback: {callback}"))
        .to_owned()
}

/// `callback` with its `name` parameter set to `value`.
fn with_param(callback: &str, name: &str, value: &str) -> String {
    let mut url = Url::parse(&format!("{PUBLIC}{callback}")).expect("a URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(key, old)| {
            let new = if key == name { value.to_owned() } else { old };
            (key, new)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    format!("{}?{}", url.path(), url.query().expect("a query"))
}

fn refused(page: &Page) {
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.is_html());
    assert!(page.set_cookie(COOKIE).is_none(), "a session was started");
}

#[tokio::test]
async fn signing_in_through_the_identity_provider_starts_a_session_in_the_tokens_role() {
    let idp = IdentityProvider::start().await;
    let shop = shop_with(&idp).await;
    idp.sign_in_as(IdpUser::new(Role::Civilian).with_email("dana@example.test"));
    let browser = shop.browser();

    let callback = through_the_provider(&browser, "/orders").await;
    let signed_in = browser.get(&callback).await;

    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/orders"));
    let cookie = signed_in.set_cookie(COOKIE).expect("a session cookie");
    assert!(cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Lax"));
    assert_eq!(shop.sessions().await, 1);
    // The token stays on the server: the browser's cookie is no JWT.
    assert!(!browser.cookie(COOKIE).expect("kept").contains('.'));
    let page = browser.get("/sign-in").await;
    assert!(
        page.body
            .contains("Signed in as dana@example.test (civilian)"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_business_from_the_identity_provider_acts_for_its_business() {
    let idp = IdentityProvider::start().await;
    let shop = shop_with(&idp).await;
    let business = uuid::Uuid::new_v4();
    idp.sign_in_as(
        IdpUser::new(Role::Business)
            .with_email("owner@example.test")
            .with_business_id(business),
    );
    let browser = shop.browser();

    let callback = through_the_provider(&browser, "/").await;
    let signed_in = browser.get(&callback).await;

    assert_eq!(signed_in.location.as_deref(), Some("/business"));
    let page = browser.get("/sign-in").await;
    assert!(page.body.contains("owner@example.test (business)"));
}

#[tokio::test]
async fn a_callback_with_a_wrong_state_is_refused() {
    let idp = IdentityProvider::start().await;
    let shop = shop_with(&idp).await;
    idp.sign_in_as(IdpUser::new(Role::Civilian));
    let browser = shop.browser();
    let callback = through_the_provider(&browser, "/").await;

    let forged = browser
        .get(&with_param(&callback, "state", "not-the-state-we-sent"))
        .await;
    refused(&forged);

    // Nor does a state from another browser's sign-in work here.
    let elsewhere = shop.browser();
    refused(&elsewhere.get(&callback).await);
    assert_eq!(shop.sessions().await, 0);
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let idp = IdentityProvider::start().await;
    let shop = shop_with(&idp).await;
    idp.sign_in_as(IdpUser::new(Role::Civilian));
    let browser = shop.browser();
    let callback = through_the_provider(&browser, "/").await;
    assert_eq!(browser.get(&callback).await.status, 303);

    // The same callback again: its state was spent.
    refused(&browser.get(&callback).await);

    // The code under a fresh sign-in's own state: the provider has spent it
    // (and the fresh sign-in's PKCE verifier does not match it either).
    let code = Url::parse(&format!("{PUBLIC}{callback}"))
        .expect("a URL")
        .query_pairs()
        .find(|(key, _)| key == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    let thief = shop.browser();
    let fresh = through_the_provider(&thief, "/").await;
    refused(&thief.get(&with_param(&fresh, "code", &code)).await);
    assert_eq!(shop.sessions().await, 1);
}

#[tokio::test]
async fn signing_out_ends_an_identity_provider_session_on_the_server() {
    let idp = IdentityProvider::start().await;
    let shop = shop_with(&idp).await;
    idp.sign_in_as(IdpUser::new(Role::Civilian).with_email("dana@example.test"));
    let browser = shop.browser();
    let callback = through_the_provider(&browser, "/").await;
    browser.get(&callback).await;
    let old_cookie = browser.cookie(COOKIE).expect("a session cookie");
    let page = browser.get("/sign-in").await;

    let signed_out = browser
        .post_form("/sign-out", &[("csrf", &page.field("csrf"))])
        .await;

    assert_eq!(signed_out.status, 303);
    assert_eq!(shop.sessions().await, 0);
    // The old cookie, sent again, is nobody's session.
    let replay = shop.browser();
    replay.set_cookie(COOKIE, &old_cookie);
    let orders = replay.get("/orders").await;
    assert_eq!(orders.status, 303);
    assert!(orders
        .location
        .as_deref()
        .is_some_and(|location| location.starts_with("/sign-in")));
}

#[tokio::test]
async fn without_a_provider_there_is_no_identity_provider_sign_in() {
    let shop = Shop::start().await;
    let browser = shop.browser();
    let page = browser.get("/sign-in").await;
    assert!(!page.body.contains("/sign-in/oidc"));
    assert_eq!(browser.get("/sign-in/oidc").await.status, 404);
    assert_eq!(
        browser
            .get("/sign-in/oidc/callback?code=x&state=y")
            .await
            .status,
        404
    );
}
