//! The Kafka-protocol broker a test talks to, of the kind the run asks for.
//!
//! - By default, librdkafka's mock cluster in the test's own process
//!   ([`EmbeddedBroker`]): it starts in milliseconds and can be made to fail
//!   requests on purpose.
//! - With `HEYBLUE_TEST_BROKER=tansu`, tansu as a process of its own
//!   ([`Tansu`]): reached over the network only, killed with SIGKILL and
//!   started again, with or without its storage.
//! - With `KAFKA_BOOTSTRAP`, a broker someone else runs, for the tests that
//!   share one broker ([`crate::broker`]); they use names no other test
//!   uses. A test that needs a broker to itself always starts one.

use anyhow::Context;
use messaging::embedded::EmbeddedBroker;
use shared_events::Topic;

use crate::tansu::Tansu;

/// The broker's id in the embedded cluster, which has only one.
const EMBEDDED_BROKER_ID: i32 = 1;

/// Which broker `HEYBLUE_TEST_BROKER` asks tests to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Embedded,
    Tansu,
}

impl BrokerKind {
    /// `HEYBLUE_TEST_BROKER`: `embedded` (or unset) or `tansu`.
    ///
    /// # Panics
    /// On any other value, naming the ones there are.
    pub fn from_env() -> BrokerKind {
        match std::env::var("HEYBLUE_TEST_BROKER").as_deref() {
            Err(_) | Ok("" | "embedded") => BrokerKind::Embedded,
            Ok("tansu") => BrokerKind::Tansu,
            Ok(other) => panic!("HEYBLUE_TEST_BROKER={other}: expected embedded or tansu"),
        }
    }
}

/// A broker for tests.
#[derive(Debug)]
pub enum TestBroker {
    Embedded(EmbeddedBroker),
    Tansu(Tansu),
    /// A broker at this `bootstrap.servers` that this process does not run.
    External(String),
}

impl TestBroker {
    /// A broker of the caller's own, of the kind `HEYBLUE_TEST_BROKER`
    /// asks for, with `topics` and their dead-letter twins.
    ///
    /// # Panics
    /// When the broker cannot start or take the topics.
    pub async fn start(topics: &[Topic], partitions: i32) -> TestBroker {
        let broker = match BrokerKind::from_env() {
            BrokerKind::Embedded => TestBroker::embedded(),
            BrokerKind::Tansu => match Tansu::start().await {
                Ok(tansu) => TestBroker::Tansu(tansu),
                Err(error) => panic!("no tansu broker for the test: {error:#}"),
            },
        };
        if let Err(error) = broker.create_topics(topics, partitions).await {
            panic!("the test's broker refused its topics: {error:#}");
        }
        broker
    }

    /// An embedded broker whatever the run asks for: for a test of what
    /// only the mock cluster can do, such as failing chosen requests.
    ///
    /// # Panics
    /// When the broker cannot start.
    pub fn embedded() -> TestBroker {
        match EmbeddedBroker::start(1) {
            Ok(broker) => TestBroker::Embedded(broker),
            Err(error) => panic!("no embedded Kafka broker for the test: {error:#}"),
        }
    }

    /// The `bootstrap.servers` value for clients.
    pub fn bootstrap_servers(&self) -> &str {
        match self {
            TestBroker::Embedded(broker) => broker.bootstrap_servers(),
            TestBroker::Tansu(tansu) => tansu.bootstrap_servers(),
            TestBroker::External(bootstrap) => bootstrap,
        }
    }

    /// The mock cluster, for what only it can do.
    pub fn as_embedded(&self) -> Option<&EmbeddedBroker> {
        match self {
            TestBroker::Embedded(broker) => Some(broker),
            _ => None,
        }
    }

    /// Creates `topics` and their dead-letter twins with `partitions`
    /// partitions where they do not exist yet.
    pub async fn create_topics(&self, topics: &[Topic], partitions: i32) -> anyhow::Result<()> {
        match self {
            TestBroker::Embedded(broker) => broker.create_topics(topics, partitions),
            TestBroker::Tansu(_) | TestBroker::External(_) => {
                messaging::kafka::ensure_topics(self.bootstrap_servers(), topics, partitions, 1)
                    .await
            }
        }
    }

    /// Takes the broker away as a crash would: the embedded one drops its
    /// connections and refuses new ones; tansu is killed with SIGKILL.
    ///
    /// # Panics
    /// On a broker this process does not run.
    pub fn crash(&self) {
        match self {
            TestBroker::Embedded(broker) => broker
                .broker_down(EMBEDDED_BROKER_ID)
                .expect("take the embedded broker down"),
            TestBroker::Tansu(tansu) => tansu.kill(),
            TestBroker::External(bootstrap) => {
                panic!("the broker at {bootstrap} is not this test's to crash")
            }
        }
    }

    /// Brings the broker back after [`TestBroker::crash`], with everything
    /// it had stored.
    ///
    /// # Panics
    /// When it does not come back.
    pub async fn recover(&self) {
        match self {
            TestBroker::Embedded(broker) => broker
                .broker_up(EMBEDDED_BROKER_ID)
                .expect("bring the embedded broker back"),
            TestBroker::Tansu(tansu) => tansu
                .restart(true)
                .await
                .expect("start tansu again on its storage"),
            TestBroker::External(bootstrap) => {
                panic!("the broker at {bootstrap} is not this test's to start")
            }
        }
    }

    /// Brings the broker back after [`TestBroker::crash`] with nothing of
    /// what it had: no topics, messages, offsets or producer ids. Only a
    /// broker with storage of its own can; the mock cluster's lives in the
    /// process.
    pub async fn recover_without_state(&self) -> anyhow::Result<()> {
        match self {
            TestBroker::Tansu(tansu) => tansu
                .restart(false)
                .await
                .context("failed to start tansu again on empty storage"),
            other => anyhow::bail!(
                "the broker at {} cannot come back without its state",
                other.bootstrap_servers()
            ),
        }
    }
}
