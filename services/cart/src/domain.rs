//! The cart's rules and types, free of HTTP and SQL.

use time::OffsetDateTime;
use uuid::Uuid;

/// How many units of one offering a cart may hold.
pub const MAX_QUANTITY: u32 = 99;

/// Units of one offering in a cart: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(quantity: i64) -> Result<Self, QuantityOutOfRange> {
        u32::try_from(quantity)
            .ok()
            .filter(|quantity| (1..=MAX_QUANTITY).contains(quantity))
            .map(Quantity)
            .ok_or(QuantityOutOfRange(quantity))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A quantity outside 1..=99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("quantity must be between 1 and {MAX_QUANTITY}, not {0}")]
pub struct QuantityOutOfRange(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartItem {
    pub offering_id: Uuid,
    pub quantity: Quantity,
}

/// A user's cart: items in the order they were first added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cart {
    pub user_id: Uuid,
    pub items: Vec<CartItem>,
    /// When the cart last changed; `None` for a cart never used.
    pub updated_at: Option<OffsetDateTime>,
}

impl Cart {
    pub fn empty(user_id: Uuid) -> Cart {
        Cart {
            user_id,
            items: Vec::new(),
            updated_at: None,
        }
    }
}

/// What an offering looks like to the cart: whether it can be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferingState {
    Active,
    Inactive,
    Unknown,
}

/// What lowering a cart by a checked-out order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutOutcome {
    Lowered,
    /// The order was taken out of the cart before: nothing changed.
    AlreadyApplied,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_is_one_to_ninety_nine() {
        assert_eq!(Quantity::new(1).map(Quantity::get), Ok(1));
        assert_eq!(Quantity::new(99).map(Quantity::get), Ok(99));
        assert_eq!(Quantity::new(0), Err(QuantityOutOfRange(0)));
        assert_eq!(Quantity::new(100), Err(QuantityOutOfRange(100)));
        assert_eq!(Quantity::new(-1), Err(QuantityOutOfRange(-1)));
        assert!(Quantity::new(i64::MAX).is_err());
    }
}
