//! An in-process Kafka-protocol broker for the local stack and tests.
//!
//! [`EmbeddedBroker`] runs librdkafka's mock cluster, which listens on
//! loopback so that clients in this and other processes connect to
//! [`EmbeddedBroker::bootstrap_servers`] like to any broker. Its data lives in
//! this process's memory and is gone when the broker is dropped.
//!
//! `MockCluster` holds a raw pointer and is neither `Send` nor `Sync`, so one
//! dedicated thread owns it and everyone else sends that thread commands;
//! the handle is then free to live in a `static` and be shared by tests.

use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use anyhow::{anyhow, Context};
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// The answer to one command, sent back by the owning thread.
type Reply = mpsc::SyncSender<anyhow::Result<()>>;

enum Command {
    BrokerDown {
        id: i32,
        reply: Reply,
    },
    BrokerUp {
        id: i32,
        reply: Reply,
    },
    CreateTopic {
        name: String,
        partitions: i32,
        reply: Reply,
    },
    FailRequests {
        api: RDKafkaApiKey,
        errors: Vec<RDKafkaRespErr>,
        reply: Reply,
    },
}

/// A running mock Kafka cluster. Dropping it stops the cluster.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap_servers: String,
    /// `None` only while dropping: closing the channel stops the thread.
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a mock cluster of `brokers` brokers, numbered from 1.
    ///
    /// Topics a client asks for are created on first use with the mock's
    /// defaults; [`EmbeddedBroker::create_topic`] chooses the partition count.
    pub fn start(brokers: i32) -> anyhow::Result<Self> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (commands_tx, commands_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("embedded-kafka".to_owned())
            .spawn(move || run_cluster(brokers, &ready_tx, &commands_rx))
            .context("failed to spawn the embedded Kafka broker's thread")?;
        let bootstrap_servers = ready_rx
            .recv()
            .context("the embedded Kafka broker's thread ended while starting")??;
        tracing::info!(%bootstrap_servers, brokers, "embedded Kafka broker is up");
        Ok(Self {
            bootstrap_servers,
            commands: Some(commands_tx),
            thread: Some(thread),
        })
    }

    /// The `bootstrap.servers` value for clients (`host:port,...`).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Makes broker `id` close its connections and refuse new ones, as if it
    /// had crashed. Leadership does not move.
    pub fn broker_down(&self, id: i32) -> anyhow::Result<()> {
        self.call(|reply| Command::BrokerDown { id, reply })
            .with_context(|| format!("failed to take broker {id} down"))
    }

    /// Makes broker `id` accept connections again.
    pub fn broker_up(&self, id: i32) -> anyhow::Result<()> {
        self.call(|reply| Command::BrokerUp { id, reply })
            .with_context(|| format!("failed to bring broker {id} up"))
    }

    /// Creates topic `name` with `partitions` partitions and replication
    /// factor 1 (the mock does not implement the CreateTopics admin API).
    pub fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        let name = name.to_owned();
        self.call(|reply| Command::CreateTopic {
            name: name.clone(),
            partitions,
            reply,
        })
        .with_context(|| format!("failed to create topic {name} with {partitions} partitions"))
    }

    /// Creates `topics` and their dead-letter twins. The mock cluster has no
    /// CreateTopics API, so whoever starts it creates the fleet's topics
    /// here, before services look for them.
    pub fn create_topics(
        &self,
        topics: &[shared_events::Topic],
        partitions: i32,
    ) -> anyhow::Result<()> {
        for topic in topics {
            self.create_topic(topic.name(), partitions)?;
            self.create_topic(topic.dlq_name(), partitions)?;
        }
        Ok(())
    }

    /// Makes the next requests of kind `api`, one each, fail with `errors`
    /// in turn: say, produce requests answered as a broker that restarted
    /// without its state answers them.
    pub fn fail_requests(
        &self,
        api: RDKafkaApiKey,
        errors: &[RDKafkaRespErr],
    ) -> anyhow::Result<()> {
        let errors = errors.to_vec();
        self.call(|reply| Command::FailRequests {
            api,
            errors: errors.clone(),
            reply,
        })
        .with_context(|| format!("failed to inject errors into {api:?} requests"))
    }

    fn call(&self, command: impl FnOnce(Reply) -> Command) -> anyhow::Result<()> {
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.commands
            .as_ref()
            .ok_or_else(|| anyhow!("the embedded Kafka broker is stopping"))?
            .send(command(reply_tx))
            .map_err(|_| anyhow!("the embedded Kafka broker's thread has ended"))?;
        reply_rx
            .recv()
            .map_err(|_| anyhow!("the embedded Kafka broker's thread ended without replying"))?
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the embedded Kafka broker's thread panicked");
            }
        }
    }
}

/// The owning thread: creates the cluster, reports its address, then serves
/// commands until every sender is gone, and drops the cluster on its way out.
fn run_cluster(
    brokers: i32,
    ready: &mpsc::SyncSender<anyhow::Result<String>>,
    commands: &mpsc::Receiver<Command>,
) {
    let cluster = match MockCluster::new(brokers) {
        Ok(cluster) => cluster,
        Err(error) => {
            // The starter waits on this channel; if it is gone, nobody cares.
            let _ = ready.send(
                Err(error).with_context(|| format!("failed to create a mock cluster of {brokers}")),
            );
            return;
        }
    };
    if ready.send(Ok(cluster.bootstrap_servers())).is_err() {
        return;
    }
    while let Ok(command) = commands.recv() {
        // A requester that gave up waiting is not our problem: ignore send errors.
        match command {
            Command::BrokerDown { id, reply } => {
                let _ = reply.send(cluster.broker_down(id).map_err(Into::into));
            }
            Command::BrokerUp { id, reply } => {
                let _ = reply.send(cluster.broker_up(id).map_err(Into::into));
            }
            Command::CreateTopic {
                name,
                partitions,
                reply,
            } => {
                let _ = reply.send(
                    cluster
                        .create_topic(&name, partitions, 1)
                        .map_err(Into::into),
                );
            }
            Command::FailRequests { api, errors, reply } => {
                cluster.request_errors(api, &errors);
                let _ = reply.send(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    use super::*;

    fn producer(broker: &EmbeddedBroker) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("message.timeout.ms", "60000")
            // Reconnect promptly once a broker is back.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .expect("producer")
    }

    /// Reads `count` payloads of partition 0 from the beginning. librdkafka
    /// wants a `group.id` even for `assign`, but assigning never joins it.
    async fn read(broker: &EmbeddedBroker, topic: &str, count: usize) -> Vec<String> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("group.id", "embedded-broker-tests")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&assignment).expect("assign");
        let mut payloads = Vec::new();
        while payloads.len() < count {
            let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
                .await
                .expect("a message within 30 s")
                .expect("no consumer error");
            let payload = message.payload().expect("payload");
            payloads.push(String::from_utf8(payload.to_vec()).expect("utf-8"));
        }
        payloads
    }

    #[tokio::test]
    async fn what_is_produced_can_be_consumed_back() {
        let broker = EmbeddedBroker::start(1).expect("broker");
        broker.create_topic("greetings", 3).expect("topic");

        producer(&broker)
            .send(
                FutureRecord::to("greetings")
                    .partition(0)
                    .key("k")
                    .payload("hello"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");

        assert_eq!(read(&broker, "greetings", 1).await, ["hello"]);
    }

    #[tokio::test]
    async fn a_message_produced_while_the_broker_is_down_arrives_once_it_is_up() {
        let broker = EmbeddedBroker::start(1).expect("broker");
        broker.create_topic("outages", 1).expect("topic");
        let producer = producer(&broker);
        producer
            .send(
                FutureRecord::to("outages").key("k").payload("before"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered before the outage");

        broker.broker_down(1).expect("down");
        let during = tokio::spawn({
            let producer = producer.clone();
            async move {
                producer
                    .send(
                        FutureRecord::to("outages").key("k").payload("during"),
                        Duration::from_secs(10),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(error, _)| error)
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!during.is_finished(), "delivered while the broker was down");
        broker.broker_up(1).expect("up");

        tokio::time::timeout(Duration::from_secs(30), during)
            .await
            .expect("delivered within 30 s of the broker coming back")
            .expect("task")
            .expect("delivered after the outage");
        assert_eq!(read(&broker, "outages", 2).await, ["before", "during"]);
    }

    #[test]
    fn the_handle_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedBroker>();
    }
}
