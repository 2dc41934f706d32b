//! What order publishes on `heyblue.order.v1`: the order's life (created,
//! status changes, cancelled) and the saga's commands to payment-gateway,
//! user-points, catalog and dispatcher.
//!
//! Commands are named `*_requested`: order asks, the owning service acts and
//! answers with its own fact on its own topic.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Address, DispatchPart, EventFamily, StockLine, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum OrderEvent {
    OrderCreated(OrderCreated),
    PaymentCaptureRequested(PaymentCaptureRequested),
    PaymentVoidRequested(PaymentVoidRequested),
    PaymentRefundRequested(PaymentRefundRequested),
    PointsSpendRequested(PointsSpendRequested),
    PointsReleaseRequested(PointsReleaseRequested),
    PointsRefundRequested(PointsRefundRequested),
    StockReleaseRequested(StockReleaseRequested),
    OrderReadyForDispatch(OrderReadyForDispatch),
    OrderStatusChanged(OrderStatusChanged),
    OrderCancelled(OrderCancelled),
}

impl OrderEvent {
    pub fn order_id(&self) -> Uuid {
        match self {
            OrderEvent::OrderCreated(e) => e.order_id,
            OrderEvent::PaymentCaptureRequested(e) => e.order_id,
            OrderEvent::PaymentVoidRequested(e) => e.order_id,
            OrderEvent::PaymentRefundRequested(e) => e.order_id,
            OrderEvent::PointsSpendRequested(e) => e.order_id,
            OrderEvent::PointsReleaseRequested(e) => e.order_id,
            OrderEvent::PointsRefundRequested(e) => e.order_id,
            OrderEvent::StockReleaseRequested(e) => e.order_id,
            OrderEvent::OrderReadyForDispatch(e) => e.order_id,
            OrderEvent::OrderStatusChanged(e) => e.order_id,
            OrderEvent::OrderCancelled(e) => e.order_id,
        }
    }
}

impl EventFamily for OrderEvent {
    const TOPIC: Topic = Topic::Order;
    const PRODUCER: &'static str = "order";
    const EVENT_TYPES: &'static [&'static str] = &[
        "order_created",
        "payment_capture_requested",
        "payment_void_requested",
        "payment_refund_requested",
        "points_spend_requested",
        "points_release_requested",
        "points_refund_requested",
        "stock_release_requested",
        "order_ready_for_dispatch",
        "order_status_changed",
        "order_cancelled",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderCreated(_) => "order_created",
            OrderEvent::PaymentCaptureRequested(_) => "payment_capture_requested",
            OrderEvent::PaymentVoidRequested(_) => "payment_void_requested",
            OrderEvent::PaymentRefundRequested(_) => "payment_refund_requested",
            OrderEvent::PointsSpendRequested(_) => "points_spend_requested",
            OrderEvent::PointsReleaseRequested(_) => "points_release_requested",
            OrderEvent::PointsRefundRequested(_) => "points_refund_requested",
            OrderEvent::StockReleaseRequested(_) => "stock_release_requested",
            OrderEvent::OrderReadyForDispatch(_) => "order_ready_for_dispatch",
            OrderEvent::OrderStatusChanged(_) => "order_status_changed",
            OrderEvent::OrderCancelled(_) => "order_cancelled",
        }
    }

    fn partition_key(&self) -> String {
        self.order_id().to_string()
    }
}

/// The order exists (`pending`); catalog reserves stock for all its lines or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// Capture the authorized amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptureRequested {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
}

/// Void an authorization that was never captured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoidRequested {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
}

/// Refund part or all of a captured payment. `refund_id` is minted by order
/// and doubles as the provider's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefundRequested {
    pub order_id: Uuid,
    pub authorization_id: Uuid,
    pub refund_id: Uuid,
    /// The declined business whose part is refunded; null refunds the whole order.
    pub business_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
}

/// Spend the order's reserved points: the order is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsSpendRequested {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub reservation_id: Uuid,
    pub points: i64,
}

/// Give the order's reserved points back: the order will not be paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReleaseRequested {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub reservation_id: Uuid,
    pub points: i64,
}

/// Give back points already spent on one business's declined part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsRefundRequested {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub refund_id: Uuid,
    pub business_id: Uuid,
    pub points: i64,
}

/// Put reserved stock back on sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleaseRequested {
    pub order_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// The order is paid (`processing`): dispatcher places each part at its business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReadyForDispatch {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub shipping_address: Address,
    /// One part per business.
    pub parts: Vec<DispatchPart>,
}

/// The order moved from one status to another; mostly for notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatusChanged {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// Carried so that notification can email without asking anyone.
    pub customer_email: Option<String>,
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub reason: Option<String>,
}

/// The order ended without being fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub reason: CancellationReason,
}

/// An order's status as it travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    PaymentProcessing,
    Processing,
    Dispatched,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    OutOfStock,
    PaymentFailed,
    DeclinedByBusiness,
    CustomerCancelled,
}

crate::impl_from_events!(
    OrderEvent: OrderCreated,
    PaymentCaptureRequested,
    PaymentVoidRequested,
    PaymentRefundRequested,
    PointsSpendRequested,
    PointsReleaseRequested,
    PointsRefundRequested,
    StockReleaseRequested,
    OrderReadyForDispatch,
    OrderStatusChanged,
    OrderCancelled,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<OrderEvent>(&[
            include_str!("../tests/fixtures/order/order_created.json"),
            include_str!("../tests/fixtures/order/payment_capture_requested.json"),
            include_str!("../tests/fixtures/order/payment_void_requested.json"),
            include_str!("../tests/fixtures/order/payment_refund_requested.json"),
            include_str!("../tests/fixtures/order/points_spend_requested.json"),
            include_str!("../tests/fixtures/order/points_release_requested.json"),
            include_str!("../tests/fixtures/order/points_refund_requested.json"),
            include_str!("../tests/fixtures/order/stock_release_requested.json"),
            include_str!("../tests/fixtures/order/order_ready_for_dispatch.json"),
            include_str!("../tests/fixtures/order/order_status_changed.json"),
            include_str!("../tests/fixtures/order/order_cancelled.json"),
        ]);
    }
}
