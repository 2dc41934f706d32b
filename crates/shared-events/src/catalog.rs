//! What catalog publishes on `heyblue.catalog.v1`: the outcome of each stock
//! reservation or release for an order, and every change to an offering.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{EventFamily, StockLine, Topic};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", rename_all = "snake_case")]
pub enum CatalogEvent {
    StockReserved(StockReserved),
    StockRejected(StockRejected),
    StockReleased(StockReleased),
    OfferingChanged(OfferingChanged),
}

impl CatalogEvent {
    /// The order this event is about; `offering_changed` is about no order.
    pub fn order_id(&self) -> Option<Uuid> {
        match self {
            CatalogEvent::StockReserved(e) => Some(e.order_id),
            CatalogEvent::StockRejected(e) => Some(e.order_id),
            CatalogEvent::StockReleased(e) => Some(e.order_id),
            CatalogEvent::OfferingChanged(_) => None,
        }
    }
}

impl EventFamily for CatalogEvent {
    const TOPIC: Topic = Topic::Catalog;
    const PRODUCER: &'static str = "catalog";
    const EVENT_TYPES: &'static [&'static str] = &[
        "stock_reserved",
        "stock_rejected",
        "stock_released",
        "offering_changed",
    ];

    fn event_type(&self) -> &'static str {
        match self {
            CatalogEvent::StockReserved(_) => "stock_reserved",
            CatalogEvent::StockRejected(_) => "stock_rejected",
            CatalogEvent::StockReleased(_) => "stock_released",
            CatalogEvent::OfferingChanged(_) => "offering_changed",
        }
    }

    fn partition_key(&self) -> String {
        match self {
            CatalogEvent::StockReserved(e) => e.order_id.to_string(),
            CatalogEvent::StockRejected(e) => e.order_id.to_string(),
            CatalogEvent::StockReleased(e) => e.order_id.to_string(),
            // Keyed by the offering so that its changes arrive in order.
            CatalogEvent::OfferingChanged(e) => e.id.to_string(),
        }
    }
}

/// Stock is held for every line of the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// Nothing was held: reservations are all or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockRejected {
    pub order_id: Uuid,
    pub lines: Vec<StockLine>,
    /// The offerings that had too little stock, or are inactive or gone.
    pub short_offering_ids: Vec<Uuid>,
}

/// The held stock is back on sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    pub order_id: Uuid,
    pub lines: Vec<StockLine>,
}

/// An offering was created or changed; the fields are the offering as
/// `GET /v1/offerings/{id}` shows it after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferingChanged {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: OfferingKind,
    pub price_minor: i64,
    pub currency: String,
    pub points_price: i64,
    /// Units still available to new orders; null means unlimited.
    pub stock: Option<i64>,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferingKind {
    Product,
    Voucher,
    Service,
}

crate::impl_from_events!(
    CatalogEvent: StockReserved,
    StockRejected,
    StockReleased,
    OfferingChanged,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_is_listed_and_matches_its_serialized_tag() {
        crate::testing::assert_family_is_consistent::<CatalogEvent>(&[
            include_str!("../tests/fixtures/catalog/stock_reserved.json"),
            include_str!("../tests/fixtures/catalog/stock_rejected.json"),
            include_str!("../tests/fixtures/catalog/stock_released.json"),
            include_str!("../tests/fixtures/catalog/offering_changed.json"),
        ]);
    }
}
