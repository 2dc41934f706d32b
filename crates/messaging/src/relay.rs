//! The outbox relay: publishes committed outbox rows to Kafka.
//!
//! It sleeps until a write in its process announces outbox rows
//! ([`crate::wake`]), then looks for them, again and again for a moment
//! while their transaction commits; a fallback poll every second covers
//! rows written by another process or committed later than that.
//!
//! Replicas of a service take turns, so one relay per schema publishes at a
//! time and rows go out strictly in id order. A relay's turn is a session
//! advisory lock on a connection of its own (outside the pool). A round is
//! two statements, a function and a procedure of `schema.rs`, and leaves no
//! transaction open while the broker is awaited. The first looks for
//! pending rows, takes the turn only if there are any (a look that finds
//! none takes nothing) and reads them by a query of its own, after the
//! turn: every round before had marked its rows sent before giving its turn
//! up. The rows are published; the second statement marks them sent by
//! moving them to the record of sent rows (so the outbox holds only what is
//! still to send), commits, and gives the turn up. A relay that finds
//! another's turn under way looks again soon.
//! It waits for every delivery of the round before marking rows sent: a
//! relay killed in between publishes those rows again after restart
//! (consumers dedupe by `event_id`), never loses them. A round that fails
//! lets its connection go, and with it the turn.
//!
//! A producer that failed fatally (the broker fenced it, or lost its
//! producer id after a restart without its state) refuses every message
//! from then on; the relay sees that after a failed round, starts a new
//! producer and sends the round's undelivered rows again in id order, so
//! nothing is lost and one key's events keep their order. A producer can
//! also get stuck without failing: a round that delivers nothing for
//! [`RelayConfig::stall_after`] while the broker answers metadata requests
//! is given up the same way: its producer is dropped (which purges what it
//! held) and a new one sends the rows again.
//!
//! A producer that lost the broker altogether is dropped at once, and a new
//! one made when the broker answers again, because the broker may come
//! back without its state (see [`crate::kafka::BrokerLoss`]). An idempotent
//! producer from before then retries for ever under a producer id the
//! broker no longer knows, and tansu, sent such a request under an id it
//! had meanwhile given another producer, failed for good. While the broker
//! is away, the rows wait in the outbox.
//!
//! Trade-offs, named: a relay whose connection breaks in the middle of a
//! round loses its turn while its deliveries may still be on their way, so
//! another replica can publish the same rows again; each publishes them in
//! id order, so the first copy of every event still arrives in order and
//! consumers drop the rest. And a row the broker refuses for good (say, a
//! message over its size limit) is retried with backoff, reported in
//! `messaging_outbox_publish_errors_total` and `messaging_outbox_oldest_age_seconds`,
//! while rows after it that were delivered stay delivered: the refused row
//! would arrive after them if it ever went through.

use std::time::Duration;

use anyhow::Context;
use futures::future::join_all;
use rdkafka::producer::FutureRecord;
use sqlx::{PgConnection, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::kafka::{
    headers, watched_producer, BrokerLoss, ReliableProducer, HEADER_EVENT_TYPE, HEADER_TRACEPARENT,
};
use crate::metrics::MessagingMetrics;
use crate::wake;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub bootstrap: String,
    /// Rows published per round.
    pub batch_size: i64,
    /// How often the relay looks without being told: rows written by
    /// another process, or committed after [`wake::SETTLE`]. Not how events
    /// normally leave.
    pub fallback_poll: Duration,
    /// Longest pause between retries after a failed round.
    pub max_backoff: Duration,
    /// How long shutdown waits for the last rows to be delivered.
    pub shutdown_grace: Duration,
    /// How often old outbox and inbox rows are pruned.
    pub prune_every: Duration,
    /// How often the backlog is measured for `/metrics`, apart from the
    /// rounds: a round waiting on an absent broker reports nothing.
    pub sample_every: Duration,
    /// How long a round's deliveries may take while the broker answers
    /// before its producer is taken for stuck and replaced.
    pub stall_after: Duration,
}

impl RelayConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        RelayConfig {
            bootstrap: bootstrap.into(),
            batch_size: 500,
            fallback_poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            prune_every: Duration::from_secs(3600),
            sample_every: Duration::from_secs(1),
            stall_after: Duration::from_secs(10),
        }
    }
}

/// A round whose producer delivered nothing for this long while the
/// broker answered.
#[derive(Debug)]
struct Stalled(Duration);

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no delivery for {:?} while the broker answers: the producer is stuck",
            self.0
        )
    }
}

impl std::error::Error for Stalled {}

/// The producer lost the broker while the round waited on it.
#[derive(Debug)]
struct BrokerLost;

impl std::fmt::Display for BrokerLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the producer lost the broker")
    }
}

impl std::error::Error for BrokerLost {}

/// How often a round waiting on its deliveries looks at its producer and
/// the broker, and how long it waits for the broker's answer.
const BROKER_CHECK: Duration = Duration::from_secs(1);

pub struct Relay {
    pool: PgPool,
    /// The relay's own connection, on which its turn is held; made from
    /// the pool's when a round needs it, let go when a round fails.
    connection: Option<PgConnection>,
    /// None after a producer lost the broker, until the broker answers.
    producer: Option<Publisher>,
    config: RelayConfig,
    metrics: MessagingMetrics,
}

/// A producer, and whether it lost the broker.
struct Publisher {
    producer: ReliableProducer,
    loss: BrokerLoss,
}

struct PendingRow {
    id: i64,
    topic: String,
    key: String,
    event_type: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

impl Relay {
    pub fn new(
        pool: PgPool,
        config: RelayConfig,
        metrics: MessagingMetrics,
    ) -> anyhow::Result<Self> {
        let (producer, loss) = watched_producer(&config.bootstrap)?;
        Ok(Relay {
            pool,
            connection: None,
            producer: Some(Publisher { producer, loss }),
            config,
            metrics,
        })
    }

    /// Publishes until `shutdown` is cancelled, then flushes what is left
    /// (bounded by `shutdown_grace`).
    pub async fn run(mut self, shutdown: CancellationToken) {
        let sampler = tokio::spawn(sample_backlog(
            self.pool.clone(),
            self.metrics.clone(),
            self.config.sample_every,
            shutdown.clone(),
        ));
        self.publish_until(&shutdown).await;
        self.flush_on_shutdown().await;
        let _ = sampler.await;
    }

    async fn publish_until(&mut self, shutdown: &CancellationToken) {
        let mut announcements = wake::OUTBOX.subscribe();
        let mut looks = wake::Looks::default();
        let mut backoff = Duration::from_millis(50);
        // Rounds failed in a row, for one line when publishing resumes.
        let mut failed_rounds: u64 = 0;
        let mut last_prune = tokio::time::Instant::now();
        loop {
            if last_prune.elapsed() >= self.config.prune_every {
                last_prune = tokio::time::Instant::now();
                match crate::schema::prune(&self.pool).await {
                    Ok((sent, inbox)) => {
                        tracing::info!(sent, inbox, "pruned old messaging rows")
                    }
                    Err(error) => {
                        tracing::warn!(error = ?error, "failed to prune old messaging rows")
                    }
                }
            }
            if !self.ready_producer(shutdown).await {
                break;
            }
            let round = tokio::select! {
                round = self.publish_round() => round,
                () = shutdown.cancelled() => break,
            };
            if round.is_ok() && failed_rounds > 0 {
                tracing::info!(failed_rounds, "the outbox relay publishes again");
                failed_rounds = 0;
            }
            match round {
                Ok(Round::Published(published)) if published as i64 >= self.config.batch_size => {
                    continue
                }
                Ok(Round::Published(_)) => {
                    backoff = Duration::from_millis(50);
                    looks.found();
                }
                // Nothing yet, or another relay's round is publishing: look
                // again as announced rows would have it, or at the idle poll.
                Ok(Round::Nothing | Round::NotOurTurn) => backoff = Duration::from_millis(50),
                Err(error) => {
                    failed_rounds += 1;
                    self.metrics.outbox_publish_errors.inc();
                    tracing::warn!(error = ?error, retry_in = ?backoff, "outbox relay round failed");
                    if error.is::<Stalled>() {
                        self.renew_producer(&error.to_string());
                    } else if !error.is::<BrokerLost>() {
                        self.renew_failed_producer();
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    continue;
                }
            }
            // Announced rows not found yet: look again soon, then less
            // soon, until the settle time is over.
            let pause = looks.pause(self.config.fallback_poll);
            tokio::select! {
                changed = announcements.changed() => {
                    if changed.is_ok() {
                        looks.announced();
                    }
                }
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
        }
    }

    /// Replaces the producer when it has failed fatally: librdkafka never
    /// sends another message through it.
    fn renew_failed_producer(&mut self) {
        let fatal = self
            .producer
            .as_ref()
            .and_then(|publisher| publisher.producer.fatal_error());
        if let Some((code, reason)) = fatal {
            self.renew_producer(&format!("it failed fatally: {code}: {reason}"));
        }
    }

    /// Sees that there is a producer that has not lost the broker; false
    /// when shutdown came first. A producer that lost the broker is let go
    /// at once, and what it held purged, so that it says nothing more to a
    /// broker that may come back without its state (see
    /// [`crate::kafka::BrokerLoss`]): tansu, sent a produce request under a
    /// producer id from before, was seen to fail for good. A new producer is
    /// made once the broker answers again.
    async fn ready_producer(&mut self, shutdown: &CancellationToken) -> bool {
        if self
            .producer
            .as_ref()
            .is_some_and(|publisher| publisher.loss.happened())
        {
            tracing::warn!(
                "the outbox producer lost the broker; a new one takes over once the broker answers"
            );
            let lost = self.producer.take();
            // Dropping a producer purges what it holds, which waits for
            // librdkafka's threads to let go of it.
            tokio::task::spawn_blocking(move || drop(lost));
        }
        while self.producer.is_none() {
            if crate::kafka::broker_answers(&self.config.bootstrap, &[], BROKER_CHECK).await {
                self.renew_producer(
                    "the broker is back after an outage, perhaps without its state",
                );
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(BROKER_CHECK) => {}
                () = shutdown.cancelled() => return false,
            }
        }
        true
    }

    /// Publishes through a new producer from now on, because of `why`.
    /// Dropping the old one purges whatever it still held.
    fn renew_producer(&mut self, why: &str) {
        match watched_producer(&self.config.bootstrap) {
            Ok((producer, loss)) => {
                let old = self.producer.replace(Publisher { producer, loss });
                tokio::task::spawn_blocking(move || drop(old));
                self.metrics.outbox_producer_renewals.inc();
                tracing::error!(
                    why,
                    "outbox producer given up; publishing through a new one"
                );
            }
            Err(error) => {
                tracing::error!(why, error = ?error, "outbox producer given up, and a new one could not be made");
            }
        }
    }

    /// Waits for a round's deliveries through `publisher`: until its
    /// producer loses the broker, or delivers nothing for
    /// [`RelayConfig::stall_after`] while the broker answers.
    async fn await_deliveries<F: std::future::Future>(
        &self,
        publisher: &Publisher,
        deliveries: F,
    ) -> anyhow::Result<F::Output> {
        tokio::pin!(deliveries);
        let started = tokio::time::Instant::now();
        loop {
            if let Ok(results) = tokio::time::timeout(BROKER_CHECK, &mut deliveries).await {
                return Ok(results);
            }
            if publisher.loss.happened() {
                return Err(BrokerLost.into());
            }
            if started.elapsed() >= self.config.stall_after
                && crate::kafka::broker_answers(&self.config.bootstrap, &[], BROKER_CHECK).await
            {
                return Err(Stalled(self.config.stall_after).into());
            }
        }
    }

    async fn flush_on_shutdown(&mut self) {
        let grace = self.config.shutdown_grace;
        let flush = async {
            loop {
                match self.publish_round().await {
                    Ok(Round::Published(_)) => {}
                    // What another relay is publishing is its to finish.
                    Ok(Round::Nothing | Round::NotOurTurn) => break,
                    Err(error) => {
                        tracing::warn!(error = ?error, "outbox flush on shutdown failed");
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(grace, flush).await.is_err() {
            tracing::warn!(
                "outbox not flushed within the shutdown grace; the rest goes out after restart"
            );
        }
    }

    /// One round: take the turn if rows are pending, read the oldest,
    /// publish them all, wait for every delivery, mark the delivered ones
    /// and give the turn up. A round that fails drops its connection, which
    /// gives up the turn wherever the round stopped.
    #[tracing::instrument(skip_all, level = "debug")]
    async fn publish_round(&mut self) -> anyhow::Result<Round> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self
                .pool
                .acquire()
                .await
                .context("failed to connect for the relay")?
                .detach(),
        };
        let round = self.round_on(&mut connection).await;
        if round.is_ok() {
            self.connection = Some(connection);
        }
        round
    }

    async fn round_on(&self, connection: &mut PgConnection) -> anyhow::Result<Round> {
        // `messaging_outbox_take` (see `schema.rs`) tries the turn only when
        // a row is pending, so an empty look takes nothing, and reads the
        // rows after taking it; it gives the turn back when they were gone.
        let taken = sqlx::query(
            "SELECT turn, id, topic, partition_key, event_type, payload, traceparent
             FROM messaging_outbox_take($1)",
        )
        .bind(i32::try_from(self.config.batch_size).unwrap_or(i32::MAX))
        .fetch_all(&mut *connection)
        .await
        .context("failed to take the outbox's pending rows")?;
        match taken.first() {
            None => return Ok(Round::Nothing),
            Some(row) if !row.get::<bool, _>("turn") => return Ok(Round::NotOurTurn),
            Some(_) => {}
        }
        let rows: Vec<PendingRow> = taken
            .into_iter()
            .map(|row| PendingRow {
                id: row.get("id"),
                topic: row.get("topic"),
                key: row.get("partition_key"),
                event_type: row.get("event_type"),
                payload: row.get("payload"),
                traceparent: row.get("traceparent"),
            })
            .collect();
        self.publish(connection, &rows).await
    }

    /// Publishes `rows`, waits for their deliveries, marks the delivered
    /// ones sent by moving them to `messaging_outbox_sent` (and the first
    /// failure's row with its error) and gives the turn up, in one
    /// statement.
    async fn publish(
        &self,
        connection: &mut PgConnection,
        rows: &[PendingRow],
    ) -> anyhow::Result<Round> {
        let publisher = self
            .producer
            .as_ref()
            .context("no producer: the broker is away")?;

        // Queue every row before awaiting any: librdkafka batches them, and
        // the idempotent producer keeps their order within each partition.
        let deliveries = rows.iter().map(|row| {
            let traceparent = row
                .traceparent
                .as_deref()
                .map(|t| (HEADER_TRACEPARENT, Some(t.as_bytes())));
            let headers = headers(
                std::iter::once((HEADER_EVENT_TYPE, Some(row.event_type.as_bytes())))
                    .chain(traceparent),
            );
            let record = FutureRecord::to(&row.topic)
                .key(&row.key)
                .payload(&row.payload)
                .headers(headers);
            // With message.timeout.ms=0 this resolves once the broker has the
            // message, however long it is away; shutdown bounds the wait.
            publisher
                .producer
                .send(record, rdkafka::util::Timeout::Never)
        });
        let results = self
            .await_deliveries(publisher, join_all(deliveries))
            .await?;

        let mut delivered = Vec::with_capacity(rows.len());
        let mut first_error = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(_) => delivered.push(row.id),
                Err((error, _)) => {
                    first_error.get_or_insert((row.id, error.to_string()));
                }
            }
        }
        let (failed_id, failed_error) = first_error.clone().unzip();
        // Commits the moves, then gives the turn up: the next relay reads
        // none of them.
        sqlx::query("CALL messaging_outbox_mark_sent($1, $2, $3)")
            .bind(&delivered)
            .bind(failed_id)
            .bind(failed_error)
            .execute(&mut *connection)
            .await
            .context("failed to mark outbox rows sent")?;

        self.metrics.outbox_published.inc_by(delivered.len() as u64);
        match first_error {
            Some((id, error)) => Err(anyhow::anyhow!(
                "failed to publish outbox row {id}: {error}"
            )),
            None => Ok(Round::Published(delivered.len())),
        }
    }
}

/// What a relay round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Published this many rows.
    Published(usize),
    /// Found no pending row.
    Nothing,
    /// Found pending rows while another relay of the schema had its turn.
    NotOurTurn,
}

/// Measures the outbox backlog every `every` until `shutdown`, into
/// `messaging_outbox_backlog` and `messaging_outbox_oldest_age_seconds`.
/// Reading committed rows takes no lock a round holds, so an outage that
/// stalls the round shows here within seconds.
async fn sample_backlog(
    pool: PgPool,
    metrics: MessagingMetrics,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let sampled: Result<(i64, Option<f64>), sqlx::Error> = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8
             FROM messaging_outbox",
        )
        .fetch_one(&pool)
        .await;
        match sampled {
            Ok((backlog, oldest)) => {
                metrics.outbox_backlog.set(backlog);
                metrics
                    .outbox_oldest_age_seconds
                    .set(oldest.unwrap_or(0.0) as i64);
            }
            // The database is away: the last figures stand, and readiness
            // says why.
            Err(error) => tracing::debug!(error = ?error, "failed to measure the outbox backlog"),
        }
    }
}
