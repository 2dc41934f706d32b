//! The job tables, created inside the schema of the service that uses them
//! (the connection's `search_path`), and their retention.

use std::time::Duration;

use schema_versions::ComponentSchema;
use sqlx::PgPool;
use time::OffsetDateTime;

/// Released steps never change; a change is a new step at the end.
static SCHEMA: ComponentSchema = ComponentSchema {
    component: "jobs",
    steps: &[r#"
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
    "#],
};

/// Creates or upgrades the job tables in the connection's schema. Call it at
/// start-up, before anything enqueues.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    schema_versions::apply(pool, &SCHEMA).await.map(|_| ())
}

/// How long finished jobs stay in the table for an operator to look back.
///
/// A dedupe key is remembered only as long as its job is kept, so `done`
/// should outlast any redelivery of the event that enqueued it (Kafka keeps
/// messages 7 days by default).
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub done: Duration,
    pub failed: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Retention {
            done: 14 * DAY,
            failed: 30 * DAY,
        }
    }
}

/// Deletes finished jobs older than `retention` at `now`. Returns how many
/// went. The runner calls it periodically; it is public for tools.
#[tracing::instrument(skip(pool))]
pub async fn prune(
    pool: &PgPool,
    now: OffsetDateTime,
    retention: Retention,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query(
        "DELETE FROM job_queue
         WHERE (state = 'done' AND finished_at < $1)
            OR (state = 'failed' AND finished_at < $2)",
    )
    .bind(now - retention.done)
    .bind(now - retention.failed)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted)
}
