//! Businesses that do not use the portal: one whose own system takes its
//! parts by webhook and answers by signed webhook, and one that works from
//! the email it is sent, through the links in it.

use std::sync::Arc;
use std::time::Duration;

use http_service::Role;
use serde_json::json;
use uuid::Uuid;

use crate::buying::place;
use crate::invariants::{one_email_per_notification, order_settled, points_conserved};
use crate::world::{checkout_body, World, SETTLE};

pub async fn a_webhook_business_gets_its_part_once_and_answers_by_signed_webhook(
    world: Arc<World>,
) {
    let shop = world.business("Webhook hardware").await;
    let config = world
        .webhooks
        .open(shop.id, &format!("secret-of-{}", Uuid::new_v4()));
    world.integrate(&shop, "webhook", config).await;
    let hammer = world.offering(&shop, "Hammer", 2_400, 1_200, None).await;
    let civilian = world.person(Role::Civilian, 600).await;
    world.add_to_cart(&civilian, &hammer, 1).await;
    let order_id = place(&world, &civilian, &checkout_body(600, Some("pm_card_visa"))).await;

    // The part reaches the business's own server, signed, with what to ship.
    test_harness::eventually(SETTLE, "the business's server got the part", || async {
        !world.webhooks.deliveries(shop.id).is_empty()
    })
    .await;
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    let delivery = world.webhooks.deliveries(shop.id)[0].clone();
    assert_eq!(delivery.event, "part_placed", "{delivery:?}");
    assert!(!delivery.dispatch_id.is_empty(), "{delivery:?}");
    assert_eq!(delivery.body["order_id"], order_id.as_str(), "{delivery:?}");
    assert_eq!(
        delivery.body["lines"][0]["offering_id"],
        hammer.as_str(),
        "{delivery:?}"
    );
    assert_eq!(
        delivery.body["shipping_address"]["city"], "Springfield",
        "{delivery:?}"
    );

    let dispatcher = world.dispatch.url("");
    for answer in [
        json!({"order_id": order_id, "action": "confirm", "reference": "ERP-9"}),
        json!({"order_id": order_id, "action": "shipped", "carrier": "FedEx", "tracking_number": "FX123"}),
        json!({"order_id": order_id, "action": "delivered"}),
    ] {
        assert_eq!(
            world.webhooks.answer(&dispatcher, shop.id, &answer).await,
            200,
            "{answer}"
        );
    }
    let order = world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    assert_eq!(
        order["fulfillments"][0]["tracking"]["tracking_number"], "FX123",
        "{order}"
    );

    // One delivery per part, however long we wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        world.webhooks.deliveries(shop.id).len(),
        1,
        "one delivery per part"
    );
    assert_eq!(world.webhooks.forged(), 0, "every request was signed");
    order_settled(&world, &civilian, &order_id).await;
    points_conserved(&world, &civilian).await;
    one_email_per_notification(&world, &civilian).await;
}

/// The path of the link on the line starting with `label`.
fn link(text: &str, label: &str) -> String {
    let line = text
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} link in {text}"));
    let start = line.find("/v1/dispatch/actions/").expect("an action link");
    line[start..].trim().to_owned()
}

pub async fn an_email_business_acts_through_the_links_it_was_mailed(world: Arc<World>) {
    let shop = world.business("Mail-order tailor").await;
    let address = format!("orders-{}@tailor.journeys.heyblue.local", shop.id);
    world
        .integrate(&shop, "email", json!({"address": address}))
        .await;
    let scarf = world.offering(&shop, "Scarf", 3_500, 3_500, Some(2)).await;
    let civilian = world.person(Role::Civilian, 0).await;
    world.add_to_cart(&civilian, &scarf, 1).await;
    let order_id = place(&world, &civilian, &checkout_body(0, Some("pm_card_visa"))).await;

    test_harness::eventually(SETTLE, "the business got its mail", || async {
        !world.smtp.messages_to(&address).is_empty()
    })
    .await;
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    let text = world.smtp.messages_to(&address)[0]
        .text()
        .expect("a text part");
    assert!(text.contains("Scarf"), "{text}");
    assert!(text.contains("Springfield"), "{text}");

    let browser = reqwest::Client::new();
    let open = |path: String| {
        let url = world.dispatch.url(&path);
        let browser = browser.clone();
        async move {
            let page = browser
                .get(url)
                .header("accept", "text/html")
                .send()
                .await
                .expect("the page");
            (page.status().as_u16(), page.text().await.expect("html"))
        }
    };
    let press = |path: String, form: Vec<(&'static str, &'static str)>| {
        let url = world.dispatch.url(&path);
        let browser = browser.clone();
        async move {
            browser
                .post(url)
                .form(&form)
                .send()
                .await
                .expect("the form")
                .status()
                .as_u16()
        }
    };
    let confirm = link(&text, "Confirm");
    // Opening the page changes nothing; its button does.
    let (status, page) = open(confirm.clone()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<form"), "{page}");
    assert_eq!(
        world.order(&civilian, &order_id).await["status"],
        "dispatched"
    );
    assert_eq!(
        press(confirm.clone(), vec![("reference", "T-7")]).await,
        200
    );
    assert_eq!(press(confirm, vec![]).await, 410, "a link works once");
    assert_eq!(
        press(
            link(&text, "Once confirmed"),
            vec![("carrier", "USPS"), ("tracking_number", "9400")]
        )
        .await,
        200
    );
    assert_eq!(press(link(&text, "Once shipped"), vec![]).await, 200);
    let order = world
        .wait_for_status(&civilian, &order_id, "delivered")
        .await;
    assert_eq!(
        order["fulfillments"][0]["tracking"]["carrier"], "USPS",
        "{order}"
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        world.smtp.messages_to(&address).len(),
        1,
        "one message per part"
    );
    order_settled(&world, &civilian, &order_id).await;
    points_conserved(&world, &civilian).await;
    one_email_per_notification(&world, &civilian).await;
}
