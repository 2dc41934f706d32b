//! The fleet checkout needs, started for a test: the real catalog, cart,
//! user-points and payment-gateway on one database and broker, each behind a
//! fault proxy, and checkout with a clock the test moves. Helpers act as the
//! shop's users do (an admin, a business, a customer).

#![allow(dead_code)] // each test binary uses its own share of these

use std::sync::Arc;
use std::time::Duration;

use http_service::auth::{mint_hs256, Claims, Role};
use job_queue::ManualClock;
use messaging::embedded::EmbeddedBroker;
use serde_json::{json, Value};
use service_host::HostConfig;
use shared_events::checkout::{CheckoutEvent, OrderSubmitted};
use test_harness::fault::FaultProxy;
use test_harness::{Answer, Api, TestDatabase, TestService, JWT_SECRET};
use uuid::Uuid;

/// How long checkout waits for a peer in these tests.
pub const PEER_TIMEOUT: Duration = Duration::from_millis(1_500);

pub struct Fleet {
    pub broker: EmbeddedBroker,
    pub catalog: Api,
    pub cart: Api,
    pub points: Api,
    pub gateway: Api,
    pub checkout: Api,
    pub catalog_proxy: FaultProxy,
    pub cart_proxy: FaultProxy,
    pub points_proxy: FaultProxy,
    pub gateway_proxy: FaultProxy,
    pub clock: Arc<ManualClock>,
    pub business_id: Uuid,
    pub db: TestDatabase,
    business_token: String,
    _services: Vec<TestService>,
}

pub async fn start() -> Fleet {
    let db =
        test_harness::fresh_database(&["catalog", "cart", "points", "payment", "checkout"]).await;
    let broker = test_harness::own_broker();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let catalog = TestService::start_with(
        &catalog::SPEC,
        catalog::build,
        &db,
        &bootstrap,
        catalog::CatalogSettings::default(),
    )
    .await;
    let cart_settings = cart::Settings {
        catalog_url: catalog.base_url.parse().expect("catalog URL"),
    };
    let cart =
        TestService::start_with(&cart::SPEC, cart::build, &db, &bootstrap, cart_settings).await;
    let points =
        TestService::start_with(&user_points::SPEC, user_points::build, &db, &bootstrap, ()).await;
    let gateway = TestService::start_with(
        &payment_gateway::SPEC,
        payment_gateway::build,
        &db,
        &bootstrap,
        payment_gateway::GatewaySettings::default(),
    )
    .await;
    let catalog_proxy = FaultProxy::start(&catalog.base_url).await;
    let cart_proxy = FaultProxy::start(&cart.base_url).await;
    let points_proxy = FaultProxy::start(&points.base_url).await;
    let gateway_proxy = FaultProxy::start(&gateway.base_url).await;
    let mut settings = checkout::Settings::new(
        catalog_proxy.url(),
        cart_proxy.url(),
        points_proxy.url(),
        gateway_proxy.url(),
    );
    settings.peer_timeout = PEER_TIMEOUT;
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = HostConfig::for_test(db.url("checkout"), &bootstrap, JWT_SECRET);
    config.clock = clock.clone();
    let checkout =
        TestService::start_configured(&checkout::SPEC, checkout::build, config, settings).await;

    let business = catalog
        .api()
        .post("/v1/businesses")
        .as_user(Uuid::new_v4(), Role::Admin)
        .json(&json!({"name": "Corner Shop", "contact_email": "corner@example.com"}))
        .send()
        .await
        .expect_status(201);
    let business_id: Uuid = serde_json::from_value(business.body["id"].clone()).expect("id");
    let business_token = mint_hs256(
        JWT_SECRET,
        &Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(3600))
            .with_business_id(business_id),
    );
    Fleet {
        catalog: catalog.api(),
        cart: cart.api(),
        points: points.api(),
        gateway: gateway.api(),
        checkout: checkout.api(),
        catalog_proxy,
        cart_proxy,
        points_proxy,
        gateway_proxy,
        clock,
        business_id,
        business_token,
        broker,
        db,
        _services: vec![catalog, cart, points, gateway, checkout],
    }
}

/// A shipping address that passes every rule.
pub fn address() -> Value {
    json!({
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "line2": "Flat 2",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    })
}

/// A checkout body paying with a sandbox method.
pub fn paying(method: &str, points: Option<i64>) -> Value {
    let mut body = json!({
        "payment": {"provider": "sandbox", "payment_method": method},
        "shipping_address": address(),
        "return_url": "https://shop.example/back",
    });
    if let Some(points) = points {
        body["points_to_redeem"] = json!(points);
    }
    body
}

impl Fleet {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// An offering of the shop's business.
    pub async fn offering(
        &self,
        title: &str,
        price_minor: i64,
        points_price: i64,
        stock: Option<i64>,
    ) -> Uuid {
        let created = self
            .catalog
            .post("/v1/offerings")
            .bearer(&self.business_token)
            .json(&json!({
                "business_id": self.business_id,
                "title": title,
                "description": "From the corner shop.",
                "kind": "product",
                "price_minor": price_minor,
                "currency": "USD",
                "points_price": points_price,
                "stock": stock,
            }))
            .send()
            .await
            .expect_status(201);
        serde_json::from_value(created.body["id"].clone()).expect("offering id")
    }

    pub async fn patch_offering(&self, offering: Uuid, patch: Value) {
        self.catalog
            .patch(&format!("/v1/offerings/{offering}"))
            .bearer(&self.business_token)
            .json(&patch)
            .send()
            .await
            .expect_status(200);
    }

    /// Puts `quantity` of `offering` in `user`'s cart.
    pub async fn put(&self, user: Uuid, offering: Uuid, quantity: u32) {
        self.cart
            .put(&format!("/v1/cart/items/{offering}"))
            .as_user(user, Role::Civilian)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .expect_status(200);
    }

    /// `user`'s cart as `(offering_id, quantity)`.
    pub async fn cart_of(&self, user: Uuid) -> Vec<(String, u64)> {
        let cart = self
            .cart
            .get("/v1/cart")
            .as_user(user, Role::Civilian)
            .send()
            .await
            .expect_status(200)
            .body;
        cart["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| {
                (
                    item["offering_id"].as_str().expect("id").to_owned(),
                    item["quantity"].as_u64().expect("quantity"),
                )
            })
            .collect()
    }

    pub async fn award(&self, user: Uuid, points: i64) {
        self.points
            .post("/v1/points/awards")
            .as_user(Uuid::new_v4(), Role::Admin)
            .json(&json!({"award_id": Uuid::new_v4(), "user_id": user, "points": points, "reason": "welcome"}))
            .send()
            .await
            .expect_status(201);
    }

    /// `(available, reserved)` of `user`.
    pub async fn points_of(&self, user: Uuid) -> (i64, i64) {
        let balance = self
            .points
            .get(&format!("/v1/points/balances/{user}"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
            .expect_status(200)
            .body;
        (
            balance["available"].as_i64().expect("available"),
            balance["reserved"].as_i64().expect("reserved"),
        )
    }

    /// The gateway's view of an authorization (service role).
    pub async fn payment(&self, authorization_id: &str) -> Answer {
        self.gateway
            .get(&format!("/v1/payments/{authorization_id}"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
    }

    /// `POST /v1/checkouts` as `user` (a civilian) with `key`.
    pub async fn submit(&self, user: Uuid, key: &str, body: &Value) -> Answer {
        self.checkout
            .post("/v1/checkouts")
            .as_user(user, Role::Civilian)
            .idempotency_key(key)
            .json(body)
            .send()
            .await
    }

    pub async fn quote(&self, user: Uuid, body: &Value) -> Answer {
        self.checkout
            .post("/v1/checkouts/quote")
            .as_user(user, Role::Civilian)
            .json(body)
            .send()
            .await
    }

    pub async fn confirm(&self, user: Uuid, checkout_id: &str) -> Answer {
        self.checkout
            .post(&format!("/v1/checkouts/{checkout_id}/confirm"))
            .as_user(user, Role::Civilian)
            .send()
            .await
    }

    /// Answers the sandbox's 3-D Secure page as the customer would.
    pub async fn answer_authentication(&self, url: &str, verdict: &str) {
        let path = url
            .find("/v1/payments/sandbox/")
            .map(|at| &url[at..])
            .expect("a sandbox authentication URL");
        let answered = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a browser")
            .post(self.gateway.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("verdict={verdict}"))
            .send()
            .await
            .expect("the page answers");
        assert!(
            answered.status().is_success() || answered.status().is_redirection(),
            "{}",
            answered.status()
        );
    }

    /// Every `order_submitted` published so far.
    pub async fn submitted(&self) -> Vec<OrderSubmitted> {
        test_harness::events::read_events::<CheckoutEvent>(self.bootstrap())
            .await
            .into_iter()
            .map(|envelope| {
                let CheckoutEvent::OrderSubmitted(submitted) = envelope.event;
                submitted
            })
            .collect()
    }

    /// Waits until `order_submitted` for `order_id` is published.
    pub async fn wait_for_order(&self, order_id: Uuid) -> OrderSubmitted {
        test_harness::eventually(
            Duration::from_secs(20),
            "order_submitted is published",
            || async {
                self.submitted()
                    .await
                    .iter()
                    .any(|s| s.order_id == order_id)
            },
        )
        .await;
        self.submitted()
            .await
            .into_iter()
            .find(|s| s.order_id == order_id)
            .expect("published")
    }
}

impl Fleet {
    /// The time on checkout's clock.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        job_queue::Clock::now(self.clock.as_ref())
    }

    /// `(order_id, status)` of each of `customer`'s checkouts, as stored
    /// (read past checkout's API, which needs a checkout's id).
    pub async fn checkouts_of(&self, customer: Uuid) -> Vec<(Uuid, String)> {
        let pool = sqlx::PgPool::connect(&self.db.admin_url)
            .await
            .expect("connect");
        let rows = sqlx::query_as(
            "SELECT order_id, status FROM checkout.checkouts WHERE customer_id = $1 ORDER BY created_at",
        )
        .bind(customer)
        .fetch_all(&pool)
        .await
        .expect("read checkouts");
        pool.close().await;
        rows
    }

    /// The gateway's authorizations for `order_id` (read past its API,
    /// which finds them by their own id), each as its API shows it.
    pub async fn authorizations_of(&self, order_id: Uuid) -> Vec<Value> {
        let pool = sqlx::PgPool::connect(&self.db.admin_url)
            .await
            .expect("connect");
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT authorization_id FROM payment.authorizations WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_all(&pool)
        .await
        .expect("read authorizations");
        pool.close().await;
        let mut shown = Vec::new();
        for id in ids {
            shown.push(self.payment(&id.to_string()).await.expect_status(200).body);
        }
        shown
    }

    /// Whether the gateway was told to void whatever `order_id` has.
    pub async fn order_voided(&self, order_id: Uuid) -> bool {
        let pool = sqlx::PgPool::connect(&self.db.admin_url)
            .await
            .expect("connect");
        let marked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM payment.order_voids WHERE order_id = $1)",
        )
        .bind(order_id)
        .fetch_one(&pool)
        .await
        .expect("read order voids");
        pool.close().await;
        marked
    }
}

/// A uuid member of a JSON body.
pub fn uuid(body: &Value, member: &str) -> Uuid {
    serde_json::from_value(body[member].clone()).unwrap_or_else(|_| panic!("{member} in {body}"))
}
