//! What checkout publishes on `heyblue.checkout.v1`: the finalized order,
//! once its points are reserved and its payment authorized.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Address, EventFamily, Line, PaymentRef, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum CheckoutEvent {
    OrderSubmitted(OrderSubmitted),
}

impl CheckoutEvent {
    pub fn order_id(&self) -> Uuid {
        match self {
            CheckoutEvent::OrderSubmitted(e) => e.order_id,
        }
    }
}

impl EventFamily for CheckoutEvent {
    const TOPIC: Topic = Topic::Checkout;
    const PRODUCER: &'static str = "checkout";
    const EVENT_TYPES: &'static [&'static str] = &["order_submitted"];

    fn event_type(&self) -> &'static str {
        match self {
            CheckoutEvent::OrderSubmitted(_) => "order_submitted",
        }
    }

    fn partition_key(&self) -> String {
        self.order_id().to_string()
    }
}

/// A checkout finished: the order exists from here on. The cart lowers its
/// lines, user-points binds the reservation to the order, and order creates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSubmitted {
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    pub customer_id: Uuid,
    /// Absent when the customer's token carries no email.
    pub customer_email: Option<String>,
    /// Null when the checkout redeemed no points and so reserved none.
    pub reservation_id: Option<Uuid>,
    pub currency: String,
    pub lines: Vec<Line>,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub points_applied: i64,
    pub shipping_address: Address,
    /// Null when the total is 0 and nothing was authorized.
    pub payment: Option<PaymentRef>,
}

crate::impl_from_events!(CheckoutEvent: OrderSubmitted);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<CheckoutEvent>(&[include_str!(
            "../tests/fixtures/checkout/order_submitted.json"
        )]);
    }

    #[test]
    fn an_order_paid_entirely_with_points_or_without_any_has_null_references() {
        let mut value: serde_json::Value = serde_json::from_str(include_str!(
            "../tests/fixtures/checkout/order_submitted.json"
        ))
        .expect("fixture is JSON");
        value["reservation_id"] = serde_json::Value::Null;
        value["payment"] = serde_json::Value::Null;
        let CheckoutEvent::OrderSubmitted(submitted) =
            serde_json::from_value::<CheckoutEvent>(value).expect("decodes");
        assert_eq!(submitted.reservation_id, None);
        assert_eq!(submitted.payment, None);
    }
}
