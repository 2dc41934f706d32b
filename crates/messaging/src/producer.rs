//! The producer of the relay, the dead-letter writer and the tools: an
//! idempotent librdkafka producer whose delivery reports a thread of its own
//! waits for, each answering the future of its message.
//!
//! rdkafka's `FutureProducer` does the same with a thread that waits 100 ms
//! at a time, through a loop that asks librdkafka for the time left in whole
//! milliseconds. librdkafka wakes it a little before the 100 ms are over, the
//! fraction left is asked for as 0 ms, and the thread spins until the
//! deadline: about 9 ms of CPU a second for each producer, busy or idle. With
//! two producers a service (the relay's and the dead letters') that was half
//! of what the idle fleet spent. This producer's thread waits a second at a
//! time, so the spin at the end of each wait comes ten times less often; a
//! report still answers its future the moment it arrives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Message, OwnedMessage, Timestamp, ToBytes};
use rdkafka::producer::future_producer::{Delivery, OwnedDeliveryResult};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureRecord, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use rdkafka::ClientContext;

use crate::kafka::QuietContext;

/// How long the delivery thread waits for reports at a time; also how long
/// a dropped producer's client may outlive it (purged at once, see
/// [`ReliableProducer`]'s `Drop`).
const WAIT_FOR_REPORTS: Duration = Duration::from_secs(1);

/// How long a message waits before it is queued again when librdkafka's
/// queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(100);

/// The acknowledgement of one queued message: the broker's offset, or why it
/// was not delivered. An error from the channel means the producer was gone
/// before the report.
pub type DeliveryFuture = oneshot::Receiver<OwnedDeliveryResult>;

/// The producer's context: librdkafka's errors through the quiet context,
/// and each delivery report sent to its message's future.
struct DeliveryContext(QuietContext);

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<oneshot::Sender<OwnedDeliveryResult>>;

    fn delivery(&self, result: &DeliveryResult<'_>, answer: Self::DeliveryOpaque) {
        let owned = match result {
            Ok(message) => Ok(Delivery {
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp(),
            }),
            Err((error, message)) => Err((error.clone(), message.detach())),
        };
        // Nobody waits any more when the caller gave up on the message.
        let _ = answer.send(owned);
    }
}

struct Shared {
    producer: BaseProducer<DeliveryContext>,
    stop: AtomicBool,
}

/// A producer whose every message answers a future once the broker has it
/// (or refused it). Dropping it purges what it still holds at once.
pub struct ReliableProducer {
    shared: Arc<Shared>,
}

impl ReliableProducer {
    /// Creates the producer of `config` and starts its delivery thread.
    pub fn create(config: &ClientConfig, context: QuietContext) -> anyhow::Result<Self> {
        let producer: BaseProducer<DeliveryContext> =
            config.create_with_context(DeliveryContext(context))?;
        let shared = Arc::new(Shared {
            producer,
            stop: AtomicBool::new(false),
        });
        let polled = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("kafka-delivery".to_owned())
            .spawn(move || {
                while !polled.stop.load(Ordering::Acquire) {
                    polled.producer.poll(WAIT_FOR_REPORTS);
                }
            })?;
        Ok(Self { shared })
    }

    /// Queues `record` and waits for the broker's acknowledgement. A full
    /// queue (librdkafka's holds 100,000 messages) is tried again every
    /// 100 ms until `queue_timeout` has passed. Queued at the first poll, so
    /// futures polled in turn queue their messages in that order.
    pub async fn send<K, P>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: impl Into<Timeout>,
    ) -> OwnedDeliveryResult
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let queue_timeout = queue_timeout.into();
        let started = Instant::now();
        let (answer, delivered) = oneshot::channel();
        let mut record = base_record(record, Box::new(answer));
        loop {
            match self.shared.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                    if may_wait(queue_timeout, started) =>
                {
                    record = back;
                    tokio::time::sleep(QUEUE_FULL_PAUSE).await;
                }
                Err((error, back)) => return Err((error, owned(back))),
            }
        }
        acknowledged(delivered).await
    }

    /// Queues `record` now, or says why it cannot be; the future answers
    /// once the broker has it.
    pub fn queue<K, P>(&self, record: FutureRecord<'_, K, P>) -> KafkaResult<DeliveryFuture>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        let (answer, delivered) = oneshot::channel();
        self.shared
            .producer
            .send(base_record(record, Box::new(answer)))
            .map_err(|(error, _)| error)?;
        Ok(delivered)
    }

    /// The fatal error the producer stopped on, if any: it then refuses
    /// every message, and only a new producer can go on.
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.shared.producer.client().fatal_error()
    }
}

impl Drop for ReliableProducer {
    /// Purges what the producer still holds, so nothing more of it reaches
    /// the broker, and lets its delivery thread end, which drops the client
    /// within [`WAIT_FOR_REPORTS`].
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared
            .producer
            .purge(PurgeConfig::default().queue().inflight());
    }
}

fn may_wait(queue_timeout: Timeout, started: Instant) -> bool {
    match queue_timeout {
        Timeout::Never => true,
        Timeout::After(limit) => started.elapsed() < limit,
    }
}

/// The broker's answer for a queued message; a producer dropped before it
/// answered is a cancelled delivery.
async fn acknowledged(delivered: DeliveryFuture) -> OwnedDeliveryResult {
    match delivered.await {
        Ok(result) => result,
        Err(oneshot::Canceled) => Err((
            KafkaError::Canceled,
            OwnedMessage::new(
                None,
                None,
                String::new(),
                Timestamp::NotAvailable,
                -1,
                -1,
                None,
            ),
        )),
    }
}

fn base_record<'a, K, P>(
    record: FutureRecord<'a, K, P>,
    answer: Box<oneshot::Sender<OwnedDeliveryResult>>,
) -> BaseRecord<'a, K, P, Box<oneshot::Sender<OwnedDeliveryResult>>>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    let mut base = BaseRecord::with_opaque_to(record.topic, answer);
    base.partition = record.partition;
    base.payload = record.payload;
    base.key = record.key;
    base.timestamp = record.timestamp;
    base.headers = record.headers;
    base
}

/// A record librdkafka refused, as the message it would have been.
fn owned<K, P>(
    record: BaseRecord<'_, K, P, Box<oneshot::Sender<OwnedDeliveryResult>>>,
) -> OwnedMessage
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    OwnedMessage::new(
        record.payload.map(|payload| payload.to_bytes().to_vec()),
        record.key.map(|key| key.to_bytes().to_vec()),
        record.topic.to_owned(),
        record
            .timestamp
            .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
        record.partition.unwrap_or(-1),
        -1,
        record.headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each message's future answers with the offset the broker gave it:
    /// one key's messages, sent in turn, in the order they were sent, and
    /// each answered while the delivery thread is in the middle of its wait.
    #[tokio::test]
    async fn each_message_is_answered_with_its_offset_in_the_order_sent() {
        let broker = crate::embedded::EmbeddedBroker::start(1).expect("broker");
        broker.create_topic("orders", 3).expect("topic");
        let producer =
            crate::kafka::reliable_producer(broker.bootstrap_servers()).expect("a producer");
        // The first message also connects and takes a producer id.
        producer
            .send(
                FutureRecord::to("orders").key("order-0").payload("placed"),
                Timeout::Never,
            )
            .await
            .map_err(|(error, _)| error)
            .expect("delivered");
        let payloads = ["placed", "paid", "dispatched"];
        let sends = payloads.map(|payload| {
            producer.send(
                FutureRecord::to("orders").key("order-1").payload(payload),
                Timeout::Never,
            )
        });
        let started = Instant::now();
        let delivered: Vec<Delivery> = futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|result| result.map_err(|(error, _)| error).expect("delivered"))
            .collect();
        assert!(
            started.elapsed() < WAIT_FOR_REPORTS,
            "answered as the reports came, not at the end of a wait: {:?}",
            started.elapsed()
        );
        let partition = delivered[0].partition;
        let first = delivered[0].offset;
        let offsets: Vec<(i32, i64)> = delivered
            .iter()
            .map(|delivery| (delivery.partition, delivery.offset))
            .collect();
        assert_eq!(
            offsets,
            [
                (partition, first),
                (partition, first + 1),
                (partition, first + 2)
            ]
        );
    }

    /// A producer given up (as the relay gives up one that lost the
    /// broker) answers every message it still held: nothing waits for
    /// ever on a producer that is gone.
    #[tokio::test]
    async fn a_dropped_producer_answers_the_messages_it_held() {
        // A port nobody listens on: the message waits in the producer.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let producer =
            crate::kafka::reliable_producer(&format!("127.0.0.1:{port}")).expect("a producer");
        let waiting = producer
            .queue(FutureRecord::to("orders").key("order-1").payload("placed"))
            .expect("queued");
        tokio::time::sleep(Duration::from_millis(200)).await;

        drop(producer);
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("answered within seconds")
            .expect("answered by the producer, not dropped unanswered");
        let (error, message) = answer.expect_err("never delivered");
        assert_eq!(
            error,
            KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue),
            "{error}"
        );
        assert_eq!(message.payload(), Some(&b"placed"[..]));
        assert_eq!(message.key(), Some(&b"order-1"[..]));
    }
}
