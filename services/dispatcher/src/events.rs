//! The events dispatcher handles: `order_ready_for_dispatch` from the order
//! service. What it publishes is written into the outbox by `fulfillment`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use job_queue::Clock;
use messaging::{Handler, HandlerError};
use shared_events::order::OrderEvent;
use shared_events::Envelope;
use sqlx::PgConnection;

use crate::fulfillment::{self, Arrival};
use crate::plugins::Plugins;

/// Stores each part of a paid order and hands it to its business's plugin,
/// once per (order, business). The order's other events are not for
/// dispatcher.
pub struct OrderReadyHandler {
    pub plugins: Arc<Plugins>,
    pub clock: Arc<dyn Clock>,
    pub confirm_deadline: Duration,
}

#[async_trait]
impl Handler<OrderEvent> for OrderReadyHandler {
    fn acts_on(&self, event: &OrderEvent) -> bool {
        matches!(event, OrderEvent::OrderReadyForDispatch(_))
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<OrderEvent>,
    ) -> Result<(), HandlerError> {
        let ready = match &event.event {
            OrderEvent::OrderReadyForDispatch(ready) => ready,
            OrderEvent::OrderCreated(_)
            | OrderEvent::PaymentCaptureRequested(_)
            | OrderEvent::PaymentVoidRequested(_)
            | OrderEvent::PaymentRefundRequested(_)
            | OrderEvent::PointsSpendRequested(_)
            | OrderEvent::PointsReleaseRequested(_)
            | OrderEvent::PointsRefundRequested(_)
            | OrderEvent::StockReleaseRequested(_)
            | OrderEvent::OrderStatusChanged(_)
            | OrderEvent::OrderCancelled(_) => return Ok(()),
        };
        let arrival = fulfillment::arrive(
            conn,
            &self.plugins,
            ready,
            event.correlation_id,
            self.confirm_deadline,
            self.clock.now(),
        )
        .await
        .map_err(HandlerError::transient)?;
        match arrival {
            Arrival::Stored(parts) => {
                tracing::info!(new_parts = parts.len(), "parts handed to their plugins");
            }
            Arrival::Withdrawn => {
                tracing::info!("order was withdrawn before its parts arrived; none is sent");
            }
        }
        Ok(())
    }
}
