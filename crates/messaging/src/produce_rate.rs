//! How fast a broker takes messages from the relay's own producer: a burst
//! of messages, acknowledged with `acks=all`, timed from the first send to
//! the last acknowledgement. The load benchmark (`crates/load`) sets this
//! beside the fleet's order rate, since every order crosses the broker
//! about eight times.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::FutureRecord;

use crate::kafka::{reliable_producer, ReliableProducer};
use crate::producer::DeliveryFuture;

/// How many messages may wait for their acknowledgement at once: enough
/// for batches to form, well below librdkafka's local queue (100,000).
const IN_FLIGHT: usize = 20_000;

/// What a burst achieved.
#[derive(Debug, Clone, Copy)]
pub struct ProduceRate {
    pub messages: usize,
    pub payload_bytes: usize,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

impl ProduceRate {
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Produces `messages` messages of `payload_bytes` bytes each to `topic`
/// (keyed over 64 keys, so every partition gets its share) and waits for
/// each acknowledgement. `topic` should be one no service consumes; a
/// broker that creates topics on first use (the embedded one does) creates
/// it with the first message, which is sent and acknowledged before the
/// clock starts.
pub async fn measure(
    bootstrap: &str,
    topic: &str,
    messages: usize,
    payload_bytes: usize,
) -> anyhow::Result<ProduceRate> {
    let producer = reliable_producer(bootstrap)?;
    let payload = vec![b'x'; payload_bytes];
    let first = send(&producer, topic, "warm-up", &payload)?;
    tokio::time::timeout(Duration::from_secs(30), acknowledged(first))
        .await
        .with_context(|| format!("the broker did not acknowledge a first message to {topic}"))??;

    let keys: Vec<String> = (0..64).map(|key| format!("key-{key}")).collect();
    let started = Instant::now();
    let mut waiting: VecDeque<DeliveryFuture> = VecDeque::with_capacity(IN_FLIGHT);
    for n in 0..messages {
        if waiting.len() == IN_FLIGHT {
            if let Some(oldest) = waiting.pop_front() {
                acknowledged(oldest).await?;
            }
        }
        waiting.push_back(send(&producer, topic, &keys[n % keys.len()], &payload)?);
    }
    for delivery in waiting {
        acknowledged(delivery).await?;
    }
    Ok(ProduceRate {
        messages,
        payload_bytes,
        elapsed: started.elapsed(),
    })
}

fn send(
    producer: &ReliableProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
) -> anyhow::Result<DeliveryFuture> {
    producer
        .queue(FutureRecord::to(topic).key(key).payload(payload))
        .with_context(|| format!("failed to queue a message for {topic}"))
}

async fn acknowledged(delivery: DeliveryFuture) -> anyhow::Result<()> {
    delivery
        .await
        .context("the producer went away before the acknowledgement")?
        .map_err(|(error, _)| error)
        .context("the broker refused a message")?;
    Ok(())
}
