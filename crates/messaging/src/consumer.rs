//! The consumer runner: the one loop every service's event handlers run in.
//!
//! For each message: decode the envelope (undecodable → dead letter), pass
//! over event types the handler's family does not know and events the
//! handler says it does not act on ([`Handler::acts_on`]), then in one
//! database transaction record the `event_id` in the inbox and run the
//! handler. The offset is stored for commit only after that transaction
//! commits, so a crash anywhere redelivers the message and the inbox turns
//! the redelivery into a no-op.
//!
//! Messages of one partition are handled in order; partitions run
//! concurrently. When several of a partition's messages are waiting, up to
//! [`ConsumerConfig::batch_max`] of them share one transaction (one inbox
//! statement, one commit); if any of them fails, the batch is rolled back
//! and its events are handled one at a time, each with its own retries, so
//! a batch changes how often the database commits, never what it holds.
//! Replicas of a service share a group: when a rebalance
//! moves partitions, messages this member received before it and has not
//! begun are dropped unhandled (their offsets not stored), since the
//! partition's new owner reads them again from the committed offset; so two
//! members never work through one partition's backlog side by side, out of
//! order. A handler's transient failure is retried with backoff;
//! when retries run out, or the failure is permanent, the message goes to
//! `<topic>.dlq` with the error in its headers and the partition moves on. A
//! database or broker outage is not the message's fault: the runner waits it
//! out instead of dead-lettering.
//!
//! Offsets are committed by the runner, every half second and before a
//! rebalance. A client that lost the broker commits nothing more and is
//! replaced by a new one once the broker answers again (see
//! [`ConsumerRunner::run`]): the broker may have come back without its
//! state, and a position in a log it no longer has, committed into the new
//! log, would skip that log's first messages.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use shared_events::{Envelope, EnvelopeHeader, EventFamily, Topic};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::kafka::{self, client_config, reliable_producer, HEADER_TRACEPARENT};
use crate::metrics::MessagingMetrics;
use trace_context::TraceParent;

/// Handles one family of events. Runs inside the transaction that records
/// the event in the inbox: write state and outbox rows through `conn`, and
/// they commit together with the dedupe record.
#[async_trait]
pub trait Handler<E: EventFamily>: Send + Sync + 'static {
    /// Whether the handler acts on `event`. An event it does not act on is
    /// passed over without a transaction or an inbox record, its offset
    /// stored at once; so answer false only for events whose handling would
    /// change nothing. Every event of the family, unless said otherwise.
    fn acts_on(&self, event: &E) -> bool {
        let _ = event;
        true
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<E>,
    ) -> Result<(), HandlerError>;
}

/// Why a handler failed, which decides between retrying and dead-lettering.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying: a lock timeout, a dependency briefly away.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help: the event contradicts what we know.
    #[error("permanent failure: {0:#}")]
    Permanent(anyhow::Error),
}

impl HandlerError {
    pub fn transient(error: impl Into<anyhow::Error>) -> Self {
        HandlerError::Transient(error.into())
    }

    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        HandlerError::Permanent(error.into())
    }
}

impl From<sqlx::Error> for HandlerError {
    /// Integrity violations (SQLSTATE class 23) will fail again on retry;
    /// everything else from the database may pass next time.
    fn from(error: sqlx::Error) -> Self {
        let integrity = matches!(&error, sqlx::Error::Database(db)
            if db.code().is_some_and(|code| code.starts_with("23")));
        if integrity {
            HandlerError::Permanent(error.into())
        } else {
            HandlerError::Transient(error.into())
        }
    }
}

/// How often a handler's transient failure is retried before dead-lettering.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The default `fetch.wait.max.ms`, chosen for the embedded broker (see
/// [`ConsumerConfig::fetch_wait_max_ms`]); deployments on Apache Kafka raise it.
pub const DEFAULT_FETCH_WAIT_MAX_MS: u32 = 5;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub bootstrap: String,
    /// The consumer group; also the inbox's scope for dedupe.
    pub group_id: String,
    pub retry: RetryPolicy,
    /// Longest pause while waiting out a database or broker outage.
    pub outage_max_backoff: Duration,
    /// Messages buffered per partition ahead of its handler.
    pub partition_buffer: usize,
    /// Most events of one partition handled in one transaction, when that
    /// many are waiting: under load one commit serves many events; idle,
    /// each event is its own batch and waits for no other.
    pub batch_max: usize,
    /// `fetch.wait.max.ms`: how long the broker may hold an empty fetch.
    /// Apache Kafka answers as soon as data arrives, so a long wait costs
    /// nothing there; the embedded mock broker always waits it out, so
    /// there it bounds the latency of every hop.
    pub fetch_wait_max_ms: u32,
}

impl ConsumerConfig {
    pub fn new(bootstrap: impl Into<String>, group_id: impl Into<String>) -> Self {
        ConsumerConfig {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            retry: RetryPolicy::default(),
            outage_max_backoff: Duration::from_secs(5),
            partition_buffer: 256,
            batch_max: 32,
            fetch_wait_max_ms: DEFAULT_FETCH_WAIT_MAX_MS,
        }
    }
}

/// An event decoded by its route, for the same route's handler.
type Decoded = Box<dyn Any + Send + Sync>;

/// One registered family, with its type erased so families share a loop.
#[async_trait]
trait Route: Send + Sync {
    fn knows(&self, event_type: &str) -> bool;
    /// The event, when its handler acts on it; `None` when it does not, and
    /// why when it cannot be decoded.
    fn decode(&self, payload: &[u8]) -> Result<Option<Decoded>, String>;
    async fn handle(&self, conn: &mut PgConnection, event: &Decoded) -> Result<(), HandlerError>;
}

struct Typed<E, H> {
    handler: H,
    family: PhantomData<fn() -> E>,
}

#[async_trait]
impl<E: EventFamily, H: Handler<E>> Route for Typed<E, H> {
    fn knows(&self, event_type: &str) -> bool {
        E::EVENT_TYPES.contains(&event_type)
    }

    fn decode(&self, payload: &[u8]) -> Result<Option<Decoded>, String> {
        let event: Envelope<E> = serde_json::from_slice(payload)
            .map_err(|e| format!("undecodable {}: {e}", E::TOPIC))?;
        Ok(self
            .handler
            .acts_on(&event.event)
            .then(|| Box::new(event) as Decoded))
    }

    async fn handle(&self, conn: &mut PgConnection, event: &Decoded) -> Result<(), HandlerError> {
        let event = event.downcast_ref::<Envelope<E>>().ok_or_else(|| {
            HandlerError::permanent(anyhow::anyhow!(
                "an event of another family reached the handler of {}",
                E::TOPIC
            ))
        })?;
        self.handler.handle(conn, event).await
    }
}

/// Whether a runner has joined its consumer group, for `/readyz`: until the
/// group has assigned it partitions, events wait unhandled.
#[derive(Debug, Clone)]
pub struct ConsumerReadiness(Arc<AtomicBool>);

impl ConsumerReadiness {
    pub fn is_joined(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Reports consumer lag from librdkafka's periodic statistics, the
/// partitions the group gave this member, and the first assignment.
struct LagContext {
    group: String,
    /// The topics subscribed to.
    topics: Vec<&'static str>,
    metrics: MessagingMetrics,
    joined: Arc<AtomicBool>,
    /// Counts rebalances: a message received under an older count belongs
    /// to an assignment that has ended.
    generation: Arc<AtomicU64>,
    errors: kafka::ErrorThrottle,
}

impl ClientContext for LagContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, stats) in stats.partitions {
                if let Some(lag) = unhandled(&stats) {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[&self.group, &topic, &partition.to_string()])
                        .set(lag);
                }
            }
        }
    }
}

/// Messages of an assigned partition not yet handled: from the offset stored
/// after the last handled message (or committed before) to the end. With no
/// position yet, everything still on the partition is pending (consumers
/// start from the earliest message). librdkafka's own `consumer_lag` says -1
/// there, which would hide a group that has not handled anything.
fn unhandled(stats: &rdkafka::statistics::Partition) -> Option<i64> {
    if stats.partition < 0 || !stats.desired || stats.hi_offset < 0 {
        return None;
    }
    let position = stats.stored_offset.max(stats.committed_offset);
    let start = if position >= 0 {
        position
    } else {
        stats.lo_offset.max(0)
    };
    Some((stats.hi_offset - start).max(0))
}

impl ConsumerContext for LagContext {
    /// Runs before the assignment changes: every message received from now
    /// on belongs to the next assignment. Partitions taken away get the
    /// offsets stored for them committed first, so their next owner starts
    /// where this member stopped; unless this client lost the broker, whose
    /// positions may be of logs the broker no longer has.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Rebalance::Revoke(_) = rebalance {
            if !self.errors.loss().happened() {
                if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(%error, "no offsets committed before the rebalance");
                }
            }
        }
    }

    /// The group's assignor is eager (librdkafka's default `range,roundrobin`):
    /// a rebalance revokes everything, then assigns this member its whole
    /// new share, so each assignment replaces the last.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let partitions = partitions.elements();
                for topic in &self.topics {
                    let held = partitions.iter().filter(|p| p.topic() == *topic).count();
                    self.metrics
                        .assigned_partitions
                        .with_label_values(&[self.group.as_str(), topic])
                        .set(i64::try_from(held).unwrap_or(i64::MAX));
                }
                tracing::info!(group = %self.group, partitions = partitions.len(), "partitions assigned");
                self.joined.store(true, Ordering::Relaxed);
            }
            Rebalance::Revoke(partitions) => {
                for topic in &self.topics {
                    self.metrics
                        .assigned_partitions
                        .with_label_values(&[self.group.as_str(), topic])
                        .set(0);
                }
                // Another member reports their lag now.
                for partition in partitions.elements() {
                    let _ = self.metrics.consumer_lag.remove_label_values(&[
                        &self.group,
                        partition.topic(),
                        &partition.partition().to_string(),
                    ]);
                }
                tracing::info!(group = %self.group, partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Error(error) => {
                tracing::warn!(group = %self.group, %error, "rebalance failed");
            }
        }
    }
}

type KafkaConsumer = StreamConsumer<LagContext>;

/// The consumer, closed on a thread of its own when the last holder lets
/// go of it. Closing a group member blocks until it has left its group,
/// polling librdkafka every 100 ms for as long as that takes, without end
/// while the broker is gone. Dropped on an async worker (say, when a
/// runtime shuts down and cancels the partition tasks after the broker
/// was stopped), that would hold the worker, and the runtime's shutdown
/// with it, forever; on its own thread it ends with its close, or with the
/// process.
struct Closing(Option<KafkaConsumer>);

impl std::ops::Deref for Closing {
    type Target = KafkaConsumer;

    fn deref(&self) -> &KafkaConsumer {
        // Only `drop` takes it out.
        self.0
            .as_ref()
            .expect("the consumer is there until dropped")
    }
}

impl Drop for Closing {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let closing = std::thread::Builder::new()
                .name("kafka-consumer-close".to_owned())
                .spawn(move || drop(consumer));
            if let Err(error) = closing {
                tracing::warn!(%error, "no thread to close the Kafka consumer on; closing it here");
            }
        }
    }
}

/// Runs registered handlers over their topics until shutdown.
pub struct ConsumerRunner {
    config: ConsumerConfig,
    pool: PgPool,
    metrics: MessagingMetrics,
    routes: HashMap<&'static str, Arc<dyn Route>>,
    /// Topics registered more than once: a mistake [`ConsumerRunner::check`]
    /// reports at start-up rather than one handler silently replacing another.
    registered_twice: Vec<&'static str>,
    joined: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
}

impl ConsumerRunner {
    pub fn new(config: ConsumerConfig, pool: PgPool, metrics: MessagingMetrics) -> Self {
        ConsumerRunner {
            config,
            pool,
            metrics,
            routes: HashMap::new(),
            registered_twice: Vec::new(),
            joined: Arc::new(AtomicBool::new(false)),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Tells whether the runner has joined its group. A runner with no
    /// handlers has nothing to join and counts as joined once it runs.
    pub fn readiness(&self) -> ConsumerReadiness {
        ConsumerReadiness(self.joined.clone())
    }

    /// Registers the handler of `E`'s topic. One handler per topic: a second
    /// one for the same topic makes [`ConsumerRunner::check`] (and `run`)
    /// fail; a handler that needs several event types matches on them.
    pub fn on<E: EventFamily, H: Handler<E>>(mut self, handler: H) -> Self {
        if self.routes.contains_key(E::TOPIC.name()) {
            self.registered_twice.push(E::TOPIC.name());
        }
        self.routes.insert(
            E::TOPIC.name(),
            Arc::new(Typed::<E, H> {
                handler,
                family: PhantomData,
            }),
        );
        self
    }

    /// The topics this runner consumes.
    pub fn topics(&self) -> Vec<Topic> {
        self.routes
            .keys()
            .filter_map(|name| Topic::from_name(name))
            .collect()
    }

    /// Fails when a topic got more than one handler.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.registered_twice.as_slice() {
            [] => Ok(()),
            topics => anyhow::bail!(
                "more than one handler registered for {}; register one handler per topic",
                topics.join(", ")
            ),
        }
    }

    /// Consumes until `shutdown` is cancelled; then lets each partition finish
    /// the message in hand and commits the stored offsets.
    ///
    /// A client that lost the broker is not trusted when the broker comes
    /// back (see [`kafka::BrokerLoss`]), so it is let go at once, with its
    /// dead-letter producer, and commits nothing more: when a broker that
    /// lost its state made the topics again, librdkafka was seen crashing in
    /// the clients that knew the old ones. Once the broker answers with the
    /// topics again, a new client joins the group afresh and starts from the
    /// group's committed offsets, or from the beginning of a log the broker
    /// made anew. Whatever that reads twice, the inbox turns into nothing.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.check()?;
        if self.routes.is_empty() {
            self.joined.store(true, Ordering::Relaxed);
            return Ok(());
        }
        while let Ended::BrokerLost(at) = self.run_session(&shutdown).await? {
            tracing::warn!(
                group = %self.config.group_id,
                "the consumer lost the broker; a new one takes over once the broker answers"
            );
            if !self.await_return(at, &shutdown).await {
                break;
            }
            self.metrics.consumer_renewals.inc();
            tracing::warn!(
                group = %self.config.group_id,
                "the broker is back after an outage, perhaps without its state; consuming through a new client"
            );
        }
        Ok(())
    }

    /// Waits until the broker answers with the topics again, and the group
    /// has let go of the client lost at `lost_at`, which could not say
    /// goodbye: a member that joins while the group still counts the old one
    /// waits for it, and tansu was seen giving such a member no partitions
    /// at all. False when shutdown came first.
    async fn await_return(
        &self,
        lost_at: tokio::time::Instant,
        shutdown: &CancellationToken,
    ) -> bool {
        let topics: Vec<&str> = self.routes.keys().copied().collect();
        loop {
            if lost_at.elapsed() >= SESSION_TIMEOUT
                && kafka::broker_answers(&self.config.bootstrap, &topics, Duration::from_secs(1))
                    .await
            {
                return true;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// Consumes through one client until shutdown, or until that client
    /// lost the broker.
    async fn run_session(&self, shutdown: &CancellationToken) -> anyhow::Result<Ended> {
        self.joined.store(false, Ordering::Relaxed);
        let errors = kafka::ErrorThrottle::default();
        let loss = errors.loss();
        let topics: Vec<&str> = self.routes.keys().copied().collect();
        let consumer: Arc<Closing> = Arc::new(Closing(Some(
            consumer_config(&self.config)
                .create_with_context(LagContext {
                    group: self.config.group_id.clone(),
                    topics: topics.clone(),
                    metrics: self.metrics.clone(),
                    joined: self.joined.clone(),
                    generation: self.generation.clone(),
                    errors,
                })
                .context("failed to create Kafka consumer")?,
        )));
        consumer
            .subscribe(&topics)
            .with_context(|| format!("failed to subscribe to {topics:?}"))?;
        let mut handlers = Handlers::new(Arc::new(Worker {
            config: self.config.clone(),
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            routes: self.routes.clone(),
            dead_letters: reliable_producer(&self.config.bootstrap)?,
            consumer: consumer.clone(),
            // Ends the handlers' work: on shutdown, or when the client
            // lost the broker.
            stop: shutdown.child_token(),
            generation: self.generation.clone(),
        }));
        tracing::info!(group = %self.config.group_id, ?topics, "consumer started");

        let mut failure = None;
        let mut ticks = tokio::time::interval(COMMIT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ended = loop {
            let received = tokio::select! {
                received = consumer.recv() => received,
                _ = ticks.tick() => {
                    if loss.happened() {
                        break Ended::BrokerLost(tokio::time::Instant::now());
                    }
                    commit_stored(&consumer);
                    continue;
                }
                () = shutdown.cancelled() => break Ended::Shutdown,
            };
            let message = match received {
                Ok(message) => message.detach(),
                Err(error) => {
                    consumer.context().errors.report(&error, "consuming");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let received = Received {
                generation: self.generation.load(Ordering::SeqCst),
                message,
            };
            tokio::select! {
                handed = handlers.hand(received) => if let Err(error) = handed {
                    failure = Some(error);
                    break Ended::Shutdown;
                },
                () = shutdown.cancelled() => break Ended::Shutdown,
            }
        };
        handlers.stop().await;
        if loss.happened() {
            // Its positions may be of logs the broker no longer has; the
            // next client reads from what the group committed instead.
            tracing::debug!("offsets of a client that lost the broker left uncommitted");
        } else {
            // A synchronous commit blocks its thread, for as long as the
            // broker takes to answer; keep it off the async workers.
            let committer = consumer.clone();
            let committed = tokio::task::spawn_blocking(move || {
                committer.commit_consumer_state(CommitMode::Sync)
            });
            match tokio::time::timeout(Duration::from_secs(5), committed).await {
                Ok(Ok(Ok(()))) => {}
                // Nothing stored since the last commit, the group is gone, or the
                // broker is: anything uncommitted is redelivered and deduped.
                outcome => tracing::debug!(?outcome, "final offset commit did not complete"),
            }
        }
        // Leave the group now, so the partitions move to another member at
        // once rather than after the session times out.
        consumer.unsubscribe();
        tracing::info!(group = %self.config.group_id, "consumer stopped");
        failure.map_or(Ok(ended), Err)
    }
}

/// The partitions' handler tasks of one client, each fed through its own
/// channel.
struct Handlers {
    worker: Arc<Worker>,
    partitions: HashMap<(String, i32), mpsc::Sender<Received>>,
    tasks: JoinSet<()>,
}

impl Handlers {
    fn new(worker: Arc<Worker>) -> Self {
        Handlers {
            worker,
            partitions: HashMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Hands a message to its partition's task, started at its first
    /// message; waits while that task's buffer is full.
    async fn hand(&mut self, received: Received) -> anyhow::Result<()> {
        let message = &received.message;
        let key = (message.topic().to_owned(), message.partition());
        let worker = &self.worker;
        let tasks = &mut self.tasks;
        let sender = self.partitions.entry(key).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(worker.config.partition_buffer);
            tasks.spawn(worker.clone().run_partition(receiver));
            sender
        });
        sender.send(received).await.map_err(|unsent| {
            // The partition's worker gave up (a dead letter it could not
            // write): stop consuming altogether rather than skip the
            // message; the service stops and its restart resumes from the
            // last committed offset.
            let message = unsent.0.message;
            anyhow::anyhow!(
                "stopped handling {}[{}] at offset {}: a message could be neither handled nor dead-lettered",
                message.topic(), message.partition(), message.offset()
            )
        })
    }

    /// Stops the tasks, each after the message in hand, and waits for them;
    /// then lets go of the worker and its dead-letter producer.
    async fn stop(self) {
        let Handlers {
            worker,
            partitions,
            mut tasks,
        } = self;
        worker.stop.cancel();
        drop(partitions);
        while tasks.join_next().await.is_some() {}
    }
}

/// How often the offsets of handled messages are committed.
const COMMIT_EVERY: Duration = Duration::from_millis(500);

/// How long the group waits for a member that has gone silent.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a consumer's client stopped.
enum Ended {
    Shutdown,
    /// It lost the broker, at this moment.
    BrokerLost(tokio::time::Instant),
}

/// Commits the offsets stored since the last commit, without waiting.
fn commit_stored(consumer: &KafkaConsumer) {
    match consumer.commit_consumer_state(CommitMode::Async) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => tracing::debug!(%error, "offsets not committed"),
    }
}

fn consumer_config(config: &ConsumerConfig) -> ClientConfig {
    let mut client = client_config(&config.bootstrap);
    client
        .set("group.id", &config.group_id)
        // Offsets are stored by the runner after the handler's commit, never
        // on receipt, and committed by the runner every [`COMMIT_EVERY`]
        // and before a rebalance, unless the client lost the broker.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // A member that vanished without leaving (a crash) holds its
        // partitions until its session times out; 10 s bounds that pause.
        .set(
            "session.timeout.ms",
            SESSION_TIMEOUT.as_millis().to_string(),
        )
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", config.fetch_wait_max_ms.to_string())
        .set("statistics.interval.ms", "5000");
    client
}

/// A message and the rebalance generation it was received in.
struct Received {
    generation: u64,
    message: OwnedMessage,
}

struct Worker {
    config: ConsumerConfig,
    pool: PgPool,
    metrics: MessagingMetrics,
    routes: HashMap<&'static str, Arc<dyn Route>>,
    dead_letters: kafka::ReliableProducer,
    consumer: Arc<Closing>,
    /// Shutdown, or the end of this client's session.
    stop: CancellationToken,
    generation: Arc<AtomicU64>,
}

/// A message of the batch in hand, and what it asks of the runner.
struct Entry {
    /// The rebalance generation it was received in.
    generation: u64,
    message: OwnedMessage,
    span: tracing::Span,
    trace: TraceParent,
    step: Step,
}

enum Step {
    /// Nothing: a topic or event type not handled here, or an event the
    /// handler does not act on.
    PassOver,
    /// To the dead-letter topic, with why.
    DeadLetter(String),
    /// For the handler.
    Handle {
        route: Arc<dyn Route>,
        header: EnvelopeHeader,
        event: Decoded,
    },
}

/// An entry's event for the handler, its parts borrowed from the entry.
struct Work<'a> {
    entry: &'a Entry,
    route: &'a dyn Route,
    header: &'a EnvelopeHeader,
    event: &'a Decoded,
}

impl<'a> Work<'a> {
    /// The entry's work, when it is for the handler.
    fn of(entry: &'a Entry) -> Option<Self> {
        match &entry.step {
            Step::Handle {
                route,
                header,
                event,
            } => Some(Work {
                entry,
                route: route.as_ref(),
                header,
                event,
            }),
            Step::PassOver | Step::DeadLetter(_) => None,
        }
    }
}

/// Whether a partition's worker goes on.
enum Flow {
    Continue,
    /// Shutdown came first, or a message could be neither handled nor
    /// dead-lettered: the offset stays where it was.
    Stop,
}

/// What became of one message.
enum Outcome {
    Handled,
    Duplicate,
    DeadLettered,
    /// Shutdown came first; the offset stays where it was.
    Interrupted,
}

impl Worker {
    async fn run_partition(self: Arc<Self>, mut messages: mpsc::Receiver<Received>) {
        let limit = self.config.batch_max.max(1);
        let mut received = Vec::with_capacity(limit);
        while messages.recv_many(&mut received, limit).await > 0 {
            if self.stop.is_cancelled() {
                break;
            }
            let entries: Vec<Entry> = received.drain(..).map(|r| self.prepare(r)).collect();
            if let Flow::Stop = self.work_through(entries).await {
                break;
            }
        }
    }

    /// Decodes a message and decides what it needs, inside its own span.
    fn prepare(&self, received: Received) -> Entry {
        let Received {
            generation,
            message,
        } = received;
        let trace = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == HEADER_TRACEPARENT))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(TraceParent::parse)
            .map(|parent| parent.child())
            .unwrap_or_else(TraceParent::new_root);
        let span = tracing::info_span!(
            "consume",
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            trace_id = %trace.trace_id_hex(),
            event_id = tracing::field::Empty,
            event_type = tracing::field::Empty,
        );
        let step = span.in_scope(|| self.step(&message, &span));
        Entry {
            generation,
            message,
            span,
            trace,
            step,
        }
    }

    /// Whether the message still belongs to this member: one received
    /// before a rebalance is left for the partition's owner, which reads it
    /// again from the committed offset. Shutdown leaves it too.
    fn still_ours(&self, entry: &Entry) -> bool {
        let current = entry.generation == self.generation.load(Ordering::SeqCst);
        if !current {
            tracing::debug!(
                topic = entry.message.topic(),
                partition = entry.message.partition(),
                offset = entry.message.offset(),
                "dropped a message received before a rebalance"
            );
        }
        current && !self.stop.is_cancelled()
    }

    fn step(&self, message: &OwnedMessage, span: &tracing::Span) -> Step {
        let topic = message.topic();
        let payload = message.payload().unwrap_or_default();
        let header: EnvelopeHeader = match serde_json::from_slice(payload) {
            Ok(header) => header,
            Err(error) => return Step::DeadLetter(format!("undecodable envelope: {error}")),
        };
        span.record("event_id", tracing::field::display(header.event_id));
        span.record("event_type", header.event_type.as_str());
        let Some(route) = self.routes.get(topic) else {
            return Step::PassOver;
        };
        if !route.knows(&header.event_type) {
            self.metrics
                .skipped
                .with_label_values(&[topic, &header.event_type])
                .inc();
            tracing::debug!("skipping an event type this service does not handle");
            return Step::PassOver;
        }
        match route.decode(payload) {
            Err(error) => Step::DeadLetter(error),
            Ok(None) => {
                self.metrics
                    .passed_over
                    .with_label_values(&[topic, &header.event_type])
                    .inc();
                tracing::debug!("the handler does not act on this event; passed over");
                Step::PassOver
            }
            Ok(Some(event)) => Step::Handle {
                route: route.clone(),
                header,
                event,
            },
        }
    }

    /// Works through a partition's messages in order. Consecutive events for
    /// the handler go in one transaction; a dead letter ends such a run. The
    /// offset is stored after what precedes it is done. Messages that are no
    /// longer this member's to handle end the work, unhandled.
    async fn work_through(&self, entries: Vec<Entry>) -> Flow {
        let mut run: Vec<Entry> = Vec::new();
        for entry in entries {
            if !self.still_ours(&entry) {
                break;
            }
            if let Step::DeadLetter(error) = &entry.step {
                if let Flow::Stop = self.finish(std::mem::take(&mut run)).await {
                    return Flow::Stop;
                }
                let outcome = self
                    .dead_letter(&entry.message, error)
                    .instrument(entry.span.clone())
                    .await;
                if let Outcome::Interrupted = outcome {
                    return Flow::Stop;
                }
                self.store_offset(&entry.message);
            } else {
                run.push(entry);
            }
        }
        self.finish(run).await
    }

    /// Handles a run of messages (none of them for the dead-letter topic):
    /// several events in one transaction, or, when that fails, each on its
    /// own with its retries. Then stores the run's last offset.
    async fn finish(&self, run: Vec<Entry>) -> Flow {
        let Some(last) = run.last() else {
            return Flow::Continue;
        };
        if !self.still_ours(last) {
            return Flow::Continue;
        }
        let work: Vec<Work<'_>> = run.iter().filter_map(Work::of).collect();
        let together = work.len() > 1
            && match self.attempt_together(&work).await {
                Ok(()) => true,
                Err(error) => {
                    let topic = last.message.topic();
                    self.metrics.batches_split.with_label_values(&[topic]).inc();
                    tracing::debug!(error = ?error, events = work.len(), "a batch failed; handling its events one by one");
                    false
                }
            };
        if !together {
            for work in &work {
                let entry = work.entry;
                if !self.still_ours(entry) {
                    return Flow::Continue;
                }
                let outcome = entry
                    .trace
                    .scope(self.process(work).instrument(entry.span.clone()))
                    .await;
                if let Outcome::Interrupted = outcome {
                    return Flow::Stop;
                }
            }
        }
        self.store_offset(&last.message);
        Flow::Continue
    }

    fn store_offset(&self, message: &OwnedMessage) {
        if let Err(error) =
            self.consumer
                .store_offset(message.topic(), message.partition(), message.offset())
        {
            // The partition moved to another member, which will see the
            // message again and find it in the inbox.
            tracing::debug!(error = %error, "offset not stored");
        }
    }

    /// One event for the handler, retried while its failure is transient
    /// and the database away, dead-lettered when retrying cannot help.
    async fn process(&self, work: &Work<'_>) -> Outcome {
        let message = &work.entry.message;
        let topic = message.topic();
        let mut attempt = 1;
        let mut outage_backoff = Duration::from_millis(100);
        loop {
            match self.attempt(work).await {
                Ok(outcome) => return outcome,
                Err(Failure::Outage(error)) => {
                    tracing::warn!(error = ?error, retry_in = ?outage_backoff, "database unavailable; waiting");
                    if !self.pause(outage_backoff).await {
                        return Outcome::Interrupted;
                    }
                    outage_backoff = (outage_backoff * 2).min(self.config.outage_max_backoff);
                }
                Err(Failure::Handler(HandlerError::Permanent(error))) => {
                    self.metrics.failed.with_label_values(&[topic]).inc();
                    tracing::error!(error = ?error, "handler failed permanently");
                    return self.dead_letter(message, &format!("{error:#}")).await;
                }
                Err(Failure::Handler(HandlerError::Transient(error))) => {
                    self.metrics.failed.with_label_values(&[topic]).inc();
                    if attempt >= self.config.retry.attempts {
                        tracing::error!(error = ?error, attempt, "handler failed; retries exhausted");
                        return self
                            .dead_letter(
                                message,
                                &format!("failed after {attempt} attempts: {error:#}"),
                            )
                            .await;
                    }
                    let backoff = self.config.retry.backoff(attempt);
                    tracing::warn!(error = ?error, attempt, retry_in = ?backoff, "handler failed; retrying");
                    if !self.pause(backoff).await {
                        return Outcome::Interrupted;
                    }
                    attempt += 1;
                }
            }
        }
    }

    /// One try: inbox record and handler in one transaction.
    async fn attempt(&self, work: &Work<'_>) -> Result<Outcome, Failure> {
        let Work {
            entry,
            route,
            header,
            event,
        } = work;
        let message = &entry.message;
        let mut tx = self.pool.begin().await.map_err(Failure::outage)?;
        let recorded = sqlx::query(
            "INSERT INTO messaging_inbox (consumer, event_id, topic, event_type)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&self.config.group_id)
        .bind(header.event_id)
        .bind(message.topic())
        .bind(&header.event_type)
        .execute(&mut *tx)
        .await
        .map_err(Failure::outage)?
        .rows_affected();
        if recorded == 0 {
            self.duplicate(message.topic());
            return Ok(Outcome::Duplicate);
        }
        let (handled, held) = crate::wake::hold(route.handle(&mut tx, event)).await;
        handled.map_err(Failure::Handler)?;
        tx.commit().await.map_err(Failure::outage)?;
        self.committed(message.topic(), held, [header.event_type.as_str()]);
        Ok(Outcome::Handled)
    }

    /// Several events in one transaction: their inbox records in one
    /// statement, then each handler in turn, each in its event's span. Any
    /// failure rolls all of them back, for [`Worker::process`] to take one
    /// by one.
    async fn attempt_together(&self, work: &[Work<'_>]) -> anyhow::Result<()> {
        let topic = work[0].entry.message.topic();
        let mut tx = self.pool.begin().await?;
        // Batches of two partitions may take the same rows in opposite
        // orders; rather than wait for the deadlock to be found, give up
        // soon and go one event at a time, which takes them in one order.
        sqlx::query("SET LOCAL lock_timeout = '100ms'")
            .execute(&mut *tx)
            .await?;
        let ids: Vec<Uuid> = work.iter().map(|w| w.header.event_id).collect();
        let types: Vec<&str> = work.iter().map(|w| w.header.event_type.as_str()).collect();
        let mut fresh: HashSet<Uuid> = sqlx::query_scalar(
            "INSERT INTO messaging_inbox (consumer, event_id, topic, event_type)
             SELECT $1, id, $3, event_type FROM UNNEST($2::uuid[], $4::text[]) AS e(id, event_type)
             ON CONFLICT DO NOTHING
             RETURNING event_id",
        )
        .bind(&self.config.group_id)
        .bind(&ids)
        .bind(topic)
        .bind(&types)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        let (done, held) = crate::wake::hold(async {
            let mut done = Vec::with_capacity(work.len());
            for Work {
                entry,
                route,
                header,
                event,
            } in work
            {
                // A redelivery, or the same event twice in one batch.
                if !fresh.remove(&header.event_id) {
                    entry.span.in_scope(|| self.duplicate(topic));
                    continue;
                }
                entry
                    .trace
                    .scope(route.handle(&mut tx, event).instrument(entry.span.clone()))
                    .await?;
                done.push(header.event_type.as_str());
            }
            Ok::<_, HandlerError>(done)
        })
        .await;
        let done = done?;
        tx.commit().await?;
        self.committed(topic, held, done);
        Ok(())
    }

    fn duplicate(&self, topic: &str) {
        self.metrics.duplicates.with_label_values(&[topic]).inc();
        tracing::debug!("already handled; ignoring the redelivery");
    }

    /// Counts what a transaction handled, once it has committed.
    fn committed<'a>(
        &self,
        topic: &str,
        held: crate::wake::Held,
        event_types: impl IntoIterator<Item = &'a str>,
    ) {
        // The handlers' outbox rows and jobs are there now: the relay and
        // the job runner find them at their first look.
        held.commit_done();
        self.metrics.transactions.with_label_values(&[topic]).inc();
        for event_type in event_types {
            self.metrics
                .handled
                .with_label_values(&[topic, event_type])
                .inc();
        }
    }

    /// Sends the message, as it came, to `<topic>.dlq` with the error in its
    /// headers, waiting as long as the broker is away (but not past shutdown).
    async fn dead_letter(&self, message: &OwnedMessage, error: &str) -> Outcome {
        let topic = message.topic();
        let dlq = Topic::from_name(topic)
            .map(|t| t.dlq_name().to_owned())
            .unwrap_or_else(|| format!("{topic}.dlq"));
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let original = message
            .headers()
            .into_iter()
            .flat_map(|headers| headers.iter())
            .map(|header| (header.key, header.value));
        let why = [
            (kafka::HEADER_DLQ_ERROR, error),
            (kafka::HEADER_DLQ_TOPIC, topic),
            (kafka::HEADER_DLQ_PARTITION, partition.as_str()),
            (kafka::HEADER_DLQ_OFFSET, offset.as_str()),
            (kafka::HEADER_DLQ_CONSUMER, self.config.group_id.as_str()),
        ]
        .map(|(key, value)| (key, Some(value.as_bytes())));
        let headers = kafka::headers(original.chain(why));
        let mut record = FutureRecord::<[u8], [u8]>::to(&dlq).headers(headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        let sent = tokio::select! {
            sent = self.dead_letters.send(record, rdkafka::util::Timeout::Never) => sent,
            () = self.stop.cancelled() => return Outcome::Interrupted,
        };
        match sent {
            Ok(_) => {
                self.metrics.dead_lettered.with_label_values(&[topic]).inc();
                tracing::error!(dlq = %dlq, error, "message dead-lettered");
                Outcome::DeadLettered
            }
            Err((kafka_error, _)) => {
                // Storing the offset now would lose the message; stop this
                // partition's work so it is redelivered after a restart.
                tracing::error!(error = %kafka_error, "failed to dead-letter a message");
                Outcome::Interrupted
            }
        }
    }

    /// Sleeps unless shutdown comes first; false when it did.
    async fn pause(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            () = self.stop.cancelled() => false,
        }
    }
}

enum Failure {
    Outage(anyhow::Error),
    Handler(HandlerError),
}

impl Failure {
    fn outage(error: sqlx::Error) -> Self {
        Failure::Outage(error.into())
    }
}
