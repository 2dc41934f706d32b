//! The transactional outbox: an event is written in the same database
//! transaction as the state change it describes, never published directly.

use shared_events::{Envelope, EventFamily};
use sqlx::PgConnection;

use trace_context::TraceParent;

const ENQUEUE_SQL: &str = "INSERT INTO messaging_outbox
     (event_id, topic, partition_key, event_type, payload, traceparent)
     SELECT row.event_id, $2, row.partition_key, row.event_type, row.payload, $6
     FROM unnest($1::uuid[], $3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY
         AS row(event_id, partition_key, event_type, payload, n)
     ORDER BY row.n";

/// Adds `envelope` to the outbox inside the caller's transaction (pass
/// `&mut *tx`). The relay of this process is told at once and finds the
/// row when, and only if, that transaction commits (see [`crate::wake`]).
pub async fn enqueue<E: EventFamily>(
    conn: &mut PgConnection,
    envelope: &Envelope<E>,
) -> Result<(), sqlx::Error> {
    enqueue_all(conn, std::slice::from_ref(envelope)).await
}

/// Adds `envelopes` to the outbox in one statement, inside the caller's
/// transaction, in the order given (the relay publishes them so). As
/// [`enqueue`] otherwise.
#[tracing::instrument(skip_all, fields(events = envelopes.len(), event_type = envelopes.first().map(Envelope::event_type)))]
pub async fn enqueue_all<E: EventFamily>(
    conn: &mut PgConnection,
    envelopes: &[Envelope<E>],
) -> Result<(), sqlx::Error> {
    if envelopes.is_empty() {
        return Ok(());
    }
    let mut event_ids = Vec::with_capacity(envelopes.len());
    let mut partition_keys = Vec::with_capacity(envelopes.len());
    let mut event_types = Vec::with_capacity(envelopes.len());
    let mut payloads = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        event_ids.push(envelope.event_id);
        partition_keys.push(envelope.partition_key());
        event_types.push(envelope.event_type());
        payloads.push(
            envelope
                .to_json()
                .map_err(|error| sqlx::Error::Encode(Box::new(error)))?,
        );
    }
    let traceparent = TraceParent::current_or_new().to_string();
    sqlx::query(ENQUEUE_SQL)
        .bind(event_ids)
        .bind(E::TOPIC.name())
        .bind(partition_keys)
        .bind(event_types)
        .bind(payloads)
        .bind(traceparent)
        .execute(&mut *conn)
        .await?;
    crate::wake::OUTBOX.written();
    Ok(())
}
