//! A shopper, a business and a second user in Chromium, on the fleet.

use std::sync::Arc;

use fantoccini::Locator;
use serde_json::json;
use test_harness::Api;
use uuid::Uuid;

use crate::driver::{Tab, DESKTOP, PHONE};
use crate::fixture::Fleet;
use crate::World;

fn webshop(fleet: &Fleet) -> String {
    fleet.urls["webshop"].clone()
}

/// A new browser for `who`, signed in on the demo page as the user whose
/// label starts with `label` (an email address).
async fn signed_in(world: &World, test: &str, who: &str, label: &str, size: (u32, u32)) -> Tab {
    let tab = world
        .chromedriver
        .browser(test, who, &webshop(&world.fleet), size)
        .await;
    tab.visit("/sign-in").await;
    let user = tab
        .client
        .find(Locator::XPath(&format!(
            "//label[starts-with(normalize-space(.), '{label}')]"
        )))
        .await
        .unwrap_or_else(|error| panic!("no demo user {label:?}: {error}"));
    user.click().await.expect("the user is chosen");
    tab.click("form[action='/sign-in/demo'] button[type=submit]")
        .await;
    assert!(
        tab.page_text().await.contains(label),
        "not signed in as {label}: {}",
        tab.page_text().await
    );
    tab
}

/// Empties the civilian's cart through the webshop's API route.
async fn empty_cart(fleet: &Fleet) {
    let emptied = Api::unchecked(webshop(fleet))
        .delete("/v1/cart")
        .bearer(&fleet.token("civilian").token)
        .send()
        .await;
    assert!(emptied.status.is_success(), "{}", emptied.body);
}

/// Searches the storefront for `q`, opens the first offering and puts
/// `quantity` of it in the cart.
async fn search_and_add(tab: &Tab, q: &str, quantity: &str) {
    tab.visit("/").await;
    tab.fill("#q", q).await;
    tab.click("form[role=search] button").await;
    tab.click(".cards a").await;
    tab.fill("#quantity", quantity).await;
    tab.click("form[action='/cart/items'] button").await;
}

/// Fills the checkout form and places the order with `card`.
async fn place_order(tab: &Tab, points: &str, card: &str) {
    tab.visit("/checkout").await;
    assert!(tab.page_text().await.contains("Total to pay"));
    tab.fill("#points_to_redeem", points).await;
    tab.fill("#name", "Dana Browser").await;
    tab.fill("#line1", "1 Main St").await;
    tab.fill("#city", "Springfield").await;
    tab.fill("#postal_code", "12345").await;
    tab.fill("#country", "US").await;
    tab.find("#payment_method")
        .await
        .select_by(Locator::Css(&format!("option[value='{card}']")))
        .await
        .expect("the card is chosen");
    tab.click_button("form[action='/checkout']", "Place order")
        .await;
}

/// The order id of the order page shown.
async fn shown_order(tab: &Tab) -> Uuid {
    let path = tab.path().await;
    path.strip_prefix("/orders/")
        .and_then(|rest| rest.split('?').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not an order page: {path}"))
}

pub async fn a_civilian_pays_with_points_and_3d_secure_and_watches_the_business_ship_live(
    world: Arc<World>,
) {
    const TEST: &str = "civilian_3d_secure_and_business_ships_live";
    let fleet = &world.fleet;
    empty_cart(fleet).await;
    let civilian = signed_in(&world, TEST, "civilian", "civilian@", DESKTOP).await;

    // Two businesses' offerings: the roaster's coffee and the bike shop's
    // tune-up.
    search_and_add(&civilian, "house blend", "2").await;
    search_and_add(&civilian, "basic tune-up", "1").await;
    civilian.click("a[href='/cart']").await;
    let cart = civilian.page_text().await;
    assert!(cart.contains("House Blend"), "{cart}");
    assert!(cart.contains("Basic tune-up"), "{cart}");

    // Part with points, the rest with a card that asks for 3-D Secure:
    // the gateway's page, then back to the shop.
    place_order(&civilian, "500", "pm_card_authenticationRequired").await;
    // The shop's page leads on to the gateway's by itself.
    civilian
        .until("the gateway's 3-D Secure page", || async {
            civilian
                .url()
                .await
                .starts_with(&fleet.urls["payment-gateway"])
                && civilian.has("button[value=approve]").await
        })
        .await;
    civilian.screenshot().await;
    civilian.click("button[value=approve]").await;
    civilian
        .until("the order page", || async {
            civilian.path().await.starts_with("/orders/") && civilian.has("#order-live").await
        })
        .await;
    civilian.screenshot().await;
    let order = shown_order(&civilian).await;

    // From here on the page is never reloaded: a mark left in the window
    // would be gone after a reload.
    civilian
        .client
        .execute("window.heyblueMark = 'still here'; return true", vec![])
        .await
        .expect("a mark is left");
    let not_reloaded = || async {
        civilian
            .client
            .execute("return window.heyblueMark || null", vec![])
            .await
            .expect("the mark is read")
            == json!("still here")
    };
    civilian
        .until("the order reaches processing", || async {
            let history = civilian.text("#order-history").await;
            let status = civilian.text("#order-status").await;
            history.contains("Processing") && matches!(status.as_str(), "Processing" | "Dispatched")
        })
        .await;
    civilian.screenshot().await;
    assert!(civilian.page_text().await.contains("500 points took off"));
    assert!(not_reloaded().await, "the order page was reloaded");
    civilian
        .until("the order is dispatched", || async {
            civilian.text("#order-status").await == "Dispatched"
        })
        .await;

    // The bike shop, in a browser of its own, confirms and ships its part.
    let business = signed_in(&world, TEST, "business", "bikes@", PHONE).await;
    assert_eq!(business.path().await, "/business");
    let part = format!("/business/orders/{order}");
    business
        .click(&format!("form[action='{part}/confirm'] button"))
        .await;
    civilian
        .until("the shopper's page shows the part confirmed", || async {
            civilian.text("#order-live").await.contains("Confirmed")
        })
        .await;
    civilian.screenshot().await;
    business.fill(&format!("#carrier-{order}"), "UPS").await;
    business
        .fill(&format!("#tracking-{order}"), "1ZBROWSER")
        .await;
    business
        .click(&format!("form[action='{part}/ship'] button"))
        .await;
    assert!(business
        .page_text()
        .await
        .contains("Shipped with UPS 1ZBROWSER"));

    civilian
        .until("the shopper's page shows the shipment", || async {
            civilian
                .text("#order-live")
                .await
                .contains("Shipped with UPS 1ZBROWSER")
        })
        .await;
    civilian.screenshot().await;
    assert!(not_reloaded().await, "the order page was reloaded");
    // Once a part is confirmed, the order can no longer be cancelled.
    assert!(!civilian.page_text().await.contains("Cancel this order"));
    civilian.close().await;
    business.close().await;
}

pub async fn a_declined_card_is_told_and_the_cart_is_unchanged(world: Arc<World>) {
    const TEST: &str = "declined_card";
    empty_cart(&world.fleet).await;
    let civilian = signed_in(&world, TEST, "civilian", "civilian@", PHONE).await;
    search_and_add(&civilian, "bottle cage", "1").await;

    place_order(&civilian, "0", "pm_card_chargeDeclined").await;

    assert_eq!(civilian.path().await, "/checkout");
    let problem = civilian.text(".problem").await;
    assert!(problem.contains("declined"), "{problem}");
    // What was typed is still there.
    assert_eq!(civilian.value("#name").await, "Dana Browser");
    assert_eq!(civilian.value("#city").await, "Springfield");
    civilian.click("a[href='/cart']").await;
    let cart = civilian.page_text().await;
    assert!(cart.contains("Bottle cage"), "{cart}");
    assert_eq!(civilian.value("input[name=quantity]").await, "1");
    civilian.close().await;
}

pub async fn a_form_posted_without_its_csrf_token_is_refused(world: Arc<World>) {
    const TEST: &str = "csrf_refused";
    empty_cart(&world.fleet).await;
    let civilian = signed_in(&world, TEST, "civilian", "civilian@", PHONE).await;
    civilian.visit("/").await;
    civilian.fill("#q", "house blend").await;
    civilian.click("form[role=search] button").await;
    civilian.click(".cards a").await;

    // A form like the page's, but without the token, as another site's
    // page would post it.
    civilian
        .client
        .execute(
            "document.querySelector(\"form[action='/cart/items'] input[name=csrf]\").remove(); return true",
            vec![],
        )
        .await
        .expect("the token is taken out");
    civilian.click("form[action='/cart/items'] button").await;

    assert_eq!(civilian.text("h1").await, "Not allowed");
    let cart = Api::unchecked(webshop(&world.fleet))
        .get("/v1/cart")
        .bearer(&world.fleet.token("civilian").token)
        .send()
        .await
        .expect_status(200);
    assert_eq!(cart.body["items"], json!([]), "{}", cart.body);
    civilian.close().await;
}

pub async fn nobody_opens_another_users_order_page(world: Arc<World>) {
    const TEST: &str = "another_users_order";
    let fleet = &world.fleet;
    empty_cart(fleet).await;
    let api = Api::unchecked(webshop(fleet));
    let civilian = &fleet.token("civilian").token;
    let listed = api
        .get("/v1/offerings?q=flat+tyre")
        .send()
        .await
        .expect_status(200);
    let offering = listed.body["items"][0]["id"]
        .as_str()
        .expect("an offering")
        .to_owned();
    api.put(&format!("/v1/cart/items/{offering}"))
        .bearer(civilian)
        .json(&json!({ "quantity": 1 }))
        .send()
        .await
        .expect_status(200);
    let checkout = api
        .post("/v1/checkouts")
        .bearer(civilian)
        .idempotency_key(&Uuid::new_v4().to_string())
        .json(&json!({
            "points_to_redeem": 0,
            "payment": { "provider": "sandbox", "payment_method": "pm_card_visa" },
            "shipping_address": { "name": "Dana", "line1": "1 Main St", "city": "Springfield",
                                  "postal_code": "12345", "country": "US" },
        }))
        .send()
        .await
        .expect_status(201);
    let order = checkout.body["order_id"].as_str().expect("an order id");

    let owner = signed_in(&world, TEST, "civilian", "civilian@", PHONE).await;
    owner
        .until("the owner sees the order", || async {
            owner.visit(&format!("/orders/{order}")).await;
            owner.has("#order-live").await
        })
        .await;
    let charity = signed_in(&world, TEST, "charity", "charity@", PHONE).await;
    charity.visit(&format!("/orders/{order}")).await;

    assert_eq!(charity.text("h1").await, "Page not found");
    let text = charity.page_text().await;
    assert!(text.contains("not yours to see"), "{text}");
    assert!(!text.contains("Springfield"));
    owner.close().await;
    charity.close().await;
}

pub async fn an_officer_gives_points_to_a_charity(world: Arc<World>) {
    const TEST: &str = "officer_donates";
    let officer = signed_in(&world, TEST, "officer", "officer@", PHONE).await;
    officer.click("a[href='/points']").await;
    let before: i64 = officer
        .text("#points-available")
        .await
        .parse()
        .expect("a balance");

    officer.fill("#donation_points", "99999999").await;
    officer
        .click_button("form[action='/points/donations']", "Give")
        .await;
    assert!(!officer.text(".problem").await.is_empty());
    assert_eq!(officer.value("#donation_points").await, "99999999");

    officer.fill("#donation_points", "100").await;
    officer
        .click_button("form[action='/points/donations']", "Give")
        .await;
    assert!(officer
        .text("[role=status]")
        .await
        .contains("you gave 100 points"));
    let after: i64 = officer
        .text("#points-available")
        .await
        .parse()
        .expect("a balance");
    assert_eq!(after, before - 100);
    officer.close().await;
}

pub async fn a_business_adds_an_offering_and_takes_it_off_sale_and_the_admin_sees_its_businesses(
    world: Arc<World>,
) {
    const TEST: &str = "offerings_and_admin";
    let title = format!("Wheel truing {}", &Uuid::new_v4().simple().to_string()[..6]);
    let business = signed_in(&world, TEST, "business", "bikes@", PHONE).await;
    business.click("a[href='/business/offerings']").await;
    business.click("a[href='/business/offerings/new']").await;
    business.fill("#title", &title).await;
    business
        .fill("#description", "Both wheels trued while you wait.")
        .await;
    business
        .find("#kind")
        .await
        .select_by(Locator::Css("option[value='service']"))
        .await
        .expect("the kind is chosen");
    // A price the form cannot read is told, and the form keeps the rest.
    business.fill("#price", "12,50").await;
    business.fill("#points_price", "1250").await;
    business
        .click_button("form[action='/business/offerings']", "Save")
        .await;
    assert!(!business.text(".problem").await.is_empty());
    assert_eq!(business.value("#title").await, title);
    business.fill("#price", "12.50").await;
    business
        .click_button("form[action='/business/offerings']", "Save")
        .await;
    assert_eq!(business.path().await, "/business/offerings?saved=1");
    let row = business.page_text().await;
    assert!(row.contains(&title) && row.contains("$12.50"), "{row}");

    // Stock of two, then off sale.
    business.click_link(&title).await;
    business.fill("#stock", "2").await;
    business.click_button("main form", "Save").await;
    business
        .click(&format!("button[aria-label='Take {title} off sale']"))
        .await;
    assert!(
        business
            .has(&format!("button[aria-label='Put {title} on sale']"))
            .await
    );
    business.close().await;

    let admin = signed_in(&world, TEST, "admin", "admin@", DESKTOP).await;
    assert_eq!(admin.path().await, "/admin");
    let page = admin.page_text().await;
    assert!(page.contains("Spoke & Chain Bikes"), "{page}");
    assert!(page.contains("Blue Line Family Fund"), "{page}");
    admin.close().await;
}
