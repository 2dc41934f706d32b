//! What a service writes and implements: a job to enqueue ([`NewJob`]), the
//! handler that runs one kind ([`JobHandler`]), what it gets ([`Job`],
//! [`JobContext`]) and how it fails ([`JobError`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::clock::Clock;

/// A job to write with [`crate::enqueue`].
#[derive(Debug, Clone)]
pub struct NewJob {
    pub(crate) kind: &'static str,
    pub(crate) payload: serde_json::Value,
    pub(crate) dedupe_key: Option<String>,
    pub(crate) run_at: Option<OffsetDateTime>,
}

impl NewJob {
    /// A job of `kind` (the [`JobHandler::kind`] that runs it) carrying
    /// `payload` as JSON, to run as soon as possible.
    pub fn new(kind: &'static str, payload: &impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(NewJob {
            kind,
            payload: serde_json::to_value(payload)?,
            dedupe_key: None,
            run_at: None,
        })
    }

    /// Enqueueing another job of this kind with the same key adds nothing,
    /// while the first is in the queue and for [`crate::Retention::keys`]
    /// after it was enqueued, done or not. Derive it from
    /// business ids (`order_id`, `(order_id, business_id)`), so that a
    /// redelivered event cannot make two jobs.
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Not before `at`, by the runner's clock.
    pub fn run_at(mut self, at: OffsetDateTime) -> Self {
        self.run_at = Some(at);
        self
    }
}

/// A claimed job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    /// 1 on the first run, 2 on the first retry, …
    pub attempt: u32,
    pub created_at: OffsetDateTime,
    /// Set when the handler ended the job in its own write
    /// ([`Job::ended_by_handler`]): the runner then writes nothing more.
    pub(crate) ended: Arc<AtomicBool>,
}

impl Job {
    /// The arguments of `job_queue_done(job_id, attempt)`, for a handler
    /// that ends its job in its own last statement rather than leaving it
    /// to a statement of the runner's after it returns. The function
    /// deletes the job if this attempt still owns it and says whether it
    /// did; pass what it said to [`Job::ended_by_handler`] once that
    /// statement has committed. [`crate::finish`] does both, as a statement
    /// of its own inside the handler's transaction.
    ///
    /// ```ignore
    /// let (job_id, attempt) = job.done_arguments();
    /// let ended: bool = sqlx::query_scalar(
    ///     "WITH sent AS (UPDATE notifications SET emailed_at = now() WHERE id = $1)
    ///      SELECT job_queue_done($2, $3)",
    /// )
    /// .bind(notification_id).bind(job_id).bind(attempt)
    /// .fetch_one(&mut *conn)
    /// .await?;
    /// job.ended_by_handler(ended);
    /// ```
    pub fn done_arguments(&self) -> (i64, i32) {
        (self.id, i32::try_from(self.attempt).unwrap_or(i32::MAX))
    }

    /// Tells the runner what `job_queue_done` said in the handler's
    /// committed write. True: the job is done and gone, and the runner
    /// writes nothing more for it when the handler returns `Ok`. False: this
    /// attempt no longer owned it (its lease expired and another worker
    /// claimed it), which the runner reports as it would for its own
    /// settle. A handler that returns an error after this is settled as
    /// usual: a retry whose update finds nothing once the job is gone.
    pub fn ended_by_handler(&self, ended: bool) {
        self.ended.store(ended, Ordering::Release);
    }

    /// Whether the handler ended the job itself.
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// The payload as the type it was enqueued from. A payload that does not
    /// decode will not decode on retry either: the error is permanent.
    pub fn payload<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        T::deserialize(&self.payload).map_err(|error| {
            JobError::permanent(anyhow::Error::new(error).context(format!(
                "payload of {} job {} does not decode",
                self.kind, self.id
            )))
        })
    }
}

/// Why a job failed, which decides between retrying and giving up.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later: a provider timing out, a lock timeout.
    #[error("transient failure: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help: the provider refused the request for good.
    #[error("permanent failure: {0:#}")]
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn transient(error: impl Into<anyhow::Error>) -> Self {
        JobError::Transient(error.into())
    }

    pub fn permanent(error: impl Into<anyhow::Error>) -> Self {
        JobError::Permanent(error.into())
    }
}

impl From<sqlx::Error> for JobError {
    /// Integrity violations (SQLSTATE class 23) will fail again on retry;
    /// everything else from the database may pass next time.
    fn from(error: sqlx::Error) -> Self {
        let integrity = matches!(&error, sqlx::Error::Database(db)
            if db.code().is_some_and(|code| code.starts_with("23")));
        if integrity {
            JobError::Permanent(error.into())
        } else {
            JobError::Transient(error.into())
        }
    }
}

/// What a handler or periodic task may use: the service's pool and the
/// runner's clock.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub pool: PgPool,
    pub clock: Arc<dyn Clock>,
}

impl JobContext {
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// Runs the jobs of one kind, outside any transaction.
///
/// Delivery is at least once: a worker that dies after the effect but before
/// the job is marked done runs it again elsewhere once its lease expires, so
/// a handler passes an idempotency key derived from the job (or its payload's
/// business ids) to whatever it calls.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError>;
}

/// Work a service does every `interval`, once across all its replicas.
///
/// A tick is not retried: a failed one is logged, counted, and the task runs
/// again at the next interval. A tick that outlasts its interval may overlap
/// the next one on another replica, so ticks are short and idempotent (an
/// expiry sweep, a re-drive query).
#[async_trait]
pub trait Periodic: Send + Sync + 'static {
    /// Unique in the service; names the schedule row. `job_queue.` is taken.
    fn name(&self) -> &'static str;

    fn interval(&self) -> std::time::Duration;

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()>;
}
