//! What dispatcher publishes on `heyblue.dispatch.v1`: the life of each
//! business's part of an order, from being placed at the business to being
//! delivered, declined or withdrawn. Every event names its part by
//! `(order_id, business_id)`; `dispatch_id` is dispatcher's own id for it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{EventFamily, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum DispatchEvent {
    OrderDispatched(OrderDispatched),
    OrderConfirmed(OrderConfirmed),
    OrderDelivered(OrderDelivered),
    OrderDeclined(OrderDeclined),
    OrderShipped(OrderShipped),
    DispatchFailed(DispatchFailed),
    OrderWithdrawn(OrderWithdrawn),
}

impl DispatchEvent {
    pub fn order_id(&self) -> Uuid {
        match self {
            DispatchEvent::OrderDispatched(e) => e.order_id,
            DispatchEvent::OrderConfirmed(e) => e.order_id,
            DispatchEvent::OrderDelivered(e) => e.order_id,
            DispatchEvent::OrderDeclined(e) => e.order_id,
            DispatchEvent::OrderShipped(e) => e.order_id,
            DispatchEvent::DispatchFailed(e) => e.order_id,
            DispatchEvent::OrderWithdrawn(e) => e.order_id,
        }
    }

    /// The business whose part this event is about.
    pub fn business_id(&self) -> Uuid {
        match self {
            DispatchEvent::OrderDispatched(e) => e.business_id,
            DispatchEvent::OrderConfirmed(e) => e.business_id,
            DispatchEvent::OrderDelivered(e) => e.business_id,
            DispatchEvent::OrderDeclined(e) => e.business_id,
            DispatchEvent::OrderShipped(e) => e.business_id,
            DispatchEvent::DispatchFailed(e) => e.business_id,
            DispatchEvent::OrderWithdrawn(e) => e.business_id,
        }
    }
}

impl EventFamily for DispatchEvent {
    const TOPIC: Topic = Topic::Dispatch;
    const PRODUCER: &'static str = "dispatcher";
    const EVENT_TYPES: &'static [&'static str] = &[
        "order_dispatched",
        "order_confirmed",
        "order_delivered",
        "order_declined",
        "order_shipped",
        "dispatch_failed",
        "order_withdrawn",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            DispatchEvent::OrderDispatched(_) => "order_dispatched",
            DispatchEvent::OrderConfirmed(_) => "order_confirmed",
            DispatchEvent::OrderDelivered(_) => "order_delivered",
            DispatchEvent::OrderDeclined(_) => "order_declined",
            DispatchEvent::OrderShipped(_) => "order_shipped",
            DispatchEvent::DispatchFailed(_) => "dispatch_failed",
            DispatchEvent::OrderWithdrawn(_) => "order_withdrawn",
        }
    }

    fn partition_key(&self) -> String {
        self.order_id().to_string()
    }
}

/// The part was placed at the business (for `portal`, it entered the queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDispatched {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    /// The business's own reference, when its integration returns one.
    pub reference: Option<String>,
}

/// The business accepted the part; the order can no longer be cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    pub reference: Option<String>,
}

/// The part reached the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    pub reference: Option<String>,
}

/// The part will not be fulfilled; order refunds exactly this part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDeclined {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    /// The business's own words, `timeout` after the confirmation deadline,
    /// or `dispatch_failed`.
    pub reason: String,
}

/// The business handed the part to a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    pub carrier: String,
    pub tracking_number: String,
}

/// The business's integration could not take the part, after retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchFailed {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
    pub error: String,
}

/// The part was taken back from the business because the customer cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderWithdrawn {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub dispatch_id: Uuid,
}

crate::impl_from_events!(
    DispatchEvent: OrderDispatched,
    OrderConfirmed,
    OrderDelivered,
    OrderDeclined,
    OrderShipped,
    DispatchFailed,
    OrderWithdrawn,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<DispatchEvent>(&[
            include_str!("../tests/fixtures/dispatcher/order_dispatched.json"),
            include_str!("../tests/fixtures/dispatcher/order_confirmed.json"),
            include_str!("../tests/fixtures/dispatcher/order_delivered.json"),
            include_str!("../tests/fixtures/dispatcher/order_declined.json"),
            include_str!("../tests/fixtures/dispatcher/order_shipped.json"),
            include_str!("../tests/fixtures/dispatcher/dispatch_failed.json"),
            include_str!("../tests/fixtures/dispatcher/order_withdrawn.json"),
        ]);
    }
}
