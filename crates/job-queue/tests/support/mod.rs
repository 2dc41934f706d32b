//! What the queue tests share: a test database with the job tables, a
//! handler that reports each run it starts, runners started in the
//! background, and a reader of the metrics registry.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use job_queue::{Job, JobConfig, JobContext, JobError, JobHandler, JobRunner, NewJob, Nudge};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SCHEMA: &str = "points";

/// A fresh database whose `points` schema has the job tables, and the URL
/// its service role connects with (for a second pool, as a second replica).
pub async fn database() -> (PgPool, String) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let db = test_harness::fresh_database(&[SCHEMA]).await;
    let url = db.url(SCHEMA).to_owned();
    let pool = PgPool::connect(&url)
        .await
        .expect("connect as the service role");
    job_queue::install(&pool).await.expect("install job tables");
    (pool, url)
}

/// Timings short enough for tests; the fallback poll is long, so a test
/// that sees a job start quickly saw the commit wake the runner.
pub fn config() -> JobConfig {
    JobConfig {
        concurrency: 4,
        max_attempts: 4,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(2),
        lease: Duration::from_secs(1),
        fallback_poll: Duration::from_secs(30),
        shutdown_grace: Duration::from_secs(2),
        gauges_every: Duration::from_millis(50),
        ..JobConfig::default()
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    pub n: u32,
}

/// What the recording handler does with each job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Succeed,
    /// Succeeds after holding the job this long.
    SucceedAfter(Duration),
    FailTransient,
    FailPermanent,
    /// Never returns on the first attempt (its worker is then killed);
    /// succeeds on later ones.
    HangOnFirstAttempt,
}

/// One run as the handler saw it start.
#[derive(Debug, Clone)]
pub struct Seen {
    pub job_id: i64,
    pub n: u32,
    pub attempt: u32,
    pub runner: &'static str,
    pub at: Instant,
}

/// Reports every run it starts, and notices two runs of one job at once.
pub struct Recorder {
    pub kind: &'static str,
    pub runner: &'static str,
    pub act: Act,
    pub seen: mpsc::UnboundedSender<Seen>,
    pub running: Arc<Mutex<HashSet<i64>>>,
    pub overlaps: Arc<Mutex<Vec<i64>>>,
}

impl Recorder {
    pub fn new(
        kind: &'static str,
        runner: &'static str,
        act: Act,
    ) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (seen, receiver) = mpsc::unbounded_channel();
        (
            Recorder {
                kind,
                runner,
                act,
                seen,
                running: Arc::default(),
                overlaps: Arc::default(),
            },
            receiver,
        )
    }

    /// Another recorder reporting into the same channel and the same
    /// in-flight set, for a second runner.
    pub fn twin(&self, runner: &'static str) -> Self {
        Recorder {
            kind: self.kind,
            runner,
            act: self.act,
            seen: self.seen.clone(),
            running: Arc::clone(&self.running),
            overlaps: Arc::clone(&self.overlaps),
        }
    }
}

#[async_trait]
impl JobHandler for Recorder {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn run(&self, _ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: Payload = job.payload()?;
        let _ = self.seen.send(Seen {
            job_id: job.id,
            n: payload.n,
            attempt: job.attempt,
            runner: self.runner,
            at: Instant::now(),
        });
        if !self.running.lock().unwrap().insert(job.id) {
            self.overlaps.lock().unwrap().push(job.id);
        }
        let result = match self.act {
            Act::Succeed => Ok(()),
            Act::SucceedAfter(hold) => {
                tokio::time::sleep(hold).await;
                Ok(())
            }
            Act::FailTransient => Err(JobError::transient(anyhow::anyhow!(
                "provider timed out on job {}",
                payload.n
            ))),
            Act::FailPermanent => Err(JobError::permanent(anyhow::anyhow!(
                "provider refused job {} for good",
                payload.n
            ))),
            Act::HangOnFirstAttempt if job.attempt == 1 => std::future::pending().await,
            Act::HangOnFirstAttempt => Ok(()),
        };
        self.running.lock().unwrap().remove(&job.id);
        result
    }
}

pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
    pub nudge: Nudge,
}

impl Running {
    /// Shuts down gracefully and returns what `run` returned.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.expect("runner task panicked")
    }

    /// Ends the task without a graceful shutdown, as a SIGKILL would.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

pub fn start(runner: JobRunner) -> Running {
    let shutdown = CancellationToken::new();
    let nudge = runner.nudge_handle();
    let task = tokio::spawn(runner.run(shutdown.clone()));
    Running {
        shutdown,
        task,
        nudge,
    }
}

/// Commits one job of `kind` in a transaction of its own.
pub async fn commit_job(pool: &PgPool, job: NewJob) -> Option<i64> {
    let mut tx = pool.begin().await.expect("begin");
    let id = job_queue::enqueue(&mut tx, job).await.expect("enqueue");
    tx.commit().await.expect("commit");
    id
}

pub fn job(kind: &'static str, n: u32) -> NewJob {
    NewJob::new(kind, &Payload { n }).expect("payload serialises")
}

/// The next run the handler starts, or a panic naming `what` after `timeout`.
pub async fn next_seen(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    timeout: Duration,
    what: &str,
) -> Seen {
    match tokio::time::timeout(timeout, seen.recv()).await {
        Ok(Some(seen)) => seen,
        Ok(None) => panic!("handler gone while waiting for {what}"),
        Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// Asserts that the handler starts nothing within `quiet`.
pub async fn nothing_seen(seen: &mut mpsc::UnboundedReceiver<Seen>, quiet: Duration, what: &str) {
    if let Ok(Some(run)) = tokio::time::timeout(quiet, seen.recv()).await {
        panic!("{what}, yet the handler started {run:?}");
    }
}

/// Waits until `condition` holds, or panics after `timeout` naming `what`.
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

/// The job's state, attempts and last error as the queue holds them; `None`
/// once it is done and has left the queue.
pub async fn stored(pool: &PgPool, id: i64) -> Option<(String, i32, Option<String>)> {
    sqlx::query_as("SELECT state, attempts, last_error FROM job_queue WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
        .expect("read job")
}

/// The registry in Prometheus' text format, as `/metrics` serves it.
pub fn exposition(registry: &prometheus::Registry) -> String {
    let mut text = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&registry.gather(), &mut text)
        .expect("encode metrics");
    text
}

/// The value of `name{label="value"}` in `/metrics`' text, if it shows one.
pub fn metric(registry: &prometheus::Registry, name: &str, label: (&str, &str)) -> Option<f64> {
    let series = format!("{name}{{{}=\"{}\"}} ", label.0, label.1);
    exposition(registry)
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map(|value| value.parse().expect("a metric value is a number"))
}
