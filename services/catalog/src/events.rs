//! The events catalog handles — `order_created` and `stock_release_requested`
//! from order — and the `offering_changed` it publishes whenever an offering
//! changes. Everything catalog publishes goes through the outbox.

use async_trait::async_trait;
use messaging::{Handler, HandlerError};
use shared_events::catalog::{self, CatalogEvent, OfferingChanged};
use shared_events::order::OrderEvent;
use shared_events::{Envelope, EventFamily};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Offering, OfferingKind};
use crate::stock::{self, ReserveOutcome, StockError};

/// `offering_changed`: the offering as `GET /v1/offerings/{id}` shows it.
pub fn offering_changed(offering: &Offering, correlation_id: Uuid) -> Envelope<CatalogEvent> {
    let kind = match offering.kind {
        OfferingKind::Product => catalog::OfferingKind::Product,
        OfferingKind::Voucher => catalog::OfferingKind::Voucher,
        OfferingKind::Service => catalog::OfferingKind::Service,
    };
    let changed = CatalogEvent::OfferingChanged(OfferingChanged {
        id: offering.id,
        business_id: offering.business_id,
        title: offering.title.clone(),
        description: offering.description.clone(),
        kind,
        price_minor: offering.price_minor,
        currency: offering.currency.clone(),
        points_price: offering.points_price,
        stock: offering.stock,
        active: offering.active,
        created_at: offering.created_at,
        updated_at: offering.updated_at,
    });
    Envelope::new(changed, correlation_id)
}

/// Reserves stock on `order_created` and releases it on
/// `stock_release_requested`; order's other events are not catalog's concern.
pub struct OrderHandler;

#[async_trait]
impl Handler<OrderEvent> for OrderHandler {
    fn acts_on(&self, event: &OrderEvent) -> bool {
        matches!(
            event,
            OrderEvent::OrderCreated(_) | OrderEvent::StockReleaseRequested(_)
        )
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<OrderEvent>,
    ) -> Result<(), HandlerError> {
        match &event.event {
            OrderEvent::OrderCreated(order) => {
                match stock::reserve(conn, order, event.correlation_id).await {
                    Ok(ReserveOutcome::Decided(answer)) => {
                        tracing::info!(outcome = answer.event_type(), "order decided");
                        Ok(())
                    }
                    Ok(ReserveOutcome::Repeated(answer)) => {
                        tracing::info!(
                            outcome = answer.event_type(),
                            "order decided before; answered again, nothing changed"
                        );
                        Ok(())
                    }
                    Err(StockError::Database(error)) => Err(error.into()),
                    Err(
                        error @ (StockError::ZeroQuantity { .. } | StockError::LinesChanged(_)),
                    ) => Err(HandlerError::permanent(error)),
                }
            }
            OrderEvent::StockReleaseRequested(request) => {
                stock::release(conn, request, event.correlation_id).await?;
                Ok(())
            }
            OrderEvent::PaymentCaptureRequested(_)
            | OrderEvent::PaymentVoidRequested(_)
            | OrderEvent::PaymentRefundRequested(_)
            | OrderEvent::PointsSpendRequested(_)
            | OrderEvent::PointsReleaseRequested(_)
            | OrderEvent::PointsRefundRequested(_)
            | OrderEvent::OrderReadyForDispatch(_)
            | OrderEvent::OrderStatusChanged(_)
            | OrderEvent::OrderCancelled(_) => Ok(()),
        }
    }
}
