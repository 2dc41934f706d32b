//! The order service started for a test: its own database and broker, a
//! clock the test moves, optionally the real dispatcher beside it, the
//! other services' events published the way they publish them, and what a
//! customer and an operator look at (the order, its commands, `/metrics`).

#![allow(dead_code)] // each test binary uses its own share of these

use std::sync::Arc;
use std::time::Duration;

use http_service::auth::{mint_hs256, Claims, Role};
use job_queue::ManualClock;
use messaging::embedded::EmbeddedBroker;
use serde_json::Value;
use service_host::HostConfig;
use shared_events::catalog::{CatalogEvent, StockRejected, StockReserved};
use shared_events::checkout::{CheckoutEvent, OrderSubmitted};
use shared_events::dispatch::DispatchEvent;
use shared_events::order::OrderEvent;
use shared_events::payment::{
    PaymentEvent, PaymentFailed, PaymentMethod, PaymentStatus, PaymentSuccessful,
};
use shared_events::{Address, Envelope, EventFamily, Line, PaymentRef, StockLine};
use test_harness::events::{publish, read_events};
use test_harness::{eventually, Api, TestDatabase, TestService, JWT_SECRET};
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Shop {
    pub order: TestService,
    pub api: Api,
    pub dispatcher: Option<TestService>,
    pub broker: EmbeddedBroker,
    pub clock: Arc<ManualClock>,
    pub db: TestDatabase,
}

/// The order service alone; its dispatcher URL is a port nobody listens on.
pub async fn start() -> Shop {
    let db = test_harness::fresh_database(&["orders"]).await;
    let broker = test_harness::own_broker();
    let url = format!("http://127.0.0.1:{}", closed_port());
    start_order(db, broker, url, None).await
}

/// The order service and the real dispatcher on one broker.
pub async fn start_with_dispatcher() -> Shop {
    let db = test_harness::fresh_database(&["orders", "dispatcher"]).await;
    let broker = test_harness::own_broker();
    let dispatcher = TestService::start_with(
        &dispatcher::SPEC,
        dispatcher::build,
        &db,
        broker.bootstrap_servers(),
        dispatcher::Settings::default(),
    )
    .await;
    let url = dispatcher.base_url.clone();
    start_order(db, broker, url, Some(dispatcher)).await
}

async fn start_order(
    db: TestDatabase,
    broker: EmbeddedBroker,
    dispatcher_url: String,
    dispatcher: Option<TestService>,
) -> Shop {
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = HostConfig::for_test(db.url("orders"), broker.bootstrap_servers(), JWT_SECRET);
    config.clock = clock.clone();
    let settings = order::Settings::new(dispatcher_url.parse().expect("a URL"));
    let service = TestService::start_configured(&order::SPEC, order::build, config, settings).await;
    Shop {
        api: service.api(),
        order: service,
        dispatcher,
        broker,
        clock,
        db,
    }
}

/// A port that was free a moment ago and that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("an address").port()
}

/// One cart line: `(business, unit_price_minor, points_price, quantity)`.
pub type CartLine = (Uuid, i64, i64, u32);

/// An order as checkout submits it, priced by DESIGN's pricing rule.
#[derive(Debug, Clone)]
pub struct Submission(pub OrderSubmitted);

impl Submission {
    /// `cart` priced with a points budget of `budget`; paid by the sandbox
    /// when the total is above 0.
    pub fn priced(cart: &[CartLine], budget: i64) -> Submission {
        let mut left = budget;
        let lines: Vec<Line> = cart
            .iter()
            .map(|&(business_id, unit_price_minor, points_price, quantity)| {
                let max = points_price * i64::from(quantity);
                let applied = left.min(max);
                left -= applied;
                let gross = unit_price_minor * i64::from(quantity);
                let discount_minor =
                    (i128::from(gross) * i128::from(applied) / i128::from(max)) as i64;
                Line {
                    offering_id: Uuid::new_v4(),
                    business_id,
                    title: "Blue mug".to_owned(),
                    quantity,
                    unit_price_minor,
                    points_applied: applied,
                    discount_minor,
                    amount_due_minor: gross - discount_minor,
                }
            })
            .collect();
        let subtotal_minor = lines
            .iter()
            .map(|l| l.unit_price_minor * i64::from(l.quantity))
            .sum();
        let discount_minor: i64 = lines.iter().map(|l| l.discount_minor).sum();
        let points_applied: i64 = lines.iter().map(|l| l.points_applied).sum();
        let total_minor = subtotal_minor - discount_minor;
        Submission(OrderSubmitted {
            order_id: Uuid::new_v4(),
            checkout_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            customer_email: Some("ada@example.com".to_owned()),
            reservation_id: (points_applied > 0).then(Uuid::new_v4),
            currency: "USD".to_owned(),
            lines,
            subtotal_minor,
            discount_minor,
            total_minor,
            points_applied,
            shipping_address: Address {
                name: "Ada Lovelace".to_owned(),
                line1: "1 Main St".to_owned(),
                line2: None,
                city: "Springfield".to_owned(),
                postal_code: "12345".to_owned(),
                country: "US".to_owned(),
            },
            payment: (total_minor > 0).then(|| PaymentRef {
                authorization_id: Uuid::new_v4(),
                provider: "sandbox".to_owned(),
            }),
        })
    }

    pub fn id(&self) -> Uuid {
        self.0.order_id
    }

    pub fn customer(&self) -> Uuid {
        self.0.customer_id
    }

    pub fn authorization(&self) -> Uuid {
        self.0
            .payment
            .as_ref()
            .expect("a paid order")
            .authorization_id
    }

    pub fn stock_lines(&self) -> Vec<StockLine> {
        self.0.lines.iter().map(StockLine::from).collect()
    }

    pub fn submitted(&self) -> CheckoutEvent {
        CheckoutEvent::OrderSubmitted(self.0.clone())
    }

    pub fn stock_reserved(&self) -> CatalogEvent {
        CatalogEvent::StockReserved(StockReserved {
            order_id: self.id(),
            lines: self.stock_lines(),
        })
    }

    pub fn stock_rejected(&self) -> CatalogEvent {
        CatalogEvent::StockRejected(StockRejected {
            order_id: self.id(),
            lines: self.stock_lines(),
            short_offering_ids: vec![self.0.lines[0].offering_id],
        })
    }

    pub fn paid(&self) -> PaymentEvent {
        PaymentEvent::PaymentSuccessful(PaymentSuccessful {
            order_id: self.id(),
            customer_id: self.customer(),
            payment_method: PaymentMethod::CreditCard,
            transaction_id: format!("pi_{}", self.id().simple()),
            currency: "USD".to_owned(),
            payment_status: PaymentStatus::Success,
            amount_minor: self.0.total_minor,
            provider: "sandbox".to_owned(),
            authorization_id: self.authorization(),
        })
    }

    pub fn capture_failed(&self) -> PaymentEvent {
        PaymentEvent::PaymentFailed(PaymentFailed {
            order_id: self.id(),
            authorization_id: self.authorization(),
            reason: "capture_failed".to_owned(),
        })
    }

    /// The businesses of the order, in the order they first appear.
    pub fn businesses(&self) -> Vec<Uuid> {
        let mut businesses = Vec::new();
        for line in &self.0.lines {
            if !businesses.contains(&line.business_id) {
                businesses.push(line.business_id);
            }
        }
        businesses
    }

    /// `(Σ amount_due_minor, Σ points_applied)` over `business`'s lines.
    pub fn part_sums(&self, business: Uuid) -> (i64, i64) {
        self.0
            .lines
            .iter()
            .filter(|l| l.business_id == business)
            .fold((0, 0), |(a, p), l| {
                (a + l.amount_due_minor, p + l.points_applied)
            })
    }
}

impl Shop {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// Publishes `event` as its producer would, as a new event each time.
    pub async fn publish<E: EventFamily>(&self, event: E, correlation_id: Uuid) {
        publish(self.bootstrap(), &Envelope::new(event, correlation_id)).await;
    }

    /// The order as its customer sees it.
    pub async fn get(&self, order: &Submission) -> Value {
        self.api
            .get(&format!("/v1/orders/{}", order.id()))
            .as_user(order.customer(), Role::Civilian)
            .send()
            .await
            .expect_status(200)
            .body
    }

    /// Waits until the customer sees the order in `status`.
    pub async fn wait_for_status(&self, order: &Submission, status: &str) -> Value {
        eventually(
            WAIT,
            &format!("order {} is {status}", order.id()),
            || async {
                let answer = self
                    .api
                    .get(&format!("/v1/orders/{}", order.id()))
                    .as_user(order.customer(), Role::Civilian)
                    .send()
                    .await;
                answer.status == 200 && answer.body["status"] == status
            },
        )
        .await;
        self.get(order).await
    }

    /// Waits until `check` holds for the customer's view of the order.
    pub async fn wait_for(
        &self,
        order: &Submission,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        eventually(WAIT, what, || async {
            let answer = self
                .api
                .get(&format!("/v1/orders/{}", order.id()))
                .as_user(order.customer(), Role::Civilian)
                .send()
                .await;
            answer.status == 200 && check(&answer.body)
        })
        .await;
        self.get(order).await
    }

    /// Everything the order service published about `order`, in order.
    pub async fn commands(&self, order: &Submission) -> Vec<OrderEvent> {
        read_events::<OrderEvent>(self.bootstrap())
            .await
            .into_iter()
            .map(|envelope| envelope.event)
            .filter(|event| event.order_id() == order.id())
            .collect()
    }

    /// [`Shop::commands`] once at least `count` of them were published.
    pub async fn commands_after(&self, order: &Submission, count: usize) -> Vec<OrderEvent> {
        eventually(
            WAIT,
            &format!("{count} events of order {}", order.id()),
            || async { self.commands(order).await.len() >= count },
        )
        .await;
        self.commands(order).await
    }

    pub async fn metrics(&self) -> String {
        self.api.metrics().await
    }
}

/// The event types of `commands`, in order, without status changes.
pub fn kinds(commands: &[OrderEvent]) -> Vec<&'static str> {
    commands
        .iter()
        .filter(|c| !matches!(c, OrderEvent::OrderStatusChanged(_)))
        .map(|c| c.event_type())
        .collect()
}

/// The statuses of the order's history, oldest first.
pub fn history(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|entry| entry["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A business's token for its own part at the dispatcher.
pub fn business_token(business_id: Uuid) -> String {
    mint_hs256(
        JWT_SECRET,
        &Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(3600))
            .with_business_id(business_id),
    )
}

/// The first value in `metrics` of the series `name{labels}` (labels as printed).
pub fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// The dispatcher's part events for `business`, as the dispatcher publishes them.
pub mod dispatch {
    use super::*;
    use shared_events::dispatch::{
        OrderConfirmed, OrderDeclined, OrderDelivered, OrderDispatched, OrderShipped,
    };

    pub fn dispatched(order: &Submission, business_id: Uuid) -> DispatchEvent {
        DispatchEvent::OrderDispatched(OrderDispatched {
            order_id: order.id(),
            business_id,
            dispatch_id: Uuid::new_v4(),
            reference: None,
        })
    }

    pub fn confirmed(order: &Submission, business_id: Uuid) -> DispatchEvent {
        DispatchEvent::OrderConfirmed(OrderConfirmed {
            order_id: order.id(),
            business_id,
            dispatch_id: Uuid::new_v4(),
            reference: Some("B-1".to_owned()),
        })
    }

    pub fn shipped(order: &Submission, business_id: Uuid) -> DispatchEvent {
        DispatchEvent::OrderShipped(OrderShipped {
            order_id: order.id(),
            business_id,
            dispatch_id: Uuid::new_v4(),
            carrier: "UPS".to_owned(),
            tracking_number: format!("1Z{}", business_id.simple()),
        })
    }

    pub fn delivered(order: &Submission, business_id: Uuid) -> DispatchEvent {
        DispatchEvent::OrderDelivered(OrderDelivered {
            order_id: order.id(),
            business_id,
            dispatch_id: Uuid::new_v4(),
            reference: None,
        })
    }

    pub fn declined(order: &Submission, business_id: Uuid, reason: &str) -> DispatchEvent {
        DispatchEvent::OrderDeclined(OrderDeclined {
            order_id: order.id(),
            business_id,
            dispatch_id: Uuid::new_v4(),
            reason: reason.to_owned(),
        })
    }
}
