//! What a shopper and a business do on the webshop's pages.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use test_harness::{eventually, Api, Browser, Page};
use uuid::Uuid;

use crate::fixture::Fleet;

/// How long the fleet gets to carry an order to where a test looks.
const ORDER_TIMEOUT: Duration = Duration::from_secs(60);

fn webshop(fleet: &Fleet) -> String {
    fleet.urls["webshop"].clone()
}

/// A browser signed in on the demo page as the user whose label starts
/// with `who` (an email address).
async fn signed_in(fleet: &Fleet, who: &str) -> Browser {
    let browser = Browser::new(webshop(fleet));
    let page = browser.get("/sign-in").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let user = radio_value_for(&page, who);
    let signed_in = browser
        .post_form(
            "/sign-in/demo",
            &[("form_token", &page.field("form_token")), ("user", &user)],
        )
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    browser
}

/// The `value` of the radio button whose label starts with `label`.
fn radio_value_for(page: &Page, label: &str) -> String {
    let at = page
        .body
        .find(&format!(">{label}"))
        .unwrap_or_else(|| panic!("no demo user {label:?} on:\n{}", page.body));
    let before = &page.body[..at];
    let value_at = before.rfind("value=\"").expect("a radio value") + "value=\"".len();
    let rest = &before[value_at..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// The `href` of the link whose `id` is `id`, unescaped.
fn link_with_id(page: &Page, id: &str) -> String {
    let needle = format!("id=\"{id}\" href=\"");
    let start = page
        .body
        .find(&needle)
        .unwrap_or_else(|| panic!("no link {id:?} on:\n{}", page.body))
        + needle.len();
    let end = start + page.body[start..].find('"').expect("closing quote");
    page.body[start..end]
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&")
}

/// Empties the civilian's cart through the webshop's API route.
async fn empty_cart(fleet: &Fleet) {
    let api = Api::unchecked(webshop(fleet));
    let emptied = api
        .delete("/v1/cart")
        .bearer(&fleet.token("civilian").token)
        .send()
        .await;
    assert!(
        emptied.status.is_success(),
        "{}: {}",
        emptied.status,
        emptied.body
    );
}

/// The first offering the storefront shows for `q`.
async fn find_offering(browser: &Browser, q: &str) -> Uuid {
    let query = serde_urlencoded_q(q);
    let page = browser.get(&format!("/?q={query}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let at = page
        .body
        .find("href=\"/offerings/")
        .unwrap_or_else(|| panic!("no offering for {q:?}:\n{}", page.body))
        + "href=\"/offerings/".len();
    page.body[at..at + 36].parse().expect("an offering id")
}

fn serde_urlencoded_q(q: &str) -> String {
    q.replace(' ', "+")
}

/// Puts `quantity` of `offering` in the cart from its page.
async fn add_to_cart(browser: &Browser, offering: Uuid, quantity: &str) -> Page {
    let page = browser.get(&format!("/offerings/{offering}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let added = browser
        .post_form(
            "/cart/items",
            &[
                ("csrf", &page.field("csrf")),
                ("offering_id", &offering.to_string()),
                ("quantity", quantity),
            ],
        )
        .await;
    browser.follow(added).await
}

/// Fills the checkout form with an address, `points` and `card`, and submits it.
async fn check_out(browser: &Browser, points: &str, card: &str) -> Page {
    let form = browser.get("/checkout").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("Total to pay"), "{}", form.body);
    browser
        .post_form(
            "/checkout",
            &[
                ("csrf", &form.field("csrf")),
                ("idempotency_key", &form.field("idempotency_key")),
                ("points_to_redeem", points),
                ("name", "Dana Webshop"),
                ("line1", "1 Main St"),
                ("line2", ""),
                ("city", "Springfield"),
                ("postal_code", "12345"),
                ("country", "US"),
                ("payment_method", card),
            ],
        )
        .await
}

/// The order id of `/orders/<id>?placed=1`.
fn placed_order(page: &Page) -> Uuid {
    let location = page
        .location
        .as_deref()
        .unwrap_or_else(|| panic!("no redirect ({}):\n{}", page.status, page.body));
    let id = location
        .strip_prefix("/orders/")
        .and_then(|rest| rest.split('?').next())
        .unwrap_or_else(|| panic!("not an order page: {location}"));
    id.parse().expect("an order id")
}

/// The order page once the order is `status` (as the page words it).
async fn order_page_once(browser: &Browser, order: Uuid, status: &str) -> Page {
    let shown = format!("<strong id=\"order-status\">{status}</strong>");
    let deadline = std::time::Instant::now() + ORDER_TIMEOUT;
    loop {
        let page = browser.get(&format!("/orders/{order}")).await;
        if page.status == 200 && page.body.contains(&shown) {
            return page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order {order} is not {status} in time:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn the_api_is_forwarded_by_path_prefix_to_the_service_that_owns_it(fleet: Arc<Fleet>) {
    let through_webshop = Api::unchecked(webshop(&fleet));
    let catalog = Api::new(fleet.urls["catalog"].clone());

    let offerings = through_webshop
        .get("/v1/offerings?q=coffee&limit=5")
        .send()
        .await
        .expect_status(200);
    let direct = catalog
        .get("/v1/offerings?q=coffee&limit=5")
        .send()
        .await
        .expect_status(200);
    assert_eq!(offerings.body, direct.body);
    assert!(!offerings.body["items"]
        .as_array()
        .expect("items")
        .is_empty());

    // The caller's token goes along, so each service applies its own rules.
    let civilian = &fleet.token("civilian").token;
    let balance = through_webshop
        .get("/v1/points/balance")
        .bearer(civilian)
        .send()
        .await
        .expect_status(200);
    assert_eq!(
        balance.body["user_id"],
        fleet.token("civilian").user_id.to_string()
    );
    through_webshop
        .get("/v1/points/balance")
        .send()
        .await
        .expect_status(401);
    // A service's refusal comes back as it gave it.
    through_webshop
        .get(&format!("/v1/orders/{}", Uuid::new_v4()))
        .bearer(civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
    through_webshop
        .put(&format!("/v1/cart/items/{}", Uuid::new_v4()))
        .bearer(civilian)
        .json(&json!({ "quantity": 0 }))
        .send()
        .await
        .expect_status(422);
}

pub async fn a_civilian_signs_in_fills_a_cart_checks_out_with_a_card_and_sees_the_order(
    fleet: Arc<Fleet>,
) {
    empty_cart(&fleet).await;
    let browser = signed_in(&fleet, "civilian@").await;

    let coffee = find_offering(&browser, "house blend").await;
    let cart = add_to_cart(&browser, coffee, "2").await;
    assert_eq!(cart.status, 200, "{}", cart.body);
    assert!(cart.body.contains("House Blend"), "{}", cart.body);
    assert!(cart.body.contains("value=\"2\""), "{}", cart.body);

    // Changing the quantity to something the cart refuses says why and
    // keeps what was typed.
    let refused = browser
        .post_form(
            &format!("/cart/items/{coffee}"),
            &[("csrf", &cart.field("csrf")), ("quantity", "100")],
        )
        .await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("from 1 to 99"), "{}", refused.body);
    assert!(refused.body.contains("value=\"100\""));
    let changed = browser
        .post_form(
            &format!("/cart/items/{coffee}"),
            &[("csrf", &cart.field("csrf")), ("quantity", "1")],
        )
        .await;
    let cart = browser.follow(changed).await;
    assert!(cart.body.contains("value=\"1\""), "{}", cart.body);

    let placed = check_out(&browser, "500", "pm_card_visa").await;
    assert_eq!(placed.status, 303, "{}", placed.body);
    let order = placed_order(&placed);

    let page = order_page_once(&browser, order, "Dispatched").await;
    assert!(page.body.contains(&format!("Order {order}")));
    assert!(page.body.contains("House Blend"));
    assert!(
        page.body.contains("500 points took off $5.00"),
        "{}",
        page.body
    );
    // The history starts with `pending`, oldest first.
    let pending = page.body.find(": Pending").expect("pending in the history");
    let dispatched = page.body.rfind(": Dispatched").expect("dispatched");
    assert!(pending < dispatched);
    let orders = browser.get("/orders").await;
    assert!(orders.body.contains(&order.to_string()));
    let cart = browser.get("/cart").await;
    assert!(cart.body.contains("Your cart is empty"), "{}", cart.body);
}

pub async fn a_declined_card_is_told_on_the_checkout_page_which_keeps_what_was_typed(
    fleet: Arc<Fleet>,
) {
    empty_cart(&fleet).await;
    let browser = signed_in(&fleet, "civilian@").await;
    let cage = find_offering(&browser, "bottle cage").await;
    add_to_cart(&browser, cage, "1").await;

    let declined = check_out(&browser, "0", "pm_card_chargeDeclined").await;

    assert_eq!(declined.status, 200, "{}", declined.body);
    assert!(
        declined.body.contains("class=\"problem\""),
        "{}",
        declined.body
    );
    assert!(declined.body.contains("declined"), "{}", declined.body);
    assert!(declined.body.contains("value=\"Dana Webshop\""));
    assert!(declined.body.contains("value=\"Springfield\""));
    // Nothing was bought: the cart still holds the cage.
    let cart = browser.get("/cart").await;
    assert!(cart.body.contains("Bottle cage"), "{}", cart.body);
}

pub async fn three_d_secure_approved_at_the_gateway_comes_back_and_places_the_order(
    fleet: Arc<Fleet>,
) {
    empty_cart(&fleet).await;
    let browser = signed_in(&fleet, "civilian@").await;
    let lock = find_offering(&browser, "u-lock").await;
    add_to_cart(&browser, lock, "1").await;

    let asked = check_out(&browser, "0", "pm_card_authenticationRequired").await;
    // A page of the shop's own leads on (a redirect would break the
    // page's `form-action`), by a link and a refresh to the same address.
    assert_eq!(asked.status, 200, "{}", asked.body);
    let gateway_page = link_with_id(&asked, "authenticate");
    assert!(
        asked.body.contains("http-equiv=\"refresh\""),
        "{}",
        asked.body
    );
    assert!(
        gateway_page.starts_with(&fleet.urls["payment-gateway"]),
        "{gateway_page}"
    );
    let authentication = browser.get(&gateway_page).await;
    assert_eq!(authentication.status, 200);
    let approved = browser
        .post_form(&gateway_page, &[("verdict", "approve")])
        .await;
    assert_eq!(approved.status, 303);
    let back = approved.location.clone().expect("back to the shop");
    assert!(back.starts_with(&webshop(&fleet)), "{back}");
    assert!(back.ends_with("/checkout/return"), "{back}");

    let confirmed = browser.get(&back).await;
    let order = placed_order(&confirmed);
    order_page_once(&browser, order, "Dispatched").await;
}

pub async fn nobody_sees_another_users_order_page(fleet: Arc<Fleet>) {
    empty_cart(&fleet).await;
    let api = Api::unchecked(webshop(&fleet));
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
    let order = checkout.body["order_id"]
        .as_str()
        .expect("an order id")
        .to_owned();
    let owner = signed_in(&fleet, "civilian@").await;
    eventually(ORDER_TIMEOUT, "the owner sees the order", || async {
        owner.get(&format!("/orders/{order}")).await.status == 200
    })
    .await;

    let charity = signed_in(&fleet, "charity@").await;
    let page = charity.get(&format!("/orders/{order}")).await;

    assert_eq!(page.status, 404);
    assert!(page.is_html());
    assert!(page.body.contains("not yours to see"), "{}", page.body);
    assert!(!page.body.contains("Springfield"));
}

pub async fn a_business_sees_its_part_and_confirms_and_ships_it(fleet: Arc<Fleet>) {
    empty_cart(&fleet).await;
    let shopper = signed_in(&fleet, "civilian@").await;
    let repair = find_offering(&shopper, "basic tune-up").await;
    add_to_cart(&shopper, repair, "1").await;
    let placed = check_out(&shopper, "0", "pm_card_visa").await;
    let order = placed_order(&placed);
    order_page_once(&shopper, order, "Dispatched").await;

    let business = signed_in(&fleet, "bikes@").await;
    let queue = business.get("/business").await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    let part = format!("/business/orders/{order}");
    assert!(queue.body.contains(&part), "{}", queue.body);
    assert!(queue.body.contains("Dana Webshop"));

    let confirmed = business
        .post_form(
            &format!("{part}/confirm"),
            &[("csrf", &queue.field("csrf")), ("reference", "SC-1")],
        )
        .await;
    let queue = business.follow(confirmed).await;
    // Shipping without a tracking number is refused by the dispatcher and
    // the page keeps the carrier typed.
    let refused = business
        .post_form(
            &format!("{part}/ship"),
            &[
                ("csrf", &queue.field("csrf")),
                ("carrier", "UPS"),
                ("tracking_number", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("class=\"problem\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"UPS\""));
    let shipped = business
        .post_form(
            &format!("{part}/ship"),
            &[
                ("csrf", &queue.field("csrf")),
                ("carrier", "UPS"),
                ("tracking_number", "1Z999"),
            ],
        )
        .await;
    business.follow(shipped).await;

    let page = order_page_once(&shopper, order, "Shipped").await;
    assert!(page.body.contains("UPS 1Z999"), "{}", page.body);
}

/// An open event stream of an order page, read as text.
struct EventStream {
    response: reqwest::Response,
    received: String,
}

impl EventStream {
    /// Opens `/orders/<order>/events` with `browser`'s session cookie.
    async fn open(fleet: &Fleet, browser: &Browser, order: Uuid) -> EventStream {
        let session = browser.cookie("heyblue_session").expect("a session cookie");
        let response = reqwest::Client::new()
            .get(format!("{}/orders/{order}/events", webshop(fleet)))
            .header("cookie", format!("heyblue_session={session}"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the event stream opens");
        EventStream {
            response,
            received: String::new(),
        }
    }

    /// Reads until an `order` event carries `text`; that event's data.
    async fn until_order_shows(&mut self, text: &str) -> String {
        let deadline = std::time::Instant::now() + ORDER_TIMEOUT;
        loop {
            while let Some(end) = self.received.find("\n\n") {
                let event: String = self.received.drain(..end + 2).collect();
                if event.lines().any(|line| line == "event: order") {
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|line| {
                            line.strip_prefix("data: ").or(line.strip_prefix("data:"))
                        })
                        .collect();
                    let data = data.join("\n");
                    if data.contains(text) {
                        return data;
                    }
                }
            }
            let chunk = tokio::time::timeout_at(deadline.into(), self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event showed {text:?} in time"))
                .expect("the stream reads")
                .unwrap_or_else(|| panic!("the stream ended before showing {text:?}"));
            self.received.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

pub async fn the_order_page_is_kept_current_by_server_sent_events(fleet: Arc<Fleet>) {
    empty_cart(&fleet).await;
    let shopper = signed_in(&fleet, "civilian@").await;
    let repair = find_offering(&shopper, "basic tune-up").await;
    add_to_cart(&shopper, repair, "1").await;
    let placed = check_out(&shopper, "0", "pm_card_visa").await;
    let order = placed_order(&placed);
    let page = order_page_once(&shopper, order, "Dispatched").await;
    // The page names its stream and loads the script from the webshop, as
    // the Content-Security-Policy allows nothing inline.
    assert!(
        page.body
            .contains(&format!("data-events=\"/orders/{order}/events\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("<script src=\"/static/order-live.js\""));
    let script = shopper.get("/static/order-live.js").await;
    assert_eq!(script.status, 200);
    assert!(script.content_type.starts_with("text/javascript"));
    assert!(script.body.contains("EventSource"));

    let mut stream = EventStream::open(&fleet, &shopper, order).await;
    assert_eq!(stream.response.status(), 200);
    let content_type = stream.response.headers()["content-type"]
        .to_str()
        .expect("a content type")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let first = stream
        .until_order_shows("id=\"order-status\">Dispatched<")
        .await;
    assert!(first.contains("Cancel this order"), "{first}");

    // The business confirms through the API; the open stream tells it,
    // and the cancel button is gone.
    let business = signed_in(&fleet, "bikes@").await;
    let queue = business.get("/business").await;
    let confirmed = business
        .post_form(
            &format!("/business/orders/{order}/confirm"),
            &[("csrf", &queue.field("csrf")), ("reference", "")],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    let after = stream.until_order_shows("part-status\">Confirmed<").await;
    assert!(!after.contains("Cancel this order"), "{after}");

    // Another user's order has no stream for them.
    let charity = signed_in(&fleet, "charity@").await;
    let refused = charity.get(&format!("/orders/{order}/events")).await;
    assert_eq!(refused.status, 404);
    assert!(refused.is_html());
}

pub async fn an_officer_gives_points_to_a_charity_and_a_refusal_keeps_the_form(fleet: Arc<Fleet>) {
    let officer = signed_in(&fleet, "officer@").await;
    let page = officer.get("/points").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Give points to a charity"),
        "{}",
        page.body
    );
    let available = |page: &Page| -> i64 {
        let at = page
            .body
            .find("id=\"points-available\">")
            .expect("the balance")
            + "id=\"points-available\">".len();
        let digits: String = page.body[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().expect("a number of points")
    };
    let before = available(&page);
    let charity = {
        let at = page
            .body
            .find("<option value=\"")
            .expect("a charity to choose")
            + "<option value=\"".len();
        page.body[at..at + 36].to_owned()
    };

    // More than the officer has: told, and what was typed is kept.
    let refused = officer
        .post_form(
            "/points/donations",
            &[
                ("csrf", &page.field("csrf")),
                ("idempotency_key", &page.field("idempotency_key")),
                ("charity_id", &charity),
                ("points", "999999999"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("class=\"problem\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"999999999\""));
    assert!(refused
        .body
        .contains(&format!("value=\"{charity}\" selected")));
    assert_eq!(available(&refused), before);

    let given = officer
        .post_form(
            "/points/donations",
            &[
                ("csrf", &refused.field("csrf")),
                ("idempotency_key", &refused.field("idempotency_key")),
                ("charity_id", &charity),
                ("points", "150"),
            ],
        )
        .await;
    assert_eq!(given.status, 303, "{}", given.body);
    let after = officer.follow(given).await;
    assert!(after.body.contains("you gave 150 points"), "{}", after.body);
    assert_eq!(available(&after), before - 150);

    // Only officers give.
    let civilian = signed_in(&fleet, "civilian@").await;
    let page = civilian.get("/points").await;
    assert!(!page.body.contains("Give points to a charity"));
    let forbidden = civilian
        .post_form(
            "/points/donations",
            &[
                ("csrf", &page.field("csrf")),
                ("idempotency_key", "k"),
                ("charity_id", &charity),
                ("points", "1"),
            ],
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.is_html());
}

/// The id in the first `href="/business/offerings/<id>"` before `title`.
fn offering_id_before(page: &Page, title: &str) -> String {
    let at = page
        .body
        .find(&format!(">{title}<"))
        .unwrap_or_else(|| panic!("no {title:?} on:\n{}", page.body));
    let link = "href=\"/business/offerings/";
    let start = page.body[..at].rfind(link).expect("its link") + link.len();
    page.body[start..start + 36].to_owned()
}

pub async fn a_business_lists_changes_and_takes_an_offering_off_sale(fleet: Arc<Fleet>) {
    let title = format!("Spoke truing {}", &Uuid::new_v4().simple().to_string()[..6]);
    let business = signed_in(&fleet, "bikes@").await;
    let listed = business.get("/business/offerings").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("Basic tune-up"), "{}", listed.body);

    let form = business.get("/business/offerings/new").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let create = |price: &'static str, points: &'static str| {
        let (csrf, title) = (form.field("csrf"), title.clone());
        let business = &business;
        async move {
            business
                .post_form(
                    "/business/offerings",
                    &[
                        ("csrf", &csrf),
                        ("title", &title),
                        ("description", "Wheels trued while you wait."),
                        ("kind", "service"),
                        ("price", price),
                        ("points_price", points),
                        ("stock", ""),
                        ("active", "on"),
                    ],
                )
                .await
        }
    };
    // A price the form cannot read, then one catalog refuses: each told,
    // with what was typed kept.
    let unreadable = create("12,50", "1250").await;
    assert_eq!(unreadable.status, 200, "{}", unreadable.body);
    assert!(unreadable.body.contains("class=\"problem\""));
    assert!(unreadable.body.contains("value=\"12,50\""));
    assert!(unreadable.body.contains(&format!("value=\"{title}\"")));
    let refused = create("12.50", "0").await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("class=\"problem\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"0\""));

    let created = create("12.5", "1250").await;
    assert_eq!(created.status, 303, "{}", created.body);
    let listed = business.follow(created).await;
    assert!(listed.body.contains("$12.50"), "{}", listed.body);
    let id = offering_id_before(&listed, &title);

    // Changing price and stock.
    let edit = business.get(&format!("/business/offerings/{id}")).await;
    assert_eq!(edit.status, 200, "{}", edit.body);
    assert!(edit.body.contains("value=\"12.50\""), "{}", edit.body);
    let saved = business
        .post_form(
            &format!("/business/offerings/{id}"),
            &[
                ("csrf", &edit.field("csrf")),
                ("title", &title),
                ("description", "Wheels trued while you wait."),
                ("price", "14"),
                ("points_price", "1400"),
                ("stock", "3"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let offering = business.get(&format!("/offerings/{id}")).await;
    assert!(offering.body.contains("$14.00"), "{}", offering.body);
    assert!(offering.body.contains("Only 3 left"), "{}", offering.body);

    // Off sale: the shop no longer finds it; the business still lists it.
    let off = business
        .post_form(
            &format!("/business/offerings/{id}/active"),
            &[("csrf", &edit.field("csrf")), ("active", "false")],
        )
        .await;
    assert_eq!(off.status, 303, "{}", off.body);
    let listed = business.follow(off).await;
    assert!(listed.body.contains(&title));
    assert!(listed.body.contains("Put on sale"), "{}", listed.body);
    let shop = Browser::new(webshop(&fleet));
    let found = shop.get(&format!("/?q={}", title.replace(' ', "+"))).await;
    assert!(!found.body.contains(&id), "{}", found.body);

    // Another business cannot open it.
    let roaster = signed_in(&fleet, "roaster@").await;
    let other = roaster.get(&format!("/business/offerings/{id}")).await;
    assert_eq!(other.status, 404);
    let civilian = signed_in(&fleet, "civilian@").await;
    assert_eq!(civilian.get("/business/offerings").await.status, 403);
}

pub async fn an_admin_registers_a_business_and_a_charity_and_sets_how_parts_reach_it(
    fleet: Arc<Fleet>,
) {
    let admin = signed_in(&fleet, "admin@").await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Northside"), "{}", page.body);
    assert!(page.body.contains("Blue Line Family Fund"), "{}", page.body);
    let csrf = page.field("csrf");
    let name = format!(
        "Corner Bakery {}",
        &Uuid::new_v4().simple().to_string()[..6]
    );

    // A business: refused with what was typed, then registered.
    let refused = admin
        .post_form(
            "/admin/businesses",
            &[
                ("csrf", &csrf),
                ("name", &name),
                ("contact_email", "not-an-email"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("class=\"problem\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"not-an-email\""));
    let registered = admin
        .post_form(
            "/admin/businesses",
            &[
                ("csrf", &csrf),
                ("name", &name),
                ("contact_email", "orders@bakery.example"),
            ],
        )
        .await;
    assert_eq!(registered.status, 303, "{}", registered.body);
    let page = admin.follow(registered).await;
    assert!(page.body.contains(&name), "{}", page.body);
    let business = {
        let at = page.body.find(&format!(">{name}<")).expect("the business");
        let marker = "id=\"business-";
        let start = page.body[..at].rfind(marker).expect("its id") + marker.len();
        page.body[start..start + 36].to_owned()
    };

    // How its parts reach it: an address the dispatcher refuses, then email.
    let path = format!("/admin/integrations/{business}");
    let refused = admin
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("plugin", "email"),
                ("email_address", "nope"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(
        refused.body.contains("class=\"problem\""),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"nope\""));
    let stored = admin
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("plugin", "email"),
                ("email_address", "parts@bakery.example"),
            ],
        )
        .await;
    assert_eq!(stored.status, 303, "{}", stored.body);
    let page = admin.follow(stored).await;
    assert!(
        page.body.contains("Email to parts@bakery.example"),
        "{}",
        page.body
    );

    // A charity: an id that is no id is told; a new one is listed.
    let refused = admin
        .post_form(
            "/admin/charities",
            &[
                ("csrf", &csrf),
                ("charity_id", "abc"),
                ("name", "Food Bank"),
            ],
        )
        .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(refused.body.contains("class=\"problem\""));
    assert!(refused.body.contains("value=\"Food Bank\""));
    let charity = format!("Food Bank {}", &Uuid::new_v4().simple().to_string()[..6]);
    let registered = admin
        .post_form(
            "/admin/charities",
            &[
                ("csrf", &csrf),
                ("charity_id", &Uuid::new_v4().to_string()),
                ("name", &charity),
            ],
        )
        .await;
    assert_eq!(registered.status, 303, "{}", registered.body);
    assert!(admin.follow(registered).await.body.contains(&charity));

    // Nobody else sees these pages.
    let civilian = signed_in(&fleet, "civilian@").await;
    let page = civilian.get("/admin").await;
    assert_eq!(page.status, 403);
    assert!(page.is_html());
}

pub async fn a_shopper_reads_the_notifications_of_their_order_and_marks_one_read(
    fleet: Arc<Fleet>,
) {
    empty_cart(&fleet).await;
    let shopper = signed_in(&fleet, "civilian@").await;
    let cage = find_offering(&shopper, "bottle cage").await;
    add_to_cart(&shopper, cage, "1").await;
    let placed = check_out(&shopper, "0", "pm_card_visa").await;
    let order = placed_order(&placed);

    let mut page = shopper.get("/notifications").await;
    let deadline = std::time::Instant::now() + ORDER_TIMEOUT;
    while !page.body.contains(&format!("/orders/{order}")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no notification of order {order}:\n{}",
            page.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        page = shopper.get("/notifications").await;
    }
    assert_eq!(page.status, 200);
    // The newest comes first, unread, with a form to mark it read.
    let first = page.body.find("<section").expect("a notification");
    assert!(
        page.body[first..].contains("class=\"badge\">New<"),
        "{}",
        page.body
    );
    let action = "action=\"/notifications/";
    let start = page.body[first..].find(action).expect("its form") + first + action.len();
    let id = page.body[start..start + 36].to_owned();
    let read = shopper
        .post_form(
            &format!("/notifications/{id}/read"),
            &[("csrf", &page.field("csrf"))],
        )
        .await;
    assert_eq!(read.status, 303, "{}", read.body);
    let page = shopper.follow(read).await;
    assert!(!page.body.contains(&format!("/notifications/{id}/read")));

    // Another user's notification cannot be marked.
    let charity = signed_in(&fleet, "charity@").await;
    let page = charity.get("/notifications").await;
    let refused = charity
        .post_form(
            &format!("/notifications/{id}/read"),
            &[("csrf", &page.field("csrf"))],
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.body);
}
