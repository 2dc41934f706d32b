//! The outbox relay: publishes committed outbox rows to Kafka.
//!
//! It sleeps on `LISTEN messaging_outbox_<schema>` and wakes when a
//! transaction that wrote outbox rows commits; a slow fallback poll only
//! covers a missed notification (say, while the listener reconnects). Each
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
//! nothing is lost and one key's events keep their order.
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
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::postgres::PgListener;
use sqlx::{Executor, PgPool, Row};
use tokio_util::sync::CancellationToken;

use crate::kafka::{headers, reliable_producer, HEADER_EVENT_TYPE, HEADER_TRACEPARENT};
use crate::metrics::MessagingMetrics;
use crate::schema::NOTIFY_CHANNEL_SQL;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub bootstrap: String,
    /// Rows published per round.
    pub batch_size: i64,
    /// Safety net for a missed notification; not how events normally leave.
    pub fallback_poll: Duration,
    /// Longest pause between retries after a failed round.
    pub max_backoff: Duration,
    /// How long shutdown waits for the last rows to be delivered.
    pub shutdown_grace: Duration,
    /// How often old outbox and inbox rows are pruned.
    pub prune_every: Duration,
}

impl RelayConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        RelayConfig {
            bootstrap: bootstrap.into(),
            batch_size: 500,
            fallback_poll: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            prune_every: Duration::from_secs(3600),
        }
    }
}

pub struct Relay {
    pool: PgPool,
    producer: FutureProducer,
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
        let mut listener = None;
        let mut backoff = Duration::from_millis(50);
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
            if listener.is_none() {
                listener = self
                    .listen()
                    .await
                    .map_err(|e| tracing::warn!(error = ?e, "outbox listener unavailable"))
                    .ok();
            }
            let round = tokio::select! {
                round = self.publish_round() => round,
                () = shutdown.cancelled() => break,
            };
            match round {
                Ok(published) if published as i64 >= self.config.batch_size => continue,
                Ok(_) => backoff = Duration::from_millis(50),
                Err(error) => {
                    self.metrics.outbox_publish_errors.inc();
                    tracing::warn!(error = ?error, retry_in = ?backoff, "outbox relay round failed");
                    self.renew_failed_producer();
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                    continue;
                }
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => l.try_recv().await.map(|_| ()).map_err(anyhow::Error::from),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = woken => {
                    if let Err(error) = result {
                        tracing::warn!(error = ?error, "outbox listener lost; reconnecting");
                        listener = None;
                    }
                }
                () = tokio::time::sleep(self.config.fallback_poll) => {}
                () = shutdown.cancelled() => break,
            }
        }
        self.flush_on_shutdown().await;
    }

    /// Replaces the producer when it has failed fatally: librdkafka never
    /// sends another message through it.
    fn renew_failed_producer(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        match reliable_producer(&self.config.bootstrap) {
            Ok(producer) => {
                self.producer = producer;
                self.metrics.outbox_producer_renewals.inc();
                tracing::error!(%code, %reason, "the outbox producer failed fatally; publishing through a new one");
            }
            Err(error) => {
                tracing::error!(%code, %reason, error = ?error, "the outbox producer failed fatally and a new one could not be made");
            }
        }
    }

    async fn listen(&self) -> anyhow::Result<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .context("failed to connect the outbox listener")?;
        let channel: String = sqlx::query_scalar(&format!("SELECT {NOTIFY_CHANNEL_SQL}"))
            .fetch_one(&self.pool)
            .await
            .context("failed to read the current schema")?;
        listener
            .listen(&channel)
            .await
            .with_context(|| format!("failed to LISTEN on {channel}"))?;
        Ok(listener)
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
            self.metrics.outbox_backlog.set(0);
            self.metrics.outbox_oldest_age_seconds.set(0);
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
        let results = join_all(deliveries).await;

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
        sqlx::query("UPDATE messaging_outbox SET published_at = now(), attempts = attempts + 1 WHERE id = ANY($1)")
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
        let (backlog, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM messaging_outbox WHERE published_at IS NULL",
        )
        .fetch_one(&mut *tx)
        .await
        .context("failed to measure the outbox backlog")?;
        tx.commit().await.context("failed to commit relay round")?;

        self.metrics.outbox_published.inc_by(delivered.len() as u64);
        self.metrics.outbox_backlog.set(backlog);
        self.metrics
            .outbox_oldest_age_seconds
            .set(oldest.unwrap_or(0.0) as i64);
        match first_error {
            Some((id, error)) => Err(anyhow::anyhow!(
                "failed to publish outbox row {id}: {error}"
            )),
            None => Ok(delivered.len()),
        }
    }
}
