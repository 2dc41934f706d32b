//! payment-gateway started for a test: its own database and broker, and
//! what its users look at (checkout's calls, the order's commands, the
//! events on `heyblue.payment.v1`).

use std::time::Duration;

use http_service::auth::Role;
use messaging::embedded::EmbeddedBroker;
use payment_gateway::GatewaySettings;
use serde_json::{json, Value};
use shared_events::order::OrderEvent;
use shared_events::{
    Envelope, PaymentCaptureRequested, PaymentEvent, PaymentRefundRequested, PaymentVoidRequested,
};
use sqlx::Connection;
use test_harness::{Answer, Api, TestDatabase, TestService};
use uuid::Uuid;

pub const RETURN_URL: &str = "https://shop.heyblue.test/checkout/return";

pub struct Gateway {
    pub service: TestService,
    pub api: Api,
    pub broker: EmbeddedBroker,
    pub db: TestDatabase,
}

pub async fn start(settings: GatewaySettings) -> Gateway {
    let db = test_harness::fresh_database(&["payment"]).await;
    let broker = test_harness::own_broker();
    let service = TestService::start_with(
        &payment_gateway::SPEC,
        payment_gateway::build,
        &db,
        broker.bootstrap_servers(),
        settings,
    )
    .await;
    Gateway {
        api: service.api(),
        service,
        broker,
        db,
    }
}

/// An authorization request body for a new order.
pub fn authorization(provider: &str, payment_method: &str, amount_minor: i64) -> Value {
    json!({
        "order_id": Uuid::now_v7(),
        "checkout_id": Uuid::now_v7(),
        "customer_id": Uuid::now_v7(),
        "amount_minor": amount_minor,
        "currency": "USD",
        "provider": provider,
        "payment_method": payment_method,
        "return_url": RETURN_URL,
    })
}

/// The id in an answer, as a UUID.
pub fn id_of(answer: &Answer, field: &str) -> Uuid {
    answer.body[field]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_else(|| panic!("no {field} in {}", answer.text))
}

impl Gateway {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// Checkout asks for an authorization, with a fresh `Idempotency-Key`.
    pub async fn authorize(&self, body: &Value) -> Answer {
        self.authorize_with_key(body, &Uuid::new_v4().to_string())
            .await
    }

    pub async fn authorize_with_key(&self, body: &Value, key: &str) -> Answer {
        self.api
            .post("/v1/payments/authorizations")
            .as_user(Uuid::new_v4(), Role::Service)
            .idempotency_key(key)
            .json(body)
            .send()
            .await
    }

    /// `POST /v1/payments/{id}/{action}` as checkout.
    pub async fn act(&self, authorization_id: Uuid, action: &str) -> Answer {
        self.api
            .post(&format!("/v1/payments/{authorization_id}/{action}"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
    }

    pub async fn void_order(&self, order_id: Uuid) -> Answer {
        self.api
            .post(&format!("/v1/payments/orders/{order_id}/void"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
            .expect_status(200)
    }

    /// The authorization as an operator reads it.
    pub async fn payment(&self, authorization_id: Uuid) -> Value {
        self.api
            .get(&format!("/v1/payments/{authorization_id}"))
            .as_user(Uuid::new_v4(), Role::Admin)
            .send()
            .await
            .expect_status(200)
            .body
    }

    /// Waits until the authorization's `path` (a JSON pointer) is `expected`.
    pub async fn wait_for_payment(&self, authorization_id: Uuid, pointer: &str, expected: Value) {
        test_harness::eventually(
            Duration::from_secs(20),
            &format!("{pointer} of {authorization_id} is {expected}"),
            || async { self.payment(authorization_id).await.pointer(pointer) == Some(&expected) },
        )
        .await;
    }

    /// The order service publishes a command (each call with a new `event_id`).
    pub async fn command(&self, command: impl Into<OrderEvent>) {
        let envelope = Envelope::new(command.into(), Uuid::now_v7());
        test_harness::events::publish(self.bootstrap(), &envelope).await;
    }

    pub async fn capture(&self, order_id: Uuid, authorization_id: Uuid, amount_minor: i64) {
        self.command(PaymentCaptureRequested {
            order_id,
            authorization_id,
            amount_minor,
            currency: "USD".to_owned(),
        })
        .await;
    }

    pub async fn void_command(&self, order_id: Uuid, authorization_id: Uuid, amount_minor: i64) {
        self.command(PaymentVoidRequested {
            order_id,
            authorization_id,
            amount_minor,
            currency: "USD".to_owned(),
        })
        .await;
    }

    pub async fn refund(
        &self,
        order_id: Uuid,
        authorization_id: Uuid,
        refund_id: Uuid,
        amount_minor: i64,
    ) {
        self.command(PaymentRefundRequested {
            order_id,
            authorization_id,
            refund_id,
            business_id: Some(Uuid::now_v7()),
            amount_minor,
            currency: "USD".to_owned(),
            reason: "declined_by_business".to_owned(),
        })
        .await;
    }

    /// The events about `order_id` on `heyblue.payment.v1`, once at least
    /// `at_least` are there.
    pub async fn events_of(&self, order_id: Uuid, at_least: usize) -> Vec<PaymentEvent> {
        test_harness::eventually(
            Duration::from_secs(30),
            &format!("{at_least} payment events of order {order_id} are published"),
            || async { self.events_now(order_id).await.len() >= at_least },
        )
        .await;
        self.events_now(order_id).await
    }

    pub async fn events_now(&self, order_id: Uuid) -> Vec<PaymentEvent> {
        test_harness::events::read_events::<PaymentEvent>(self.bootstrap())
            .await
            .into_iter()
            .map(|envelope| envelope.event)
            .filter(|event| event.order_id() == order_id)
            .collect()
    }

    /// The raw JSON of the order's events, as consumers outside the
    /// workspace read them.
    pub async fn raw_events_of(&self, order_id: Uuid) -> Vec<String> {
        messaging::inspect::read_topic(
            self.bootstrap(),
            shared_events::Topic::Payment.name(),
            test_harness::events::QUIET,
        )
        .await
        .expect("the payment topic reads")
        .into_iter()
        .map(|message| String::from_utf8_lossy(&message.payload).into_owned())
        .filter(|payload| payload.contains(&order_id.to_string()))
        .collect()
    }

    /// A count from the gateway's own tables, read past its role.
    pub async fn count(&self, sql: &str, id: Uuid) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.db.admin_url)
            .await
            .expect("admin connection");
        let count = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut conn)
            .await
            .expect("count query");
        conn.close().await.ok();
        count
    }

    /// Changes the gateway's tables past its role, as a crash would leave them.
    pub async fn execute(&self, sql: &str, first: Uuid, second: Uuid) {
        let mut conn = sqlx::PgConnection::connect(&self.db.admin_url)
            .await
            .expect("admin connection");
        sqlx::query(sql)
            .bind(first)
            .bind(second)
            .execute(&mut conn)
            .await
            .expect("statement");
        conn.close().await.ok();
    }

    /// A connection past the gateway's role, for a test that plays a
    /// concurrent transaction of its own.
    pub async fn admin_connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.db.admin_url)
            .await
            .expect("admin connection")
    }

    /// Waits until some statement in the gateway's database waits for a
    /// row lock.
    pub async fn wait_for_a_lock_wait(&self) {
        let mut conn = self.admin_connection().await;
        let mut waiting = false;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !waiting {
            assert!(
                tokio::time::Instant::now() < deadline,
                "no statement came to wait for a lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            waiting = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock')",
            )
            .fetch_one(&mut conn)
            .await
            .expect("lock query");
        }
        conn.close().await.ok();
    }

    /// The provider's reference of an authorization (a Stripe
    /// PaymentIntent, a PayPal authorization), read past the gateway's role.
    pub async fn reference(&self, authorization_id: Uuid) -> String {
        let mut conn = sqlx::PgConnection::connect(&self.db.admin_url)
            .await
            .expect("admin connection");
        let reference: Option<String> = sqlx::query_scalar(
            "SELECT provider_reference FROM payment.authorizations WHERE authorization_id = $1",
        )
        .bind(authorization_id)
        .fetch_one(&mut conn)
        .await
        .expect("reference query");
        conn.close().await.ok();
        reference.expect("the provider answered")
    }

    /// The order's authorization, read past the gateway's role.
    pub async fn authorization_of_order(&self, order_id: Uuid) -> Option<Uuid> {
        let mut conn = sqlx::PgConnection::connect(&self.db.admin_url)
            .await
            .expect("admin connection");
        let authorization_id = sqlx::query_scalar(
            "SELECT authorization_id FROM payment.authorizations WHERE order_id = $1",
        )
        .bind(order_id)
        .fetch_optional(&mut conn)
        .await
        .expect("authorization query");
        conn.close().await.ok();
        authorization_id
    }

    /// The events' types, in order.
    pub fn types(events: &[PaymentEvent]) -> Vec<&'static str> {
        use shared_events::EventFamily;
        events.iter().map(|event| event.event_type()).collect()
    }
}
