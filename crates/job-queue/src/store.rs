//! The queries of the queue: enqueue inside the caller's transaction, and the
//! short statements a runner uses to claim, lease and settle jobs and to
//! claim periodic ticks.
//!
//! A settling update names the attempt it settles (`attempts = $n`): a worker
//! that lost its lease, and whose job was claimed again, cannot overwrite
//! what the newer attempt records.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;

use crate::job::{Job, NewJob};
use crate::JOBS;

/// The dedupe key is taken first, in the same statement: a second enqueue
/// of the key waits for the first one's transaction, then finds the key
/// taken (or free, if that transaction rolled back). The key outlives its
/// job, which leaves the queue when done.
const ENQUEUE_SQL: &str = "WITH key AS (
         INSERT INTO job_queue_keys (kind, dedupe_key)
         SELECT $1, $3 WHERE $3::text IS NOT NULL
         ON CONFLICT DO NOTHING
         RETURNING 1
     )
     INSERT INTO job_queue (kind, payload, dedupe_key, run_at)
     SELECT $1, $2, $3, $4 WHERE $3::text IS NULL OR EXISTS (SELECT FROM key)
     RETURNING id";

/// Writes `job` inside the caller's transaction (pass `&mut *tx`). The
/// runner of this process is told at once and finds the job when, and only
/// if, that transaction commits ([`JOBS`]). Returns the job's id, or `None`
/// when a job of this kind with the same dedupe key was enqueued before
/// (within [`crate::Retention::keys`], or still in the queue).
#[tracing::instrument(skip_all, fields(kind = job.kind, dedupe_key = job.dedupe_key.as_deref()))]
pub async fn enqueue(conn: &mut PgConnection, job: NewJob) -> Result<Option<i64>, sqlx::Error> {
    let id = sqlx::query(ENQUEUE_SQL)
        .bind(job.kind)
        .bind(&job.payload)
        .bind(job.dedupe_key.as_deref())
        .bind(job.run_at)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.get::<i64, _>("id"));
    if id.is_some() {
        JOBS.written();
    }
    Ok(id)
}

const HAND_BACK_SQL: &str = "UPDATE job_queue
     SET state = 'pending', locked_until = NULL, attempts = attempts - 1
     WHERE id = $1 AND attempts = $2 AND state = 'running'";

/// What one claim took, and when the runner should look again.
#[derive(Debug)]
pub(crate) struct Claimed {
    /// The jobs now running under this runner's lease, oldest first.
    pub jobs: Vec<Job>,
    /// When the next of the kinds' jobs falls due that this claim did not
    /// take: the earliest later `run_at` of a pending job, or lease end of a
    /// running one. A job due now that another runner holds locked is that
    /// runner's, and is not counted.
    pub next_due: Option<OffsetDateTime>,
}

/// Claims up to `limit` due jobs of `kinds` in one short statement: pending
/// ones whose time has come, and running ones whose worker's lease expired.
/// The same statement reads when the next job falls due, so a runner's round
/// costs the database one statement, not two.
#[tracing::instrument(skip_all, level = "debug", fields(limit))]
pub(crate) async fn claim(
    pool: &PgPool,
    kinds: &[&str],
    limit: usize,
    now: OffsetDateTime,
    lease: Duration,
) -> Result<Claimed, sqlx::Error> {
    // The last row carries only `next_due`. It reads the table as it was
    // before this statement's update (a statement does not see its own
    // writes), so it counts only times after `now`: the jobs claimed here
    // were due by then.
    let rows = sqlx::query(
        "WITH due AS (
             SELECT id FROM job_queue
             WHERE kind = ANY($1)
               AND ((state = 'pending' AND (run_at IS NULL OR run_at <= $3))
                 OR (state = 'running' AND locked_until <= $3))
             ORDER BY id
             LIMIT $2
             FOR UPDATE SKIP LOCKED
         ), claimed AS (
             UPDATE job_queue AS j
             SET state = 'running', attempts = j.attempts + 1, locked_until = $4
             FROM due WHERE j.id = due.id
             RETURNING j.id, j.kind, j.payload, j.attempts, j.created_at
         )
         SELECT id, kind, payload, attempts, created_at, NULL::timestamptz AS next_due
         FROM claimed
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, NULL, least(
             (SELECT min(run_at) FROM job_queue
              WHERE state = 'pending' AND kind = ANY($1) AND run_at > $3),
             (SELECT min(locked_until) FROM job_queue
              WHERE state = 'running' AND kind = ANY($1) AND locked_until > $3))",
    )
    .bind(kinds)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(now)
    .bind(now + lease)
    .fetch_all(pool)
    .await?;
    let mut claimed = Claimed {
        jobs: Vec::with_capacity(rows.len()),
        next_due: None,
    };
    for row in rows {
        match row.get::<Option<i64>, _>("id") {
            Some(id) => claimed.jobs.push(Job {
                id,
                kind: row.get("kind"),
                payload: row.get("payload"),
                attempt: u32::try_from(row.get::<i32, _>("attempts")).unwrap_or(0),
                created_at: row.get("created_at"),
                ended: Arc::default(),
            }),
            None => claimed.next_due = row.get("next_due"),
        }
    }
    // RETURNING keeps no order; run the oldest first.
    claimed.jobs.sort_by_key(|job| job.id);
    Ok(claimed)
}

/// Extends the lease of a job still running its `attempt`. False when the job
/// was claimed again or settled meanwhile.
#[tracing::instrument(skip_all, level = "debug", fields(job_id = job.id, attempt = job.attempt))]
pub(crate) async fn extend_lease(
    pool: &PgPool,
    job: &Job,
    until: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE job_queue SET locked_until = $3
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(job.id)
    .bind(attempts(job))
    .bind(until)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Settlement {
    Done,
    /// Pending again from then on, with the error that ended this attempt.
    RetryAt(OffsetDateTime, String),
    Failed(String),
    /// Interrupted by shutdown: pending at once, the attempt not counted.
    HandedBack,
}

/// Records how `job`'s attempt ended. False when the attempt no longer owns
/// the job (its lease expired and another worker claimed it).
#[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
pub(crate) async fn settle(
    pool: &PgPool,
    job: &Job,
    settlement: &Settlement,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    let query = match settlement {
        // Done work leaves the queue; its dedupe key stays (`job_queue_keys`).
        Settlement::Done => {
            return done(pool, job).await;
        }
        Settlement::RetryAt(at, error) => sqlx::query(
            "UPDATE job_queue
             SET state = 'pending', locked_until = NULL, run_at = $3, last_error = $4
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(attempts(job))
        .bind(*at)
        .bind(error.as_str()),
        Settlement::Failed(error) => sqlx::query(
            "UPDATE job_queue
             SET state = 'failed', locked_until = NULL, finished_at = $3, last_error = $4
             WHERE id = $1 AND attempts = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(attempts(job))
        .bind(now)
        .bind(error.as_str()),
        // Another replica's runner takes it at its next look (its fallback
        // poll at the latest): this one is stopping.
        Settlement::HandedBack => sqlx::query(HAND_BACK_SQL).bind(job.id).bind(attempts(job)),
    };
    Ok(query.execute(pool).await?.rows_affected() == 1)
}

fn attempts(job: &Job) -> i32 {
    job.done_arguments().1
}

/// Ends `job` as done in the caller's transaction (pass `&mut *tx`), as a
/// handler's last statement before it commits: the job leaves the queue in
/// the same commit as the handler's work, and the runner writes nothing
/// more for it. False when this attempt no longer owns the job (it was
/// claimed again after its lease expired); the runner reports that as it
/// would for its own settle. A handler that folds the end into a statement
/// of its own uses [`Job::done_arguments`] instead.
#[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
pub async fn finish(conn: &mut PgConnection, job: &Job) -> Result<bool, sqlx::Error> {
    let ended = done(&mut *conn, job).await?;
    job.ended_by_handler(ended);
    Ok(ended)
}

/// Deletes `job` if its attempt still owns it (`job_queue_done`).
async fn done<'c>(conn: impl sqlx::PgExecutor<'c>, job: &Job) -> Result<bool, sqlx::Error> {
    let (job_id, attempt) = job.done_arguments();
    sqlx::query_scalar("SELECT job_queue_done($1, $2)")
        .bind(job_id)
        .bind(attempt)
        .fetch_one(conn)
        .await
}

/// Creates the schedule row of a periodic task, due at once, unless another
/// replica (or an earlier run) made it. Returns when it is due.
#[tracing::instrument(skip(pool))]
pub(crate) async fn register_schedule(
    pool: &PgPool,
    name: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_queue_schedules (name, next_run_at) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT next_run_at FROM job_queue_schedules WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
}

/// What a claim of a periodic tick found.
#[derive(Debug)]
pub(crate) enum Tick {
    /// This runner won the tick; the next one is due then.
    Claimed { next: OffsetDateTime },
    /// Not due yet (or another replica just took it): due then.
    NotDue { next: OffsetDateTime },
}

/// Claims the tick of `name` if it is due at `now`. Competing replicas
/// serialise on the row, and the loser re-reads `next_run_at` already moved
/// forward, so each interval runs once.
#[tracing::instrument(skip(pool, interval), level = "debug")]
pub(crate) async fn claim_tick(
    pool: &PgPool,
    name: &str,
    now: OffsetDateTime,
    interval: Duration,
) -> Result<Tick, sqlx::Error> {
    let next = now + interval;
    let claimed = sqlx::query(
        "UPDATE job_queue_schedules SET next_run_at = $3, last_started_at = $2
         WHERE name = $1 AND next_run_at <= $2",
    )
    .bind(name)
    .bind(now)
    .bind(next)
    .execute(pool)
    .await?
    .rows_affected();
    if claimed == 1 {
        return Ok(Tick::Claimed { next });
    }
    let next = sqlx::query_scalar("SELECT next_run_at FROM job_queue_schedules WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await?;
    Ok(Tick::NotDue { next })
}

/// The numbers behind the queue's gauges.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub pending: i64,
    /// Seconds the longest-waiting due job has waited.
    pub oldest_due_age: f64,
    /// Failed jobs kept in the table, by kind.
    pub failed: Vec<(String, i64)>,
}

pub(crate) async fn queue_state(
    pool: &PgPool,
    now: OffsetDateTime,
) -> Result<QueueState, sqlx::Error> {
    let (pending, oldest_due_age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*),
                EXTRACT(EPOCH FROM $1 - min(coalesce(run_at, created_at))
                    FILTER (WHERE run_at IS NULL OR run_at <= $1))::float8
         FROM job_queue WHERE state = 'pending'",
    )
    .bind(now)
    .fetch_one(pool)
    .await?;
    let failed = sqlx::query_as(
        "SELECT kind, count(*) FROM job_queue WHERE state = 'failed' GROUP BY kind ORDER BY kind",
    )
    .fetch_all(pool)
    .await?;
    Ok(QueueState {
        pending,
        oldest_due_age: oldest_due_age.unwrap_or(0.0).max(0.0),
        failed,
    })
}
