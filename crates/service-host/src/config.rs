//! A service's settings from the environment, with errors that name the
//! variable.

use http_service::config::{
    env_millis, env_or, env_parsed, env_required, AuthConfig, ConfigError, HttpConfig,
};
use std::sync::Arc;
use std::time::Duration;

use job_queue::{Clock, SystemClock};
use secrecy::SecretString;
use service_client::{ClientCredentials, TokenSource};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::ServiceSpec;

/// How long a statement of a service may run by default. Far above what any
/// request's queries need, and below the request timeout, so a stuck query
/// fails (and frees its connection) before its request would have anyway.
pub const DEFAULT_DB_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a statement may wait for a lock by default: contention between
/// short transactions clears well within it, and a transaction stuck while
/// holding a lock does not take every waiter's connection along with it.
pub const DEFAULT_DB_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub http: HttpConfig,
    pub auth: AuthConfig,
    /// `DATABASE_URL`: the service's own role in the shared database.
    pub database_url: SecretString,
    pub max_connections: u32,
    /// `HEYBLUE_DB_STATEMENT_TIMEOUT_MS`: the longest one statement of the
    /// service's pool may run before PostgreSQL cancels it.
    pub db_statement_timeout: Duration,
    /// `HEYBLUE_DB_LOCK_TIMEOUT_MS`: the longest one statement may wait for
    /// a lock (a row another transaction holds, say).
    pub db_lock_timeout: Duration,
    /// `KAFKA_BOOTSTRAP`.
    pub kafka_bootstrap: String,
    /// Partitions of topics this service creates (`HEYBLUE_KAFKA_PARTITIONS`).
    pub kafka_partitions: i32,
    pub kafka_replication: i32,
    /// `HEYBLUE_CONSUMER_GROUP`; the service's name when unset.
    pub consumer_group: Option<String>,
    /// `HEYBLUE_KAFKA_FETCH_WAIT_MS`: the consumers' `fetch.wait.max.ms`.
    /// The default suits the embedded broker, which always waits it out;
    /// on Apache Kafka a few hundred milliseconds costs no latency.
    pub kafka_fetch_wait_ms: u32,
    /// The time every deadline, expiry and periodic task of the service
    /// reads; tests replace it with a `job_queue::ManualClock`.
    pub clock: Arc<dyn Clock>,
    /// `HEYBLUE_OAUTH_TOKEN_URL`, `_CLIENT_ID`, `_CLIENT_SECRET`: where this
    /// service gets its tokens for calling others. Unset: it mints them with
    /// the HS256 secret it verifies tokens with.
    pub oauth_client: Option<ClientCredentials>,
}

impl HostConfig {
    /// Where this service's tokens for calling other services come from:
    /// the identity provider when one is configured, else the HS256 secret.
    pub fn service_tokens(&self, service: &str) -> Result<TokenSource, ConfigError> {
        match (&self.oauth_client, &self.auth.jwt_secret) {
            (Some(client), _) => TokenSource::client_credentials(client.clone()),
            (None, Some(secret)) => Ok(TokenSource::hs256(secret.clone(), service)),
            (None, None) => Err(ConfigError::Missing {
                name: "HEYBLUE_OAUTH_TOKEN_URL or HEYBLUE_JWT_SECRET".to_owned(),
            }),
        }
    }

    pub fn from_env(spec: &ServiceSpec) -> Result<Self, ConfigError> {
        let auth = AuthConfig::from_env()?;
        Ok(HostConfig {
            http: HttpConfig::from_env(spec.default_port)?,
            auth,
            database_url: env_required::<String>("DATABASE_URL")?.into(),
            max_connections: env_or("HEYBLUE_DB_MAX_CONNECTIONS", 16)?,
            db_statement_timeout: env_millis(
                "HEYBLUE_DB_STATEMENT_TIMEOUT_MS",
                DEFAULT_DB_STATEMENT_TIMEOUT,
            )?,
            db_lock_timeout: env_millis("HEYBLUE_DB_LOCK_TIMEOUT_MS", DEFAULT_DB_LOCK_TIMEOUT)?,
            kafka_bootstrap: env_required("KAFKA_BOOTSTRAP")?,
            kafka_partitions: env_or("HEYBLUE_KAFKA_PARTITIONS", 6)?,
            kafka_replication: env_or("HEYBLUE_KAFKA_REPLICATION", 1)?,
            consumer_group: env_parsed("HEYBLUE_CONSUMER_GROUP")?,
            kafka_fetch_wait_ms: env_or(
                "HEYBLUE_KAFKA_FETCH_WAIT_MS",
                messaging::consumer::DEFAULT_FETCH_WAIT_MAX_MS,
            )?,
            clock: Arc::new(SystemClock),
            oauth_client: ClientCredentials::from_env()?,
        })
    }

    /// Settings for a test: port 0 (any free port), the given database and
    /// broker, HS256 tokens signed with `jwt_secret`.
    pub fn for_test(database_url: &str, kafka_bootstrap: &str, jwt_secret: &str) -> Self {
        HostConfig {
            http: HttpConfig::with_port(0),
            auth: AuthConfig::hs256(jwt_secret),
            database_url: database_url.to_owned().into(),
            max_connections: 8,
            db_statement_timeout: DEFAULT_DB_STATEMENT_TIMEOUT,
            db_lock_timeout: DEFAULT_DB_LOCK_TIMEOUT,
            kafka_bootstrap: kafka_bootstrap.to_owned(),
            kafka_partitions: 3,
            kafka_replication: 1,
            consumer_group: None,
            kafka_fetch_wait_ms: messaging::consumer::DEFAULT_FETCH_WAIT_MAX_MS,
            clock: Arc::new(SystemClock),
            oauth_client: None,
        }
    }
}

/// What a service needs beyond [`HostConfig`]: peer URLs, provider keys,
/// SMTP, deadlines. Each service declares one type (or `()` when it has
/// nothing of its own); its binary reads it with [`ServiceSettings::from_env`],
/// and tests construct it directly with the values they want, so no test
/// ever mutates the process environment.
pub trait ServiceSettings: Sized + Send + 'static {
    /// Reads the settings; every error names its variable (use the
    /// `http_service::config::env_*` helpers).
    fn from_env() -> Result<Self, ConfigError>;
}

impl ServiceSettings for () {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(())
    }
}

/// `HEYBLUE_EXIT_ON_STDIN_EOF=1`: the local launcher holds each service's
/// stdin open, so a service whose launcher died (even by SIGKILL) sees EOF
/// and stops instead of lingering.
pub(crate) fn exit_on_stdin_eof() -> bool {
    std::env::var("HEYBLUE_EXIT_ON_STDIN_EOF").is_ok_and(|v| v == "1" || v == "true")
}

pub(crate) fn shutdown_on_stdin_eof(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
        tracing::info!("stdin closed; shutting down");
        shutdown.cancel();
    });
}
