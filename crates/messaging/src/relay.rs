//! The outbox relay: publishes committed outbox rows to Kafka.
//!
//! It sleeps until a write in its process announces outbox rows
//! ([`crate::wake`]), then looks for them, again and again for a moment
//! while their transaction commits; a fallback poll every second covers
//! rows written by another process or committed later than that. Each
//! round takes a transaction-scoped advisory lock, so one relay per schema
//! publishes at a time and rows go out strictly in id order. It waits for
//! every delivery of the round before marking rows sent: a relay killed in
//! between publishes those rows again after restart (consumers dedupe by
//! `event_id`), never loses them.
//!
//! A producer that failed fatally (the broker fenced it, or lost its
//! producer id after a restart without its state) refuses every message
//! from then on; the relay sees that after a failed round, starts a new
//! producer and sends the round's undelivered rows again in id order, so
//! nothing is lost and one key's events keep their order. A producer can
//! also get stuck without failing: after a broker came back without its
//! state, librdkafka's idempotent producer was seen retrying the round for
//! ever while the broker answered everything else. A round that delivers
//! nothing for [`RelayConfig::stall_after`] while the broker answers
//! metadata requests is therefore given up the same way: its producer is
//! dropped (which purges what it held) and a new one sends the rows again.
//! While the broker is away the round simply waits.
//!
//! Trade-offs, named: the round's transaction stays open while deliveries
//! are awaited, so a long broker outage keeps one idle transaction open (and
//! holds back vacuum in that database) — the price of strict order without a
//! separate leader election. And a row the broker refuses for good (say, a
//! message over its size limit) is retried with backoff, reported in
//! `messaging_outbox_publish_errors_total` and `messaging_outbox_oldest_age_seconds`,
//! while rows after it that were delivered stay delivered: the refused row
//! would arrive after them if it ever went through.

use std::time::Duration;

use anyhow::Context;
use futures::future::join_all;
use rdkafka::producer::{FutureRecord, Producer};
use sqlx::{Executor, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::kafka::{
    headers, reliable_producer, ReliableProducer, HEADER_EVENT_TYPE, HEADER_TRACEPARENT,
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

pub struct Relay {
    pool: PgPool,
    producer: ReliableProducer,
    config: RelayConfig,
    metrics: MessagingMetrics,
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
        let producer = reliable_producer(&config.bootstrap)?;
        Ok(Relay {
            pool,
            producer,
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
                    Ok((outbox, inbox)) => {
                        tracing::info!(outbox, inbox, "pruned old messaging rows")
                    }
                    Err(error) => {
                        tracing::warn!(error = ?error, "failed to prune old messaging rows")
                    }
                }
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
                Ok(published) if published as i64 >= self.config.batch_size => continue,
                Ok(0) => backoff = Duration::from_millis(50),
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    looks.found();
                }
                Err(error) => {
                    failed_rounds += 1;
                    self.metrics.outbox_publish_errors.inc();
                    tracing::warn!(error = ?error, retry_in = ?backoff, "outbox relay round failed");
                    if error.is::<Stalled>() {
                        self.renew_producer(&error.to_string());
                    } else {
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
        if let Some((code, reason)) = self.producer.client().fatal_error() {
            self.renew_producer(&format!("it failed fatally: {code}: {reason}"));
        }
    }

    /// Publishes through a new producer from now on, because of `why`.
    /// Dropping the old one purges whatever it still held.
    fn renew_producer(&mut self, why: &str) {
        match reliable_producer(&self.config.bootstrap) {
            Ok(producer) => {
                self.producer = producer;
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

    /// Waits for a round's deliveries: however long the broker is away, but
    /// at most [`RelayConfig::stall_after`] at a time while it answers.
    async fn await_deliveries<F: std::future::Future>(
        &self,
        deliveries: F,
    ) -> Result<F::Output, Stalled> {
        tokio::pin!(deliveries);
        loop {
            if let Ok(results) =
                tokio::time::timeout(self.config.stall_after, &mut deliveries).await
            {
                return Ok(results);
            }
            let answers = tokio::time::timeout(
                Duration::from_secs(3),
                crate::kafka::existing_topics(&self.config.bootstrap),
            )
            .await;
            if matches!(answers, Ok(Ok(_))) {
                return Err(Stalled(self.config.stall_after));
            }
        }
    }

    async fn flush_on_shutdown(&self) {
        let flush = async {
            loop {
                match self.publish_round().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(error = ?error, "outbox flush on shutdown failed");
                        break;
                    }
                }
            }
        };
        if tokio::time::timeout(self.config.shutdown_grace, flush)
            .await
            .is_err()
        {
            tracing::warn!(
                "outbox not flushed within the shutdown grace; the rest goes out after restart"
            );
        }
    }

    /// One round: lock, read the oldest pending rows, publish them all, wait
    /// for every delivery, mark the delivered ones. Returns how many went out.
    #[tracing::instrument(skip_all, level = "debug")]
    pub async fn publish_round(&self) -> anyhow::Result<usize> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("failed to begin relay round")?;
        // Replicas take turns: one waits here for as long as another's round
        // lasts, which is as long as the broker takes. That wait is the
        // design, not a stuck statement, so the service's statement and lock
        // timeouts are lifted for it and put back once the lock is held.
        (&mut *tx)
            .execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")
            .await
            .context("failed to lift the timeouts for the relay lock")?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.messaging_relay'))",
        )
        .execute(&mut *tx)
        .await
        .context("failed to take the relay lock")?;
        (&mut *tx)
            .execute("SET LOCAL statement_timeout TO DEFAULT; SET LOCAL lock_timeout TO DEFAULT")
            .await
            .context("failed to restore the timeouts after the relay lock")?;
        let rows: Vec<PendingRow> = sqlx::query(
            "SELECT id, topic, partition_key, event_type, payload, traceparent
             FROM messaging_outbox WHERE published_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(self.config.batch_size)
        .fetch_all(&mut *tx)
        .await
        .context("failed to read the outbox")?
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
        if rows.is_empty() {
            return Ok(0);
        }

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
            self.producer.send(record, rdkafka::util::Timeout::Never)
        });
        let results = self.await_deliveries(join_all(deliveries)).await?;

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
        // clock_timestamp(), not now(): when the broker had the rows, not
        // when the round began.
        sqlx::query("UPDATE messaging_outbox SET published_at = clock_timestamp(), attempts = attempts + 1 WHERE id = ANY($1)")
            .bind(&delivered)
            .execute(&mut *tx)
            .await
            .context("failed to mark outbox rows sent")?;
        if let Some((id, error)) = &first_error {
            sqlx::query("UPDATE messaging_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await
                .context("failed to record the publish error")?;
        }
        tx.commit().await.context("failed to commit relay round")?;

        self.metrics.outbox_published.inc_by(delivered.len() as u64);
        match first_error {
            Some((id, error)) => Err(anyhow::anyhow!(
                "failed to publish outbox row {id}: {error}"
            )),
            None => Ok(delivered.len()),
        }
    }
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
             FROM messaging_outbox WHERE published_at IS NULL",
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
