//! The wire contract between the services: every Kafka topic, the flat event
//! envelope, and one event enum per producing service.
//!
//! Only `serde`, `uuid` and `time` live here, so that any service (or a
//! consumer outside this workspace) can depend on the contract without pulling
//! in a broker client or a database driver.
//!
//! An event on the wire is one flat JSON object: the envelope fields
//! (`event_id`, `event_type`, `event_version`, `event_timestamp`, `producer`,
//! `correlation_id`) followed by the event's own fields. [`Envelope<E>`] is
//! that object; `E` is a producer's event enum, internally tagged by
//! `event_type`.

//!
//! | module | producer | topic |
//! |---|---|---|
//! | [`checkout`] | checkout | `heyblue.checkout.v1` |
//! | [`order`] | order | `heyblue.order.v1` |
//! | [`payment`] | payment-gateway | `heyblue.payment.v1` |
//! | [`catalog`] | catalog | `heyblue.catalog.v1` |
//! | [`points`] | user-points | `heyblue.points.v1` |
//! | [`dispatch`] | dispatcher | `heyblue.dispatch.v1` |
//! | [`connection`] | connection (outside this system) | `heyblue.connection.v1` |
//!
//! Shapes that several events share live in [`shapes`].

/// Implements `From<Struct> for Family` for variants named after the struct
/// they wrap, so producers can write `OrderEvent::from(order_created)`.
macro_rules! impl_from_events {
    ($family:ident: $($variant:ident),+ $(,)?) => {
        $(
            impl From<$variant> for $family {
                fn from(event: $variant) -> Self {
                    $family::$variant(event)
                }
            }
        )+
    };
}
pub(crate) use impl_from_events;

mod envelope;
mod topic;

pub mod catalog;
pub mod checkout;
pub mod connection;
pub mod dispatch;
pub mod order;
pub mod payment;
pub mod points;
pub mod shapes;

#[cfg(test)]
mod testing;

pub use envelope::{Envelope, EnvelopeHeader, EventFamily};
pub use topic::Topic;

pub use catalog::{
    CatalogEvent, OfferingChanged, OfferingKind, StockRejected, StockReleased, StockReserved,
};
pub use checkout::{CheckoutEvent, OrderSubmitted};
pub use connection::{ConnectionEvent, PointsAwarded};
pub use dispatch::{
    DispatchEvent, DispatchFailed, OrderConfirmed, OrderDeclined, OrderDelivered, OrderDispatched,
    OrderShipped, OrderWithdrawn,
};
pub use order::{
    CancellationReason, OrderCancelled, OrderCreated, OrderEvent, OrderReadyForDispatch,
    OrderStatus, OrderStatusChanged, PaymentCaptureRequested, PaymentRefundRequested,
    PaymentVoidRequested, PointsRefundRequested, PointsReleaseRequested, PointsSpendRequested,
    StockReleaseRequested,
};
pub use payment::{
    minor_unit_exponent, PaymentAmount, PaymentAuthorized, PaymentEvent, PaymentFailed,
    PaymentMethod, PaymentProcessing, PaymentRefundFailed, PaymentRefunded, PaymentStatus,
    PaymentSuccessful, PaymentVoided,
};
pub use points::{
    PointsCredited, PointsDonated, PointsEvent, PointsRefunded, PointsReleased, PointsReserved,
    PointsSource, PointsSpent,
};
pub use shapes::{Address, DispatchPart, Line, PaymentRef, StockLine};
