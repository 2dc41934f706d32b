//! What payment-gateway publishes on `heyblue.payment.v1`: authorizations,
//! captures, voids and refunds, whichever provider did them.
//!
//! `payment_successful` keeps the field names an existing consumer already
//! reads, including `payment_amount`, a decimal rendering of `amount_minor`.
//! [`PaymentAmount`] writes that decimal with exactly the currency's minor
//! digits (`100.00` for USD, `100` for JPY).

use std::fmt;

use serde::{ser, Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{EventFamily, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum PaymentEvent {
    PaymentAuthorized(PaymentAuthorized),
    PaymentProcessing(PaymentProcessing),
    PaymentSuccessful(PaymentSuccessful),
    PaymentFailed(PaymentFailed),
    PaymentVoided(PaymentVoided),
    PaymentRefunded(PaymentRefunded),
    PaymentRefundFailed(PaymentRefundFailed),
}

impl PaymentEvent {
    pub fn order_id(&self) -> Uuid {
        match self {
            PaymentEvent::PaymentAuthorized(e) => e.order_id,
            PaymentEvent::PaymentProcessing(e) => e.order_id,
            PaymentEvent::PaymentSuccessful(e) => e.order_id,
            PaymentEvent::PaymentFailed(e) => e.order_id,
            PaymentEvent::PaymentVoided(e) => e.order_id,
            PaymentEvent::PaymentRefunded(e) => e.order_id,
            PaymentEvent::PaymentRefundFailed(e) => e.order_id,
        }
    }
}

impl EventFamily for PaymentEvent {
    const TOPIC: Topic = Topic::Payment;
    const PRODUCER: &'static str = "payment-gateway";
    const EVENT_TYPES: &'static [&'static str] = &[
        "payment_authorized",
        "payment_processing",
        "payment_successful",
        "payment_failed",
        "payment_voided",
        "payment_refunded",
        "payment_refund_failed",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            PaymentEvent::PaymentAuthorized(_) => "payment_authorized",
            PaymentEvent::PaymentProcessing(_) => "payment_processing",
            PaymentEvent::PaymentSuccessful(_) => "payment_successful",
            PaymentEvent::PaymentFailed(_) => "payment_failed",
            PaymentEvent::PaymentVoided(_) => "payment_voided",
            PaymentEvent::PaymentRefunded(_) => "payment_refunded",
            PaymentEvent::PaymentRefundFailed(_) => "payment_refund_failed",
        }
    }

    fn partition_key(&self) -> String {
        self.order_id().to_string()
    }
}

/// The provider authorized the amount; nothing is captured yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
    pub provider: String,
    pub amount_minor: i64,
    pub currency: String,
}

/// A capture was accepted and is under way at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentProcessing {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
}

/// The provider confirmed the capture: the money is ours.
///
/// On the wire this also carries `payment_amount`, but it is not a field
/// here: it is always derived from `amount_minor` and `currency` (see
/// [`PaymentSuccessful::payment_amount`]), so the two can never disagree.
/// Decoding checks that an incoming `payment_amount` matches.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PaymentSuccessfulIn")]
pub struct PaymentSuccessful {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub payment_method: PaymentMethod,
    /// The provider's id of the capture (e.g. a Stripe PaymentIntent).
    pub transaction_id: String,
    pub currency: String,
    pub payment_status: PaymentStatus,
    pub amount_minor: i64,
    pub provider: String,
    pub authorization_id: Uuid,
}

impl PaymentSuccessful {
    /// `amount_minor` as a decimal in `currency`'s major unit.
    pub fn payment_amount(&self) -> PaymentAmount {
        PaymentAmount::from_minor(self.amount_minor, &self.currency)
    }
}

/// The wire layout of `payment_successful`, borrowed for writing.
#[derive(Serialize)]
struct PaymentSuccessfulOut<'a> {
    order_id: Uuid,
    customer_id: Uuid,
    payment_amount: PaymentAmount,
    payment_method: PaymentMethod,
    transaction_id: &'a str,
    currency: &'a str,
    payment_status: PaymentStatus,
    amount_minor: i64,
    provider: &'a str,
    authorization_id: Uuid,
}

impl Serialize for PaymentSuccessful {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PaymentSuccessfulOut {
            order_id: self.order_id,
            customer_id: self.customer_id,
            payment_amount: self.payment_amount(),
            payment_method: self.payment_method,
            transaction_id: &self.transaction_id,
            currency: &self.currency,
            payment_status: self.payment_status,
            amount_minor: self.amount_minor,
            provider: &self.provider,
            authorization_id: self.authorization_id,
        }
        .serialize(serializer)
    }
}

/// The wire layout of `payment_successful`, owned for reading.
#[derive(Deserialize)]
struct PaymentSuccessfulIn {
    order_id: Uuid,
    customer_id: Uuid,
    payment_amount: f64,
    payment_method: PaymentMethod,
    transaction_id: String,
    currency: String,
    payment_status: PaymentStatus,
    amount_minor: i64,
    provider: String,
    authorization_id: Uuid,
}

impl TryFrom<PaymentSuccessfulIn> for PaymentSuccessful {
    type Error = String;

    fn try_from(wire: PaymentSuccessfulIn) -> Result<Self, Self::Error> {
        let event = PaymentSuccessful {
            order_id: wire.order_id,
            customer_id: wire.customer_id,
            payment_method: wire.payment_method,
            transaction_id: wire.transaction_id,
            currency: wire.currency,
            payment_status: wire.payment_status,
            amount_minor: wire.amount_minor,
            provider: wire.provider,
            authorization_id: wire.authorization_id,
        };
        // A payment whose two amounts disagree is not safe to act on either
        // way; rejecting it sends it to the dead-letter topic for a human.
        if !event.payment_amount().matches(wire.payment_amount) {
            return Err(format!(
                "payment_amount {} does not match amount_minor {} {}",
                wire.payment_amount, event.amount_minor, event.currency
            ));
        }
        Ok(event)
    }
}

/// How the customer paid, in the words the existing consumer expects.
/// The sandbox provider reports `Credit Card`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentMethod {
    #[serde(rename = "Credit Card")]
    CreditCard,
    #[serde(rename = "PayPal")]
    PayPal,
    #[serde(rename = "Apple Pay")]
    ApplePay,
}

/// Always `Success`; kept because the existing consumer reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentStatus {
    Success,
}

/// The provider refused the capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
    pub reason: String,
}

/// The authorization was released without capturing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
}

/// The provider refunded the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub refund_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

/// The provider kept refusing the refund; an operator has to step in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefundFailed {
    pub order_id: Uuid,
    pub refund_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

/// An amount in a currency's major unit, kept as its minor units so that it
/// is exact. It serializes as a JSON number with exactly the currency's
/// number of decimals: 10000 USD minor units are `100.00`, 100 JPY are `100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentAmount {
    minor: i64,
    exponent: u32,
}

impl PaymentAmount {
    pub fn from_minor(amount_minor: i64, currency: &str) -> Self {
        PaymentAmount {
            minor: amount_minor,
            exponent: minor_unit_exponent(currency),
        }
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    /// How many decimals the currency has.
    pub fn exponent(self) -> u32 {
        self.exponent
    }

    /// Whether a decimal read off the wire (hence an `f64`) is this amount.
    /// Rounding to the nearest minor unit absorbs the binary fraction error.
    fn matches(self, major: f64) -> bool {
        let scaled = major * 10f64.powi(self.exponent as i32);
        scaled.is_finite() && scaled.round() == self.minor as f64
    }
}

impl fmt::Display for PaymentAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        if self.exponent == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let factor = 10u64.pow(self.exponent);
        write!(
            f,
            "{sign}{}.{:0width$}",
            magnitude / factor,
            magnitude % factor,
            width = self.exponent as usize
        )
    }
}

impl Serialize for PaymentAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A float would print `100.0`; only a raw JSON number keeps the
        // trailing zeros the consumer expects.
        let raw = RawValue::from_string(self.to_string()).map_err(ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

/// The number of decimals of an ISO 4217 currency: 0 and 3 for the listed
/// exceptions, 2 for everything else.
pub fn minor_unit_exponent(currency: &str) -> u32 {
    match currency.to_ascii_uppercase().as_str() {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "XAF" | "XOF" | "UGX" | "PYG" | "RWF" | "KMF"
        | "GNF" | "DJF" | "BIF" | "VUV" | "XPF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

crate::impl_from_events!(
    PaymentEvent: PaymentAuthorized,
    PaymentProcessing,
    PaymentSuccessful,
    PaymentFailed,
    PaymentVoided,
    PaymentRefunded,
    PaymentRefundFailed,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<PaymentEvent>(&[
            include_str!("../tests/fixtures/payment-gateway/payment_authorized.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_processing.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_successful.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_failed.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_voided.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_refunded.json"),
            include_str!("../tests/fixtures/payment-gateway/payment_refund_failed.json"),
        ]);
    }

    #[test]
    fn payment_amount_has_exactly_the_currencys_decimals() {
        assert_eq!(
            PaymentAmount::from_minor(10000, "USD").to_string(),
            "100.00"
        );
        assert_eq!(PaymentAmount::from_minor(5, "EUR").to_string(), "0.05");
        assert_eq!(PaymentAmount::from_minor(100, "JPY").to_string(), "100");
        assert_eq!(PaymentAmount::from_minor(1234, "KWD").to_string(), "1.234");
        assert_eq!(PaymentAmount::from_minor(-250, "usd").to_string(), "-2.50");
    }

    #[test]
    fn payment_amount_serializes_as_a_bare_number() {
        let json = serde_json::to_string(&PaymentAmount::from_minor(10000, "USD"))
            .expect("an amount serializes");
        assert_eq!(json, "100.00");
    }

    #[test]
    fn payment_amount_is_checked_against_the_wire_decimal() {
        let amount = PaymentAmount::from_minor(1999, "USD");
        assert!(amount.matches(19.99));
        assert!(!amount.matches(19.98));
        assert!(PaymentAmount::from_minor(100, "JPY").matches(100.0));
    }
}
