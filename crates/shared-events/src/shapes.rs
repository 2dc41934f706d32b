//! Shapes that several events share: an order line, a stock line, the
//! shipping address, a payment reference, and one business's part of an
//! order.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One priced line of an order, exactly as checkout quoted it. Refunds of a
/// declined part are the sums of `amount_due_minor` and `points_applied` over
/// its lines, so these numbers travel unchanged from checkout to dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The part of a line that stock cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLine {
    pub offering_id: Uuid,
    pub quantity: u32,
}

impl From<&Line> for StockLine {
    fn from(line: &Line) -> Self {
        StockLine {
            offering_id: line.offering_id,
            quantity: line.quantity,
        }
    }
}

/// The shipping address given at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// The authorization that pays for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRef {
    pub authorization_id: Uuid,
    /// `sandbox`, `stripe`, `paypal`, `apple_pay`. A string rather than an
    /// enum so that adding a provider does not change the contract.
    pub provider: String,
}

/// The lines of an order that one business fulfils.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchPart {
    pub business_id: Uuid,
    pub lines: Vec<Line>,
}
