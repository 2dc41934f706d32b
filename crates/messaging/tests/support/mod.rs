//! What the reliability tests share: a test database with the messaging
//! tables, a handler that records what it saw, and a reader of raw topics.

#![allow(dead_code)]

use std::time::Duration;

use async_trait::async_trait;
use messaging::embedded::EmbeddedBroker;
use messaging::inspect::RawMessage;
use messaging::{
    ConsumerConfig, ConsumerRunner, Handler, HandlerError, MessagingMetrics, Relay, RelayConfig,
    RetryPolicy,
};
use shared_events::connection::{ConnectionEvent, PointsAwarded};
use shared_events::{Envelope, Topic};
use sqlx::{PgConnection, PgPool};
pub use test_harness::TestBroker;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SCHEMA: &str = "points";

/// A fresh database whose `points` schema has the messaging tables and a
/// table the test handler writes to.
pub async fn database() -> PgPool {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let db = test_harness::fresh_database(&[SCHEMA]).await;
    let pool = PgPool::connect(db.url(SCHEMA))
        .await
        .expect("connect as the service role");
    messaging::schema::install(&pool)
        .await
        .expect("install messaging tables");
    sqlx::query(
        "CREATE TABLE handled (seq BIGSERIAL PRIMARY KEY, event_id UUID NOT NULL, user_id UUID NOT NULL, points BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("create handled table");
    pool
}

/// A broker of the test's own, so that no other test's messages are seen:
/// embedded, or tansu with `HEYBLUE_TEST_BROKER=tansu`.
pub async fn broker(topics: &[Topic], partitions: i32) -> TestBroker {
    TestBroker::start(topics, partitions).await
}

/// An embedded broker whatever the run asks for, for a test of what only
/// the mock cluster can do (answer chosen requests with chosen errors).
pub async fn embedded_broker(topics: &[Topic], partitions: i32) -> EmbeddedBroker {
    let TestBroker::Embedded(broker) = TestBroker::embedded() else {
        unreachable!("TestBroker::embedded is embedded")
    };
    broker
        .create_topics(topics, partitions)
        .expect("create the topics");
    broker
}

pub fn award(user_id: Uuid, points: i64) -> Envelope<ConnectionEvent> {
    Envelope::new(
        ConnectionEvent::PointsAwarded(PointsAwarded {
            award_id: Uuid::new_v4(),
            user_id,
            points,
            reason: "connection".to_owned(),
            connection_id: Uuid::new_v4(),
        }),
        Uuid::new_v4(),
    )
}

/// Commits `events` to the outbox in one transaction.
pub async fn commit(pool: &PgPool, events: &[Envelope<ConnectionEvent>]) {
    let mut tx = pool.begin().await.expect("begin");
    for event in events {
        messaging::outbox::enqueue(&mut tx, event)
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
}

/// Awards of this many points are ones the [`Recorder`] does not act on.
pub const PASSED_OVER: i64 = -1;

/// Records each award it handles; fails forever on points equal to
/// `poison`; does not act on awards of [`PASSED_OVER`] points.
pub struct Recorder {
    pub poison: Option<i64>,
}

#[async_trait]
impl Handler<ConnectionEvent> for Recorder {
    fn acts_on(&self, event: &ConnectionEvent) -> bool {
        let ConnectionEvent::PointsAwarded(award) = event;
        award.points != PASSED_OVER
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ConnectionEvent>,
    ) -> Result<(), HandlerError> {
        let ConnectionEvent::PointsAwarded(award) = &event.event;
        if Some(award.points) == self.poison {
            return Err(HandlerError::transient(anyhow::anyhow!(
                "award of {} points always fails",
                award.points
            )));
        }
        sqlx::query("INSERT INTO handled (event_id, user_id, points) VALUES ($1, $2, $3)")
            .bind(event.event_id)
            .bind(award.user_id)
            .bind(award.points)
            .execute(conn)
            .await?;
        Ok(())
    }
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }

    /// Ends the task without a graceful shutdown, as a crash would.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub fn start_relay(pool: &PgPool, bootstrap: &str) -> Running {
    start_relay_measured(pool, bootstrap).0
}

/// [`start_relay`], and the relay's metrics.
pub fn start_relay_measured(pool: &PgPool, bootstrap: &str) -> (Running, MessagingMetrics) {
    let metrics = MessagingMetrics::unregistered();
    let relay = Relay::new(pool.clone(), RelayConfig::new(bootstrap), metrics.clone())
        .expect("create relay");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(relay.run(shutdown.clone()));
    (Running { shutdown, task }, metrics)
}

pub fn start_consumer(
    pool: &PgPool,
    bootstrap: &str,
    poison: Option<i64>,
) -> (Running, MessagingMetrics) {
    start_consumer_in(pool, bootstrap, &test_harness::unique("group"), poison)
}

pub fn start_consumer_in(
    pool: &PgPool,
    bootstrap: &str,
    group: &str,
    poison: Option<i64>,
) -> (Running, MessagingMetrics) {
    let metrics = MessagingMetrics::unregistered();
    let mut config = ConsumerConfig::new(bootstrap, group);
    config.retry = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    let runner = ConsumerRunner::new(config, pool.clone(), metrics.clone()).on(Recorder { poison });
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let task = tokio::spawn(async move {
        runner.run(token).await.expect("consumer runs");
    });
    (Running { shutdown, task }, metrics)
}

pub use test_harness::eventually;

pub async fn handled(pool: &PgPool) -> Vec<(Uuid, Uuid, i64)> {
    sqlx::query_as("SELECT event_id, user_id, points FROM handled ORDER BY seq")
        .fetch_all(pool)
        .await
        .expect("read handled")
}

/// Every message on `topic`, once nothing new has come for `quiet`.
pub async fn read_topic(bootstrap: &str, topic: &str, quiet: Duration) -> Vec<RawMessage> {
    messaging::inspect::read_topic(bootstrap, topic, quiet)
        .await
        .expect("read topic")
}

/// Publishes an award as the connection capability would: its JSON, keyed by
/// its partition key, with a plain producer.
pub async fn publish(broker: &TestBroker, event: &Envelope<ConnectionEvent>) {
    produce_raw(
        broker.bootstrap_servers(),
        Topic::Connection.name(),
        &event.partition_key(),
        &event.to_json().expect("serialize event"),
    )
    .await;
}

/// Publishes raw bytes with a plain producer, as an outside publisher would.
pub async fn produce_raw(bootstrap: &str, topic: &str, key: &str, payload: &[u8]) {
    messaging::inspect::publish_raw(bootstrap, topic, key, payload, &[])
        .await
        .expect("publish");
}
