//! Sign-in through OpenID Connect in Chromium, against test-harness's
//! identity provider, on the fleet's two webshop replicas.

use std::sync::Arc;

use http_service::Role;
use reqwest::Url;
use test_harness::{Browser, IdpUser};

use crate::driver::{Tab, DESKTOP};
use crate::World;

pub const CLIENT_ID: &str = "webshop";
pub const CLIENT_SECRET: &str = "webshop-browser-test-secret";

/// The session cookie's name.
const SESSION: &str = "heyblue_session";

/// Signs `tab` in through the sign-in page's link; the provider signs in
/// whoever the test made its signed-in user.
async fn sign_in_with_the_provider(tab: &Tab) {
    tab.visit("/sign-in").await;
    tab.click("#sign-in-oidc").await;
}

/// A sign-in started and taken through the provider by a client without
/// JavaScript (cookies kept, redirects one by one): the callback URL it
/// was sent back to, not yet visited.
async fn callback_of_another_client(webshop: &str, client: &Browser) -> String {
    let started = client.get("/sign-in/oidc").await;
    assert_eq!(started.status, 303, "{}", started.body);
    let at_provider = client
        .get(&started.location.expect("on to the provider"))
        .await;
    assert_eq!(at_provider.status, 303, "{}", at_provider.body);
    let callback = at_provider.location.expect("back to the shop");
    assert!(callback.starts_with(webshop), "{callback}");
    callback
}

pub async fn a_person_signs_in_through_the_identity_provider_on_either_replica_and_signs_out(
    world: Arc<World>,
) {
    const TEST: &str = "oidc_sign_in_and_out";
    let fleet = &world.fleet;
    let (first, second) = (&fleet.urls["webshop"], &fleet.urls["webshop-2"]);
    world
        .idp
        .sign_in_as(IdpUser::new(Role::Civilian).with_email("oidc-civilian@example.test"));
    let tab = world
        .chromedriver
        .browser(TEST, "civilian", first, DESKTOP)
        .await;

    sign_in_with_the_provider(&tab).await;

    assert_eq!(tab.path().await, "/");
    assert!(tab
        .page_text()
        .await
        .contains("Signed in as oidc-civilian@example.test (civilian)"));
    // The services accept the provider's token the webshop holds.
    tab.click("a[href='/points']").await;
    assert_eq!(tab.text("h1").await, "Your points");

    // The session lives in the database: the other replica knows it (the
    // cookie is the host's, whatever the port), and so does the first
    // after it was killed and started again.
    tab.visit(&format!("{second}/points")).await;
    assert_eq!(tab.text("h1").await, "Your points");
    fleet.crash("webshop").await;
    tab.visit(&format!("{first}/orders")).await;
    assert_eq!(tab.text("h1").await, "Your orders");

    // Signing out deletes the session on the server: the cookie it had,
    // sent again, is nobody's.
    let cookie = tab
        .client
        .get_named_cookie(SESSION)
        .await
        .expect("a session cookie")
        .value()
        .to_owned();
    tab.click_button("header", "Sign out").await;
    assert!(tab.page_text().await.contains("Sign in"));
    let replay = Browser::new(first.clone());
    replay.set_cookie(SESSION, &cookie);
    let orders = replay.get("/orders").await;
    assert_eq!(orders.status, 303, "{}", orders.body);
    assert!(orders
        .location
        .as_deref()
        .is_some_and(|location| location.starts_with("/sign-in")));
    tab.close().await;
}

pub async fn a_callback_with_another_browsers_state_or_a_spent_code_is_refused(world: Arc<World>) {
    const TEST: &str = "oidc_refusals";
    let webshop = &world.fleet.urls["webshop"];
    world
        .idp
        .sign_in_as(IdpUser::new(Role::Civilian).with_email("oidc-other@example.test"));
    let other = Browser::new(webshop.clone());
    let callback = callback_of_another_client(webshop, &other).await;
    let tab = world
        .chromedriver
        .browser(TEST, "civilian", webshop, DESKTOP)
        .await;

    // Another browser's state: this one never started that sign-in.
    tab.visit(&callback).await;
    assert_eq!(tab.text("h1").await, "Not allowed");
    assert!(tab.client.get_named_cookie(SESSION).await.is_err());

    // A forged state is refused the same way.
    let mut forged = Url::parse(&callback).expect("a URL");
    let code = forged
        .query_pairs()
        .find(|(key, _)| key == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code");
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("code", &code)
        .append_pair("state", "forged");
    tab.visit(forged.as_str()).await;
    assert_eq!(tab.text("h1").await, "Not allowed");

    // The client that started it finishes it; its code is spent, and the
    // same callback again is refused.
    let finished = other.get(&callback).await;
    assert_eq!(finished.status, 303, "{}", finished.body);
    let replayed = other.get(&callback).await;
    assert_eq!(replayed.status, 403, "{}", replayed.body);
    tab.visit(&callback).await;
    assert_eq!(tab.text("h1").await, "Not allowed");
    assert!(tab.client.get_named_cookie(SESSION).await.is_err());
    tab.close().await;
}
