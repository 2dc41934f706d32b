//! Orders that go through: cards and points together, points alone, a card
//! that needs 3-D Secure, and a checkout a nervous customer sends twice.

use std::sync::Arc;

use http_service::Role;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::invariants::{
    one_email_per_notification, order_settled, points_conserved, stock_conserved,
};
use crate::world::{checkout_body, get, history, until, Business, Person, World};

/// Submits the person's cart; the answer's status and body.
pub async fn submit(world: &World, person: &Person, body: &Value, key: &str) -> (u16, Value) {
    let answer = world
        .checkout
        .post("/v1/checkouts")
        .bearer(&person.token)
        .idempotency_key(key)
        .json(body)
        .send()
        .await;
    (answer.status.as_u16(), answer.body)
}

/// Submits the cart and expects the order placed; its id.
pub async fn place(world: &World, person: &Person, body: &Value) -> String {
    let (status, submitted) = submit(world, person, body, &Uuid::new_v4().to_string()).await;
    assert_eq!(status, 201, "{submitted}");
    assert_eq!(submitted["status"], "completed", "{submitted}");
    submitted["order_id"].as_str().expect("order id").to_owned()
}

/// The business confirms, ships and delivers its part through its portal.
pub async fn deliver(world: &World, business: &Business, order_id: &str) {
    world.part(business, order_id).await;
    for (action, body) in [
        ("confirm", json!({"reference": "PO-1"})),
        (
            "shipments",
            json!({"carrier": "UPS", "tracking_number": format!("1Z{}", business.id.simple())}),
        ),
        ("delivered", json!({})),
    ] {
        assert_eq!(
            world.act(business, order_id, action, body).await,
            200,
            "{action}"
        );
    }
}

pub async fn a_civilian_pays_with_points_and_card_and_two_businesses_deliver_their_parts(
    world: Arc<World>,
) {
    let roasters = world.business("Roasters").await;
    let cycles = world.business("Cycles").await;
    let beans = world
        .offering(&roasters, "Coffee beans", 1_500, 1_000, Some(10))
        .await;
    let light = world
        .offering(&cycles, "Bike light", 2_500, 2_000, None)
        .await;
    let civilian = world.person(Role::Civilian, 1_500).await;
    world.add_to_cart(&civilian, &beans, 2).await;
    world.add_to_cart(&civilian, &light, 1).await;

    // 1,200 points pay part of the beans (max 2,000): 1,800 off their 3,000.
    let quote = world
        .checkout
        .post("/v1/checkouts/quote")
        .bearer(&civilian.token)
        .json(&json!({"points_to_redeem": 1_200}))
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(quote["available_points"], 1_500, "{quote}");
    assert_eq!(quote["discount_minor"], 1_800, "{quote}");
    assert_eq!(quote["total_minor"], 3_700, "{quote}");
    let (status, submitted) = submit(
        &world,
        &civilian,
        &checkout_body(1_200, Some("pm_card_visa")),
        &Uuid::new_v4().to_string(),
    )
    .await;
    assert_eq!(status, 201, "{submitted}");
    assert_eq!(submitted["payment"]["status"], "authorized", "{submitted}");
    assert_eq!(submitted["quote"], quote, "the order is what was quoted");
    let order_id = submitted["order_id"].as_str().expect("order id").to_owned();

    // Stock, capture and the points spend: both parts reach their businesses.
    let order = world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    assert_eq!(order["total_minor"], 3_700, "{order}");
    let authorization = order["payment"]["authorization_id"]
        .as_str()
        .expect("authorization");
    let payment = world.payment(authorization).await;
    assert_eq!(payment["status"], "captured", "{payment}");
    assert_eq!(payment["amount_minor"], 3_700, "{payment}");
    // The spend is user-points' own step, beside the dispatch.
    let balance = until("the points are spent", || async {
        let balance = world.balance(&civilian).await;
        (balance["reserved"] == 0).then_some(balance)
    })
    .await;
    assert_eq!(balance["available"], 300, "{balance}");
    assert_eq!(balance["lifetime_spent"], 1_200, "{balance}");
    // The cart is lowered by what was bought, when cart reads the order.
    until("the cart is lowered by what was bought", || async {
        (world.cart_items(&civilian).await == json!([])).then_some(())
    })
    .await;
    assert_eq!(world.stock(&beans).await, Some(8));

    // Each business sees only its own lines, and the address to ship to.
    for (business, offering, quantity) in [(&roasters, &beans, 2), (&cycles, &light, 1)] {
        let part = world.part(business, &order_id).await;
        assert_eq!(part["lines"].as_array().map(Vec::len), Some(1), "{part}");
        assert_eq!(part["lines"][0]["offering_id"], offering.as_str(), "{part}");
        assert_eq!(part["lines"][0]["quantity"], quantity, "{part}");
        assert_eq!(part["shipping_address"]["city"], "Springfield", "{part}");
        deliver(&world, business, &order_id).await;
    }
    let order = world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    let history = history(&order);
    assert_eq!(history.first(), Some(&"pending"), "{order}");
    assert!(history.contains(&"processing"), "{order}");
    for part in order["fulfillments"].as_array().expect("fulfillments") {
        assert_eq!(part["status"], "delivered", "{order}");
        assert_eq!(part["tracking"]["carrier"], "UPS", "{order}");
    }

    // The customer was told every step, and mailed each one.
    world
        .wait_for_inbox(
            &civilian,
            &order_id,
            &[
                ("placed", 1),
                ("paid", 1),
                ("dispatched", 2),
                ("confirmed", 2),
                ("shipped", 2),
                ("delivered", 2),
            ],
        )
        .await;
    let order = order_settled(&world, &civilian, &order_id).await;
    points_conserved(&world, &civilian).await;
    stock_conserved(&world, &beans, 10, &[order]).await;
    one_email_per_notification(&world, &civilian).await;
}

pub async fn a_charity_pays_entirely_with_points_that_an_officer_donated(world: Arc<World>) {
    let officer = world.person(Role::Officer, 5_000).await;
    let charity = world.person(Role::Charity, 0).await;
    world
        .points
        .post("/v1/points/charities")
        .bearer(world.admin())
        .json(&json!({"charity_id": charity.id, "name": format!("Shelter {}", charity.id)}))
        .send()
        .await
        .expect_status(201);
    let listed = get(
        &world.points,
        "/v1/points/charities?limit=200",
        &officer.token,
    )
    .await;
    assert!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|c| c["charity_id"] == charity.id.to_string()),
        "the officer finds the charity: {listed}"
    );
    world
        .points
        .post("/v1/points/donations")
        .bearer(&officer.token)
        .idempotency_key(&Uuid::new_v4().to_string())
        .json(&json!({"charity_id": charity.id, "points": 3_000}))
        .send()
        .await
        .expect_status(201);
    assert_eq!(world.balance(&officer).await["available"], 2_000);
    assert_eq!(world.balance(&charity).await["available"], 3_000);

    // Two blankets at 500 points each: points pay all of it, no card.
    let shop = world.business("Outfitters").await;
    let blanket = world.offering(&shop, "Blanket", 1_000, 500, Some(4)).await;
    world.add_to_cart(&charity, &blanket, 2).await;
    let (status, submitted) = submit(
        &world,
        &charity,
        &checkout_body(1_000, None),
        &Uuid::new_v4().to_string(),
    )
    .await;
    assert_eq!(status, 201, "{submitted}");
    assert_eq!(submitted["quote"]["total_minor"], 0, "{submitted}");
    assert_eq!(
        submitted["payment"],
        json!({"authorization_id": null, "provider": null, "status": "not_required"}),
        "{submitted}"
    );
    let order_id = submitted["order_id"].as_str().expect("order id").to_owned();
    let order = world
        .wait_for_status(&charity, &order_id, "dispatched")
        .await;
    assert_eq!(order["payment"], Value::Null, "{order}");
    let history = history(&order);
    assert_eq!(history[..2], ["pending", "processing"], "{order}");
    deliver(&world, &shop, &order_id).await;
    let order = world
        .wait_for_status(&charity, &order_id, "delivered")
        .await;

    order_settled(&world, &charity, &order_id).await;
    let charity_points = points_conserved(&world, &charity).await;
    assert_eq!(charity_points.get("received"), Some(&3_000));
    assert_eq!(charity_points.get("spent"), Some(&1_000));
    let officer_points = points_conserved(&world, &officer).await;
    assert_eq!(officer_points.get("donated"), Some(&3_000));
    stock_conserved(&world, &blanket, 4, &[order]).await;
    one_email_per_notification(&world, &charity).await;
}

pub async fn three_d_secure_approved_on_the_gateway_page_completes_the_order(world: Arc<World>) {
    let shop = world.business("Bakery").await;
    let cake = world
        .offering(&shop, "Cake voucher", 4_000, 4_000, None)
        .await;
    let civilian = world.person(Role::Civilian, 1_000).await;
    world.add_to_cart(&civilian, &cake, 1).await;
    let body = checkout_body(1_000, Some("pm_card_authenticationRequired"));
    let (status, started) = submit(&world, &civilian, &body, &Uuid::new_v4().to_string()).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "requires_action", "{started}");
    assert_eq!(
        started["next_action"]["type"], "redirect_to_url",
        "{started}"
    );
    let page_url = started["next_action"]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    // Nothing is placed while the customer authenticates; the points wait.
    assert_eq!(world.balance(&civilian).await["reserved"], 1_000);

    // The customer opens the bank's page, approves, and is sent back.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let page = browser.get(&page_url).send().await.expect("the page");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.expect("html").contains("Approve"));
    let approved = browser
        .post(&page_url)
        .form(&[("verdict", "approve")])
        .send()
        .await
        .expect("the page's form");
    assert_eq!(approved.status().as_u16(), 303);
    let back = approved.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        back.starts_with(body["return_url"].as_str().expect("return url")),
        "{back}"
    );

    // Back at the shop, the checkout is confirmed and the order placed.
    let checkout_id = started["id"].as_str().expect("checkout id");
    let confirmed = world
        .checkout
        .post(&format!("/v1/checkouts/{checkout_id}/confirm"))
        .bearer(&civilian.token)
        .send()
        .await
        .expect_status(201)
        .body;
    assert_eq!(confirmed["status"], "completed", "{confirmed}");
    assert_eq!(confirmed["order_id"], started["order_id"], "{confirmed}");
    assert_eq!(confirmed["payment"]["status"], "authorized", "{confirmed}");
    let order_id = confirmed["order_id"].as_str().expect("order id").to_owned();
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    deliver(&world, &shop, &order_id).await;
    world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    let order = order_settled(&world, &civilian, &order_id).await;
    assert_eq!(order["total_minor"], 3_000, "{order}");
    points_conserved(&world, &civilian).await;
    one_email_per_notification(&world, &civilian).await;
}

pub async fn a_checkout_submitted_again_with_its_key_places_one_order(world: Arc<World>) {
    let shop = world.business("Books").await;
    let book = world.offering(&shop, "Atlas", 2_000, 1_000, Some(3)).await;
    let civilian = world.person(Role::Civilian, 400).await;
    world.add_to_cart(&civilian, &book, 1).await;
    let body = checkout_body(400, Some("pm_card_visa"));
    let key = Uuid::new_v4().to_string();

    // A double click, then a retry after the answer was lost.
    let (first, second) = tokio::join!(
        submit(&world, &civilian, &body, &key),
        submit(&world, &civilian, &body, &key)
    );
    let third = submit(&world, &civilian, &body, &key).await;
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!(first, second, "the same answer");
    assert_eq!(first, third, "the same answer");
    let order_id = first.1["order_id"].as_str().expect("order id").to_owned();
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;

    let orders = get(&world.orders, "/v1/orders?limit=100", &civilian.token).await;
    let ids: Vec<&Value> = orders["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(ids, [&json!(order_id)], "one order: {orders}");
    let authorization = first.1["payment"]["authorization_id"]
        .as_str()
        .expect("authorization");
    assert_eq!(
        world.payment(authorization).await["captures"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    deliver(&world, &shop, &order_id).await;
    world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    let order = order_settled(&world, &civilian, &order_id).await;
    let spent = points_conserved(&world, &civilian).await;
    assert_eq!(spent.get("spent"), Some(&400), "the points are spent once");
    stock_conserved(&world, &book, 3, &[order]).await;
    one_email_per_notification(&world, &civilian).await;
}
