//! Checks that every event family's unit tests share.

use std::collections::BTreeSet;

use crate::{Envelope, EventFamily};

/// Asserts that `F::EVENT_TYPES` names exactly the variants serde knows, and
/// that each sample envelope (one per event type) decodes into a variant whose
/// `event_type()` is the tag it serializes with.
///
/// The variant list comes from serde's own "unknown variant" error, so a
/// variant added to the enum but forgotten in `EVENT_TYPES` fails here
/// without anyone having to remember to extend a hand-written list.
pub(crate) fn assert_family_is_consistent<F: EventFamily>(samples: &[&str]) {
    let listed: BTreeSet<&str> = F::EVENT_TYPES.iter().copied().collect();
    assert_eq!(
        listed.len(),
        F::EVENT_TYPES.len(),
        "EVENT_TYPES has duplicates"
    );
    assert_eq!(
        listed,
        variants_known_to_serde::<F>()
            .iter()
            .map(String::as_str)
            .collect(),
        "EVENT_TYPES differs from the enum's variants"
    );

    let mut seen = BTreeSet::new();
    for sample in samples {
        let json: serde_json::Value = serde_json::from_str(sample).expect("sample is JSON");
        let envelope: Envelope<F> = serde_json::from_str(sample).expect("sample decodes");
        let tag = json["event_type"]
            .as_str()
            .expect("sample has an event_type");
        assert_eq!(envelope.event_type(), tag);
        assert!(listed.contains(envelope.event_type()));
        let reserialized = serde_json::to_value(&envelope.event).expect("event serializes");
        assert_eq!(reserialized["event_type"], tag);
        seen.insert(envelope.event_type());
    }
    assert_eq!(seen, listed, "every event type needs a sample");
}

fn variants_known_to_serde<F: EventFamily>() -> Vec<String> {
    let unknown = "__no_such_event__";
    let error = serde_json::from_str::<F>(&format!(r#"{{"event_type":"{unknown}"}}"#))
        .err()
        .expect("an unknown event_type is rejected")
        .to_string();
    let expected = error
        .split_once(&format!("unknown variant `{unknown}`, "))
        .map(|(_, rest)| rest)
        .expect("serde names the unknown variant");
    // Quoted names sit between backticks: every odd piece of the split.
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}
