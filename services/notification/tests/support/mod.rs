//! notification started for a test: its own database and broker, email to a
//! local SMTP server or to `.eml` files, a whole order journey's events to
//! publish, and what a customer sees (the inbox, their mail).

#![allow(dead_code)] // each test binary uses its own share of these

use std::path::PathBuf;
use std::time::Duration;

use http_service::auth::Role;
use mail::testing::SmtpCatcher;
use mail::MailSettings;
use messaging::embedded::EmbeddedBroker;
use notification::Settings;
use serde_json::Value;
use shared_events::checkout::{CheckoutEvent, OrderSubmitted};
use shared_events::dispatch::{
    DispatchEvent, OrderConfirmed, OrderDeclined, OrderDelivered, OrderDispatched, OrderShipped,
};
use shared_events::order::{
    CancellationReason, OrderCancelled, OrderCreated, OrderEvent, OrderReadyForDispatch,
    OrderStatus, OrderStatusChanged,
};
use shared_events::payment::{
    PaymentEvent, PaymentMethod, PaymentRefunded, PaymentStatus, PaymentSuccessful,
};
use shared_events::{Address, DispatchPart, Envelope, StockLine};
use sqlx::PgPool;
use test_harness::{Api, TestDatabase, TestService};
use uuid::Uuid;

/// How long anything asynchronous may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Notifier {
    pub service: TestService,
    pub api: Api,
    pub broker: EmbeddedBroker,
    pub db: TestDatabase,
    /// The SMTP server email goes to, when the test configured one.
    pub smtp: Option<SmtpCatcher>,
    /// Where `.eml` files go, when no SMTP server is configured.
    pub mail_dir: Option<tempfile::TempDir>,
}

/// notification sending email to a local SMTP server.
pub async fn start_with_smtp() -> Notifier {
    let smtp = SmtpCatcher::start().await;
    let settings = Settings {
        mail: MailSettings::smtp(smtp.url()),
    };
    start(settings, Some(smtp), None).await
}

/// notification with no SMTP server: email becomes `.eml` files.
pub async fn start_writing_files() -> Notifier {
    let dir = tempfile::tempdir().expect("a temporary mail directory");
    let settings = Settings {
        mail: MailSettings::files(dir.path().join("mail")),
    };
    start(settings, None, Some(dir)).await
}

async fn start(
    settings: Settings,
    smtp: Option<SmtpCatcher>,
    mail_dir: Option<tempfile::TempDir>,
) -> Notifier {
    let db = test_harness::fresh_database(&["notification"]).await;
    let broker = test_harness::own_broker();
    let service = TestService::start_with(
        &notification::SPEC,
        notification::build,
        &db,
        broker.bootstrap_servers(),
        settings,
    )
    .await;
    Notifier {
        api: service.api(),
        service,
        broker,
        db,
        smtp,
        mail_dir,
    }
}

/// One event on any of the topics notification reads.
#[derive(Debug, Clone)]
pub enum Fact {
    Checkout(CheckoutEvent),
    Order(OrderEvent),
    Payment(PaymentEvent),
    Dispatch(DispatchEvent),
}

impl Fact {
    /// Whether notification's handler acts on it, and so records it in its
    /// inbox; the others are passed over.
    pub fn acted_on(&self) -> bool {
        use messaging::Handler;
        use notification::events::{
            CheckoutHandler, DispatchHandler, OrderHandler, PaymentHandler,
        };
        match self {
            Fact::Checkout(event) => CheckoutHandler.acts_on(event),
            Fact::Order(event) => OrderHandler.acts_on(event),
            Fact::Payment(event) => PaymentHandler.acts_on(event),
            Fact::Dispatch(event) => DispatchHandler.acts_on(event),
        }
    }

    /// How many of `facts` notification's handlers act on.
    pub fn acted_on_in(facts: &[Fact]) -> i64 {
        facts.iter().filter(|fact| fact.acted_on()).count() as i64
    }
}

impl Notifier {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// Publishes each fact as a new event (a fresh `event_id`), in order.
    pub async fn publish(&self, facts: &[Fact]) {
        let correlation = Uuid::new_v4();
        for fact in facts {
            let bootstrap = self.bootstrap();
            match fact.clone() {
                Fact::Checkout(event) => {
                    test_harness::events::publish(bootstrap, &Envelope::new(event, correlation))
                        .await
                }
                Fact::Order(event) => {
                    test_harness::events::publish(bootstrap, &Envelope::new(event, correlation))
                        .await
                }
                Fact::Payment(event) => {
                    test_harness::events::publish(bootstrap, &Envelope::new(event, correlation))
                        .await
                }
                Fact::Dispatch(event) => {
                    test_harness::events::publish(bootstrap, &Envelope::new(event, correlation))
                        .await
                }
            }
        }
    }

    /// `user`'s whole inbox, newest first, read page by page.
    pub async fn inbox(&self, user: Uuid) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/v1/notifications?limit=4&cursor={cursor}"),
                None => "/v1/notifications?limit=4".to_owned(),
            };
            let page = self
                .api
                .get(&path)
                .as_user(user, Role::Civilian)
                .send()
                .await
                .expect_status(200)
                .body;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return items,
            }
        }
    }

    /// Waits until `user`'s inbox holds `count` notifications, and returns it.
    pub async fn inbox_of_size(&self, user: Uuid, count: usize) -> Vec<Value> {
        test_harness::eventually(
            PATIENCE,
            &format!("{count} notifications in the inbox"),
            || async { self.inbox(user).await.len() >= count },
        )
        .await;
        self.inbox(user).await
    }

    /// Waits until the SMTP server holds `count` messages for `address`.
    pub async fn mail_of_size(
        &self,
        address: &str,
        count: usize,
    ) -> Vec<mail::testing::ReceivedMail> {
        let smtp = self
            .smtp
            .as_ref()
            .expect("the test configured an SMTP server");
        test_harness::eventually(
            PATIENCE,
            &format!("{count} emails to {address}"),
            || async { smtp.messages_to(address).len() >= count },
        )
        .await;
        smtp.messages_to(address)
    }

    /// The `.eml` files written so far.
    pub fn eml_files(&self) -> Vec<(PathBuf, String)> {
        let dir = self
            .mail_dir
            .as_ref()
            .expect("the test writes email to files")
            .path()
            .join("mail");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("a readable .eml file");
                (path, text)
            })
            .collect()
    }

    /// Waits until the `/metrics` line of `series` (name and labels, as
    /// printed) shows `value`.
    pub async fn metric_reaches(&self, series: &str, value: f64) {
        test_harness::eventually(PATIENCE, &format!("{series} is {value}"), || async {
            let metrics = self.api.metrics().await;
            metrics.lines().any(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|number| number.trim().parse::<f64>().ok())
                    == Some(value)
            })
        })
        .await;
    }

    /// A pool on the service's schema, for what the API does not show.
    pub async fn pool(&self) -> PgPool {
        PgPool::connect(self.db.url("notification"))
            .await
            .expect("connect to the notification schema")
    }

    /// How many events the service's consumers have handled.
    pub async fn events_handled(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM messaging_inbox")
            .fetch_one(&self.pool().await)
            .await
            .expect("count handled events")
    }

    /// Waits until the consumers have handled `count` events in all (those
    /// they act on: [`Fact::acted_on_in`]).
    pub async fn handled(&self, count: i64) {
        test_harness::eventually(PATIENCE, &format!("{count} events handled"), || async {
            self.events_handled().await >= count
        })
        .await;
    }
}

/// One customer's order from two businesses: `shipper` fulfils its part all
/// the way; `decliner`'s part cannot be placed and is refunded. A second
/// order of the same customer is cancelled for want of stock.
#[derive(Debug, Clone)]
pub struct Journey {
    pub customer_id: Uuid,
    pub email: String,
    pub order_id: Uuid,
    pub shipper: Uuid,
    pub decliner: Uuid,
    pub refund_id: Uuid,
    pub cancelled_order_id: Uuid,
}

pub const CARRIER: &str = "UPS";
pub const TRACKING: &str = "1Z999AA10123456784";

impl Journey {
    pub fn new() -> Journey {
        let customer_id = Uuid::new_v4();
        Journey {
            customer_id,
            email: format!("civilian-{}@example.com", customer_id.simple()),
            order_id: Uuid::now_v7(),
            shipper: Uuid::new_v4(),
            decliner: Uuid::new_v4(),
            refund_id: Uuid::new_v4(),
            cancelled_order_id: Uuid::now_v7(),
        }
    }

    /// The kinds of notification the whole journey tells, per order.
    pub const ORDER_KINDS: [&'static str; 8] = [
        "placed",
        "paid",
        "dispatched",
        "confirmed",
        "shipped",
        "delivered",
        "declined",
        "refunded",
    ];
    pub const CANCELLED_ORDER_KINDS: [&'static str; 2] = ["placed", "cancelled"];

    pub fn notification_count() -> usize {
        Self::ORDER_KINDS.len() + Self::CANCELLED_ORDER_KINDS.len()
    }

    /// Every event of the journey in the order the fleet would publish them.
    pub fn in_realistic_order(&self) -> Vec<Fact> {
        let order = self.order_facts();
        let mut facts = Vec::new();
        // submitted, created, pending → payment_processing
        facts.extend(order[0..3].iter().cloned());
        facts.push(self.payment_facts()[0].clone());
        // payment_processing → processing, ready for dispatch
        facts.extend(order[3..5].iter().cloned());
        let dispatch = self.dispatch_facts();
        facts.push(dispatch[0].clone()); // shipper's part placed
        facts.push(dispatch[1].clone()); // decliner's part fails
        facts.push(self.payment_facts()[1].clone()); // its refund
        facts.push(order[5].clone()); // → dispatched
        facts.push(dispatch[2].clone()); // confirmed
        facts.push(order[6].clone()); // → confirmed
        facts.push(dispatch[3].clone()); // shipped
        facts.push(order[7].clone()); // → shipped
        facts.push(dispatch[4].clone()); // delivered
        facts.push(order[8].clone()); // → delivered
        facts.extend(self.cancelled_order_facts());
        facts
    }

    /// Checkout's `order_submitted` for `order_id`: the event that brings
    /// the customer's email, before the order exists. `total_minor` 0 is an
    /// order paid with points only.
    pub fn submitted(&self, order_id: Uuid, total_minor: i64) -> Fact {
        Fact::Checkout(CheckoutEvent::OrderSubmitted(OrderSubmitted {
            order_id,
            checkout_id: Uuid::new_v4(),
            customer_id: self.customer_id,
            customer_email: Some(self.email.clone()),
            reservation_id: Some(Uuid::new_v4()),
            currency: "USD".to_owned(),
            lines: Vec::new(),
            subtotal_minor: 2800,
            discount_minor: 2800 - total_minor,
            total_minor,
            points_applied: 2800 - total_minor,
            shipping_address: address(),
            payment: None,
        }))
    }

    /// The order's events, from checkout's `order_submitted` on.
    pub fn order_facts(&self) -> Vec<Fact> {
        let status = |from, to| {
            Fact::Order(OrderEvent::OrderStatusChanged(OrderStatusChanged {
                order_id: self.order_id,
                customer_id: self.customer_id,
                customer_email: Some(self.email.clone()),
                from,
                to,
                reason: None,
            }))
        };
        vec![
            self.submitted(self.order_id, 4250),
            Fact::Order(OrderEvent::OrderCreated(OrderCreated {
                order_id: self.order_id,
                customer_id: self.customer_id,
                lines: vec![
                    StockLine {
                        offering_id: Uuid::new_v4(),
                        quantity: 2,
                    },
                    StockLine {
                        offering_id: Uuid::new_v4(),
                        quantity: 1,
                    },
                ],
            })),
            status(OrderStatus::Pending, OrderStatus::PaymentProcessing),
            status(OrderStatus::PaymentProcessing, OrderStatus::Processing),
            Fact::Order(OrderEvent::OrderReadyForDispatch(OrderReadyForDispatch {
                order_id: self.order_id,
                customer_id: self.customer_id,
                shipping_address: address(),
                parts: vec![
                    DispatchPart {
                        business_id: self.shipper,
                        lines: Vec::new(),
                    },
                    DispatchPart {
                        business_id: self.decliner,
                        lines: Vec::new(),
                    },
                ],
            })),
            status(OrderStatus::Processing, OrderStatus::Dispatched),
            status(OrderStatus::Dispatched, OrderStatus::Confirmed),
            status(OrderStatus::Confirmed, OrderStatus::Shipped),
            status(OrderStatus::Shipped, OrderStatus::Delivered),
        ]
    }

    pub fn payment_facts(&self) -> Vec<Fact> {
        vec![
            Fact::Payment(PaymentEvent::PaymentSuccessful(PaymentSuccessful {
                order_id: self.order_id,
                customer_id: self.customer_id,
                payment_method: PaymentMethod::CreditCard,
                transaction_id: "pi_3Nk".to_owned(),
                currency: "USD".to_owned(),
                payment_status: PaymentStatus::Success,
                amount_minor: 4250,
                provider: "sandbox".to_owned(),
                authorization_id: Uuid::new_v4(),
            })),
            Fact::Payment(PaymentEvent::PaymentRefunded(PaymentRefunded {
                order_id: self.order_id,
                refund_id: self.refund_id,
                amount_minor: 1500,
                currency: "USD".to_owned(),
                reason: "declined_by_business".to_owned(),
            })),
        ]
    }

    pub fn dispatch_facts(&self) -> Vec<Fact> {
        let dispatch_id = Uuid::new_v4();
        vec![
            Fact::Dispatch(DispatchEvent::OrderDispatched(OrderDispatched {
                order_id: self.order_id,
                business_id: self.shipper,
                dispatch_id,
                reference: Some("PO-1001".to_owned()),
            })),
            Fact::Dispatch(DispatchEvent::OrderDeclined(OrderDeclined {
                order_id: self.order_id,
                business_id: self.decliner,
                dispatch_id: Uuid::new_v4(),
                reason: "dispatch_failed".to_owned(),
            })),
            Fact::Dispatch(DispatchEvent::OrderConfirmed(OrderConfirmed {
                order_id: self.order_id,
                business_id: self.shipper,
                dispatch_id,
                reference: Some("PO-1001".to_owned()),
            })),
            Fact::Dispatch(DispatchEvent::OrderShipped(OrderShipped {
                order_id: self.order_id,
                business_id: self.shipper,
                dispatch_id,
                carrier: CARRIER.to_owned(),
                tracking_number: TRACKING.to_owned(),
            })),
            Fact::Dispatch(DispatchEvent::OrderDelivered(OrderDelivered {
                order_id: self.order_id,
                business_id: self.shipper,
                dispatch_id,
                reference: None,
            })),
        ]
    }

    /// An order paid with points only: checkout's `order_submitted` (the one
    /// event with the customer's email here), the order created, and its
    /// step from pending straight to processing, which names no email.
    pub fn points_only_order_facts(&self, order_id: Uuid) -> Vec<Fact> {
        vec![
            self.submitted(order_id, 0),
            Fact::Order(OrderEvent::OrderCreated(OrderCreated {
                order_id,
                customer_id: self.customer_id,
                lines: vec![StockLine {
                    offering_id: Uuid::new_v4(),
                    quantity: 1,
                }],
            })),
            Fact::Order(OrderEvent::OrderStatusChanged(OrderStatusChanged {
                order_id,
                customer_id: self.customer_id,
                customer_email: None,
                from: OrderStatus::Pending,
                to: OrderStatus::Processing,
                reason: None,
            })),
        ]
    }

    /// The second order: submitted, created, then cancelled (out of stock).
    pub fn cancelled_order_facts(&self) -> Vec<Fact> {
        vec![
            self.submitted(self.cancelled_order_id, 1500),
            Fact::Order(OrderEvent::OrderCreated(OrderCreated {
                order_id: self.cancelled_order_id,
                customer_id: self.customer_id,
                lines: vec![StockLine {
                    offering_id: Uuid::new_v4(),
                    quantity: 1,
                }],
            })),
            Fact::Order(OrderEvent::OrderStatusChanged(OrderStatusChanged {
                order_id: self.cancelled_order_id,
                customer_id: self.customer_id,
                customer_email: Some(self.email.clone()),
                from: OrderStatus::Pending,
                to: OrderStatus::Cancelled,
                reason: Some("out_of_stock".to_owned()),
            })),
            Fact::Order(OrderEvent::OrderCancelled(OrderCancelled {
                order_id: self.cancelled_order_id,
                customer_id: self.customer_id,
                reason: CancellationReason::OutOfStock,
            })),
        ]
    }
}

impl Default for Journey {
    fn default() -> Self {
        Journey::new()
    }
}

fn address() -> Address {
    Address {
        name: "Ada Lovelace".to_owned(),
        line1: "1 Main St".to_owned(),
        line2: None,
        city: "Springfield".to_owned(),
        postal_code: "12345".to_owned(),
        country: "US".to_owned(),
    }
}
