//! The transactional outbox: an event is written in the same database
//! transaction as the state change it describes, never published directly.

use shared_events::{Envelope, EventFamily};
use sqlx::PgConnection;

use trace_context::TraceParent;

const ENQUEUE_SQL: &str = "INSERT INTO messaging_outbox
     (event_id, topic, partition_key, event_type, payload, traceparent)
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Adds `envelope` to the outbox inside the caller's transaction (pass
/// `&mut *tx`). The relay of this process is told at once and finds the
/// row when, and only if, that transaction commits (see [`crate::wake`]).
#[tracing::instrument(skip_all, fields(event_id = %envelope.event_id, event_type = envelope.event_type()))]
pub async fn enqueue<E: EventFamily>(
    conn: &mut PgConnection,
    envelope: &Envelope<E>,
) -> Result<(), sqlx::Error> {
    let payload = envelope
        .to_json()
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let traceparent = TraceParent::current_or_new().to_string();
    sqlx::query(ENQUEUE_SQL)
        .bind(envelope.event_id)
        .bind(E::TOPIC.name())
        .bind(envelope.partition_key())
        .bind(envelope.event_type())
        .bind(payload)
        .bind(traceparent)
        .execute(&mut *conn)
        .await?;
    crate::wake::OUTBOX.written();
    Ok(())
}
