//! The wire shape of a part, shared by the resources that answer with one.

use serde::Serialize;
use shared_events::{Address, Line};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Dispatch, Status};

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusBody {
    Queued,
    Sent,
    Confirmed,
    Shipped,
    Delivered,
    Declined,
    Cancelled,
}

impl From<Status> for StatusBody {
    fn from(status: Status) -> Self {
        match status {
            Status::Queued => StatusBody::Queued,
            Status::Sent => StatusBody::Sent,
            Status::Confirmed => StatusBody::Confirmed,
            Status::Shipped => StatusBody::Shipped,
            Status::Delivered => StatusBody::Delivered,
            Status::Declined => StatusBody::Declined,
            Status::Cancelled => StatusBody::Cancelled,
        }
    }
}

/// One line of the part, as checkout priced it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineBody {
    pub offering_id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub points_applied: i64,
    pub discount_minor: i64,
    pub amount_due_minor: i64,
}

impl From<Line> for LineBody {
    fn from(line: Line) -> Self {
        LineBody {
            offering_id: line.offering_id,
            business_id: line.business_id,
            title: line.title,
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
            points_applied: line.points_applied,
            discount_minor: line.discount_minor,
            amount_due_minor: line.amount_due_minor,
        }
    }
}

/// Where the part goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddressBody {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
}

impl From<Address> for AddressBody {
    fn from(address: Address) -> Self {
        AddressBody {
            name: address.name,
            line1: address.line1,
            line2: address.line2,
            city: address.city,
            postal_code: address.postal_code,
            country: address.country,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrackingBody {
    pub carrier: String,
    pub tracking_number: String,
}

/// A business's part of an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartBody {
    pub dispatch_id: Uuid,
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub status: StatusBody,
    pub lines: Vec<LineBody>,
    pub shipping_address: AddressBody,
    /// The business's own reference, once it gave one.
    pub reference: Option<String>,
    pub tracking: Option<TrackingBody>,
    /// Why it was declined: the business's words, `timeout` or `dispatch_failed`.
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Dispatch> for PartBody {
    fn from(part: Dispatch) -> Self {
        let tracking = match (part.carrier, part.tracking_number) {
            (Some(carrier), Some(tracking_number)) => Some(TrackingBody {
                carrier,
                tracking_number,
            }),
            _ => None,
        };
        PartBody {
            dispatch_id: part.dispatch_id,
            order_id: part.order_id,
            business_id: part.business_id,
            status: part.status.into(),
            lines: part.lines.into_iter().map(LineBody::from).collect(),
            shipping_address: part.shipping_address.into(),
            reference: part.reference,
            tracking,
            reason: part.reason,
            created_at: part.created_at,
            updated_at: part.updated_at,
        }
    }
}
