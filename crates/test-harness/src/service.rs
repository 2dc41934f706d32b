//! A service of the fleet started in the test's process on port 0, built by
//! the same `build` function its binary uses.

use std::future::Future;
use std::time::{Duration, Instant};

use http_service::auth::{mint_hs256, Claims, Role};
use service_host::{App, HostConfig, ServiceSettings, ServiceSpec, ServiceState};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::TestDatabase;

/// The HS256 secret the test services verify tokens with.
pub const JWT_SECRET: &str = "heyblue-test-secret";

/// A bearer token for `sub` in `role`, valid for an hour.
pub fn token(sub: Uuid, role: Role) -> String {
    mint_hs256(
        JWT_SECRET,
        &Claims::new(sub, role, Duration::from_secs(3600)),
    )
}

/// A running service; stop it with [`TestService::stop`] to see it shut down
/// cleanly (dropping it just aborts it).
pub struct TestService {
    pub base_url: String,
    /// One client for every caller, so the service's document is read
    /// once, not once per call.
    api: crate::Api,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestService {
    /// Builds the service `spec` against `db` (its schema's role) and the
    /// broker at `bootstrap` with its default settings, serves it on a free
    /// port, and waits until its `/readyz` says ready (its consumers have
    /// joined their group).
    ///
    /// # Panics
    /// When the service fails to build or does not become ready in 60 s.
    pub async fn start<S, F, Fut>(
        spec: &ServiceSpec,
        build: F,
        db: &TestDatabase,
        bootstrap: &str,
    ) -> TestService
    where
        S: ServiceSettings + Default,
        F: FnOnce(HostConfig, S) -> Fut,
        Fut: Future<Output = anyhow::Result<App>>,
    {
        Self::start_with(spec, build, db, bootstrap, S::default()).await
    }

    /// [`TestService::start`] with the service's own settings chosen by the
    /// test (peer URLs, provider endpoints, deadlines).
    ///
    /// # Panics
    /// As [`TestService::start`].
    pub async fn start_with<S, F, Fut>(
        spec: &ServiceSpec,
        build: F,
        db: &TestDatabase,
        bootstrap: &str,
        settings: S,
    ) -> TestService
    where
        S: ServiceSettings,
        F: FnOnce(HostConfig, S) -> Fut,
        Fut: Future<Output = anyhow::Result<App>>,
    {
        let config = HostConfig::for_test(db.url(spec.schema), bootstrap, JWT_SECRET);
        Self::start_configured(spec, build, config, settings).await
    }

    /// Starts the service with a host configuration the test built itself
    /// (say, another consumer group for a second replica).
    ///
    /// # Panics
    /// As [`TestService::start`].
    pub async fn start_configured<S, F, Fut>(
        spec: &ServiceSpec,
        build: F,
        config: HostConfig,
        settings: S,
    ) -> TestService
    where
        S: ServiceSettings,
        F: FnOnce(HostConfig, S) -> Fut,
        Fut: Future<Output = anyhow::Result<App>>,
    {
        let app = build(config, settings)
            .await
            .unwrap_or_else(|e| panic!("failed to build {}: {e:#}", spec.name));
        let base_url = format!("http://127.0.0.1:{}", app.port());
        let shutdown = app.shutdown_token();
        let task = tokio::spawn(app.run());
        let service = TestService {
            api: crate::Api::new(base_url.clone()),
            base_url,
            shutdown,
            task: Some(task),
        };
        service.wait_until_ready(spec.name).await;
        service
    }

    async fn wait_until_ready(&self, name: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not become ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The service's HTTP API, to call as a user of some role.
    pub fn api(&self) -> crate::Api {
        self.api.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the service gracefully and returns how its run ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A service state whose pool never connects: enough to build a service's
/// router and check it against its document, which runs no handler.
///
/// # Panics
/// Never in practice: a lazy pool needs only a well-formed URL.
pub fn offline_state() -> ServiceState {
    ServiceState {
        pool: sqlx::PgPool::connect_lazy("postgres://offline.invalid/none")
            .expect("a lazy pool needs only a URL"),
        auth: http_service::Authenticator::new(http_service::AuthConfig::hs256(JWT_SECRET))
            .expect("HS256 settings"),
        clock: std::sync::Arc::new(job_queue::SystemClock),
    }
}
