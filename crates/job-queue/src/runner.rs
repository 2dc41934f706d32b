//! The runner: claims due jobs, runs each outside any transaction, settles
//! it, and runs the periodic tasks whose turn it is.
//!
//! It sleeps until a job is enqueued in its process ([`crate::JOBS`]; it then
//! looks every millisecond or so until the enqueuing transaction has
//! committed), one of its jobs finishes, or the earliest job or tick it
//! knows of falls due; a fallback poll every second covers jobs that other
//! processes enqueued, rescheduled or handed back.
//!
//! A claim marks the job running under a lease and counts the attempt, in a
//! transaction that lasts one statement (`FOR UPDATE SKIP LOCKED`, so
//! replicas never wait on or take each other's jobs). While the handler runs
//! the runner renews the lease; a worker that dies stops renewing it, and the
//! job is claimed again once it expires. Trade-off, named: a handler that
//! stalls without dying keeps its lease as long as its process lives.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures::FutureExt;
use rand::Rng;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::job::{Job, JobContext, JobError, JobHandler, Periodic};
use crate::metrics::JobMetrics;
use crate::schema::{self, Retention};
use crate::store::{self, Settlement, Tick};

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Jobs one runner runs at once.
    pub concurrency: usize,
    /// Attempts in all, the first included, before a job is marked failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubles with each further attempt.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a claimed job is reserved for its worker without a renewal.
    /// A job whose worker died runs again this long after it last renewed.
    pub lease: Duration,
    /// How often the runner looks without being told: jobs of other
    /// processes, or committed after [`write_signal::SETTLE`]. Not how jobs
    /// normally start.
    pub fallback_poll: Duration,
    /// How long shutdown waits for running jobs before interrupting them.
    pub shutdown_grace: Duration,
    /// How often the queue gauges are read from the table.
    pub gauges_every: Duration,
    pub retention: Retention,
    /// How often failed jobs and dedupe keys past their retention are deleted.
    pub prune_every: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            concurrency: 8,
            max_attempts: 10,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            lease: Duration::from_secs(300),
            fallback_poll: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(20),
            gauges_every: Duration::from_secs(10),
            retention: Retention::default(),
            prune_every: Duration::from_secs(3600),
        }
    }
}

/// What `run` refuses before it starts.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("two handlers are registered for job kind {0:?}")]
    DuplicateKind(&'static str),
    #[error("two periodic tasks are named {0:?}")]
    DuplicatePeriodic(&'static str),
    #[error("periodic task name {0:?} is reserved (prefix `job_queue.`)")]
    ReservedName(&'static str),
    #[error("job runner concurrency must be at least 1")]
    NoConcurrency,
    #[error("job lease must be longer than zero")]
    NoLease,
}

/// Wakes a runner at once, as a commit does; for a test that moved a
/// [`crate::ManualClock`]. A nudge while the runner is busy is kept for its
/// next wait.
#[derive(Debug, Clone)]
pub struct Nudge(Arc<Notify>);

impl Nudge {
    pub fn nudge(&self) {
        self.0.notify_one();
    }
}

pub struct JobRunner {
    pool: PgPool,
    config: JobConfig,
    metrics: JobMetrics,
    clock: Arc<dyn Clock>,
    handlers: Vec<Arc<dyn JobHandler>>,
    periodic: Vec<Arc<dyn Periodic>>,
    nudge: Arc<Notify>,
}

/// What every job task shares with the loop.
struct Shared {
    config: JobConfig,
    metrics: JobMetrics,
    ctx: JobContext,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    /// Cancelled when the shutdown grace is over: running jobs stop and are
    /// handed back to the queue.
    interrupt: CancellationToken,
}

/// A periodic task and what this runner knows of its schedule.
struct Schedule {
    task: Arc<dyn Periodic>,
    next: OffsetDateTime,
    ticking: bool,
}

impl JobRunner {
    pub fn new(pool: PgPool, config: JobConfig, metrics: JobMetrics) -> Self {
        JobRunner {
            pool,
            config,
            metrics,
            clock: Arc::new(SystemClock),
            handlers: Vec::new(),
            periodic: Vec::new(),
            nudge: Arc::new(Notify::new()),
        }
    }

    /// Runs the jobs of `handler.kind()`. A second handler for one kind makes
    /// `run` fail rather than replace the first.
    pub fn on(mut self, handler: impl JobHandler) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Runs `task` every `task.interval()`, once across the replicas.
    pub fn every(mut self, task: impl Periodic) -> Self {
        self.periodic.push(Arc::new(task));
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn nudge_handle(&self) -> Nudge {
        Nudge(Arc::clone(&self.nudge))
    }

    /// Runs jobs and periodic tasks until `shutdown` is cancelled; then claims
    /// nothing more, lets running jobs finish within `shutdown_grace` and
    /// hands the rest back to the queue. Fails at once on a registration
    /// mistake (see [`StartError`]), or when the tables are missing
    /// ([`crate::install`] runs first, at start-up).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.check()?;
        let JobRunner {
            pool,
            config,
            metrics,
            clock,
            handlers,
            mut periodic,
            nudge,
        } = self;
        periodic.push(Arc::new(PruneTraces {
            retention: config.retention,
            every: config.prune_every,
        }));
        let handlers: HashMap<_, _> = handlers.into_iter().map(|h| (h.kind(), h)).collect();
        let kinds: Vec<&'static str> = handlers.keys().copied().collect();
        let mut schedules = Vec::with_capacity(periodic.len());
        for task in periodic {
            let next = store::register_schedule(&pool, task.name(), clock.now())
                .await
                .with_context(|| {
                    format!(
                        "failed to register periodic task {} (are the job tables installed?)",
                        task.name()
                    )
                })?;
            schedules.push(Schedule {
                task,
                next,
                ticking: false,
            });
        }
        let shared = Arc::new(Shared {
            config,
            metrics,
            ctx: JobContext { pool, clock },
            handlers,
            interrupt: CancellationToken::new(),
        });
        tracing::info!(kinds = ?kinds, periodic = schedules.len(), "job runner started");

        let mut looping = Loop {
            shared: Arc::clone(&shared),
            kinds,
            schedules,
            jobs: JoinSet::new(),
            ticks: JoinSet::new(),
            gauges_read: None,
        };
        looping.run(&shutdown, &nudge).await;
        looping.drain().await;
        Ok(())
    }

    fn check(&self) -> Result<(), StartError> {
        if self.config.concurrency == 0 {
            return Err(StartError::NoConcurrency);
        }
        if self.config.lease.is_zero() {
            return Err(StartError::NoLease);
        }
        let mut kinds = HashSet::new();
        for handler in &self.handlers {
            if !kinds.insert(handler.kind()) {
                return Err(StartError::DuplicateKind(handler.kind()));
            }
        }
        let mut names = HashSet::new();
        for task in &self.periodic {
            if task.name().starts_with("job_queue.") {
                return Err(StartError::ReservedName(task.name()));
            }
            if !names.insert(task.name()) {
                return Err(StartError::DuplicatePeriodic(task.name()));
            }
        }
        Ok(())
    }
}

/// The state of a running runner's loop.
struct Loop {
    shared: Arc<Shared>,
    kinds: Vec<&'static str>,
    schedules: Vec<Schedule>,
    jobs: JoinSet<bool>,
    /// Each tick task returns the index of its schedule.
    ticks: JoinSet<usize>,
    gauges_read: Option<tokio::time::Instant>,
}

impl Loop {
    async fn run(&mut self, shutdown: &CancellationToken, nudge: &Notify) {
        let longest_backoff = self.shared.config.fallback_poll;
        let mut announcements = crate::JOBS.subscribe();
        let mut looks = write_signal::Looks::default();
        let mut backoff = Duration::from_millis(50);
        loop {
            let wait = match self.round().await {
                Ok((wait, claimed)) => {
                    backoff = Duration::from_millis(50);
                    if claimed > 0 {
                        looks.found();
                    }
                    // Announced jobs not found yet: look again soon.
                    if self.kinds.is_empty() {
                        wait
                    } else {
                        looks.pause(wait)
                    }
                }
                Err(error) => {
                    tracing::warn!(error = ?error, retry_in = ?backoff, "job runner round failed");
                    let wait = backoff;
                    backoff = (backoff * 2).min(longest_backoff);
                    wait
                }
            };
            // A job that ended for good asks for a round only when every
            // slot was taken (one is free now); else the round would find
            // what the last one found. A retry is due later: look again.
            let full = self.jobs.len() >= self.shared.config.concurrency;
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    Some(joined) = self.jobs.join_next() => match joined {
                        Ok(true) if !full => continue,
                        Ok(_) => {}
                        Err(error) => tracing::error!(error = ?error, "job task ended abnormally"),
                    },
                    Some(joined) = self.ticks.join_next() => match joined {
                        Ok(index) => self.schedules[index].ticking = false,
                        Err(error) => tracing::error!(error = ?error, "periodic task ended abnormally"),
                    },
                    // Several jobs announced meanwhile need one round.
                    changed = announcements.changed() => {
                        if changed.is_ok() {
                            looks.announced();
                        }
                    }
                    () = nudge.notified() => {}
                    () = tokio::time::sleep_until(deadline) => {}
                }
                break;
            }
        }
    }

    /// Claims what is due, starts due ticks, refreshes the gauges. Returns how
    /// long the loop may sleep if nothing wakes it, and how many jobs it
    /// claimed.
    async fn round(&mut self) -> anyhow::Result<(Duration, usize)> {
        let shared = &self.shared;
        let pool = &shared.ctx.pool;
        let config = &shared.config;
        let now = shared.ctx.now();
        let mut wait = config.fallback_poll;
        let mut claimed_jobs = 0;

        let free = config.concurrency.saturating_sub(self.jobs.len());
        if !self.kinds.is_empty() && free > 0 {
            let claimed = store::claim(pool, &self.kinds, free, now, config.lease)
                .await
                .context("failed to claim jobs")?;
            let full = claimed.jobs.len() == free;
            claimed_jobs = claimed.jobs.len();
            for job in claimed.jobs {
                self.jobs.spawn(execute(Arc::clone(shared), job));
            }
            // When every slot is taken, the next finished job wakes the loop.
            if let Some(due) = claimed.next_due.filter(|_| !full) {
                wait = wait.min(until(due, now));
            }
        }

        for (index, schedule) in self.schedules.iter_mut().enumerate() {
            if schedule.ticking {
                continue;
            }
            if schedule.next <= now {
                let name = schedule.task.name();
                match store::claim_tick(pool, name, now, schedule.task.interval())
                    .await
                    .with_context(|| format!("failed to claim a tick of {name}"))?
                {
                    Tick::Claimed { next } => {
                        schedule.next = next;
                        schedule.ticking = true;
                        let task = Arc::clone(&schedule.task);
                        self.ticks
                            .spawn(tick(Arc::clone(shared), task, now).map(move |()| index));
                        continue;
                    }
                    Tick::NotDue { next } => schedule.next = next,
                }
            }
            wait = wait.min(until(schedule.next, now));
        }

        if self
            .gauges_read
            .is_none_or(|read| read.elapsed() >= config.gauges_every)
        {
            self.gauges_read = Some(tokio::time::Instant::now());
            read_gauges(shared, now).await?;
        }
        // A due job another runner is still claiming would spin the loop.
        Ok((wait.max(Duration::from_millis(2)), claimed_jobs))
    }

    /// Lets running jobs and ticks finish within the grace, then interrupts
    /// the jobs still running, which hand themselves back to the queue.
    async fn drain(&mut self) {
        let grace = self.shared.config.shutdown_grace;
        let finished = async {
            while self.jobs.join_next().await.is_some() {}
            while self.ticks.join_next().await.is_some() {}
        };
        if tokio::time::timeout(grace, finished).await.is_ok() {
            tracing::info!("job runner stopped");
            return;
        }
        tracing::warn!(
            jobs = self.jobs.len(),
            ticks = self.ticks.len(),
            "jobs still running after the shutdown grace; interrupting them"
        );
        self.shared.interrupt.cancel();
        let handed_back = async { while self.jobs.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), handed_back)
            .await
            .is_err()
        {
            tracing::warn!("jobs not handed back in time; they run again after their lease");
        }
        self.jobs.abort_all();
        self.ticks.abort_all();
    }
}

/// How long from `now` until `at`; zero if it has passed.
fn until(at: OffsetDateTime, now: OffsetDateTime) -> Duration {
    Duration::try_from(at - now).unwrap_or(Duration::ZERO)
}

async fn read_gauges(shared: &Shared, now: OffsetDateTime) -> anyhow::Result<()> {
    let state = store::queue_state(&shared.ctx.pool, now)
        .await
        .context("failed to read the queue gauges")?;
    let metrics = &shared.metrics;
    metrics.pending.set(state.pending);
    // Whole seconds are what an alert needs.
    metrics
        .oldest_pending_age_seconds
        .set(state.oldest_due_age as i64);
    metrics.failed_jobs.reset();
    for (kind, count) in state.failed {
        metrics.failed_jobs.with_label_values(&[&kind]).set(count);
    }
    Ok(())
}

/// Runs one claimed job and records how it ended. True when it ended for good
/// (done, or failed with no attempts left): nothing of it is due later.
#[tracing::instrument(skip_all, fields(job_id = job.id, kind = %job.kind, attempt = job.attempt))]
async fn execute(shared: Arc<Shared>, job: Job) -> bool {
    let config = &shared.config;
    let result = if job.attempt > config.max_attempts {
        // The last allowed attempt never settled: its worker died mid-job.
        Err(JobError::permanent(anyhow::anyhow!(
            "gave up after {} attempts; the last one's worker stopped before finishing",
            config.max_attempts
        )))
    } else if let Some(handler) = shared.handlers.get(job.kind.as_str()) {
        let run = AssertUnwindSafe(handler.run(&shared.ctx, &job)).catch_unwind();
        tokio::select! {
            result = run => result.unwrap_or_else(|panic| {
                Err(JobError::transient(anyhow::anyhow!("handler panicked: {}", panic_message(&panic))))
            }),
            never = keep_lease(&shared, &job) => match never {},
            () = shared.interrupt.cancelled() => {
                hand_back(&shared, &job).await;
                return false;
            }
        }
    } else {
        // Claims ask only for registered kinds.
        Err(JobError::transient(anyhow::anyhow!(
            "no handler for kind {}",
            job.kind
        )))
    };

    let now = shared.ctx.now();
    let settlement = match result {
        Ok(()) => Settlement::Done,
        Err(JobError::Transient(error)) if job.attempt < config.max_attempts => {
            Settlement::RetryAt(now + backoff(config, job.attempt), format!("{error:#}"))
        }
        Err(JobError::Transient(error) | JobError::Permanent(error)) => {
            Settlement::Failed(format!("{error:#}"))
        }
    };
    // A handler that ended its job in its own commit left nothing to write.
    let ended_by_handler = matches!(settlement, Settlement::Done) && job.ended();
    let settled = if ended_by_handler {
        Ok(true)
    } else {
        settle_with_retries(&shared.ctx.pool, &job, &settlement, now).await
    };
    match settled {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                "job was claimed again after its lease expired; its outcome here is dropped"
            );
            return false;
        }
        Err(error) => {
            tracing::error!(error = ?error, "failed to record the job's outcome; it runs again after its lease");
            return false;
        }
    }
    let kind = [job.kind.as_str()];
    match settlement {
        Settlement::Done => {
            shared.metrics.completed.with_label_values(&kind).inc();
            true
        }
        Settlement::RetryAt(at, error) => {
            shared.metrics.retried.with_label_values(&kind).inc();
            tracing::warn!(error = %error, retry_at = %at, "job failed; retrying later");
            false
        }
        Settlement::Failed(error) => {
            shared.metrics.failed.with_label_values(&kind).inc();
            tracing::error!(error = %error, "job failed for good");
            true
        }
        Settlement::HandedBack => false,
    }
}

/// Returns a job interrupted by shutdown to the queue, due at once and
/// without counting the attempt, so another replica takes it now rather
/// than after the lease.
async fn hand_back(shared: &Shared, job: &Job) {
    let now = shared.ctx.now();
    match store::settle(&shared.ctx.pool, job, &Settlement::HandedBack, now).await {
        Ok(_) => tracing::info!("job interrupted by shutdown and handed back"),
        Err(error) => {
            tracing::warn!(error = ?error, "failed to hand back an interrupted job; it runs again after its lease");
        }
    }
}

/// A settle lost to a brief database hiccup would run the job again after its
/// lease; a few quick tries are cheaper.
async fn settle_with_retries(
    pool: &PgPool,
    job: &Job,
    settlement: &Settlement,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let mut pause = Duration::from_millis(100);
    for _ in 1..3 {
        match store::settle(pool, job, settlement, now).await {
            Err(error) => {
                tracing::warn!(error = ?error, "failed to settle job; trying again");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            settled => return settled,
        }
    }
    store::settle(pool, job, settlement, now).await
}

/// Renews the job's lease while its handler runs; never returns.
async fn keep_lease(shared: &Shared, job: &Job) -> Infallible {
    let lease = shared.config.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        match store::extend_lease(&shared.ctx.pool, job, shared.ctx.now() + lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("job's lease was lost; another worker may run it too");
                return std::future::pending().await;
            }
            Err(error) => tracing::warn!(error = ?error, "failed to renew the job's lease"),
        }
    }
}

/// Exponential, with equal jitter: half of the wait is fixed, so waits grow
/// with each attempt; half is random, so jobs that failed together do not
/// all retry together.
fn backoff(config: &JobConfig, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let full = config
        .base_backoff
        .saturating_mul(1u32 << doublings)
        .min(config.max_backoff);
    let half = full / 2;
    let jitter = rand::rng().random_range(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX));
    half + Duration::from_nanos(jitter)
}

#[tracing::instrument(skip_all, fields(task = task.name()))]
async fn tick(shared: Arc<Shared>, task: Arc<dyn Periodic>, now: OffsetDateTime) {
    let name = [task.name()];
    shared.metrics.ticks.with_label_values(&name).inc();
    let result = AssertUnwindSafe(task.tick(&shared.ctx, now))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(anyhow::anyhow!("panicked: {}", panic_message(&panic))));
    if let Err(error) = result {
        shared.metrics.tick_failures.with_label_values(&name).inc();
        tracing::error!(error = ?error, "periodic task failed; it runs again next interval");
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Deletes failed jobs and dedupe keys past their retention, on one replica
/// per interval.
struct PruneTraces {
    retention: Retention,
    every: Duration,
}

#[async_trait]
impl Periodic for PruneTraces {
    fn name(&self) -> &'static str {
        "job_queue.prune"
    }

    fn interval(&self) -> Duration {
        self.every
    }

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        let pruned = schema::prune(&ctx.pool, now, self.retention)
            .await
            .context("failed to prune failed jobs and dedupe keys")?;
        if pruned.failed_jobs > 0 || pruned.keys > 0 {
            tracing::info!(
                failed_jobs = pruned.failed_jobs,
                keys = pruned.keys,
                "pruned failed jobs and dedupe keys past their retention"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_each_attempt_and_stops_at_the_maximum() {
        let config = JobConfig {
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..JobConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&config, 1);
            let third = backoff(&config, 3);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(backoff(&config, 40) <= Duration::from_millis(1000));
            assert!(backoff(&config, 40) >= Duration::from_millis(500));
        }
    }
}
