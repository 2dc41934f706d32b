//! Every event type has a fixture under `tests/fixtures/<producer>/<event_type>.json`:
//! a complete envelope as it appears on the wire. Each one must decode into
//! its family, re-encode to the same JSON (no field renamed or lost), and be
//! keyed by the field DESIGN names.

#![allow(clippy::unwrap_used)] // a test that cannot read its input should fail on the spot

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use shared_events::{
    CatalogEvent, CheckoutEvent, ConnectionEvent, DispatchEvent, Envelope, EnvelopeHeader,
    EventFamily, OrderEvent, PaymentEvent, PointsEvent, Topic,
};

struct Fixture {
    event_type: String,
    path: PathBuf,
    text: String,
}

fn fixtures_of<F: EventFamily>() -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(F::PRODUCER);
    let mut fixtures: Vec<Fixture> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| Fixture {
            event_type: path.file_stem().unwrap().to_str().unwrap().to_owned(),
            text: fs::read_to_string(&path).unwrap(),
            path,
        })
        .collect();
    fixtures.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    fixtures
}

/// Decodes, re-encodes and checks the key of every fixture of `F`;
/// `key_field` names the fixture field the partition key must equal.
fn assert_fixtures_round_trip<F: EventFamily>(topic: Topic, key_field: fn(&str) -> &'static str) {
    assert_eq!(F::TOPIC, topic);
    let fixtures = fixtures_of::<F>();
    assert!(!fixtures.is_empty(), "no fixtures for {}", F::PRODUCER);

    for fixture in &fixtures {
        let at = fixture.path.display();
        let expected: Value = serde_json::from_str(&fixture.text).unwrap();
        let envelope: Envelope<F> = serde_json::from_str(&fixture.text)
            .unwrap_or_else(|e| panic!("{at} does not decode: {e}"));

        assert_eq!(envelope.event_type(), fixture.event_type, "{at}");
        assert_eq!(expected["event_type"], fixture.event_type.as_str(), "{at}");
        assert_eq!(envelope.producer, F::PRODUCER, "{at}");
        assert_eq!(
            envelope.event_version,
            envelope.event.event_version(),
            "{at}"
        );

        let encoded: Value =
            serde_json::from_slice(&envelope.to_json().expect("serialize event")).unwrap();
        assert_eq!(encoded, expected, "{at} does not survive a round trip");

        let key_field = key_field(&fixture.event_type);
        assert_eq!(
            Some(envelope.partition_key().as_str()),
            expected[key_field].as_str(),
            "{at} is not keyed by {key_field}"
        );

        let header: EnvelopeHeader = serde_json::from_str(&fixture.text).unwrap();
        assert_eq!(header.event_type, fixture.event_type, "{at}");
        assert_eq!(header.event_id, envelope.event_id, "{at}");
    }

    let with_fixture: BTreeSet<&str> = fixtures.iter().map(|f| f.event_type.as_str()).collect();
    let listed: BTreeSet<&str> = F::EVENT_TYPES.iter().copied().collect();
    assert_eq!(
        with_fixture,
        listed,
        "{}: every event type needs exactly one fixture",
        F::PRODUCER
    );
}

fn order_id(_: &str) -> &'static str {
    "order_id"
}

fn user_id(_: &str) -> &'static str {
    "user_id"
}

#[test]
fn checkout_fixtures_round_trip_keyed_by_order_id() {
    assert_fixtures_round_trip::<CheckoutEvent>(Topic::Checkout, order_id);
}

#[test]
fn order_fixtures_round_trip_keyed_by_order_id() {
    assert_fixtures_round_trip::<OrderEvent>(Topic::Order, order_id);
}

#[test]
fn payment_fixtures_round_trip_keyed_by_order_id() {
    assert_fixtures_round_trip::<PaymentEvent>(Topic::Payment, order_id);
}

#[test]
fn catalog_fixtures_round_trip_keyed_by_order_or_offering() {
    assert_fixtures_round_trip::<CatalogEvent>(Topic::Catalog, |event_type| {
        if event_type == "offering_changed" {
            "id"
        } else {
            "order_id"
        }
    });
}

#[test]
fn points_fixtures_round_trip_keyed_by_user_id() {
    assert_fixtures_round_trip::<PointsEvent>(Topic::Points, user_id);
}

#[test]
fn dispatch_fixtures_round_trip_keyed_by_order_id() {
    assert_fixtures_round_trip::<DispatchEvent>(Topic::Dispatch, order_id);
}

#[test]
fn connection_fixtures_round_trip_keyed_by_user_id() {
    assert_fixtures_round_trip::<ConnectionEvent>(Topic::Connection, user_id);
}

#[test]
fn every_fixture_folder_belongs_to_a_family() {
    let producers: BTreeSet<&str> = [
        CheckoutEvent::PRODUCER,
        OrderEvent::PRODUCER,
        PaymentEvent::PRODUCER,
        CatalogEvent::PRODUCER,
        PointsEvent::PRODUCER,
        DispatchEvent::PRODUCER,
        ConnectionEvent::PRODUCER,
    ]
    .into();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in fs::read_dir(root).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            producers.contains(name.as_str()),
            "unexpected folder {name}"
        );
    }
}
