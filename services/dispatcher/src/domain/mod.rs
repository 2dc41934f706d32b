//! The rules of a business's part of an order (a dispatch): its fulfillment
//! statuses, the transitions between them, and the business's actions as
//! values that cannot be built invalid. No axum, sqlx or Kafka here.

mod action;

pub use action::{Action, ActionError, Carrier, DeclineReason, Reference, TrackingNumber};

use std::fmt;
use std::str::FromStr;

use shared_events::{Address, Line};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where a part is in its fulfillment (DESIGN §4):
/// `queued → sent → confirmed → shipped → delivered`,
/// `queued | sent → declined`, `queued | sent → cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Arrived; its plugin has not placed it at the business yet.
    Queued,
    /// Placed at the business (for `portal`, in its queue).
    Sent,
    Confirmed,
    Shipped,
    Delivered,
    /// By the business, by `timeout`, or by `dispatch_failed`.
    Declined,
    /// Withdrawn because the customer cancelled.
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Queued,
        Status::Sent,
        Status::Confirmed,
        Status::Shipped,
        Status::Delivered,
        Status::Declined,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sent => "sent",
            Status::Confirmed => "confirmed",
            Status::Shipped => "shipped",
            Status::Delivered => "delivered",
            Status::Declined => "declined",
            Status::Cancelled => "cancelled",
        }
    }

    /// Whether the fulfillment machine allows going from `self` to `next`.
    pub fn can_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (Status::Queued, Status::Sent)
                | (Status::Sent, Status::Confirmed)
                | (Status::Confirmed, Status::Shipped)
                | (Status::Shipped, Status::Delivered)
                | (Status::Queued | Status::Sent, Status::Declined)
                | (Status::Queued | Status::Sent, Status::Cancelled)
        )
    }

    /// Once a business confirmed a part, the customer can no longer cancel.
    pub fn is_confirmed_or_later(self) -> bool {
        matches!(
            self,
            Status::Confirmed | Status::Shipped | Status::Delivered
        )
    }

    /// Still waiting for the business's confirmation (the deadline runs).
    pub fn awaits_confirmation(self) -> bool {
        matches!(self, Status::Queued | Status::Sent)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fulfillment status {0:?}; one of queued, sent, confirmed, shipped, delivered, declined, cancelled")]
pub struct UnknownStatus(pub String);

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(raw: &str) -> Result<Self, UnknownStatus> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .ok_or_else(|| UnknownStatus(raw.to_owned()))
    }
}

/// Why the dispatcher declined a part itself, as `order_declined` says.
pub const REASON_TIMEOUT: &str = "timeout";
pub const REASON_DISPATCH_FAILED: &str = "dispatch_failed";

/// One business's part of an order, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub dispatch_id: Uuid,
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub customer_id: Uuid,
    pub correlation_id: Uuid,
    pub plugin: String,
    pub status: Status,
    pub lines: Vec<Line>,
    pub shipping_address: Address,
    pub reference: Option<String>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub reason: Option<String>,
    pub delivery_attempts: i32,
    pub confirm_by: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A part that arrived in `order_ready_for_dispatch`, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDispatch {
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub customer_id: Uuid,
    pub correlation_id: Uuid,
    pub lines: Vec<Line>,
    pub shipping_address: Address,
}

/// Why an action on a part is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the part of order {order_id} was withdrawn: the customer cancelled it")]
    Cancelled { order_id: Uuid },
    #[error("a {status} part cannot be {action}")]
    InvalidTransition {
        status: Status,
        action: &'static str,
    },
}

impl Dispatch {
    /// The status `action` leads to from here, or why it is refused.
    pub fn check(&self, action: &Action) -> Result<Status, Refusal> {
        let next = action.leads_to();
        if self.status == Status::Cancelled {
            return Err(Refusal::Cancelled {
                order_id: self.order_id,
            });
        }
        if self.status.can_become(next) {
            Ok(next)
        } else {
            Err(Refusal::InvalidTransition {
                status: self.status,
                action: action.past_tense(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_name() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
        }
        assert!("lost".parse::<Status>().is_err());
    }

    #[test]
    fn only_the_designed_transitions_are_allowed() {
        let allowed: Vec<(Status, Status)> = Status::ALL
            .into_iter()
            .flat_map(|from| Status::ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| from.can_become(*to))
            .collect();
        use Status::*;
        assert_eq!(
            allowed,
            vec![
                (Queued, Sent),
                (Queued, Declined),
                (Queued, Cancelled),
                (Sent, Confirmed),
                (Sent, Declined),
                (Sent, Cancelled),
                (Confirmed, Shipped),
                (Shipped, Delivered),
            ]
        );
    }
}
