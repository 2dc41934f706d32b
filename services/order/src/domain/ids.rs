//! Refund ids derived from the order, the part and the purpose, so that a
//! command issued again (a re-sent event, a re-drive) carries the same id and
//! payment-gateway and user-points apply it once.
//!
//! The id is a version-8 (custom) UUID over SHA-256 of the three inputs: the
//! same inputs give the same id on every replica and after every restart.

use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

/// Why money or points are given back, part of the refund's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundPurpose {
    /// A business declined its part.
    PartDeclined,
    /// The customer cancelled after payment or points were taken.
    CustomerCancelled,
    /// A capture that arrived after the order was cancelled.
    LateCapture,
}

impl RefundPurpose {
    fn tag(self) -> &'static [u8] {
        match self {
            RefundPurpose::PartDeclined => b"part_declined",
            RefundPurpose::CustomerCancelled => b"customer_cancelled",
            RefundPurpose::LateCapture => b"late_capture",
        }
    }
}

/// The refund id of `business_id`'s part (or the whole order, `None`) of
/// `order_id` for `purpose`.
pub fn refund_id(order_id: Uuid, business_id: Option<Uuid>, purpose: RefundPurpose) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(b"heyblue.order.refund\0");
    hash.update(order_id.as_bytes());
    hash.update(business_id.unwrap_or(Uuid::nil()).as_bytes());
    hash.update(purpose.tag());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_part_and_purpose_give_the_same_id_and_anything_else_another() {
        let order = Uuid::new_v4();
        let business = Uuid::new_v4();
        let id = refund_id(order, Some(business), RefundPurpose::PartDeclined);
        assert_eq!(
            id,
            refund_id(order, Some(business), RefundPurpose::PartDeclined)
        );
        assert_eq!(id.get_version_num(), 8);
        assert_ne!(
            id,
            refund_id(order, Some(business), RefundPurpose::CustomerCancelled)
        );
        assert_ne!(
            id,
            refund_id(order, Some(Uuid::new_v4()), RefundPurpose::PartDeclined)
        );
        assert_ne!(id, refund_id(order, None, RefundPurpose::PartDeclined));
    }
}
