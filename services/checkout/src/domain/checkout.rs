//! A checkout as stored: the accepted quote, what it holds at its peers and
//! where it stands, and the `order_submitted` event it becomes.

use shared_events::checkout::OrderSubmitted;
use shared_events::{Address, Line, PaymentRef};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CheckoutStatus, PaymentChoice, Quote, ShippingAddress};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    pub id: Uuid,
    pub order_id: Uuid,
    pub customer_id: Uuid,
    pub customer_email: Option<String>,
    pub status: CheckoutStatus,
    pub currency: String,
    pub quote: Quote,
    /// The customer's available points when quoted.
    pub available_points: i64,
    pub shipping_address: ShippingAddress,
    pub payment: Option<PaymentChoice>,
    pub return_url: Option<String>,
    pub reservation_id: Option<Uuid>,
    /// Past this the checkout cannot be finished.
    pub expires_at: OffsetDateTime,
    pub authorization_id: Option<Uuid>,
    pub next_action_url: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: OffsetDateTime,
}

impl Checkout {
    /// True when the checkout must not be finished at `now`: its
    /// reservation expires within `margin` (or has expired), so a late
    /// `order_submitted` could race user-points' release.
    pub fn too_late(&self, now: OffsetDateTime, margin: std::time::Duration) -> bool {
        now + margin >= self.expires_at
    }

    /// The provider that authorized the payment, when one did.
    pub fn provider(&self) -> Option<&str> {
        self.authorization_id
            .and(self.payment.as_ref())
            .map(|payment| payment.provider.as_str())
    }

    /// The finished checkout as the fact the rest of the fleet acts on.
    pub fn order_submitted(&self) -> OrderSubmitted {
        let address = &self.shipping_address;
        OrderSubmitted {
            order_id: self.order_id,
            checkout_id: self.id,
            customer_id: self.customer_id,
            customer_email: self.customer_email.clone(),
            reservation_id: self.reservation_id,
            currency: self.currency.clone(),
            lines: self
                .quote
                .lines
                .iter()
                .map(|priced| Line {
                    offering_id: priced.line.offering_id,
                    business_id: priced.line.business_id,
                    title: priced.line.title.clone(),
                    quantity: priced.line.quantity.get(),
                    unit_price_minor: priced.line.unit_price_minor.get(),
                    points_applied: priced.points_applied,
                    discount_minor: priced.discount_minor,
                    amount_due_minor: priced.amount_due_minor,
                })
                .collect(),
            subtotal_minor: self.quote.subtotal_minor,
            discount_minor: self.quote.discount_minor,
            total_minor: self.quote.total_minor,
            points_applied: self.quote.points_applied,
            shipping_address: Address {
                name: address.name.clone(),
                line1: address.line1.clone(),
                line2: address.line2.clone(),
                city: address.city.clone(),
                postal_code: address.postal_code.clone(),
                country: address.country.clone(),
            },
            payment: self.authorization_id.zip(self.provider()).map(
                |(authorization_id, provider)| PaymentRef {
                    authorization_id,
                    provider: provider.to_owned(),
                },
            ),
        }
    }
}
