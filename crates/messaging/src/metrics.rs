//! Prometheus metrics of the outbox relay and the consumers, registered in
//! the registry of the service that runs them.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Everything messaging reports. Cheap to clone.
#[derive(Clone)]
pub struct MessagingMetrics {
    /// Outbox rows not yet published.
    pub outbox_backlog: IntGauge,
    /// Age of the oldest unpublished outbox row, in seconds.
    pub outbox_oldest_age_seconds: IntGauge,
    pub outbox_published: IntCounter,
    pub outbox_publish_errors: IntCounter,
    /// Producers replaced after they failed fatally, got stuck, or lost
    /// the broker.
    pub outbox_producer_renewals: IntCounter,
    /// Consumer clients replaced after they lost the broker.
    pub consumer_renewals: IntCounter,
    /// Events handled, by topic and event type.
    pub handled: IntCounterVec,
    /// Redelivered events that were already handled.
    pub duplicates: IntCounterVec,
    /// Events of a type this consumer does not know.
    pub skipped: IntCounterVec,
    /// Events the handler does not act on, passed over without a transaction.
    pub passed_over: IntCounterVec,
    /// Consumer transactions committed: one per event, or per batch of a
    /// partition's events handled together.
    pub transactions: IntCounterVec,
    /// Batches that failed together and were handled one event at a time.
    pub batches_split: IntCounterVec,
    /// Failed handler attempts (each retry counts).
    pub failed: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    /// Messages behind the partition's end, as librdkafka last reported.
    pub consumer_lag: IntGaugeVec,
    /// Partitions of each topic the group has given this process: replicas
    /// of a service share a topic's partitions between them.
    pub assigned_partitions: IntGaugeVec,
}

impl MessagingMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = MessagingMetrics {
            outbox_backlog: IntGauge::new(
                "messaging_outbox_backlog",
                "Outbox rows not yet published",
            )?,
            outbox_oldest_age_seconds: IntGauge::new(
                "messaging_outbox_oldest_age_seconds",
                "Age of the oldest unpublished outbox row",
            )?,
            outbox_published: IntCounter::new(
                "messaging_outbox_published_total",
                "Outbox rows published to Kafka",
            )?,
            outbox_publish_errors: IntCounter::new(
                "messaging_outbox_publish_errors_total",
                "Relay rounds that failed and were retried",
            )?,
            outbox_producer_renewals: IntCounter::new(
                "messaging_outbox_producer_renewals_total",
                "Outbox producers replaced after a fatal error (fenced, or their producer id lost), a stall, or an outage of the broker",
            )?,
            consumer_renewals: IntCounter::new(
                "messaging_consumer_renewals_total",
                "Consumer clients replaced after an outage of the broker",
            )?,
            handled: counter_vec(
                "messaging_events_handled_total",
                "Events handled",
                &["topic", "event_type"],
            )?,
            duplicates: counter_vec(
                "messaging_events_duplicate_total",
                "Redelivered events ignored because they were handled before",
                &["topic"],
            )?,
            skipped: counter_vec(
                "messaging_events_skipped_total",
                "Events of an unknown type, skipped",
                &["topic", "event_type"],
            )?,
            passed_over: counter_vec(
                "messaging_events_passed_over_total",
                "Events the handler does not act on, passed over without a transaction",
                &["topic", "event_type"],
            )?,
            transactions: counter_vec(
                "messaging_consumer_transactions_total",
                "Consumer transactions committed, each handling one event or a batch of a partition's events",
                &["topic"],
            )?,
            batches_split: counter_vec(
                "messaging_consumer_batches_split_total",
                "Batches of events that failed together and were handled one by one",
                &["topic"],
            )?,
            failed: counter_vec(
                "messaging_events_failed_total",
                "Handler attempts that failed",
                &["topic"],
            )?,
            dead_lettered: counter_vec(
                "messaging_events_dead_lettered_total",
                "Messages sent to the dead-letter topic",
                &["topic"],
            )?,
            consumer_lag: IntGaugeVec::new(
                Opts::new(
                    "messaging_consumer_lag",
                    "Messages behind the end of the partition",
                ),
                &["group", "topic", "partition"],
            )?,
            assigned_partitions: IntGaugeVec::new(
                Opts::new(
                    "messaging_consumer_assigned_partitions",
                    "Partitions of the topic assigned to this process by its consumer group",
                ),
                &["group", "topic"],
            )?,
        };
        registry.register(Box::new(metrics.outbox_backlog.clone()))?;
        registry.register(Box::new(metrics.outbox_oldest_age_seconds.clone()))?;
        registry.register(Box::new(metrics.outbox_published.clone()))?;
        registry.register(Box::new(metrics.outbox_producer_renewals.clone()))?;
        registry.register(Box::new(metrics.consumer_renewals.clone()))?;
        registry.register(Box::new(metrics.outbox_publish_errors.clone()))?;
        registry.register(Box::new(metrics.handled.clone()))?;
        registry.register(Box::new(metrics.duplicates.clone()))?;
        registry.register(Box::new(metrics.skipped.clone()))?;
        registry.register(Box::new(metrics.passed_over.clone()))?;
        registry.register(Box::new(metrics.transactions.clone()))?;
        registry.register(Box::new(metrics.batches_split.clone()))?;
        registry.register(Box::new(metrics.failed.clone()))?;
        registry.register(Box::new(metrics.dead_lettered.clone()))?;
        registry.register(Box::new(metrics.consumer_lag.clone()))?;
        registry.register(Box::new(metrics.assigned_partitions.clone()))?;
        Ok(metrics)
    }

    /// Metrics that are counted but not exported; for tests and tools.
    pub fn unregistered() -> Self {
        // Registering in a throwaway registry cannot collide.
        Self::register(&Registry::new()).unwrap_or_else(|_| unreachable!())
    }
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}
