//! The events user-points handles: awards from the connection capability,
//! `order_submitted` from checkout (binds the reservation to its order), and
//! the order's points commands. What it publishes is written into the outbox
//! by `store` and `ledger`.

use std::sync::Arc;

use async_trait::async_trait;
use job_queue::Clock;
use messaging::{Handler, HandlerError};
use shared_events::checkout::CheckoutEvent;
use shared_events::connection::ConnectionEvent;
use shared_events::order::OrderEvent;
use shared_events::Envelope;
use sqlx::PgConnection;

use crate::domain::{AwardOutcome, Binding, NewAward};
use crate::ledger::reservations::{self, CommandError, Refund};
use crate::metrics::PointsMetrics;
use crate::store;

/// Credits `points_awarded` from the connection capability, once per `award_id`.
pub struct AwardHandler;

#[async_trait]
impl Handler<ConnectionEvent> for AwardHandler {
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ConnectionEvent>,
    ) -> Result<(), HandlerError> {
        let ConnectionEvent::PointsAwarded(awarded) = &event.event;
        let award = NewAward::new(
            awarded.award_id,
            awarded.user_id,
            awarded.points,
            &awarded.reason,
            Some(awarded.connection_id),
        )
        .map_err(|error| {
            HandlerError::permanent(
                anyhow::Error::new(error).context(format!("invalid award {}", awarded.award_id)),
            )
        })?;
        match store::awards::credit(conn, &award).await? {
            AwardOutcome::Credited(_) => Ok(()),
            AwardOutcome::AlreadyCredited(_) => {
                tracing::info!(award_id = %award.award_id, "award credited before; nothing to do");
                Ok(())
            }
            AwardOutcome::Conflict(existing) => Err(HandlerError::permanent(anyhow::anyhow!(
                "award {} was credited before with other fields (user {}, {} points)",
                existing.award_id,
                existing.user_id,
                existing.points
            ))),
        }
    }
}

/// Binds a submitted order's reservation to the order (`order_submitted`).
pub struct OrderSubmittedHandler {
    pub clock: Arc<dyn Clock>,
    pub metrics: PointsMetrics,
}

#[async_trait]
impl Handler<CheckoutEvent> for OrderSubmittedHandler {
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<CheckoutEvent>,
    ) -> Result<(), HandlerError> {
        let CheckoutEvent::OrderSubmitted(submitted) = &event.event;
        // A checkout that redeems no points reserves none.
        let Some(reservation_id) = submitted.reservation_id else {
            return Ok(());
        };
        let (reservation, binding) = reservations::bind(
            conn,
            reservation_id,
            submitted.customer_id,
            submitted.order_id,
            self.clock.now(),
            event.correlation_id,
        )
        .await
        .map_err(failure)?;
        match binding {
            Binding::AlreadyBound => {
                tracing::info!(%reservation_id, "bound before; nothing to do");
            }
            Binding::Bound => tracing::info!(%reservation_id, "reservation bound to its order"),
            Binding::Reheld { held, shortfall: 0 } => {
                tracing::info!(%reservation_id, held, "expired reservation held again for its order");
            }
            Binding::Reheld { held, shortfall } => {
                self.metrics
                    .shortfall_points
                    .with_label_values(&["reheld"])
                    .inc_by(shortfall.unsigned_abs());
                tracing::error!(
                    %reservation_id,
                    user_id = %reservation.user_id,
                    asked = reservation.points,
                    held,
                    shortfall,
                    "reservation expired before its order was seen and the balance no longer covers it; held what was available"
                );
            }
        }
        Ok(())
    }
}

/// Applies the order's points commands: spend and release once per
/// reservation, refund once per `refund_id`. Other order events are not
/// for user-points.
pub struct OrderCommandHandler {
    pub clock: Arc<dyn Clock>,
    pub metrics: PointsMetrics,
}

#[async_trait]
impl Handler<OrderEvent> for OrderCommandHandler {
    fn acts_on(&self, event: &OrderEvent) -> bool {
        matches!(
            event,
            OrderEvent::PointsSpendRequested(_)
                | OrderEvent::PointsReleaseRequested(_)
                | OrderEvent::PointsRefundRequested(_)
        )
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<OrderEvent>,
    ) -> Result<(), HandlerError> {
        let now = self.clock.now();
        match &event.event {
            OrderEvent::PointsSpendRequested(command) => {
                let reservation = reservations::spend(
                    conn,
                    command.reservation_id,
                    command.customer_id,
                    command.order_id,
                    command.points,
                    now,
                    event.correlation_id,
                )
                .await
                .map_err(failure)?;
                if reservation.shortfall > 0 {
                    self.metrics
                        .shortfall_points
                        .with_label_values(&["spent"])
                        .inc_by(reservation.shortfall.unsigned_abs());
                    tracing::error!(
                        reservation_id = %reservation.reservation_id,
                        asked = command.points,
                        spent = reservation.spent,
                        shortfall = reservation.shortfall,
                        "the order asked to spend more points than were held for it"
                    );
                }
            }
            OrderEvent::PointsReleaseRequested(command) => {
                reservations::release(
                    conn,
                    command.reservation_id,
                    command.customer_id,
                    command.order_id,
                    now,
                    event.correlation_id,
                )
                .await
                .map_err(failure)?;
            }
            OrderEvent::PointsRefundRequested(command) => {
                let refund = reservations::refund(
                    conn,
                    command.refund_id,
                    command.customer_id,
                    command.order_id,
                    command.business_id,
                    command.points,
                    event.correlation_id,
                )
                .await
                .map_err(failure)?;
                if let Refund::Applied { requested, points } = refund {
                    if points < requested {
                        tracing::error!(
                            refund_id = %command.refund_id,
                            requested,
                            refunded = points,
                            "refund asks for more points than the order has left spent; refunded what was left"
                        );
                    }
                }
            }
            OrderEvent::OrderCreated(_)
            | OrderEvent::PaymentCaptureRequested(_)
            | OrderEvent::PaymentVoidRequested(_)
            | OrderEvent::PaymentRefundRequested(_)
            | OrderEvent::StockReleaseRequested(_)
            | OrderEvent::OrderReadyForDispatch(_)
            | OrderEvent::OrderStatusChanged(_)
            | OrderEvent::OrderCancelled(_) => {}
        }
        Ok(())
    }
}

/// A command that contradicts the ledger goes to the dead-letter topic for
/// an operator; a database failure is retried unless it broke a constraint.
fn failure(error: CommandError) -> HandlerError {
    match error {
        CommandError::Database(error) => HandlerError::from(error),
        refused => HandlerError::permanent(refused),
    }
}
