//! The messaging tables, created inside the schema of the service that uses
//! them (the connection's `search_path`).
//!
//! They belong to this crate rather than to each service's migrations so the
//! outbox and inbox have one definition; the statements are idempotent and
//! run under an advisory lock so that instances starting together do not race.

use sqlx::PgPool;

const DDL: &[&str] = &[
    r#"CREATE TABLE IF NOT EXISTS messaging_outbox (
        id            BIGSERIAL PRIMARY KEY,
        event_id      UUID NOT NULL UNIQUE,
        topic         TEXT NOT NULL,
        partition_key TEXT NOT NULL,
        event_type    TEXT NOT NULL,
        payload       BYTEA NOT NULL,
        traceparent   TEXT,
        created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
        published_at  TIMESTAMPTZ,
        attempts      INT NOT NULL DEFAULT 0,
        last_error    TEXT
    )"#,
    r#"CREATE INDEX IF NOT EXISTS messaging_outbox_pending
        ON messaging_outbox (id) WHERE published_at IS NULL"#,
    // One row per (consumer group, event): two consumer groups of one service
    // each handle an event once.
    r#"CREATE TABLE IF NOT EXISTS messaging_inbox (
        consumer    TEXT NOT NULL,
        event_id    UUID NOT NULL,
        topic       TEXT NOT NULL,
        event_type  TEXT NOT NULL,
        handled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )"#,
];

/// Creates the outbox and inbox tables in the connection's schema.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.messaging_schema'))")
        .execute(&mut *tx)
        .await?;
    for statement in DDL {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// The `NOTIFY` channel on which commits that wrote outbox rows wake the relay.
/// Every service shares one database, so the channel is named by schema.
pub(crate) const NOTIFY_CHANNEL_SQL: &str = "'messaging_outbox_' || current_schema()";

/// How long published outbox rows are kept (for an operator looking back).
pub const OUTBOX_RETENTION_DAYS: i32 = 7;
/// How long the inbox remembers a handled event. Longer than the broker keeps
/// messages (Kafka's default is 7 days), so any redelivery is still caught.
pub const INBOX_RETENTION_DAYS: i32 = 14;

/// Deletes published outbox rows and inbox records past their retention.
/// Returns how many rows of each went.
pub async fn prune(pool: &PgPool) -> Result<(u64, u64), sqlx::Error> {
    let outbox = sqlx::query(
        "DELETE FROM messaging_outbox
         WHERE published_at IS NOT NULL AND published_at < now() - make_interval(days => $1)",
    )
    .bind(OUTBOX_RETENTION_DAYS)
    .execute(pool)
    .await?
    .rows_affected();
    let inbox = sqlx::query(
        "DELETE FROM messaging_inbox WHERE handled_at < now() - make_interval(days => $1)",
    )
    .bind(INBOX_RETENTION_DAYS)
    .execute(pool)
    .await?
    .rows_affected();
    Ok((outbox, inbox))
}
