//! What black-box tests need: a private Postgres, a Kafka-protocol broker
//! and a fresh database per test.
//!
//! Everything here is shared by all tests of one test binary and started on
//! first use, so `cargo test` needs nothing running beforehand:
//!
//! - [`postgres_admin_url`]: `DATABASE_URL` if set, else one private cluster
//!   per test process, which a watchdog stops and deletes when the process
//!   exits (a `static` is never dropped).
//! - [`broker`]: one Kafka-protocol broker per test process: embedded, or
//!   the one `KAFKA_BOOTSTRAP` names; [`TestBroker::start`]: a broker of a
//!   test's own, embedded or (`HEYBLUE_TEST_BROKER=tansu`) [`Tansu`] as a
//!   process of its own, which the test can kill and restart.
//! - [`fresh_database`]: a database of its own for every test, with the
//!   services' roles and schemas provisioned as in production.
//! - [`unique`]: names for topics and consumer groups that no other test uses.
//! - [`api::Api`]: a service's HTTP API called as a user of some role,
//!   each answer checked against the service's own OpenAPI document
//!   ([`contract`]);
//!   [`events`]: publishing and reading envelopes; [`eventually`]: waiting
//!   for a condition.
//! - [`IdentityProvider`]: a local OpenID Connect provider (JWKS, client
//!   credentials, authorization code with PKCE) for tests of RS256 auth.
//! - [`Browser`]: a cookie-keeping client that submits forms, for the
//!   webshop's pages.
//! - [`fault::FaultProxy`]: a proxy in front of a real service that a test
//!   switches to refuse connections, answer late or answer 500.
//!
//! `#[tokio::test]` gives every test its own runtime, and a sqlx pool must not
//! outlive the runtime it was made on, so the statics hold only URLs and
//! handles; each test makes its own pools.

pub mod api;
mod broker;
pub mod browser;
pub mod contract;
pub mod events;
pub mod fault;
pub mod idp;
mod service;
mod tansu;

pub use api::{Answer, Api};
pub use broker::{BrokerKind, TestBroker};
pub use browser::{Browser, Page};
pub use idp::{IdentityProvider, IdpUser};
pub use service::{offline_state, token, TestService, JWT_SECRET};
pub use tansu::Tansu;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use messaging::embedded::EmbeddedBroker;
use pg_cluster::{provision, ClusterOptions, PgCluster};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

static PRIVATE_CLUSTER: OnceCell<PgCluster> = OnceCell::const_new();
static BROKER: OnceLock<TestBroker> = OnceLock::new();

/// A superuser's URL to a PostgreSQL server for tests: `DATABASE_URL` when
/// set, else this process's private cluster (started on first call).
///
/// # Panics
/// When the private cluster cannot start; the message says why.
pub async fn postgres_admin_url() -> String {
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return url;
    }
    let cluster = PRIVATE_CLUSTER
        .get_or_try_init(|| async {
            tokio::task::spawn_blocking(start_private_cluster)
                .await
                .context("the thread starting PostgreSQL panicked")?
        })
        .await;
    match cluster {
        Ok(cluster) => cluster.admin_url(),
        Err(error) => {
            panic!("no PostgreSQL for tests (set DATABASE_URL to use a running server): {error:#}")
        }
    }
}

fn start_private_cluster() -> anyhow::Result<PgCluster> {
    // Kept rather than dropped: the watchdog deletes it once we have exited,
    // after the server that writes into it has stopped.
    let dir: PathBuf = pg_cluster::server_temp_dir("heyblue-pg-")
        .context("failed to create a temporary directory for PostgreSQL")?
        .keep();
    PgCluster::start_with_watchdog(&dir, ClusterOptions::tests()).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })
}

/// This process's broker, started on first call: the one `KAFKA_BOOTSTRAP`
/// names when it is set, else an embedded one (one broker, id 1), with the
/// fleet's topics. Tests share it, so they use [`unique`] topic and group
/// names.
///
/// # Panics
/// When the broker cannot start or take the fleet's topics.
pub fn broker() -> &'static TestBroker {
    BROKER.get_or_init(|| {
        let broker = match std::env::var("KAFKA_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => TestBroker::External(bootstrap),
            _ => TestBroker::embedded(),
        };
        // On a thread of its own: the first caller may be inside a runtime,
        // where blocking on another future is refused.
        let created = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("failed to build a runtime to create topics")?
                        .block_on(broker.create_topics(&shared_events::Topic::ALL, 3))
                })
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("creating the topics panicked")))
        });
        if let Err(error) = created {
            panic!(
                "the tests' broker at {} refused the fleet's topics: {error:#}",
                broker.bootstrap_servers()
            );
        }
        broker
    })
}

/// An embedded broker of the caller's own, with the fleet's topics: for a
/// test whose services consume the fleet's topics, where another test's
/// events on a shared broker would reach them too.
///
/// # Panics
/// When the broker cannot start.
pub fn own_broker() -> EmbeddedBroker {
    match EmbeddedBroker::start(1).and_then(|broker| {
        broker.create_topics(&shared_events::Topic::ALL, 3)?;
        Ok(broker)
    }) {
        Ok(broker) => broker,
        Err(error) => panic!("no embedded Kafka broker for the test: {error:#}"),
    }
}

/// `<prefix>-<32 hex digits>`: a topic, consumer group or other name that no
/// other test (of any process) chooses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::new_v4().simple())
}

/// A database of one test, with the requested service schemas provisioned.
#[derive(Debug, Clone)]
pub struct TestDatabase {
    /// `t_<32 hex digits>`.
    pub name: String,
    /// The superuser's URL to this database (for assertions that look past
    /// the services' privileges).
    pub admin_url: String,
    /// Schema name → the URL its service connects with.
    pub urls: BTreeMap<String, String>,
}

impl TestDatabase {
    /// The URL of the role that owns `schema`.
    ///
    /// # Panics
    /// When `schema` was not provisioned in this database.
    pub fn url(&self, schema: &str) -> &str {
        match self.urls.get(schema) {
            Some(url) => url,
            None => panic!(
                "schema {schema} was not provisioned in {} (only {:?})",
                self.name,
                self.urls.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// Drops the database. Optional: the private cluster disappears with the
    /// test process anyway; on a server reached through `DATABASE_URL` this
    /// keeps `t_…` databases from piling up.
    pub async fn remove(self) -> anyhow::Result<()> {
        let mut server = PgConnection::connect(&postgres_admin_url().await)
            .await
            .context("failed to connect with the admin URL")?;
        server
            .execute(format!(r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#, self.name).as_str())
            .await
            .with_context(|| format!("failed to drop test database {}", self.name))?;
        server.close().await.ok();
        Ok(())
    }
}

/// A new, uniquely named database with `schemas` provisioned in it (roles,
/// schemas, privileges: see `pg_cluster::provision`).
///
/// # Panics
/// When the server cannot be reached or provisioning fails.
pub async fn fresh_database(schemas: &[&str]) -> TestDatabase {
    let name = format!("t_{}", Uuid::new_v4().simple());
    let provisioned = match provision(&postgres_admin_url().await, &name, schemas).await {
        Ok(provisioned) => provisioned,
        Err(error) => panic!("failed to provision test database {name}: {error:#}"),
    };
    TestDatabase {
        admin_url: provisioned.admin_url(),
        urls: schemas
            .iter()
            .map(|schema| ((*schema).to_owned(), provisioned.url(schema)))
            .collect(),
        name,
    }
}

/// Waits until `condition` holds, checking every 20 ms.
///
/// # Panics
/// After `timeout`, naming `what` was awaited.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
