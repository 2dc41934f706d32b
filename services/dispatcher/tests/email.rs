//! The email plugin against a local SMTP server: the business gets the part
//! with one link per answer; a link opens a page (changing nothing), its
//! POST applies the answer once; used, tampered and expired links are refused.

mod support;

use std::time::Duration;

use dispatcher::Settings;
use mail::testing::SmtpCatcher;
use mail::MailSettings;
use serde_json::json;
use support::{ready, types};
use uuid::Uuid;

const ADDRESS: &str = "orders@roastery.example";

async fn with_email(settings: Settings) -> (support::Dispatcher, SmtpCatcher, Uuid) {
    let smtp = SmtpCatcher::start().await;
    let settings = Settings {
        mail: MailSettings::smtp(smtp.url()),
        ..settings
    };
    let d = support::start_with(settings, None).await;
    let business = Uuid::new_v4();
    d.integrate(business, "email", json!({"address": ADDRESS}))
        .await
        .expect_status(200);
    (d, smtp, business)
}

/// The path of the link after `label` in the mail's text.
fn link(text: &str, label: &str) -> String {
    let line = text
        .lines()
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} link in {text}"));
    let start = line.find("/v1/dispatch/actions/").expect("an action link");
    line[start..].trim().to_owned()
}

async fn mailed_text(smtp: &SmtpCatcher, count: usize) -> String {
    test_harness::eventually(
        Duration::from_secs(20),
        "the business got its mail",
        || async { smtp.messages_to(ADDRESS).len() >= count },
    )
    .await;
    let messages = smtp.messages_to(ADDRESS);
    messages[count - 1].text().expect("a text part")
}

/// Opens a link as a browser does.
async fn open(d: &support::Dispatcher, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(d.service.url(path))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("the service answers");
    (
        response.status().as_u16(),
        response.text().await.expect("a body"),
    )
}

/// Presses the page's button, as a browser posts its form.
async fn press(d: &support::Dispatcher, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(d.service.url(path))
        .form(form)
        .send()
        .await
        .expect("the service answers");
    (
        response.status().as_u16(),
        response.text().await.expect("a body"),
    )
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).expect("problem+json")["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_mailed_link_opens_a_page_whose_button_confirms_once() {
    let (d, smtp, business) = with_email(Settings::default()).await;
    let order = Uuid::new_v4();
    let paid = ready(order, &[business]);
    d.publish_ready(&paid).await;
    d.publish_ready(&paid).await;

    let text = mailed_text(&smtp, 1).await;
    assert!(text.contains("Coffee beans"), "{text}");
    assert!(text.contains("Springfield"), "{text}");
    assert_eq!(types(&d.events_of(order, 1).await), ["order_dispatched"]);
    let confirm = link(&text, "Confirm");

    // Opening the page changes nothing.
    let (status, page) = open(&d, &confirm).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("Confirm"), "{page}");
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");

    let (status, page) = press(&d, &confirm, &[("reference", "PO-42")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("confirmed"), "{page}");
    let part = &d.queue(business, "").await[0];
    assert_eq!(part["status"], "confirmed");
    assert_eq!(part["reference"], "PO-42");
    assert_eq!(
        types(&d.events_of(order, 2).await),
        ["order_dispatched", "order_confirmed"]
    );

    // The link is used up: refused for any client, with a page for a browser.
    let (status, body) = press(&d, &confirm, &[]).await;
    assert_eq!((status, code(&body).as_str()), (410, "link_used"));
    let (status, page) = open(&d, &confirm).await;
    assert_eq!(status, 410);
    assert!(
        page.contains("<html") && page.contains("link_used"),
        "{page}"
    );

    // One message per part, however often the order arrived.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages_to(ADDRESS).len(), 1);
}

#[tokio::test]
async fn the_other_links_decline_or_ship_with_the_fields_they_need() {
    let (d, smtp, business) = with_email(Settings::default()).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    let text = mailed_text(&smtp, 1).await;
    let (confirm, decline, shipped, delivered) = (
        link(&text, "Confirm"),
        link(&text, "Decline"),
        link(&text, "Once confirmed"),
        link(&text, "Once shipped"),
    );

    // Shipping before confirming is out of order, and does not use the link up.
    let (status, body) = press(
        &d,
        &shipped,
        &[("carrier", "UPS"), ("tracking_number", "1Z")],
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (409, "invalid_transition"));
    let (status, body) = press(&d, &decline, &[("reason", "  ")]).await;
    assert_eq!((status, code(&body).as_str()), (422, "invalid_body"));
    assert_eq!(press(&d, &confirm, &[]).await.0, 200);
    let (status, body) = press(&d, &shipped, &[("carrier", "UPS")]).await;
    assert_eq!((status, code(&body).as_str()), (422, "invalid_body"));
    let (status, page) = open(&d, &shipped).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"tracking_number\""), "{page}");
    assert_eq!(
        press(
            &d,
            &shipped,
            &[("carrier", "UPS"), ("tracking_number", "1Z999")]
        )
        .await
        .0,
        200
    );
    assert_eq!(press(&d, &delivered, &[]).await.0, 200);
    // Declining a delivered part is out of order.
    let (status, body) = press(&d, &decline, &[("reason", "changed our mind")]).await;
    assert_eq!((status, code(&body).as_str()), (409, "invalid_transition"));

    assert_eq!(
        types(&d.events_of(order, 4).await),
        [
            "order_dispatched",
            "order_confirmed",
            "order_shipped",
            "order_delivered"
        ]
    );
}

#[tokio::test]
async fn a_tampered_link_is_refused() {
    let (d, smtp, business) = with_email(Settings::default()).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    let text = mailed_text(&smtp, 1).await;
    // The part is marked sent once the mail server has accepted the mail.
    test_harness::eventually(Duration::from_secs(20), "the part is sent", || async {
        d.queue(business, "").await[0]["status"] == "sent"
    })
    .await;
    let confirm = link(&text, "Confirm");
    // Another character in the signed part.
    let position = confirm.find('.').expect("a signed token") - 3;
    let mut tampered = confirm.clone().into_bytes();
    tampered[position] = if tampered[position] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let tampered = String::from_utf8(tampered).expect("ascii");

    let (status, page) = open(&d, &tampered).await;
    assert_eq!(status, 401);
    assert!(page.contains("invalid_link"), "{page}");
    let (status, body) = press(&d, &tampered, &[]).await;
    assert_eq!((status, code(&body).as_str()), (401, "invalid_link"));
    let (status, body) = press(&d, "/v1/dispatch/actions/not-a-token", &[]).await;
    assert_eq!((status, code(&body).as_str()), (401, "invalid_link"));
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");
}

#[tokio::test]
async fn an_expired_link_is_refused() {
    let settings = Settings {
        link_ttl: Duration::from_secs(1),
        ..Settings::default()
    };
    let (d, smtp, business) = with_email(settings).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    let text = mailed_text(&smtp, 1).await;
    let confirm = link(&text, "Confirm");
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (status, page) = open(&d, &confirm).await;
    assert_eq!(status, 410);
    assert!(page.contains("link_expired"), "{page}");
    let (status, body) = press(&d, &confirm, &[]).await;
    assert_eq!((status, code(&body).as_str()), (410, "link_expired"));
    assert_eq!(d.queue(business, "").await[0]["status"], "sent");
}

#[tokio::test]
async fn a_mail_server_that_refuses_for_now_is_tried_again() {
    let settings = Settings {
        delivery: dispatcher::settings::DeliverySettings {
            attempts: 4,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..Settings::default()
    };
    let (d, smtp, business) = with_email(settings).await;
    smtp.refuse_next(2);
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;

    mailed_text(&smtp, 1).await;
    assert_eq!(smtp.refused(), 2);
    assert_eq!(types(&d.events_of(order, 1).await), ["order_dispatched"]);
}

#[tokio::test]
async fn a_withdrawn_part_is_called_back_by_mail_and_its_links_stop_working() {
    let (d, smtp, business) = with_email(Settings::default()).await;
    let order = Uuid::new_v4();
    d.publish_ready(&ready(order, &[business])).await;
    let text = mailed_text(&smtp, 1).await;
    let confirm = link(&text, "Confirm");
    assert_eq!(types(&d.events_of(order, 1).await), ["order_dispatched"]);

    d.withdraw(order).await.expect_status(200);
    let notice = mailed_text(&smtp, 2).await;
    assert!(notice.contains("cancelled"), "{notice}");
    assert!(notice.contains(&order.to_string()), "{notice}");
    let (status, body) = press(&d, &confirm, &[]).await;
    assert_eq!((status, code(&body).as_str()), (409, "order_cancelled"));
}
