//! The events cart handles. It publishes none: a cart is private to its
//! user and nobody else acts on its changes.

use async_trait::async_trait;
use messaging::{Handler, HandlerError};
use shared_events::checkout::CheckoutEvent;
use shared_events::Envelope;
use sqlx::PgConnection;

use crate::domain::CheckoutOutcome;
use crate::store;

/// Takes what an order bought out of its customer's cart, once per order.
pub struct CheckoutHandler;

#[async_trait]
impl Handler<CheckoutEvent> for CheckoutHandler {
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<CheckoutEvent>,
    ) -> Result<(), HandlerError> {
        let CheckoutEvent::OrderSubmitted(submitted) = &event.event;
        let bought: Vec<_> = submitted
            .lines
            .iter()
            .map(|line| (line.offering_id, line.quantity))
            .collect();
        let outcome =
            store::apply_checkout(conn, submitted.order_id, submitted.customer_id, &bought).await?;
        if outcome == CheckoutOutcome::AlreadyApplied {
            tracing::info!("order taken out of the cart before; nothing to do");
        }
        Ok(())
    }
}
