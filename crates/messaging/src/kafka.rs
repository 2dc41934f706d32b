//! Kafka client settings shared by the relay, the consumer runner and the
//! dead-letter producer, and topic creation.

use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
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

/// Logs librdkafka's client errors without flooding: while a broker is
/// away every client reports each failed connection attempt, about ten
/// lines a second across a service. The first error of each kind is
/// logged at once; repeats within [`ErrorThrottle::WINDOW`] are counted and
/// told in one line with the next one after it.
///
/// It also remembers whether the client has ever lost every broker: a
/// client that did is replaced once the broker answers again (see
/// [`BrokerLoss`]).
#[derive(Default)]
pub struct ErrorThrottle {
    seen: std::sync::Mutex<std::collections::HashMap<String, Repeats>>,
    loss: BrokerLoss,
}

/// Whether a client has lost every broker since it was made; a handle the
/// client's owner keeps, since librdkafka's wrappers hide the context.
///
/// Such a client is not trusted once the broker is back: the broker may
/// have come back without its state, its topics made again under their old
/// names, and librdkafka keeps what it knew of the old ones (topic ids, the
/// producer id, positions in the old logs). Its idempotent producer was
/// seen retrying for ever, and its consumer committing a position of the
/// old log into the new one. A new client knows nothing of the old broker.
#[derive(Debug, Clone, Default)]
pub struct BrokerLoss(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl BrokerLoss {
    pub fn happened(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn note(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

struct Repeats {
    logged_at: std::time::Instant,
    suppressed: u64,
}

impl ErrorThrottle {
    pub const WINDOW: Duration = Duration::from_secs(60);

    pub fn report(&self, error: &rdkafka::error::KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.loss.note();
        }
        let kind = match error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => error.to_string(),
        };
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        match seen.get_mut(&kind) {
            Some(repeats) if now.duration_since(repeats.logged_at) < Self::WINDOW => {
                repeats.suppressed += 1;
            }
            Some(repeats) => {
                tracing::warn!(
                    %error,
                    reason,
                    repeated = repeats.suppressed,
                    "Kafka client error (again; repeated is how many were not logged since the last line)"
                );
                *repeats = Repeats {
                    logged_at: now,
                    suppressed: 0,
                };
            }
            None => {
                tracing::warn!(%error, reason, "Kafka client error");
                seen.insert(
                    kind,
                    Repeats {
                        logged_at: now,
                        suppressed: 0,
                    },
                );
            }
        }
    }

    /// The handle that tells whether the client lost every broker.
    pub fn loss(&self) -> BrokerLoss {
        self.loss.clone()
    }
}

/// The client context of the fleet's producers and admin clients: librdkafka's
/// errors through an [`ErrorThrottle`].
#[derive(Default)]
pub struct QuietContext {
    errors: ErrorThrottle,
}

impl rdkafka::ClientContext for QuietContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for QuietContext {}

pub use crate::producer::ReliableProducer;

/// The base client configuration for `bootstrap`.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        // A request that a broker leaves unanswered (it went away without
        // closing the connection, or came back without the state the
        // request needs) is given up after this and sent again. With
        // librdkafka's default, 60 s, the first produce and fetch of each
        // service after the embedded broker's outage waited a minute each,
        // one hop after another; a produce with acks=all or a fetch (at
        // most fetch.wait.max.ms on top) takes milliseconds otherwise.
        .set("socket.timeout.ms", "5000");
    config
}

/// An idempotent producer (`acks=all`) that never drops a message on its own:
/// with `message.timeout.ms=0` librdkafka keeps retrying while the broker is
/// away, so a caller that waits for delivery gets it in order once the broker
/// is back. Callers bound how long they wait themselves.
pub fn reliable_producer(bootstrap: &str) -> anyhow::Result<ReliableProducer> {
    Ok(watched_producer(bootstrap)?.0)
}

/// A [`reliable_producer`], and the handle that tells whether it lost the
/// broker.
pub fn watched_producer(bootstrap: &str) -> anyhow::Result<(ReliableProducer, BrokerLoss)> {
    let context = QuietContext::default();
    let loss = context.errors.loss();
    let mut config = client_config(bootstrap);
    config
        // Java clients' partitioner, so every producer puts a key on the same partition.
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "0")
        // Wait at most 1 ms for more messages: batches form under load, and a
        // lone event is not held back.
        .set("linger.ms", "1");
    let producer =
        ReliableProducer::create(&config, context).context("failed to create Kafka producer")?;
    Ok((producer, loss))
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
    let admin: AdminClient<QuietContext> = client_config(bootstrap)
        .create_with_context(QuietContext::default())
        .context("failed to create Kafka admin client")?;
    let new_topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
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
    let client: BaseConsumer<QuietContext> = client_config(bootstrap)
        .create_with_context(QuietContext::default())
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

/// Whether the broker answers a metadata request within `timeout`, asked
/// through a new client, and has each of `topics` with its partitions. A
/// broker just started may know a topic before its partitions, and a
/// consumer that joined its group then would be given none of them.
pub async fn broker_answers(bootstrap: &str, topics: &[&str], timeout: Duration) -> bool {
    let bootstrap = bootstrap.to_owned();
    let topics: Vec<String> = topics.iter().map(|topic| (*topic).to_owned()).collect();
    let asked = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let client: BaseConsumer<QuietContext> = client_config(&bootstrap)
            .create_with_context(QuietContext::default())
            .ok()?;
        let metadata = client.fetch_metadata(None, timeout).ok()?;
        Some(topics.iter().all(|name| {
            metadata.topics().iter().any(|topic| {
                topic.name() == name && topic.error().is_none() && !topic.partitions().is_empty()
            })
        }))
    });
    matches!(asked.await, Ok(Some(true)))
}

/// Answers whether the broker can be reached and has the service's topics,
/// for `/readyz`. Holds one client so a probe does not start a new one each
/// time; a client that could not reach the broker is replaced by a new one,
/// which knows nothing of a broker that may come back without its state.
#[derive(Clone)]
pub struct BrokerProbe {
    client: std::sync::Arc<std::sync::Mutex<std::sync::Arc<ProbeClient>>>,
    bootstrap: String,
    /// Topics the service publishes or consumes, with their `.dlq` twins.
    topics: Vec<Topic>,
    /// How a missing topic is created again: (partitions, replication).
    recreate: Option<(i32, i32)>,
    /// Set while missing topics are being created again, so probes that
    /// keep failing meanwhile start no second attempt.
    recreating: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

type ProbeClient = rdkafka::consumer::BaseConsumer<QuietContext>;

fn probe_client(bootstrap: &str) -> anyhow::Result<ProbeClient> {
    client_config(bootstrap)
        .create_with_context(QuietContext::default())
        .context("failed to create Kafka client for readiness checks")
}

impl BrokerProbe {
    pub fn new(bootstrap: &str) -> anyhow::Result<Self> {
        Ok(BrokerProbe {
            client: std::sync::Arc::new(std::sync::Mutex::new(std::sync::Arc::new(probe_client(
                bootstrap,
            )?))),
            bootstrap: bootstrap.to_owned(),
            topics: Vec::new(),
            recreate: None,
            recreating: std::sync::Arc::default(),
        })
    }

    /// Also requires `topics` and their `.dlq` twins to exist with at least
    /// one partition: a broker that came back without them (restarted
    /// without its state) would otherwise leave consumers assigned nothing
    /// and the relay publishing into nowhere while the service says it is
    /// ready. A missing topic is created again as at start-up.
    pub fn requiring(mut self, topics: &[Topic], partitions: i32, replication: i32) -> Self {
        self.topics = topics.to_vec();
        self.recreate = Some((partitions, replication));
        self
    }

    /// Fetches cluster metadata within `timeout` and checks the topics.
    pub async fn check(&self, timeout: Duration) -> anyhow::Result<()> {
        use rdkafka::consumer::Consumer;
        let holder = self.client.clone();
        let bootstrap = self.bootstrap.clone();
        let wanted: Vec<&'static str> = self
            .topics
            .iter()
            .flat_map(|topic| [topic.name(), topic.dlq_name()])
            .collect();
        let missing = tokio::task::spawn_blocking(move || {
            let client = holder
                .lock()
                .map_err(|_| anyhow::anyhow!("the probe's client lock is poisoned"))?
                .clone();
            let metadata = match client.fetch_metadata(None, timeout) {
                Ok(metadata) => metadata,
                Err(error) => {
                    // The next check asks through a new client; the old
                    // one is let go here, off the async workers.
                    if let (Ok(fresh), Ok(mut held)) = (probe_client(&bootstrap), holder.lock()) {
                        *held = std::sync::Arc::new(fresh);
                    }
                    return Err(anyhow::Error::new(error).context("broker metadata unavailable"));
                }
            };
            let usable = |name: &str| {
                metadata.topics().iter().any(|topic| {
                    topic.name() == name
                        && topic.error().is_none()
                        && !topic.partitions().is_empty()
                })
            };
            anyhow::Ok(
                wanted
                    .into_iter()
                    .filter(|name| !usable(name))
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .context("broker probe panicked")??;
        if missing.is_empty() {
            return Ok(());
        }
        if let Some((partitions, replication)) = self.recreate {
            self.recreate_in_background(&missing, partitions, replication);
        }
        anyhow::bail!(
            "topics missing or without partitions: {}",
            missing.join(", ")
        )
    }

    /// Creates the missing topics again, off the probe's path: a broker's
    /// admin call can take seconds, and `/readyz` answers at once.
    fn recreate_in_background(&self, missing: &[&'static str], partitions: i32, replication: i32) {
        use std::sync::atomic::Ordering;
        if self.recreating.swap(true, Ordering::SeqCst) {
            return;
        }
        let topics: Vec<Topic> = self
            .topics
            .iter()
            .copied()
            .filter(|topic| missing.contains(&topic.name()) || missing.contains(&topic.dlq_name()))
            .collect();
        let (bootstrap, recreating) = (self.bootstrap.clone(), self.recreating.clone());
        tokio::spawn(async move {
            match ensure_topics(&bootstrap, &topics, partitions, replication).await {
                Ok(()) => tracing::warn!(
                    ?topics,
                    "topics were missing on the broker; created them again"
                ),
                Err(error) => {
                    tracing::warn!(?topics, error = ?error, "topics are missing on the broker and could not be created")
                }
            }
            recreating.store(false, Ordering::SeqCst);
        });
    }
}
