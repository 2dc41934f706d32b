//! What every journey shares: one fleet started by the launcher, its
//! services' APIs, the local third parties (an SMTP recorder for every
//! email, a business's webhook server), and the people of a journey —
//! each journey signs up users and businesses of its own, so journeys run
//! side by side on one fleet, and again on the same fleet, without meeting.

use std::time::Duration;

use http_service::{mint_hs256, Claims, Role};
use mail::testing::SmtpCatcher;
use serde_json::{json, Value};
use test_harness::Api;
use uuid::Uuid;

use crate::business::WebhookBusiness;
use crate::fixture::{Fleet, JWT_SECRET};

/// Long enough for about ten hops through the broker on a busy machine
/// running several journeys at once.
pub const SETTLE: Duration = Duration::from_secs(90);

/// How long the journeys' tokens stay valid.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The fleet and its third parties.
pub struct World {
    pub catalog: Api,
    pub cart: Api,
    pub checkout: Api,
    pub points: Api,
    pub payments: Api,
    pub orders: Api,
    pub dispatch: Api,
    pub notifications: Api,
    /// `KAFKA_BOOTSTRAP` of the fleet's broker.
    pub bootstrap: String,
    /// Every email the fleet sent.
    pub smtp: SmtpCatcher,
    /// The server of every business that takes its parts by webhook.
    pub webhooks: WebhookBusiness,
    admin: String,
    /// The launcher, for the fault journeys' crashes and outages.
    pub fleet: Fleet,
}

/// A person of one journey.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

/// A business of one journey and its owner's token.
#[derive(Debug, Clone)]
pub struct Business {
    pub id: Uuid,
    pub token: String,
}

impl World {
    pub fn new(fleet: Fleet, smtp: SmtpCatcher, webhooks: WebhookBusiness) -> World {
        let api = |service: &str| Api::new(fleet.urls[service].clone());
        World {
            catalog: api("catalog"),
            cart: api("cart"),
            checkout: api("checkout"),
            points: api("user-points"),
            payments: api("payment-gateway"),
            orders: api("order"),
            dispatch: api("dispatcher"),
            notifications: api("notification"),
            bootstrap: fleet.banner["KAFKA_BOOTSTRAP"].clone(),
            smtp,
            webhooks,
            admin: fleet.token("admin").token.clone(),
            fleet,
        }
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// A new user in `role` with an email address of their own, holding
    /// `points` awarded by an admin (none when 0).
    pub async fn person(&self, role: Role, points: i64) -> Person {
        let id = Uuid::new_v4();
        let email = format!("{}-{id}@journeys.heyblue.local", role.as_str());
        let token = mint_hs256(
            JWT_SECRET,
            &Claims::new(id, role, TOKEN_TTL).with_email(email.clone()),
        );
        let person = Person { id, email, token };
        if points > 0 {
            self.award(&person, points).await;
        }
        person
    }

    pub async fn award(&self, person: &Person, points: i64) {
        self.points
            .post("/v1/points/awards")
            .bearer(&self.admin)
            .json(&json!({
                "award_id": Uuid::new_v4(),
                "user_id": person.id,
                "points": points,
                "reason": "journey: connection points",
            }))
            .send()
            .await
            .expect_status(201);
    }

    /// A new business, registered by an admin, and a token for its owner.
    pub async fn business(&self, name: &str) -> Business {
        let created = self
            .catalog
            .post("/v1/businesses")
            .bearer(&self.admin)
            .idempotency_key(&Uuid::new_v4().to_string())
            .json(&json!({
                "name": format!("{name} {}", Uuid::new_v4()),
                "contact_email": "orders@business.journeys.heyblue.local",
            }))
            .send()
            .await
            .expect_status(201)
            .body;
        let id: Uuid = created["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("business id");
        let token = mint_hs256(
            JWT_SECRET,
            &Claims::new(Uuid::new_v4(), Role::Business, TOKEN_TTL).with_business_id(id),
        );
        Business { id, token }
    }

    /// Sets how `business` takes its parts (`portal`, `webhook`, `email`).
    pub async fn integrate(&self, business: &Business, plugin: &str, config: Value) {
        self.dispatch
            .put(&format!("/v1/dispatch/integrations/{}", business.id))
            .bearer(&self.admin)
            .json(&json!({"plugin": plugin, "config": config}))
            .send()
            .await
            .expect_status(200);
    }

    /// A product of `business`; `stock` None is unlimited. Returns its id.
    pub async fn offering(
        &self,
        business: &Business,
        title: &str,
        price_minor: i64,
        points_price: i64,
        stock: Option<i64>,
    ) -> String {
        let created = self
            .catalog
            .post("/v1/offerings")
            .bearer(&business.token)
            .idempotency_key(&Uuid::new_v4().to_string())
            .json(&json!({
                "business_id": business.id,
                "title": title,
                "description": format!("{title}, made for a journey"),
                "kind": "product",
                "price_minor": price_minor,
                "currency": "USD",
                "points_price": points_price,
                "stock": stock,
            }))
            .send()
            .await
            .expect_status(201)
            .body;
        created["id"].as_str().expect("offering id").to_owned()
    }

    pub async fn stock(&self, offering: &str) -> Option<i64> {
        self.catalog
            .get(&format!("/v1/offerings/{offering}"))
            .send()
            .await
            .expect_status(200)
            .body["stock"]
            .as_i64()
    }

    pub async fn add_to_cart(&self, person: &Person, offering: &str, quantity: u32) {
        self.cart
            .put(&format!("/v1/cart/items/{offering}"))
            .bearer(&person.token)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .expect_status(200);
    }

    pub async fn cart_items(&self, person: &Person) -> Value {
        get(&self.cart, "/v1/cart", &person.token).await["items"].clone()
    }

    pub async fn balance(&self, person: &Person) -> Value {
        get(&self.points, "/v1/points/balance", &person.token).await
    }

    pub async fn order(&self, person: &Person, order_id: &str) -> Value {
        get(
            &self.orders,
            &format!("/v1/orders/{order_id}"),
            &person.token,
        )
        .await
    }

    /// Waits until the order is `status`, and returns it.
    pub async fn wait_for_status(&self, person: &Person, order_id: &str, status: &str) -> Value {
        self.wait_for_order(
            person,
            order_id,
            &format!("the order is {status}"),
            |order| order["status"] == status,
        )
        .await
    }

    /// Waits until `check` holds of the order, and returns it.
    pub async fn wait_for_order(
        &self,
        person: &Person,
        order_id: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let settled = tokio::time::timeout(SETTLE, async {
            loop {
                // The order exists once the order service has seen it
                // submitted: 404 until then.
                let answer = self
                    .orders
                    .get(&format!("/v1/orders/{order_id}"))
                    .bearer(&person.token)
                    .send()
                    .await;
                last = answer.body;
                if answer.status.as_u16() == 200 && check(&last) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(settled.is_ok(), "timed out waiting until {what}: {last}");
        last
    }

    /// The authorization as the payment gateway keeps it.
    pub async fn payment(&self, authorization_id: &str) -> Value {
        get(
            &self.payments,
            &format!("/v1/payments/{authorization_id}"),
            &self.admin,
        )
        .await
    }

    /// The business's part of the order in its portal queue, once there.
    pub async fn part(&self, business: &Business, order_id: &str) -> Value {
        let path = format!("/v1/dispatch/businesses/{}/orders", business.id);
        until("the part is in the business's queue", || async {
            let queue = get(&self.dispatch, &path, &business.token).await;
            queue["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|part| part["order_id"] == order_id)
                .cloned()
        })
        .await
    }

    /// The business acts on its part through its portal: `confirm`,
    /// `decline`, `shipments` or `delivered`; returns the status answered.
    pub async fn act(&self, business: &Business, order_id: &str, action: &str, body: Value) -> u16 {
        self.dispatch
            .post(&format!("/v1/dispatch/orders/{order_id}/{action}"))
            .bearer(&business.token)
            .json(&body)
            .send()
            .await
            .status
            .as_u16()
    }

    /// The person's inbox: (kind, order id) of every notification.
    pub async fn inbox(&self, person: &Person) -> Vec<Value> {
        get(
            &self.notifications,
            "/v1/notifications?limit=200",
            &person.token,
        )
        .await["items"]
            .as_array()
            .expect("items")
            .clone()
    }

    /// Waits until the person's inbox holds exactly `expected` kinds for the
    /// order (each with its count, in any order), and returns those items.
    pub async fn wait_for_inbox(
        &self,
        person: &Person,
        order_id: &str,
        expected: &[(&str, usize)],
    ) -> Vec<Value> {
        let mut wanted: Vec<(String, usize)> = expected
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), *count))
            .collect();
        wanted.sort();
        let mut told = Vec::new();
        let mut items = Vec::new();
        let settled = tokio::time::timeout(SETTLE, async {
            loop {
                items = self
                    .inbox(person)
                    .await
                    .into_iter()
                    .filter(|item| item["order_id"] == order_id)
                    .collect();
                told = kinds_counted(&items);
                if told == wanted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "the inbox holds {wanted:?} for the order, not {told:?}"
        );
        items
    }
}

/// Polls `probe` until it finds something, and returns that.
///
/// # Panics
/// After [`SETTLE`], naming `what` was awaited.
pub async fn until<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let found = tokio::time::timeout(SETTLE, async {
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out waiting until {what}"))
}

fn kinds_counted(items: &[Value]) -> Vec<(String, usize)> {
    let mut counted: Vec<(String, usize)> = Vec::new();
    for item in items {
        let kind = item["kind"].as_str().unwrap_or_default().to_owned();
        match counted.iter_mut().find(|(seen, _)| *seen == kind) {
            Some((_, count)) => *count += 1,
            None => counted.push((kind, 1)),
        }
    }
    counted.sort();
    counted
}

pub async fn get(api: &Api, path: &str, token: &str) -> Value {
    api.get(path)
        .bearer(token)
        .send()
        .await
        .expect_status(200)
        .body
}

/// The statuses the order went through, oldest first.
pub fn history(order: &Value) -> Vec<&str> {
    order["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|entry| entry["status"].as_str().expect("status"))
        .collect()
}

/// A shipping address in Springfield.
pub fn address(name: &str) -> Value {
    json!({
        "name": name, "line1": "1 Main Street", "city": "Springfield",
        "postal_code": "12345", "country": "US"
    })
}

/// What a checkout is asked: `points` to redeem and a sandbox payment
/// method (none for an order that points pay in full).
pub fn checkout_body(points: i64, method: Option<&str>) -> Value {
    let mut body = json!({
        "points_to_redeem": points,
        "shipping_address": address("Journey Customer"),
        "return_url": "http://shop.journeys.heyblue.local/checkout/return",
    });
    if let Some(method) = method {
        body["payment"] = json!({"provider": "sandbox", "payment_method": method});
    }
    body
}
