//! The events the order saga listens to — checkout's `order_submitted`,
//! catalog's stock answers, payment-gateway's payment answers, the
//! dispatcher's part updates — turned into saga inputs. What order publishes
//! is decided by the saga and written to the outbox by `journey`.
//!
//! A refused input is logged and counted, not retried: a duplicate or a late
//! event changes nothing, by design. Only an event that breaks the contract
//! (an order contradicting itself, a part or authorization the order does
//! not have) goes to the dead-letter topic for an operator.

use std::sync::Arc;

use async_trait::async_trait;
use job_queue::Clock;
use messaging::{Handler, HandlerError};
use shared_events::catalog::CatalogEvent;
use shared_events::checkout::CheckoutEvent;
use shared_events::dispatch::DispatchEvent;
use shared_events::payment::PaymentEvent;
use shared_events::{Envelope, EventFamily};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::saga::Input;
use crate::domain::Tracking;
use crate::journey::{self, Outcome};
use crate::metrics::OrderMetrics;

/// What every handler shares: the service's clock and metrics.
#[derive(Clone)]
pub struct Saga {
    pub clock: Arc<dyn Clock>,
    pub metrics: OrderMetrics,
}

impl Saga {
    async fn run<E: EventFamily>(
        &self,
        conn: &mut PgConnection,
        order_id: Uuid,
        input: Input,
        event: &Envelope<E>,
    ) -> Result<(), HandlerError> {
        let refund_failed = matches!(input, Input::RefundFailed { .. });
        let outcome = journey::step(
            conn,
            order_id,
            input,
            self.clock.now(),
            event.correlation_id,
        )
        .await?;
        match outcome {
            Outcome::Applied(order) => {
                if refund_failed {
                    self.metrics.refund_failures.inc();
                    tracing::error!(
                        status = order.status.as_str(),
                        "a refund of the order failed; an operator must act"
                    );
                }
                Ok(())
            }
            Outcome::Refused(refusal) if refusal.is_contradiction() => Err(
                HandlerError::permanent(anyhow::Error::new(refusal).context(format!(
                    "{} {} contradicts order {order_id}",
                    event.event_type(),
                    event.event_id
                ))),
            ),
            Outcome::Refused(refusal) => {
                self.metrics
                    .refusals
                    .with_label_values(&[event.event_type()])
                    .inc();
                tracing::warn!(%refusal, "event not applied to the order");
                Ok(())
            }
        }
    }
}

#[async_trait]
impl Handler<CheckoutEvent> for Saga {
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<CheckoutEvent>,
    ) -> Result<(), HandlerError> {
        let CheckoutEvent::OrderSubmitted(submitted) = &event.event;
        let input = Input::Submitted(Box::new(submitted.clone()));
        self.run(conn, submitted.order_id, input, event).await
    }
}

#[async_trait]
impl Handler<CatalogEvent> for Saga {
    fn acts_on(&self, event: &CatalogEvent) -> bool {
        catalog_input(event).is_some()
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, event_type = event.event_type()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<CatalogEvent>,
    ) -> Result<(), HandlerError> {
        match catalog_input(&event.event) {
            Some((order_id, input)) => self.run(conn, order_id, input, event).await,
            None => Ok(()),
        }
    }
}

/// What catalog's answer asks of the order.
fn catalog_input(event: &CatalogEvent) -> Option<(Uuid, Input)> {
    match event {
        CatalogEvent::StockReserved(reserved) => Some((reserved.order_id, Input::StockReserved)),
        CatalogEvent::StockRejected(rejected) => Some((rejected.order_id, Input::StockRejected)),
        // Catalog's answer to our own release, and the offerings' life: nothing to do.
        CatalogEvent::StockReleased(_) | CatalogEvent::OfferingChanged(_) => None,
    }
}

#[async_trait]
impl Handler<PaymentEvent> for Saga {
    fn acts_on(&self, event: &PaymentEvent) -> bool {
        payment_input(event).is_some()
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id(), event_type = event.event_type()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<PaymentEvent>,
    ) -> Result<(), HandlerError> {
        match payment_input(&event.event) {
            Some(input) => self.run(conn, event.event.order_id(), input, event).await,
            None => Ok(()),
        }
    }
}

/// What the payment's outcome asks of the order.
fn payment_input(event: &PaymentEvent) -> Option<Input> {
    match event {
        PaymentEvent::PaymentSuccessful(paid) => Some(Input::PaymentSucceeded {
            authorization_id: paid.authorization_id,
            transaction_id: paid.transaction_id.clone(),
        }),
        PaymentEvent::PaymentFailed(failed) => Some(Input::PaymentFailed {
            authorization_id: failed.authorization_id,
            reason: failed.reason.clone(),
        }),
        PaymentEvent::PaymentRefunded(refunded) => Some(Input::RefundSucceeded {
            refund_id: refunded.refund_id,
        }),
        PaymentEvent::PaymentRefundFailed(failed) => Some(Input::RefundFailed {
            refund_id: failed.refund_id,
            reason: failed.reason.clone(),
        }),
        // Checkout's authorization, the capture under way and a void
        // done: the order already is where these leave it.
        PaymentEvent::PaymentAuthorized(_)
        | PaymentEvent::PaymentProcessing(_)
        | PaymentEvent::PaymentVoided(_) => None,
    }
}

#[async_trait]
impl Handler<DispatchEvent> for Saga {
    fn acts_on(&self, event: &DispatchEvent) -> bool {
        dispatch_input(event).is_some()
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id(), business_id = %event.event.business_id(), event_type = event.event_type()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<DispatchEvent>,
    ) -> Result<(), HandlerError> {
        match dispatch_input(&event.event) {
            Some(input) => self.run(conn, event.event.order_id(), input, event).await,
            None => Ok(()),
        }
    }
}

/// What a business's part asks of the order.
fn dispatch_input(event: &DispatchEvent) -> Option<Input> {
    let business_id = event.business_id();
    let input = match event {
        DispatchEvent::OrderDispatched(_) => Input::Dispatched { business_id },
        DispatchEvent::OrderConfirmed(_) => Input::Confirmed { business_id },
        DispatchEvent::OrderShipped(shipped) => Input::Shipped {
            business_id,
            tracking: Tracking {
                carrier: shipped.carrier.clone(),
                tracking_number: shipped.tracking_number.clone(),
            },
        },
        DispatchEvent::OrderDelivered(_) => Input::Delivered { business_id },
        DispatchEvent::OrderDeclined(declined) => Input::Declined {
            business_id,
            reason: declined.reason.clone(),
        },
        DispatchEvent::OrderWithdrawn(_) => Input::Withdrawn { business_id },
        // For operators; the dispatcher declines the part with it, and
        // the order compensates on that `order_declined` only.
        DispatchEvent::DispatchFailed(_) => return None,
    };
    Some(input)
}
