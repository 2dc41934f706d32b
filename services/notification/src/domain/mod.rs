//! What notification knows, free of HTTP, SQL and Kafka: the kinds of
//! notification ([`Kind`]), a fact worth telling worded for the customer
//! ([`Notice`]), whom an order belongs to ([`Customer`]), a notification as
//! the inbox keeps it ([`Notification`]), and the wording itself
//! ([`wording`]).

pub mod wording;

use time::OffsetDateTime;
use uuid::Uuid;

/// The steps of an order a customer is told about (DESIGN §4 step 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The order exists.
    Placed,
    /// Its payment was captured (or, for an order paid with points only, it
    /// needs none).
    Paid,
    /// A business's part was placed at the business.
    Dispatched,
    /// The business accepted its part.
    Confirmed,
    /// The part is with a carrier.
    Shipped,
    /// The part arrived.
    Delivered,
    /// A business will not fulfil its part; its money and points come back.
    Declined,
    /// Money went back to the customer.
    Refunded,
    /// The order ended unfulfilled.
    Cancelled,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Placed,
        Kind::Paid,
        Kind::Dispatched,
        Kind::Confirmed,
        Kind::Shipped,
        Kind::Delivered,
        Kind::Declined,
        Kind::Refunded,
        Kind::Cancelled,
    ];

    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Placed => "placed",
            Kind::Paid => "paid",
            Kind::Dispatched => "dispatched",
            Kind::Confirmed => "confirmed",
            Kind::Shipped => "shipped",
            Kind::Delivered => "delivered",
            Kind::Declined => "declined",
            Kind::Refunded => "refunded",
            Kind::Cancelled => "cancelled",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// A fact about an order, worded for its customer. `(order_id, kind,
/// fact_key)` names the fact, so it is told once however often it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub order_id: Uuid,
    pub kind: Kind,
    /// Which fact of its kind: empty for the order's own (placed, paid,
    /// cancelled), the business for a part, the refund for a refund.
    pub fact_key: String,
    pub title: String,
    pub body: String,
}

/// Whom an order belongs to, as one of the order's events says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub order_id: Uuid,
    pub customer_id: Uuid,
    /// Only some events carry it (`order_submitted`, `order_status_changed`).
    pub email: Option<String>,
}

/// A notification in a user's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub kind: Kind,
    pub title: String,
    pub body: String,
    pub created_at: OffsetDateTime,
    pub read_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("teleported"), None);
    }
}
