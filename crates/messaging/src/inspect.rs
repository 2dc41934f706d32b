//! Reading and writing raw messages: what an operator needs to list dead
//! letters and replay them, and what tests use to look at topics the way an
//! outside client would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use crate::kafka::{self, client_config, reliable_producer, DLQ_HEADER_PREFIX, HEADER_DLQ_TOPIC};

/// A message as it sits on a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl RawMessage {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The payload's `event_id`, when it is an event.
    pub fn event_id(&self) -> Option<Uuid> {
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()?
            .get("event_id")?
            .as_str()?
            .parse()
            .ok()
    }

    pub fn event_type(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.payload)
            .ok()?
            .get("event_type")?
            .as_str()
            .map(str::to_owned)
    }
}

/// Reads every message on every partition of `topic` from the beginning:
/// all that was there when the read began, then whatever comes until nothing
/// new has come for `quiet`. Joins no consumer group.
pub async fn read_topic(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
) -> anyhow::Result<Vec<RawMessage>> {
    let bootstrap = bootstrap.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || read_topic_blocking(&bootstrap, &topic, quiet))
        .await
        .context("topic reader panicked")?
}

/// How long reading what is on a topic may take at most.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn read_topic_blocking(
    bootstrap: &str,
    topic: &str,
    quiet: Duration,
) -> anyhow::Result<Vec<RawMessage>> {
    // librdkafka wants a group id even to assign partitions; the reader
    // never joins the group or commits to it.
    let consumer: BaseConsumer = client_config(bootstrap)
        .set(
            "group.id",
            format!("heyblue-inspect-{}", Uuid::new_v4().simple()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .context("failed to create topic reader")?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .with_context(|| format!("failed to read metadata of {topic}"))?;
    let partitions = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .unwrap_or(0);
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition as i32, Offset::Beginning)
            .context("failed to build assignment")?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("failed to assign {topic}"))?;
    // Everything on the topic when the read starts is read for certain: up
    // to each partition's high watermark, however slowly the first fetch
    // comes. `quiet` then only decides how long to wait for what comes next.
    let mut unread: HashMap<i32, i64> = HashMap::new();
    for partition in 0..partitions as i32 {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .with_context(|| format!("failed to read the offsets of {topic}/{partition}"))?;
        if high > low {
            unread.insert(partition, high);
        }
    }
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut messages = Vec::new();
    let mut last_news = Instant::now();
    while !unread.is_empty() || last_news.elapsed() < quiet {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{topic}: not all of it could be read within {READ_TIMEOUT:?} (left: {unread:?})"
        );
        let Some(result) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let message = result.with_context(|| format!("failed to read {topic}"))?;
        last_news = Instant::now();
        if unread
            .get(&message.partition())
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            unread.remove(&message.partition());
        }
        messages.push(RawMessage {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers: message
                .headers()
                .map(|headers| {
                    headers
                        .iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        });
    }
    messages.sort_by_key(|m| (m.partition, m.offset));
    Ok(messages)
}

/// Publishes `payload` under `key` to `topic` and waits for the broker's
/// acknowledgement, as any outside producer would.
pub async fn publish_raw(
    bootstrap: &str,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, &str)],
) -> anyhow::Result<()> {
    let producer: FutureProducer = client_config(bootstrap)
        .set("partitioner", "murmur2_random")
        .create()
        .context("failed to create producer")?;
    let owned = kafka::headers(headers.iter().map(|(k, v)| (*k, Some(v.as_bytes()))));
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(owned),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(error, _)| error)
        .with_context(|| format!("failed to publish to {topic}"))?;
    Ok(())
}

/// Sends a dead letter back to the topic it came from, with its original
/// key, payload and headers (less the dead-letter ones). The consumers' inbox
/// makes replaying an already handled event harmless.
pub async fn replay(bootstrap: &str, dead_letter: &RawMessage) -> anyhow::Result<()> {
    let original = dead_letter
        .header(HEADER_DLQ_TOPIC)
        .context("not a dead letter: no original topic header")?;
    let producer = reliable_producer(bootstrap)?;
    let headers = kafka::headers(
        dead_letter
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with(DLQ_HEADER_PREFIX))
            .map(|(k, v)| (k.as_str(), Some(v.as_bytes()))),
    );
    let mut record = FutureRecord::<[u8], [u8]>::to(original)
        .payload(&dead_letter.payload)
        .headers(headers);
    if let Some(key) = &dead_letter.key {
        record = record.key(key);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(error, _)| error)
        .with_context(|| format!("failed to replay to {original}"))?;
    Ok(())
}
