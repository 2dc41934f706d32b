//! Kafka client settings shared by the relay, the consumer runner and the
//! dead-letter producer, and topic creation.

use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureProducer;
use rdkafka::types::RDKafkaErrorCode;
use shared_events::Topic;

/// Kafka header that names the event type, so tools can filter without
/// parsing the payload.
pub const HEADER_EVENT_TYPE: &str = "event_type";
/// W3C trace context header.
pub const HEADER_TRACEPARENT: &str = "traceparent";
/// Dead-letter headers: why, and where the message came from. All of them
/// start with [`DLQ_HEADER_PREFIX`], which a replay strips.
pub const DLQ_HEADER_PREFIX: &str = "dlq_";
pub const HEADER_DLQ_ERROR: &str = "dlq_error";
pub const HEADER_DLQ_TOPIC: &str = "dlq_original_topic";
pub const HEADER_DLQ_PARTITION: &str = "dlq_original_partition";
pub const HEADER_DLQ_OFFSET: &str = "dlq_original_offset";
pub const HEADER_DLQ_CONSUMER: &str = "dlq_consumer_group";

/// Kafka headers from `(key, value)` pairs, in order; `None` is a null value.
pub(crate) fn headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
) -> OwnedHeaders {
    pairs
        .into_iter()
        .fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header { key, value })
        })
}

/// The base client configuration for `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000");
    config
}

/// An idempotent producer (`acks=all`) that never drops a message on its own:
/// with `message.timeout.ms=0` librdkafka keeps retrying while the broker is
/// away, so a caller that waits for delivery gets it in order once the broker
/// is back. Callers bound how long they wait themselves.
pub fn reliable_producer(bootstrap: &str) -> anyhow::Result<FutureProducer> {
    client_config(bootstrap)
        // Java clients' partitioner, so every producer puts a key on the same partition.
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0")
        // Wait at most 1 ms for more messages: batches form under load, and a
        // lone event is not held back.
        .set("linger.ms", "1")
        .create()
        .context("failed to create Kafka producer")
}

/// Creates those of `topics` and their dead-letter twins that do not exist
/// yet, with `partitions` partitions; existing topics are left as they are.
/// Only missing topics are sent to CreateTopics, so a broker without that API
/// (the embedded mock cluster, whose owner creates the topics) is fine as
/// long as the topics are there.
pub async fn ensure_topics(
    bootstrap: &str,
    topics: &[Topic],
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    let wanted: Vec<&'static str> = topics
        .iter()
        .flat_map(|t| [t.name(), t.dlq_name()])
        .collect();
    let existing = existing_topics(bootstrap).await?;
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|name| !existing.iter().any(|e| e == name))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = client_config(bootstrap)
        .create()
        .context("failed to create Kafka admin client")?;
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .with_context(|| format!("failed to create topics {missing:?}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("failed to create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// The names of the topics the cluster has.
pub async fn existing_topics(bootstrap: &str) -> anyhow::Result<Vec<String>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client: BaseConsumer = client_config(bootstrap)
        .create()
        .context("failed to create Kafka client")?;
    tokio::task::spawn_blocking(move || {
        let metadata = client
            .fetch_metadata(None, Duration::from_secs(10))
            .context("failed to read cluster metadata")?;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| t.name().to_owned())
            .collect())
    })
    .await
    .context("metadata reader panicked")?
}

/// Answers whether the broker can be reached, for `/readyz`. Holds one
/// client so a probe does not start a new one each time.
#[derive(Clone)]
pub struct BrokerProbe {
    client: std::sync::Arc<rdkafka::consumer::BaseConsumer>,
}

impl BrokerProbe {
    pub fn new(bootstrap: &str) -> anyhow::Result<Self> {
        let client = client_config(bootstrap)
            .create()
            .context("failed to create Kafka client for readiness checks")?;
        Ok(BrokerProbe {
            client: std::sync::Arc::new(client),
        })
    }

    /// Fetches cluster metadata within `timeout`.
    pub async fn check(&self, timeout: Duration) -> anyhow::Result<()> {
        use rdkafka::consumer::Consumer;
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            client
                .fetch_metadata(None, timeout)
                .map(|_| ())
                .context("broker metadata unavailable")
        })
        .await
        .context("broker probe panicked")?
    }
}
