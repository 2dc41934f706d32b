//! `payment_successful` keeps a legacy consumer's field names, and its
//! `payment_amount` must reach the wire as a decimal with the currency's
//! minor digits, through the flattened envelope and the tagged enum.

#![allow(clippy::unwrap_used)] // a test that cannot read its input should fail on the spot

use serde_json::Value;
use shared_events::{
    Envelope, PaymentAmount, PaymentEvent, PaymentMethod, PaymentStatus, PaymentSuccessful,
};
use uuid::Uuid;

/// The example from DESIGN §5, with real ids in place of its placeholders.
const DESIGN_EXAMPLE: &str = r#"{"event_type": "payment_successful", "event_timestamp": "2026-11-06T14:30:00Z",
 "order_id": "0192f3a4-6b1c-7d2e-8f30-4a5b6c7d8e9f", "customer_id": "6f1d2c3b-4a59-4e68-9d7c-8b9a0f1e2d3c", "payment_amount": 100.00,
 "payment_method": "Credit Card", "transaction_id": "pi_3Nk4Qb2eZvKYlo2C0x7mT9Lq", "currency": "USD",
 "payment_status": "Success", "amount_minor": 10000, "provider": "stripe",
 "authorization_id": "0192f3a4-6001-7c44-8d55-e6f7a8b9c0d1", "event_id": "0192f3a4-7a8b-7c9d-8eaf-b0c1d2e3f4a5", "event_version": 1,
 "producer": "payment-gateway", "correlation_id": "0192f3a4-5e10-7a21-9b32-c4d5e6f7a8b9"}"#;

fn successful(amount_minor: i64, currency: &str) -> PaymentSuccessful {
    PaymentSuccessful {
        order_id: Uuid::new_v4(),
        customer_id: Uuid::new_v4(),
        payment_method: PaymentMethod::CreditCard,
        transaction_id: "pi_3Nk4Qb2eZvKYlo2C0x7mT9Lq".to_owned(),
        currency: currency.to_owned(),
        payment_status: PaymentStatus::Success,
        amount_minor,
        provider: "sandbox".to_owned(),
        authorization_id: Uuid::new_v4(),
    }
}

#[test]
fn the_design_example_decodes_and_encodes_back_unchanged() {
    let envelope: Envelope<PaymentEvent> = serde_json::from_str(DESIGN_EXAMPLE).unwrap();

    let PaymentEvent::PaymentSuccessful(event) = &envelope.event else {
        panic!("decoded as {}", envelope.event_type());
    };
    assert_eq!(event.amount_minor, 10000);
    assert_eq!(event.currency, "USD");
    assert_eq!(event.payment_method, PaymentMethod::CreditCard);
    assert_eq!(event.payment_status, PaymentStatus::Success);
    assert_eq!(event.provider, "stripe");
    assert_eq!(event.transaction_id, "pi_3Nk4Qb2eZvKYlo2C0x7mT9Lq");
    assert_eq!(
        event.payment_amount(),
        PaymentAmount::from_minor(10000, "USD")
    );
    assert_eq!(envelope.partition_key(), event.order_id.to_string());

    let text = String::from_utf8(envelope.to_json().expect("serialize event")).unwrap();
    assert!(
        text.contains(r#""payment_amount":100.00"#),
        "payment_amount lost its decimals: {text}"
    );
    assert!(text.contains(r#""payment_method":"Credit Card""#), "{text}");
    assert!(text.contains(r#""payment_status":"Success""#), "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::from_str::<Value>(DESIGN_EXAMPLE).unwrap()
    );
}

#[test]
fn payment_amount_follows_the_currencys_minor_unit_on_the_wire() {
    for (amount_minor, currency, expected) in [
        (10000, "USD", r#""payment_amount":100.00"#),
        (7499, "EUR", r#""payment_amount":74.99"#),
        (5, "USD", r#""payment_amount":0.05"#),
        (100, "JPY", r#""payment_amount":100,"#),
        (12345, "KWD", r#""payment_amount":12.345"#),
    ] {
        let envelope = Envelope::new(
            PaymentEvent::from(successful(amount_minor, currency)),
            Uuid::new_v4(),
        );
        let text = String::from_utf8(envelope.to_json().expect("serialize event")).unwrap();
        assert!(text.contains(expected), "{currency}: {text}");

        let back: Envelope<PaymentEvent> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, envelope);
    }
}

#[test]
fn payment_amount_survives_encoding_to_a_json_value() {
    let envelope = Envelope::new(PaymentEvent::from(successful(10000, "USD")), Uuid::new_v4());
    let value = serde_json::to_value(&envelope).unwrap();
    assert_eq!(value["payment_amount"].as_f64(), Some(100.0));
    assert_eq!(value["amount_minor"], 10000);
}

#[test]
fn a_payment_amount_that_disagrees_with_amount_minor_is_rejected() {
    let tampered =
        DESIGN_EXAMPLE.replace(r#""payment_amount": 100.00"#, r#""payment_amount": 99.00"#);
    let error = serde_json::from_str::<Envelope<PaymentEvent>>(&tampered).unwrap_err();
    assert!(error.to_string().contains("payment_amount"), "{error}");
}

#[test]
fn a_payment_amount_written_without_decimals_is_accepted() {
    let plain = DESIGN_EXAMPLE.replace(r#""payment_amount": 100.00"#, r#""payment_amount": 100"#);
    let envelope: Envelope<PaymentEvent> = serde_json::from_str(&plain).unwrap();
    let text = String::from_utf8(envelope.to_json().expect("serialize event")).unwrap();
    assert!(text.contains(r#""payment_amount":100.00"#), "{text}");
}
