//! The messaging tables, created inside the schema of the service that uses
//! them (the connection's `search_path`).
//!
//! They belong to this crate rather than to each service's migrations so the
//! outbox and inbox have one definition. They are versioned steps of the
//! `messaging` component (see `schema-versions`): a change is a new step at
//! the end, never an edit of a released one. The first step says `IF NOT
//! EXISTS` because schemas made before the tables were versioned already
//! have them.

use schema_versions::ComponentSchema;
use sqlx::PgPool;

static SCHEMA: ComponentSchema = ComponentSchema {
    component: "messaging",
    steps: &[
        r#"
        CREATE TABLE IF NOT EXISTS messaging_outbox (
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
        );
        CREATE INDEX IF NOT EXISTS messaging_outbox_pending
            ON messaging_outbox (id) WHERE published_at IS NULL;
        -- One row per (consumer group, event): two consumer groups of one
        -- service each handle an event once.
        CREATE TABLE IF NOT EXISTS messaging_inbox (
            consumer    TEXT NOT NULL,
            event_id    UUID NOT NULL,
            topic       TEXT NOT NULL,
            event_type  TEXT NOT NULL,
            handled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        );
    "#,
        // A published row moves from the outbox to the record of sent rows
        // as soon as the broker has it, so the outbox holds only rows still
        // to publish and the relay's look costs the same however many went
        // before. A published row kept in the outbox left a dead entry in
        // the index of pending rows until the next vacuum, which on a table
        // holding a week of rows comes rarely, and every look read them all.
        // The record keeps what an operator asks (which event went when,
        // after how many attempts); the topic keeps the payload.
        r#"
        CREATE TABLE messaging_outbox_sent (
            id            BIGINT PRIMARY KEY,
            event_id      UUID NOT NULL,
            topic         TEXT NOT NULL,
            partition_key TEXT NOT NULL,
            event_type    TEXT NOT NULL,
            created_at    TIMESTAMPTZ NOT NULL,
            published_at  TIMESTAMPTZ NOT NULL,
            attempts      INT NOT NULL
        );
        -- Rows arrive in publishing order: a block range index serves the
        -- hourly prune at almost no cost to each insert.
        CREATE INDEX messaging_outbox_sent_published
            ON messaging_outbox_sent USING brin (published_at);
        INSERT INTO messaging_outbox_sent (id, event_id, topic, partition_key, event_type,
                                           created_at, published_at, attempts)
            SELECT id, event_id, topic, partition_key, event_type, created_at, published_at, attempts
            FROM messaging_outbox WHERE published_at IS NOT NULL;
        DELETE FROM messaging_outbox WHERE published_at IS NOT NULL;
        DROP INDEX messaging_outbox_pending;
        ALTER TABLE messaging_outbox DROP COLUMN published_at;
    "#,
        // A relay's round in two statements: one takes the turn and reads
        // the rows to publish, one moves the delivered rows to the record of
        // sent rows, commits and gives the turn up. The function reads the
        // rows by a query of its own, whose snapshot is taken after the
        // turn: rows the relay before moved and committed are gone. The
        // procedure commits before it gives the turn up, so the next relay
        // reads none of the rows it moved. See `relay.rs`.
        r#"
        CREATE FUNCTION messaging_outbox_take(batch integer)
        RETURNS TABLE (turn boolean, id bigint, topic text, partition_key text,
                       event_type text, payload bytea, traceparent text)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            -- Nothing pending: no turn is tried.
            IF NOT EXISTS (SELECT FROM messaging_outbox) THEN
                RETURN;
            END IF;
            -- Never waited for: a relay in its turn may wait on an absent
            -- broker for long.
            IF NOT pg_try_advisory_lock(hashtext(current_schema() || '.messaging_relay')) THEN
                RETURN QUERY SELECT false, NULL::bigint, NULL::text, NULL::text, NULL::text,
                                    NULL::bytea, NULL::text;
                RETURN;
            END IF;
            RETURN QUERY SELECT true, pending.id, pending.topic, pending.partition_key,
                                pending.event_type, pending.payload, pending.traceparent
                FROM messaging_outbox pending ORDER BY pending.id LIMIT batch;
            IF NOT FOUND THEN
                -- Published by the relay whose turn just ended.
                PERFORM pg_advisory_unlock_all();
            END IF;
        END $$;

        CREATE PROCEDURE messaging_outbox_mark_sent(delivered bigint[], failed bigint, failure text)
        LANGUAGE plpgsql AS $$
        BEGIN
            -- clock_timestamp(), not now(): when the broker had the rows.
            WITH sent AS (
                DELETE FROM messaging_outbox WHERE messaging_outbox.id = ANY(delivered)
                RETURNING messaging_outbox.id, event_id, topic, partition_key, event_type,
                          created_at, attempts
            ), recorded AS (
                INSERT INTO messaging_outbox_sent (id, event_id, topic, partition_key,
                    event_type, created_at, published_at, attempts)
                SELECT sent.id, event_id, topic, partition_key, event_type, created_at,
                       clock_timestamp(), attempts + 1
                FROM sent
            )
            UPDATE messaging_outbox SET attempts = attempts + 1, last_error = failure
                WHERE messaging_outbox.id = failed;
            COMMIT;
            PERFORM pg_advisory_unlock_all();
        END $$;
    "#,
    ],
};

/// Creates (or brings up to date) the outbox and inbox tables in the
/// connection's schema.
pub async fn install(pool: &PgPool) -> Result<(), sqlx::Error> {
    schema_versions::apply(pool, &SCHEMA).await.map(|_| ())
}

/// How long the record of sent outbox rows is kept (for an operator looking
/// back).
pub const OUTBOX_RETENTION_DAYS: i32 = 7;
/// How long the inbox remembers a handled event. Longer than the broker keeps
/// messages (Kafka's default is 7 days), so any redelivery is still caught.
pub const INBOX_RETENTION_DAYS: i32 = 14;

/// Deletes the record of sent outbox rows and inbox records past their
/// retention. Returns how many rows of each went.
pub async fn prune(pool: &PgPool) -> Result<(u64, u64), sqlx::Error> {
    let sent = sqlx::query(
        "DELETE FROM messaging_outbox_sent WHERE published_at < now() - make_interval(days => $1)",
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
    Ok((sent, inbox))
}
