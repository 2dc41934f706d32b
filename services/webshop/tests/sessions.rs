//! Sessions as a browser meets them: the cookie's attributes, forms that
//! must carry their session's CSRF token, and signing out.

mod support;

use support::{settings, Shop};
use webshop::session::COOKIE;

#[tokio::test]
async fn signing_in_sets_an_http_only_same_site_lax_cookie_and_no_token() {
    let shop = Shop::start().await;
    let browser = shop.browser();

    let signed_in = shop.sign_in_as_civilian(&browser).await;

    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location.as_deref(), Some("/orders"));
    let cookie = signed_in.set_cookie(COOKIE).expect("a session cookie");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // The browser gets a random id, not the bearer token (a JWT has dots).
    let id = browser.cookie(COOKIE).expect("kept");
    assert_eq!(id.len(), 43, "256 bits in base64: {id}");
    assert!(!id.contains('.'));
    assert_eq!(shop.sessions().await, 1);
}

#[tokio::test]
async fn behind_https_the_session_cookie_is_secure() {
    let shop = Shop::start_with(settings("https://shop.example")).await;
    let browser = shop.browser();

    let signed_in = shop.sign_in_as_civilian(&browser).await;

    let cookie = signed_in.set_cookie(COOKIE).expect("a session cookie");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_form_posted_without_its_csrf_token_is_refused_with_a_403_page() {
    let shop = Shop::start().await;
    let browser = shop.browser();
    shop.sign_in_as_civilian(&browser).await;

    for csrf in [None, Some("forged")] {
        let mut fields = vec![
            ("offering_id", "01a21eba-217e-77bf-aca7-4624b3c4c374"),
            ("quantity", "1"),
        ];
        if let Some(token) = csrf {
            fields.push(("csrf", token));
        }
        let refused = browser.post_form("/cart/items", &fields).await;
        assert_eq!(refused.status, 403, "csrf {csrf:?}");
        assert!(refused.is_html(), "{}", refused.content_type);
        assert!(refused.body.contains("not sent from a page of this shop"));
    }
    // Signing out is a form like any other.
    let refused = browser.post_form("/sign-out", &[]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(shop.sessions().await, 1, "still signed in");
}

#[tokio::test]
async fn a_sign_in_form_not_from_our_sign_in_page_is_refused() {
    let shop = Shop::start().await;
    let browser = shop.browser();
    let civilian = demo_shop::DEMO_USERS[0].id.to_string();

    let refused = browser
        .post_form(
            "/sign-in/demo",
            &[("form_token", "made-up"), ("user", &civilian)],
        )
        .await;

    assert_eq!(refused.status, 403);
    assert!(refused.set_cookie(COOKIE).is_none());
    assert_eq!(shop.sessions().await, 0);
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let shop = Shop::start().await;
    let browser = shop.browser();
    shop.sign_in_as_civilian(&browser).await;
    let stolen = browser.cookie(COOKIE).expect("a session cookie");
    let page = browser.get("/sign-in").await;
    assert!(page.body.contains("Sign out"), "the header offers it");

    let signed_out = browser
        .post_form("/sign-out", &[("csrf", &page.field("csrf"))])
        .await;

    assert_eq!(signed_out.status, 303);
    let cleared = signed_out
        .set_cookie(COOKIE)
        .expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(shop.sessions().await, 0);
    // A copy of the old cookie is worth nothing now.
    let other = shop.browser();
    other.set_cookie(COOKIE, &stolen);
    let orders = other.get("/orders").await;
    assert_eq!(orders.status, 303);
    assert_eq!(orders.location.as_deref(), Some("/sign-in?next=%2Forders"));
}

#[tokio::test]
async fn pages_that_need_a_user_send_the_signed_out_to_sign_in() {
    let shop = Shop::start().await;
    let browser = shop.browser();

    for page in ["/cart", "/checkout", "/orders", "/points", "/business"] {
        let answer = browser.get(page).await;
        assert_eq!(answer.status, 303, "{page}");
        let location = answer.location.expect("a redirect");
        assert!(location.starts_with("/sign-in?next="), "{location}");
    }
}

#[tokio::test]
async fn without_the_demo_setting_there_is_no_demo_sign_in() {
    let mut settings = settings("http://127.0.0.1:8080");
    settings.demo_sign_in = false;
    let shop = Shop::start_with(settings).await;
    let browser = shop.browser();

    let page = browser.get("/sign-in").await;
    assert!(!page.body.contains("Demo users"));
    let refused = browser
        .post_form(
            "/sign-in/demo",
            &[
                ("form_token", "x"),
                ("user", &demo_shop::DEMO_USERS[0].id.to_string()),
            ],
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(shop.sessions().await, 0);
}
