//! Publishing and reading events the way the fleet's other producers and
//! consumers do: JSON envelopes, keyed by their partition key, with the
//! `event_type` (and optionally `traceparent`) headers.

use std::time::Duration;

use messaging::inspect::{publish_raw, read_topic};
use shared_events::{Envelope, EventFamily};

/// How long a topic must stay quiet before [`read_events`] stops reading.
pub const QUIET: Duration = Duration::from_millis(500);

/// Publishes `event` to its family's topic and waits for the broker's ack.
///
/// # Panics
/// When the event cannot be serialised or the broker refuses it.
pub async fn publish<E: EventFamily>(bootstrap: &str, event: &Envelope<E>) {
    publish_traced(bootstrap, event, None).await;
}

/// [`publish`] with a `traceparent` header, as a traced producer sends it.
///
/// # Panics
/// As [`publish`].
pub async fn publish_traced<E: EventFamily>(
    bootstrap: &str,
    event: &Envelope<E>,
    traceparent: Option<&str>,
) {
    let payload = event.to_json().expect("the event serialises");
    let mut headers = vec![("event_type", event.event_type())];
    if let Some(traceparent) = traceparent {
        headers.push(("traceparent", traceparent));
    }
    publish_raw(
        bootstrap,
        E::TOPIC.name(),
        &event.partition_key(),
        &payload,
        &headers,
    )
    .await
    .unwrap_or_else(|error| panic!("failed to publish {}: {error:#}", event.event_type()));
}

/// Every event of family `E` on its topic so far (in partition order), read
/// until the topic has been quiet for [`QUIET`], each once, as a consumer
/// handles them: publishing is at least once (a relay that could not mark a
/// row sent publishes it again), so a repeated `event_id` is left out, and
/// so are messages of types the family does not know.
///
/// # Panics
/// When the topic cannot be read.
pub async fn read_events<E: EventFamily>(bootstrap: &str) -> Vec<Envelope<E>> {
    let mut seen = std::collections::HashSet::new();
    read_topic(bootstrap, E::TOPIC.name(), QUIET)
        .await
        .unwrap_or_else(|error| panic!("failed to read {}: {error:#}", E::TOPIC.name()))
        .iter()
        .filter_map(|message| serde_json::from_slice::<Envelope<E>>(&message.payload).ok())
        .filter(|envelope| seen.insert(envelope.event_id))
        .collect()
}
