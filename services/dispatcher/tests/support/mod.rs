//! dispatcher started for a test: its own database and broker, optionally a
//! clock the test moves, and what a business and the order service see
//! (queues, answers, events).

#![allow(dead_code)] // each test binary uses its own share of these

use std::sync::Arc;
use std::time::Duration;

use dispatcher::Settings;
use http_service::auth::{mint_hs256, Claims, Role};
use job_queue::{Clock, ManualClock};
use messaging::embedded::EmbeddedBroker;
use serde_json::{json, Value};
use service_host::HostConfig;
use shared_events::dispatch::DispatchEvent;
use shared_events::order::{OrderEvent, OrderReadyForDispatch};
use shared_events::{Address, DispatchPart, Envelope, Line};
use test_harness::events::publish;
use test_harness::{Answer, Api, TestDatabase, TestService, JWT_SECRET};
use uuid::Uuid;

pub struct Dispatcher {
    pub service: TestService,
    pub api: Api,
    pub broker: EmbeddedBroker,
    pub db: TestDatabase,
    pub config: HostConfig,
    pub settings: Settings,
}

pub async fn start() -> Dispatcher {
    start_with(Settings::default(), None).await
}

/// With the test's own settings and, when given, a clock the test moves.
pub async fn start_with(settings: Settings, clock: Option<Arc<ManualClock>>) -> Dispatcher {
    let db = test_harness::fresh_database(&["dispatcher"]).await;
    let broker = test_harness::own_broker();
    let mut config =
        HostConfig::for_test(db.url("dispatcher"), broker.bootstrap_servers(), JWT_SECRET);
    if let Some(clock) = clock {
        let clock: Arc<dyn Clock> = clock;
        config.clock = clock;
    }
    let service = TestService::start_configured(
        &dispatcher::SPEC,
        dispatcher::build,
        config.clone(),
        settings.clone(),
    )
    .await;
    Dispatcher {
        api: service.api(),
        service,
        broker,
        db,
        config,
        settings,
    }
}

/// A token of `business`'s own staff.
pub fn business_token(business: Uuid) -> String {
    mint_hs256(
        JWT_SECRET,
        &Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(3600))
            .with_business_id(business),
    )
}

pub fn address() -> Address {
    Address {
        name: "Ada Lovelace".to_owned(),
        line1: "1 Main St".to_owned(),
        line2: None,
        city: "Springfield".to_owned(),
        postal_code: "12345".to_owned(),
        country: "US".to_owned(),
    }
}

/// A paid order with one part of one line per business.
pub fn ready(order_id: Uuid, businesses: &[Uuid]) -> OrderReadyForDispatch {
    OrderReadyForDispatch {
        order_id,
        customer_id: Uuid::new_v4(),
        shipping_address: address(),
        parts: businesses
            .iter()
            .map(|&business_id| DispatchPart {
                business_id,
                lines: vec![Line {
                    offering_id: Uuid::new_v4(),
                    business_id,
                    title: "Coffee beans".to_owned(),
                    quantity: 2,
                    unit_price_minor: 1500,
                    points_applied: 100,
                    discount_minor: 500,
                    amount_due_minor: 2500,
                }],
            })
            .collect(),
    }
}

impl Dispatcher {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// Stops the service, then starts it again on the same database and
    /// broker: nothing of the first instance runs meanwhile.
    pub async fn restart(self) -> Dispatcher {
        let Dispatcher {
            service,
            broker,
            db,
            config,
            settings,
            ..
        } = self;
        service
            .stop()
            .await
            .expect("the first instance stops cleanly");
        let service = TestService::start_configured(
            &dispatcher::SPEC,
            dispatcher::build,
            config.clone(),
            settings.clone(),
        )
        .await;
        Dispatcher {
            api: service.api(),
            service,
            broker,
            db,
            config,
            settings,
        }
    }

    /// Publishes `order_ready_for_dispatch` as the order service would, each
    /// time as a new event.
    pub async fn publish_ready(&self, ready: &OrderReadyForDispatch) {
        publish(
            self.bootstrap(),
            &Envelope::new(
                OrderEvent::OrderReadyForDispatch(ready.clone()),
                ready.order_id,
            ),
        )
        .await;
    }

    /// `business`'s queue as the business reads it.
    pub async fn queue(&self, business: Uuid, query: &str) -> Vec<Value> {
        let page = self
            .api
            .get(&format!("/v1/dispatch/businesses/{business}/orders{query}"))
            .bearer(&business_token(business))
            .send()
            .await
            .expect_status(200)
            .body;
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `business`'s queue holds `count` parts.
    pub async fn wait_for_queue(&self, business: Uuid, count: usize) -> Vec<Value> {
        test_harness::eventually(
            Duration::from_secs(20),
            &format!("{count} parts are in business {business}'s queue"),
            || async { self.queue(business, "").await.len() >= count },
        )
        .await;
        self.queue(business, "").await
    }

    /// `business` answers about its part of `order` through the API:
    /// `action` is `confirm`, `decline`, `shipments` or `delivered`.
    pub async fn answer(&self, business: Uuid, order: Uuid, action: &str, body: &Value) -> Answer {
        self.api
            .post(&format!("/v1/dispatch/orders/{order}/{action}"))
            .bearer(&business_token(business))
            .json(body)
            .send()
            .await
    }

    pub async fn withdraw(&self, order: Uuid) -> Answer {
        self.api
            .post(&format!("/v1/dispatch/orders/{order}/withdraw"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
    }

    /// Chooses `business`'s plugin as an admin would.
    pub async fn integrate(&self, business: Uuid, plugin: &str, config: Value) -> Answer {
        self.api
            .put(&format!("/v1/dispatch/integrations/{business}"))
            .as_user(Uuid::new_v4(), Role::Admin)
            .json(&json!({"plugin": plugin, "config": config}))
            .send()
            .await
    }

    /// The events about `order` on `heyblue.dispatch.v1`, waiting until at
    /// least `at_least` were published.
    pub async fn events_of(&self, order: Uuid, at_least: usize) -> Vec<DispatchEvent> {
        test_harness::eventually(
            Duration::from_secs(20),
            &format!("{at_least} dispatch events of order {order} are published"),
            || async { self.events_now(order).await.len() >= at_least },
        )
        .await;
        self.events_now(order).await
    }

    pub async fn events_now(&self, order: Uuid) -> Vec<DispatchEvent> {
        test_harness::events::read_events::<DispatchEvent>(self.bootstrap())
            .await
            .into_iter()
            .map(|envelope| envelope.event)
            .filter(|event| event.order_id() == order)
            .collect()
    }
}

/// The `event_type`s of `events`, in order.
pub fn types(events: &[DispatchEvent]) -> Vec<&'static str> {
    use shared_events::EventFamily;
    events.iter().map(EventFamily::event_type).collect()
}
