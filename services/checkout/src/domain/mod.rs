//! checkout's rules and types, free of HTTP and SQL: the pricing rule
//! ([`pricing`]), what a checkout request must hold ([`request`]), a stored
//! checkout and the event it becomes ([`checkout`]), and the
//! states a checkout goes through.

pub mod checkout;
pub mod pricing;
pub mod request;

pub use checkout::Checkout;
pub use pricing::{price, CartLine, PricedLine, PricingError, Quote};
pub use request::{points_budget, CheckoutRequest, InvalidRequest, PaymentChoice, ShippingAddress};

/// The most units of one offering a cart holds (cart's own rule).
pub const MAX_QUANTITY: u32 = 99;
/// The highest `price_minor` and `points_price` an offering may have (DESIGN §2).
pub const MAX_PRICE: i64 = 100_000_000;

/// Units of one offering in a checkout: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(quantity: u32) -> Result<Self, OutOfRange> {
        if (1..=MAX_QUANTITY).contains(&quantity) {
            Ok(Quantity(quantity))
        } else {
            Err(OutOfRange {
                what: "quantity",
                value: i64::from(quantity),
            })
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A count of points: never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Points(i64);

impl Points {
    pub const ZERO: Points = Points(0);

    pub fn new(points: i64) -> Result<Self, OutOfRange> {
        if points >= 0 {
            Ok(Points(points))
        } else {
            Err(OutOfRange {
                what: "points",
                value: points,
            })
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A price in minor units: 1 to [`MAX_PRICE`] (money or points per unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnitPrice(i64);

impl UnitPrice {
    pub fn new(what: &'static str, price: i64) -> Result<Self, OutOfRange> {
        if (1..=MAX_PRICE).contains(&price) {
            Ok(UnitPrice(price))
        } else {
            Err(OutOfRange { what, value: price })
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A number outside what the rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} out of range: {value}")]
pub struct OutOfRange {
    pub what: &'static str,
    pub value: i64,
}

/// Where a checkout is. `InProgress` is the short moment between the
/// checkout being written and the payment answering; the rest are what
/// customers see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutStatus {
    InProgress,
    /// Waiting for the customer (3-D Secure, a PayPal approval page).
    RequiresAction,
    /// The order is submitted.
    Completed,
    /// Refused (declined, out of stock, a peer down); nothing is held.
    Failed,
    /// Left unconfirmed past its reservation; nothing is held.
    Expired,
}

impl CheckoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStatus::InProgress => "in_progress",
            CheckoutStatus::RequiresAction => "requires_action",
            CheckoutStatus::Completed => "completed",
            CheckoutStatus::Failed => "failed",
            CheckoutStatus::Expired => "expired",
        }
    }

    pub fn parse(status: &str) -> Option<Self> {
        Some(match status {
            "in_progress" => CheckoutStatus::InProgress,
            "requires_action" => CheckoutStatus::RequiresAction,
            "completed" => CheckoutStatus::Completed,
            "failed" => CheckoutStatus::Failed,
            "expired" => CheckoutStatus::Expired,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_points_and_prices_keep_to_their_ranges() {
        assert!(Quantity::new(0).is_err());
        assert_eq!(Quantity::new(99).map(Quantity::get), Ok(99));
        assert!(Quantity::new(100).is_err());
        assert_eq!(Points::new(0), Ok(Points::ZERO));
        assert!(Points::new(-1).is_err());
        assert!(UnitPrice::new("price_minor", 0).is_err());
        assert!(UnitPrice::new("price_minor", MAX_PRICE).is_ok());
        assert!(UnitPrice::new("price_minor", MAX_PRICE + 1).is_err());
    }

    #[test]
    fn every_status_reads_back_as_itself() {
        for status in [
            CheckoutStatus::InProgress,
            CheckoutStatus::RequiresAction,
            CheckoutStatus::Completed,
            CheckoutStatus::Failed,
            CheckoutStatus::Expired,
        ] {
            assert_eq!(CheckoutStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(CheckoutStatus::parse("paid"), None);
    }
}
