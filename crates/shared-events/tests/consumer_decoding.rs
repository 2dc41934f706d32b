//! What a consumer relies on when it reads the wire: an unknown `event_type`
//! fails to decode into a family but still yields its header (so the runner
//! can skip it rather than dead-letter it), and unknown fields are ignored.

#![allow(clippy::unwrap_used)] // a test that cannot read its input should fail on the spot

use serde_json::Value;
use shared_events::{Envelope, EnvelopeHeader, EventFamily, OrderCreated, OrderEvent};

const ORDER_CREATED: &str = include_str!("fixtures/order/order_created.json");

fn with(fixture: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut value: Value = serde_json::from_str(fixture).unwrap();
    edit(value.as_object_mut().unwrap());
    value.to_string()
}

#[test]
fn an_unknown_event_type_fails_to_decode_but_its_header_is_readable() {
    let unknown = with(ORDER_CREATED, |event| {
        event.insert("event_type".into(), "order_teleported".into());
    });

    assert!(serde_json::from_str::<Envelope<OrderEvent>>(&unknown).is_err());

    let header: EnvelopeHeader = serde_json::from_str(&unknown).unwrap();
    assert_eq!(header.event_type, "order_teleported");
    assert_eq!(header.producer, "order");
    assert!(!OrderEvent::EVENT_TYPES.contains(&header.event_type.as_str()));
}

#[test]
fn a_known_event_type_with_a_missing_field_fails_to_decode() {
    let broken = with(ORDER_CREATED, |event| {
        event.remove("customer_id");
    });

    let header: EnvelopeHeader = serde_json::from_str(&broken).unwrap();
    assert!(OrderEvent::EVENT_TYPES.contains(&header.event_type.as_str()));
    assert!(serde_json::from_str::<Envelope<OrderEvent>>(&broken).is_err());
}

#[test]
fn unknown_fields_are_ignored() {
    let extended = with(ORDER_CREATED, |event| {
        event.insert("loyalty_tier".into(), "gold".into());
        event.insert("traceparent".into(), Value::Null);
    });

    let envelope: Envelope<OrderEvent> = serde_json::from_str(&extended).unwrap();
    let expected: Envelope<OrderEvent> = serde_json::from_str(ORDER_CREATED).unwrap();
    assert_eq!(envelope, expected);

    let header: EnvelopeHeader = serde_json::from_str(&extended).unwrap();
    assert_eq!(header.event_type, "order_created");
}

#[test]
fn an_event_from_another_family_is_not_mistaken_for_this_one() {
    let payment = include_str!("fixtures/payment-gateway/payment_voided.json");
    assert!(serde_json::from_str::<Envelope<OrderEvent>>(payment).is_err());
}

#[test]
fn a_new_envelope_carries_the_family_producer_and_the_events_version() {
    let event = OrderEvent::from(OrderCreated {
        order_id: uuid::Uuid::new_v4(),
        customer_id: uuid::Uuid::new_v4(),
        lines: Vec::new(),
    });
    let correlation_id = uuid::Uuid::new_v4();
    let envelope = Envelope::new(event, correlation_id);

    assert_eq!(envelope.producer, OrderEvent::PRODUCER);
    assert_eq!(envelope.event_version, 1);
    assert_eq!(envelope.correlation_id, correlation_id);
    let header: EnvelopeHeader =
        serde_json::from_slice(&envelope.to_json().expect("serialize event")).unwrap();
    assert_eq!(header.event_type, "order_created");
}
