//! The order as the saga sees it: its two state machines (the order's status
//! and each business's fulfillment), what it holds of stock, payment and
//! points, and its refunds and history. The rules that move it live in
//! [`saga`], in one function. No axum, sqlx or rdkafka here.

pub mod ids;
pub mod saga;

use serde::Deserialize;
use shared_events::Address;
use time::OffsetDateTime;
use uuid::Uuid;

/// Where an order is in its journey (DESIGN §4). The forward statuses are
/// declared in their order, so `<` means "earlier in the journey".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OrderStatus {
    Pending,
    PaymentProcessing,
    Processing,
    Dispatched,
    Confirmed,
    Shipped,
    Delivered,
    /// Terminal; the order's `cancellation_reason` says why.
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Pending,
        OrderStatus::PaymentProcessing,
        OrderStatus::Processing,
        OrderStatus::Dispatched,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::PaymentProcessing => "payment_processing",
            OrderStatus::Processing => "processing",
            OrderStatus::Dispatched => "dispatched",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Delivered and cancelled orders wait for nothing.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// The order machine: forward along the journey (skipping allowed), or
    /// from any open status to `cancelled`. Nothing leaves a terminal status.
    pub fn can_move_to(self, to: OrderStatus) -> bool {
        if self.is_terminal() {
            return false;
        }
        to == OrderStatus::Cancelled || to > self
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancellationReason {
    OutOfStock,
    PaymentFailed,
    DeclinedByBusiness,
    CustomerCancelled,
}

impl CancellationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::OutOfStock => "out_of_stock",
            CancellationReason::PaymentFailed => "payment_failed",
            CancellationReason::DeclinedByBusiness => "declined_by_business",
            CancellationReason::CustomerCancelled => "customer_cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<CancellationReason> {
        [
            CancellationReason::OutOfStock,
            CancellationReason::PaymentFailed,
            CancellationReason::DeclinedByBusiness,
            CancellationReason::CustomerCancelled,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// One business's part of an order, as the dispatcher reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfillmentStatus {
    Queued,
    Sent,
    Confirmed,
    Shipped,
    Delivered,
    Declined,
    Cancelled,
}

impl FulfillmentStatus {
    pub const ALL: [FulfillmentStatus; 7] = [
        FulfillmentStatus::Queued,
        FulfillmentStatus::Sent,
        FulfillmentStatus::Confirmed,
        FulfillmentStatus::Shipped,
        FulfillmentStatus::Delivered,
        FulfillmentStatus::Declined,
        FulfillmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentStatus::Queued => "queued",
            FulfillmentStatus::Sent => "sent",
            FulfillmentStatus::Confirmed => "confirmed",
            FulfillmentStatus::Shipped => "shipped",
            FulfillmentStatus::Delivered => "delivered",
            FulfillmentStatus::Declined => "declined",
            FulfillmentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<FulfillmentStatus> {
        FulfillmentStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// The fulfillment machine of DESIGN §4: `queued → sent → confirmed →
    /// shipped → delivered`, `queued | sent → declined | cancelled`. No skips.
    pub fn can_move_to(self, to: FulfillmentStatus) -> bool {
        use FulfillmentStatus::*;
        matches!(
            (self, to),
            (Queued, Sent)
                | (Sent, Confirmed)
                | (Confirmed, Shipped)
                | (Shipped, Delivered)
                | (Queued | Sent, Declined)
                | (Queued | Sent, Cancelled)
        )
    }

    /// What this part contributes to the order's status (DESIGN §4 step 7:
    /// `sent` counts as dispatched); declined and cancelled parts count for nothing.
    pub fn order_status(self) -> Option<OrderStatus> {
        match self {
            FulfillmentStatus::Queued => Some(OrderStatus::Processing),
            FulfillmentStatus::Sent => Some(OrderStatus::Dispatched),
            FulfillmentStatus::Confirmed => Some(OrderStatus::Confirmed),
            FulfillmentStatus::Shipped => Some(OrderStatus::Shipped),
            FulfillmentStatus::Delivered => Some(OrderStatus::Delivered),
            FulfillmentStatus::Declined | FulfillmentStatus::Cancelled => None,
        }
    }
}

/// What the order holds of catalog's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockHold {
    /// `order_created` is out; catalog has not answered.
    Awaiting,
    Reserved,
    Rejected,
    /// Given back in full (payment failed, a cancellation).
    Released,
}

impl StockHold {
    pub fn as_str(self) -> &'static str {
        match self {
            StockHold::Awaiting => "awaiting",
            StockHold::Reserved => "reserved",
            StockHold::Rejected => "rejected",
            StockHold::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<StockHold> {
        [
            StockHold::Awaiting,
            StockHold::Reserved,
            StockHold::Rejected,
            StockHold::Released,
        ]
        .into_iter()
        .find(|hold| hold.as_str() == text)
    }
}

/// Where the order's authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Authorized,
    CaptureRequested,
    Captured,
    Voided,
    Failed,
}

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Authorized => "authorized",
            PaymentState::CaptureRequested => "capture_requested",
            PaymentState::Captured => "captured",
            PaymentState::Voided => "voided",
            PaymentState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<PaymentState> {
        [
            PaymentState::Authorized,
            PaymentState::CaptureRequested,
            PaymentState::Captured,
            PaymentState::Voided,
            PaymentState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// The authorization checkout obtained, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub authorization_id: Uuid,
    pub provider: String,
    /// The provider's id of the capture, from `payment_successful`.
    pub transaction_id: Option<String>,
    pub state: PaymentState,
}

/// Where the order's points reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointsState {
    Reserved,
    Spent,
    Released,
}

impl PointsState {
    pub fn as_str(self) -> &'static str {
        match self {
            PointsState::Reserved => "reserved",
            PointsState::Spent => "spent",
            PointsState::Released => "released",
        }
    }

    pub fn parse(text: &str) -> Option<PointsState> {
        [
            PointsState::Reserved,
            PointsState::Spent,
            PointsState::Released,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// The points reservation checkout bound to the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsHold {
    pub reservation_id: Uuid,
    pub state: PointsState,
}

/// One line as checkout priced it (DESIGN's pricing rule). Its fields are
/// the columns of `order_lines`, read as JSON by the store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Line {
    pub offering_id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub amount_due_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    pub carrier: String,
    pub tracking_number: String,
}

/// One business's part of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfillment {
    pub business_id: Uuid,
    pub status: FulfillmentStatus,
    pub tracking: Option<Tracking>,
    /// Why the part was declined.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    Requested,
    Refunded,
    Failed,
}

impl RefundState {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Requested => "requested",
            RefundState::Refunded => "refunded",
            RefundState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<RefundState> {
        [
            RefundState::Requested,
            RefundState::Refunded,
            RefundState::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// Money and points given back for one part (or, `business_id` null, the
/// whole order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: Uuid,
    pub business_id: Option<Uuid>,
    pub amount_minor: i64,
    pub points: i64,
    pub reason: String,
    pub state: RefundState,
    /// The provider's reason when the refund failed.
    pub failure: Option<String>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub status: OrderStatus,
    pub at: OffsetDateTime,
    pub reason: Option<String>,
}

/// A long-lived order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: Uuid,
    pub checkout_id: Uuid,
    pub customer_id: Uuid,
    pub customer_email: Option<String>,
    pub currency: String,
    pub lines: Vec<Line>,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub points_applied: i64,
    pub shipping_address: Address,
    pub status: OrderStatus,
    pub cancellation_reason: Option<CancellationReason>,
    pub stock: StockHold,
    pub payment: Option<Payment>,
    pub points: Option<PointsHold>,
    /// One per business, in the order the businesses first appear in the lines.
    pub fulfillments: Vec<Fulfillment>,
    pub refunds: Vec<Refund>,
    /// Oldest first, starting with `pending`.
    pub history: Vec<HistoryEntry>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Order {
    /// The lines of `business_id`'s part.
    pub fn lines_of(&self, business_id: Uuid) -> impl Iterator<Item = &Line> {
        self.lines
            .iter()
            .filter(move |line| line.business_id == business_id)
    }

    /// What one part is worth: the sums of `amount_due_minor` and
    /// `points_applied` over its lines (DESIGN §4 step 8).
    pub fn part_value(&self, business_id: Uuid) -> (i64, i64) {
        self.lines_of(business_id)
            .fold((0, 0), |(amount, points), line| {
                (amount + line.amount_due_minor, points + line.points_applied)
            })
    }

    pub fn fulfillment(&self, business_id: Uuid) -> Option<&Fulfillment> {
        self.fulfillments
            .iter()
            .find(|part| part.business_id == business_id)
    }

    pub fn refund(&self, refund_id: Uuid) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|refund| refund.refund_id == refund_id)
    }

    /// Refunds the provider refused, which an operator looks at.
    pub fn failed_refunds(&self) -> usize {
        self.refunds
            .iter()
            .filter(|refund| refund.state == RefundState::Failed)
            .count()
    }
}
