//! The job tables, created inside the schema of the service that uses them
//! (the connection's `search_path`), and their retention.

use std::time::Duration;

use schema_versions::ComponentSchema;
use sqlx::PgPool;
use time::OffsetDateTime;

/// Released steps never change; a change is a new step at the end.
static SCHEMA: ComponentSchema = ComponentSchema {
    component: "jobs",
    steps: &[
        r#"
        CREATE TABLE job_queue (
            id           BIGSERIAL PRIMARY KEY,
            kind         TEXT NOT NULL,
            payload      JSONB NOT NULL,
            -- Unique per kind: enqueueing the same key again adds nothing.
            dedupe_key   TEXT,
            state        TEXT NOT NULL DEFAULT 'pending',
            -- NULL: as soon as possible. Compared with the runner's clock,
            -- never with the database's, so tests can move time.
            run_at       TIMESTAMPTZ,
            attempts     INT NOT NULL DEFAULT 0,
            -- While running: the worker's lease; past it, another may claim.
            locked_until TIMESTAMPTZ,
            last_error   TEXT,
            created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            finished_at  TIMESTAMPTZ,
            CONSTRAINT job_queue_dedupe UNIQUE (kind, dedupe_key),
            CONSTRAINT job_queue_state_known
                CHECK (state IN ('pending', 'running', 'done', 'failed')),
            CONSTRAINT job_queue_running_has_lease
                CHECK ((state = 'running') = (locked_until IS NOT NULL)),
            CONSTRAINT job_queue_finished_when_done_or_failed
                CHECK ((state IN ('done', 'failed')) = (finished_at IS NOT NULL))
        );
        CREATE INDEX job_queue_pending ON job_queue (id) WHERE state = 'pending';
        CREATE INDEX job_queue_leased ON job_queue (locked_until) WHERE state = 'running';
        CREATE INDEX job_queue_finished ON job_queue (finished_at) WHERE finished_at IS NOT NULL;

        -- One row per periodic task: whoever moves next_run_at forward runs it.
        CREATE TABLE job_queue_schedules (
            name            TEXT PRIMARY KEY,
            next_run_at     TIMESTAMPTZ NOT NULL,
            last_started_at TIMESTAMPTZ
        );
    "#,
        // A job that is done leaves the queue at once, so that the queue
        // holds only work still to do (and failed jobs): a claim's scan, and
        // a vacuum of the table, then cost the same after a million jobs as
        // after ten. A kept done job used to leave a dead entry in the
        // pending index on every claim until the next vacuum, which on a
        // table holding two weeks of jobs comes rarely; a claim read them all.
        //
        // Its dedupe key stays, in a table of its own that is only inserted
        // into: taken in the same statement that enqueues the job, it refuses
        // the same job for `Retention::keys`.
        r#"
        CREATE TABLE job_queue_keys (
            kind        TEXT NOT NULL,
            dedupe_key  TEXT NOT NULL,
            created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (kind, dedupe_key)
        );
        INSERT INTO job_queue_keys (kind, dedupe_key, created_at)
            SELECT kind, dedupe_key, created_at
            FROM job_queue WHERE dedupe_key IS NOT NULL;
        DELETE FROM job_queue WHERE state = 'done';
    "#,
        // A job's end as one call: the runner settles a done job with it,
        // and a handler may call it in its own last statement, so that the
        // job ends in the same commit as the work it did (see `finish`).
        r#"
        CREATE FUNCTION job_queue_done(job_id bigint, attempt integer)
        RETURNS boolean LANGUAGE sql VOLATILE AS $$
            WITH done AS (
                DELETE FROM job_queue
                WHERE id = job_id AND attempts = attempt AND state = 'running'
                RETURNING 1
            )
            SELECT EXISTS (SELECT FROM done)
        $$;
    "#,
    ],
};

/// Creates or upgrades the job tables in the connection's schema. Call it at
/// start-up, before anything enqueues.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    schema_versions::apply(pool, &SCHEMA).await.map(|_| ())
}

/// How long a job's traces are kept: its dedupe key (a done job itself
/// leaves the queue at once), and a failed job, for an operator to look at.
///
/// `keys` counts from the enqueue and should outlast any redelivery of the
/// event that enqueued the job (Kafka keeps messages 7 days by default). A
/// key whose job is still in the queue is kept however old.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub keys: Duration,
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Retention {
            keys: 14 * DAY,
            failed: 30 * DAY,
        }
    }
}

/// What one [`prune`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub failed_jobs: u64,
    pub keys: u64,
}

/// Deletes failed jobs and dedupe keys older than `retention` at `now`. A
/// key whose job is still in the queue stays (the statement sees the queue
/// as it was before it, so the key of a failed job deleted now goes at the
/// next prune). The runner calls it periodically; it is public for tools.
#[tracing::instrument(skip(pool))]
pub async fn prune(
    pool: &PgPool,
    now: OffsetDateTime,
    retention: Retention,
) -> Result<Pruned, sqlx::Error> {
    let (failed_jobs, keys): (i64, i64) = sqlx::query_as(
        "WITH failed AS (
             DELETE FROM job_queue WHERE state = 'failed' AND finished_at < $2
             RETURNING 1
         ), keys AS (
             DELETE FROM job_queue_keys AS k WHERE created_at < $1
               AND NOT EXISTS (SELECT FROM job_queue AS j
                               WHERE j.kind = k.kind AND j.dedupe_key = k.dedupe_key)
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM failed), (SELECT count(*) FROM keys)",
    )
    .bind(now - retention.keys)
    .bind(now - retention.failed)
    .fetch_one(pool)
    .await?;
    Ok(Pruned {
        failed_jobs: u64::try_from(failed_jobs).unwrap_or(0),
        keys: u64::try_from(keys).unwrap_or(0),
    })
}
