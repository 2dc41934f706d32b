//! Starts one service of the fleet: its database pool (as the service's own
//! role, in its own schema) and migrations, the messaging tables, its outbox
//! relay and consumers, and its HTTP server with the operational endpoints;
//! and stops them in the right order.
//!
//! A service's `build(config, settings)` calls [`Host::start`], registers its
//! handlers on [`Host::consumer`], hands its documented router (an
//! `OpenApiRouter`) to [`Host::serve`] and returns the [`App`]; its `main` is
//! [`run_main`]. `settings` is the service's own [`ServiceSettings`] type,
//! read from the environment by `run_main` and built by hand in tests. Tests
//! build the same `App` on port 0.

mod config;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use http_service::auth::Authenticator;
use http_service::idempotency::{self, Idempotency};
use http_service::server::{CommonRoutes, ReadinessCheck};
use http_service::OpenApiRouter;
use job_queue::{Clock, JobConfig, JobContext, JobMetrics, JobRunner, Periodic};
use messaging::kafka::BrokerProbe;
use messaging::{
    ConsumerConfig, ConsumerReadiness, ConsumerRunner, MessagingMetrics, Relay, RelayConfig,
};
use prometheus::Registry;
use reqwest::Url;
use secrecy::ExposeSecret;
use service_client::{ServiceClient, TokenSource};
use shared_events::Topic;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    HostConfig, ServiceSettings, DEFAULT_DB_LOCK_TIMEOUT, DEFAULT_DB_STATEMENT_TIMEOUT,
};

/// What is fixed about a service: its name, port, schema, migrations and the
/// topic it publishes on.
pub struct ServiceSpec {
    /// The service's name, also its consumer group and `producer`.
    pub name: &'static str,
    pub default_port: u16,
    pub schema: &'static str,
    pub migrator: &'static Migrator,
    /// Topics this service writes to its outbox.
    pub produces: &'static [Topic],
}

/// What most handlers need: the service's database pool and the token
/// verifier. A service with more to share embeds it in a state of its own.
#[derive(Clone, axum::extract::FromRef)]
pub struct ServiceState {
    pub pool: PgPool,
    pub auth: Authenticator,
    pub clock: Arc<dyn Clock>,
}

impl ServiceState {
    /// The `Idempotency-Key` rules for a POST that creates something: a key
    /// is honoured when sent. Apply with
    /// `.route_layer(axum::middleware::from_fn_with_state(state.idempotency(), idempotency::middleware))`.
    pub fn idempotency(&self) -> Idempotency {
        Idempotency::optional(self.pool.clone(), self.auth.clone())
    }

    /// The same, for the POSTs where DESIGN requires a key.
    pub fn idempotency_required(&self) -> Idempotency {
        Idempotency::required(self.pool.clone(), self.auth.clone())
    }
}

/// A service's shared resources while it is being built.
pub struct Host {
    pub spec: &'static ServiceSpec,
    pub config: HostConfig,
    pub pool: PgPool,
    pub registry: Registry,
    pub metrics: MessagingMetrics,
    pub job_metrics: JobMetrics,
    pub auth: Authenticator,
    /// Shared by every peer client, so one token serves all of them.
    tokens: Option<TokenSource>,
}

impl Host {
    /// Connects to the database as the service's role, migrates its schema
    /// and installs the messaging tables.
    pub async fn start(spec: &'static ServiceSpec, config: HostConfig) -> anyhow::Result<Host> {
        let session = session_options(&config, spec.schema)?;
        // Setting up the schema runs on a connection of its own, without the
        // pool's timeouts: a migration may rightly take long, and a replica
        // starting beside another waits on its migration lock until it is
        // done.
        let setup = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(session)
            .await
            .with_context(|| format!("failed to connect to the {} database", spec.name))?;
        set_up_schema(spec, &setup).await?;
        setup.close().await;
        let pool = connect_pool(&config, spec.schema)
            .await
            .with_context(|| format!("failed to connect to the {} database", spec.name))?;
        let registry = Registry::new();
        let metrics = MessagingMetrics::register(&registry)
            .context("failed to register messaging metrics")?;
        let job_metrics =
            JobMetrics::register(&registry).context("failed to register job metrics")?;
        let auth =
            Authenticator::new(config.auth.clone()).context("invalid authentication settings")?;
        Ok(Host {
            spec,
            pool,
            registry,
            metrics,
            job_metrics,
            auth,
            tokens: config.service_tokens(spec.name).ok(),
            config,
        })
    }

    pub fn state(&self) -> ServiceState {
        ServiceState {
            pool: self.pool.clone(),
            auth: self.auth.clone(),
            clock: self.config.clock.clone(),
        }
    }

    /// A client for calling the peer service `peer` at `base_url` with this
    /// service's tokens; peers that are down, slow or failing become
    /// `503 dependency_unavailable` (see `service_client`).
    pub fn client(&self, peer: &str, base_url: &Url) -> anyhow::Result<ServiceClient> {
        let tokens = match &self.tokens {
            Some(tokens) => tokens.clone(),
            None => self.config.service_tokens(self.spec.name)?,
        };
        Ok(ServiceClient::new(peer, base_url.clone(), tokens)?)
    }

    /// A job runner on this service's schema and clock, which already
    /// prunes expired idempotency keys; register the service's job handlers
    /// and periodic tasks on it and pass it to [`Host::serve`].
    pub fn jobs(&self) -> JobRunner {
        let config = JobConfig {
            // Inside the service's whole shutdown deadline, with time left
            // for the relay to flush what the jobs wrote.
            shutdown_grace: Duration::from_secs(10),
            ..JobConfig::default()
        };
        JobRunner::new(self.pool.clone(), config, self.job_metrics.clone())
            .with_clock(self.config.clock.clone())
            .every(PruneIdempotencyKeys)
    }

    /// A consumer runner in this service's consumer group; register handlers
    /// on it and pass it to [`Host::serve`].
    pub fn consumer(&self) -> ConsumerRunner {
        let group = self
            .config
            .consumer_group
            .clone()
            .unwrap_or_else(|| self.spec.name.to_owned());
        let mut config = ConsumerConfig::new(&self.config.kafka_bootstrap, group);
        config.fetch_wait_max_ms = self.config.kafka_fetch_wait_ms;
        ConsumerRunner::new(config, self.pool.clone(), self.metrics.clone())
    }

    /// Binds the HTTP port and assembles the running parts. `routes` is the
    /// service's documented router; `/openapi.json` serves its document.
    pub async fn serve(
        self,
        routes: OpenApiRouter,
        consumer: ConsumerRunner,
        jobs: JobRunner,
    ) -> anyhow::Result<App> {
        consumer.check()?;
        let (routes, openapi) = routes.split_for_parts();
        let mut topics: Vec<Topic> = self.spec.produces.to_vec();
        topics.extend(consumer.topics());
        messaging::kafka::ensure_topics(
            &self.config.kafka_bootstrap,
            &topics,
            self.config.kafka_partitions,
            self.config.kafka_replication,
        )
        .await
        .context("failed to create the service's topics")?;

        let broker = BrokerProbe::new(&self.config.kafka_bootstrap)?.requiring(
            &topics,
            self.config.kafka_partitions,
            self.config.kafka_replication,
        );
        let common = CommonRoutes::new(self.registry.clone(), openapi)
            .readiness_check(DatabaseCheck(self.pool.clone()))
            .readiness_check(BrokerCheck(broker.clone()))
            .readiness_check(ConsumerCheck(consumer.readiness()));
        let router = http_service::server::layered(
            routes.merge(common.router()),
            &self.config.http,
            &self.registry,
        );

        let listener = TcpListener::bind(("0.0.0.0", self.config.http.port))
            .await
            .with_context(|| format!("failed to bind port {}", self.config.http.port))?;
        let port = listener.local_addr().context("no local address")?.port();
        let relay = Relay::new(
            self.pool.clone(),
            RelayConfig::new(&self.config.kafka_bootstrap),
            self.metrics.clone(),
        )?;
        Ok(App {
            name: self.spec.name,
            port,
            http: self.config.http.clone(),
            listener,
            router,
            relay,
            consumer,
            jobs,
            topics: broker,
            pool: self.pool,
            shutdown: CancellationToken::new(),
        })
    }
}

/// The options of every connection of a service: its schema, and the
/// statement and lock timeouts of `config`, so that one stuck query cannot
/// hold a connection for ever. They are session settings sent when the
/// connection starts, so they cost no round trip and hold on every
/// connection the pool makes, `LISTEN` ones included (waiting for a
/// notification is no statement, so it is not cut short).
pub fn connect_options(config: &HostConfig, schema: &str) -> anyhow::Result<PgConnectOptions> {
    let statement_timeout = config.db_statement_timeout.as_millis().to_string();
    let lock_timeout = config.db_lock_timeout.as_millis().to_string();
    Ok(session_options(config, schema)?.options([
        ("statement_timeout", statement_timeout.as_str()),
        ("lock_timeout", lock_timeout.as_str()),
    ]))
}

/// The service's pool, each connection made with [`connect_options`].
///
/// The pool asks the server whether a connection is alive whenever it is
/// given back (a round trip that also clears what a dropped statement left
/// behind). Asking again when it is taken is worth a round trip only after
/// it lay idle long enough for the server to have gone in between
/// ([`PING_AFTER_IDLE`]): a busy service takes a connection for almost
/// every transaction, and that second round trip was one in six of those
/// an order costs the database.
pub async fn connect_pool(config: &HostConfig, schema: &str) -> anyhow::Result<PgPool> {
    let options = connect_options(config, schema)?;
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_with(options)
        .await?)
}

/// How long a connection lies idle in the pool before it is asked, when
/// taken, whether it is still alive; a dead one is dropped and another
/// taken or made.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The database URL as the service's role, in its schema, without timeouts.
fn session_options(config: &HostConfig, schema: &str) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = config
        .database_url
        .expose_secret()
        .parse()
        .context("DATABASE_URL: not a PostgreSQL URL")?;
    // The role's default search_path is its schema already; saying it
    // here too keeps a misprovisioned role from writing elsewhere.
    Ok(options.options([("search_path", schema)]))
}

/// Migrates the service's schema and installs the shared tables.
async fn set_up_schema(spec: &ServiceSpec, pool: &PgPool) -> anyhow::Result<()> {
    spec.migrator
        .run(pool)
        .await
        .with_context(|| format!("failed to migrate schema {}", spec.schema))?;
    messaging::schema::install(pool)
        .await
        .context("failed to install the messaging tables")?;
    idempotency::install(pool)
        .await
        .context("failed to install the idempotency key table")?;
    job_queue::install(pool)
        .await
        .context("failed to install the job queue tables")?;
    Ok(())
}

/// A built service, ready to run.
pub struct App {
    name: &'static str,
    port: u16,
    http: http_service::HttpConfig,
    listener: TcpListener,
    router: axum::Router,
    relay: Relay,
    consumer: ConsumerRunner,
    jobs: JobRunner,
    /// Looks for the service's topics on the broker (see [`watch_topics`]).
    topics: BrokerProbe,
    pool: PgPool,
    shutdown: CancellationToken,
}

impl App {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token stops the service gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until the shutdown token is cancelled. Then it stops taking
    /// requests, messages and jobs, lets in-flight handlers and jobs finish,
    /// and only then flushes the outbox, so events they wrote still go out.
    pub async fn run(self) -> anyhow::Result<()> {
        let App {
            name,
            http,
            listener,
            router,
            relay,
            consumer,
            jobs,
            topics,
            pool,
            shutdown,
            ..
        } = self;
        tokio::spawn(watch_topics(topics, shutdown.clone()));
        let relay_stop = CancellationToken::new();
        let relay_task = tokio::spawn(relay.run(relay_stop.clone()));
        let consumer_task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let consumed = consumer.run(shutdown.clone()).await;
                // A consumer that stops on its own cannot go on handling this
                // service's events: stop the whole service, so that it is
                // restarted instead of answering requests half-alive.
                if let Err(error) = &consumed {
                    tracing::error!(error = ?error, "consumer failed; stopping the service");
                    shutdown.cancel();
                }
                consumed
            }
        });
        let jobs_task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                let ran = jobs.run(shutdown.clone()).await;
                if let Err(error) = &ran {
                    tracing::error!(error = ?error, "job runner failed; stopping the service");
                    shutdown.cancel();
                }
                ran
            }
        });
        tracing::info!(service = name, port = self.port, "listening");
        let served =
            http_service::server::serve_with_config(listener, router, &http, shutdown.clone())
                .await;
        shutdown.cancel();
        let consumed = consumer_task.await.context("consumer task panicked")?;
        let jobs_ran = jobs_task.await.context("job runner panicked")?;
        relay_stop.cancel();
        relay_task.await.context("relay task panicked")?;
        pool.close().await;
        tracing::info!(service = name, "stopped");
        served.context("HTTP server failed")?;
        consumed?;
        jobs_ran
    }
}

/// How often a service looks for its topics on the broker.
const TOPIC_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Until shutdown, checks every [`TOPIC_WATCH_INTERVAL`] that the broker has
/// the service's topics, whether or not anyone asks `/readyz`: a check that
/// finds one missing (a broker that came back without its state) creates it
/// again, as at start-up, so the relay and consumers have somewhere to go
/// even where nothing probes readiness. Why a check failed is `/readyz`'s to
/// say; this only keeps the topics there.
async fn watch_topics(topics: BrokerProbe, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TOPIC_WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let _ = topics.check(Duration::from_millis(1500)).await;
    }
}

/// Forgets `Idempotency-Key`s past their retention, hourly, on one replica.
struct PruneIdempotencyKeys;

#[async_trait]
impl Periodic for PruneIdempotencyKeys {
    fn name(&self) -> &'static str {
        "service_host.prune_idempotency_keys"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(3600)
    }

    async fn tick(&self, ctx: &JobContext, _now: OffsetDateTime) -> anyhow::Result<()> {
        let pruned = idempotency::prune(&ctx.pool, idempotency::RETENTION)
            .await
            .context("failed to prune idempotency keys")?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned expired idempotency keys");
        }
        Ok(())
    }
}

/// How long a service may take to stop once asked; past it, whatever is
/// unfinished is redelivered (consumers) or republished (outbox) after restart.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// `main` of a service binary: tracing, config from the environment, build,
/// run until SIGTERM, Ctrl-C or (under the local launcher) stdin closing.
pub fn run_main<S, F, Fut>(spec: &'static ServiceSpec, build: F) -> anyhow::Result<()>
where
    S: ServiceSettings,
    F: FnOnce(HostConfig, S) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<App>>,
{
    http_service::telemetry::init_tracing(spec.name);
    let config = HostConfig::from_env(spec)?;
    let settings = S::from_env()?;
    let runtime = tokio::runtime::Runtime::new().context("failed to start the async runtime")?;
    let result = runtime.block_on(async move {
        // Listen for the stop request before building, so a SIGTERM during
        // start-up (say, while the database is still coming up) is honoured.
        let stop = CancellationToken::new();
        http_service::server::shutdown_on_signals(stop.clone());
        if config::exit_on_stdin_eof() {
            config::shutdown_on_stdin_eof(stop.clone());
        }
        let app = tokio::select! {
            app = build(config, settings) => app.with_context(|| format!("failed to start {}", spec.name))?,
            () = stop.cancelled() => return Ok(()),
        };
        let app_stop = app.shutdown_token();
        let mut run = tokio::spawn(app.run());
        tokio::select! {
            ran = &mut run => return ran.context("service task panicked")?,
            () = stop.cancelled() => app_stop.cancel(),
        }
        match tokio::time::timeout(SHUTDOWN_DEADLINE, run).await {
            Ok(ran) => ran.context("service task panicked")?,
            Err(_) => {
                tracing::warn!(
                    service = spec.name,
                    "shutdown did not finish in time; exiting anyway"
                );
                Ok(())
            }
        }
    });
    // The stdin watcher sits in a blocking read that would keep the runtime
    // (and the process) alive; don't wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

struct DatabaseCheck(PgPool);

#[async_trait]
impl ReadinessCheck for DatabaseCheck {
    fn name(&self) -> &str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.0)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

struct BrokerCheck(BrokerProbe);

#[async_trait]
impl ReadinessCheck for BrokerCheck {
    fn name(&self) -> &str {
        "broker"
    }

    async fn check(&self) -> Result<(), String> {
        self.0
            .check(Duration::from_millis(1500))
            .await
            .map_err(|e| format!("{e:#}"))
    }
}

/// Not ready until the consumers have joined their group: before that,
/// events this service should act on would wait unhandled.
struct ConsumerCheck(ConsumerReadiness);

#[async_trait]
impl ReadinessCheck for ConsumerCheck {
    fn name(&self) -> &str {
        "consumer"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.is_joined() {
            Ok(())
        } else {
            Err("consumer group not joined yet".to_owned())
        }
    }
}
