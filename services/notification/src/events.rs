//! The events notification turns into notifications, one handler per topic:
//! what each event says about whom the order belongs to, and which fact (if
//! any) it tells. [`inbox::tell`] applies both. Notification publishes
//! nothing.

use async_trait::async_trait;
use messaging::{Handler, HandlerError};
use shared_events::checkout::CheckoutEvent;
use shared_events::dispatch::DispatchEvent;
use shared_events::order::{OrderEvent, OrderStatus};
use shared_events::payment::PaymentEvent;
use shared_events::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{wording, Customer, Notice};
use crate::inbox::{self, TellError, Told};

/// `order_submitted` carries the customer's email before the order exists,
/// so the first notification can be emailed at once.
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
        let customer = Customer {
            order_id: submitted.order_id,
            customer_id: submitted.customer_id,
            email: submitted.customer_email.clone(),
        };
        apply(conn, submitted.order_id, Some(customer), None).await
    }
}

/// The order's own events: they name the customer and tell that the order
/// was placed, paid with points only, or cancelled.
pub struct OrderHandler;

#[async_trait]
impl Handler<OrderEvent> for OrderHandler {
    fn acts_on(&self, event: &OrderEvent) -> bool {
        says_something(order_says(event))
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<OrderEvent>,
    ) -> Result<(), HandlerError> {
        let (customer, notice) = order_says(&event.event);
        apply(conn, event.event.order_id(), customer, notice).await
    }
}

/// Whom an order event names as the customer, and what it tells them.
fn order_says(event: &OrderEvent) -> (Option<Customer>, Option<Notice>) {
    let order_id = event.order_id();
    let customer = |customer_id: Uuid, email: Option<&String>| Customer {
        order_id,
        customer_id,
        email: email.cloned(),
    };
    match event {
        OrderEvent::OrderCreated(created) => (
            Some(customer(created.customer_id, None)),
            Some(wording::placed(created)),
        ),
        // Only an order that needs no payment goes from pending straight
        // to processing; other orders are told paid by the payment itself.
        OrderEvent::OrderStatusChanged(changed)
            if changed.from == OrderStatus::Pending && changed.to == OrderStatus::Processing =>
        {
            (
                Some(customer(
                    changed.customer_id,
                    changed.customer_email.as_ref(),
                )),
                Some(wording::paid_with_points(order_id)),
            )
        }
        OrderEvent::OrderCancelled(cancelled) => (
            Some(customer(cancelled.customer_id, None)),
            Some(wording::cancelled(cancelled)),
        ),
        // Any other status change is told by what caused it (the payment,
        // a business's part, `order_cancelled`), and commands to other
        // services through their outcomes. Those that name the customer
        // come after `order_created` on the same partition, which named
        // them first, and `order_submitted` brings the email: acting on
        // them would only write again what the order's row holds.
        OrderEvent::OrderStatusChanged(_)
        | OrderEvent::OrderReadyForDispatch(_)
        | OrderEvent::PointsSpendRequested(_)
        | OrderEvent::PointsReleaseRequested(_)
        | OrderEvent::PointsRefundRequested(_)
        | OrderEvent::PaymentCaptureRequested(_)
        | OrderEvent::PaymentVoidRequested(_)
        | OrderEvent::PaymentRefundRequested(_)
        | OrderEvent::StockReleaseRequested(_) => (None, None),
    }
}

/// Payments: a captured payment (which also names the customer) and each
/// refund are told.
pub struct PaymentHandler;

#[async_trait]
impl Handler<PaymentEvent> for PaymentHandler {
    fn acts_on(&self, event: &PaymentEvent) -> bool {
        says_something(payment_says(event))
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<PaymentEvent>,
    ) -> Result<(), HandlerError> {
        let (customer, notice) = payment_says(&event.event);
        apply(conn, event.event.order_id(), customer, notice).await
    }
}

/// Whom a payment event names as the customer, and what it tells them.
fn payment_says(event: &PaymentEvent) -> (Option<Customer>, Option<Notice>) {
    match event {
        PaymentEvent::PaymentSuccessful(paid) => (
            Some(Customer {
                order_id: event.order_id(),
                customer_id: paid.customer_id,
                email: None,
            }),
            Some(wording::paid(paid)),
        ),
        PaymentEvent::PaymentRefunded(refunded) => (None, Some(wording::refunded(refunded))),
        // A failed payment reaches the customer as the order's
        // cancellation; the rest are steps of the gateway's own work, and
        // a refund the provider keeps refusing is for an operator.
        PaymentEvent::PaymentAuthorized(_)
        | PaymentEvent::PaymentProcessing(_)
        | PaymentEvent::PaymentFailed(_)
        | PaymentEvent::PaymentVoided(_)
        | PaymentEvent::PaymentRefundFailed(_) => (None, None),
    }
}

/// Each business's part: dispatched, confirmed, shipped, delivered or
/// declined.
pub struct DispatchHandler;

#[async_trait]
impl Handler<DispatchEvent> for DispatchHandler {
    fn acts_on(&self, event: &DispatchEvent) -> bool {
        dispatch_notice(event).is_some()
    }

    #[tracing::instrument(skip_all, fields(
        event_id = %event.event_id,
        order_id = %event.event.order_id(),
        business_id = %event.event.business_id()
    ))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<DispatchEvent>,
    ) -> Result<(), HandlerError> {
        let notice = dispatch_notice(&event.event);
        apply(conn, event.event.order_id(), None, notice).await
    }
}

/// What a business's part tells the customer.
fn dispatch_notice(event: &DispatchEvent) -> Option<Notice> {
    match event {
        DispatchEvent::OrderDispatched(part) => Some(wording::dispatched(part)),
        DispatchEvent::OrderConfirmed(part) => Some(wording::confirmed(part)),
        DispatchEvent::OrderShipped(part) => Some(wording::shipped(part)),
        DispatchEvent::OrderDelivered(part) => Some(wording::delivered(part)),
        DispatchEvent::OrderDeclined(part) => Some(wording::declined(part)),
        // For operators (the customer hears of it as `order_declined`),
        // and a withdrawal follows the customer's own cancellation.
        DispatchEvent::DispatchFailed(_) | DispatchEvent::OrderWithdrawn(_) => None,
    }
}

/// Whether an event names the customer or tells them something: one that
/// does neither is passed over.
fn says_something((customer, notice): (Option<Customer>, Option<Notice>)) -> bool {
    customer.is_some() || notice.is_some()
}

async fn apply(
    conn: &mut PgConnection,
    order_id: Uuid,
    customer: Option<Customer>,
    notice: Option<Notice>,
) -> Result<(), HandlerError> {
    if customer.is_none() && notice.is_none() {
        return Ok(());
    }
    let told = inbox::tell(conn, order_id, customer.as_ref(), notice.as_ref())
        .await
        .map_err(|error| match error {
            TellError::Database(error) => HandlerError::from(error),
            TellError::Job(error) => HandlerError::permanent(error),
        })?;
    match told {
        Told::Told => tracing::info!("notification added to the inbox"),
        Told::AlreadyTold => tracing::info!("told before; nothing to do"),
        Told::Parked => tracing::info!("order's customer not known yet; notification parked"),
        Told::NothingToTell => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_events::order::OrderStatusChanged;

    fn changed(from: OrderStatus, to: OrderStatus) -> OrderEvent {
        OrderEvent::OrderStatusChanged(OrderStatusChanged {
            order_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            customer_email: Some("ada@example.test".to_owned()),
            from,
            to,
            reason: None,
        })
    }

    #[test]
    fn a_status_change_is_acted_on_only_when_it_tells_the_customer_something() {
        use OrderStatus::*;
        assert!(OrderHandler.acts_on(&changed(Pending, Processing)));
        for (from, to) in [
            (Pending, PaymentProcessing),
            (PaymentProcessing, Processing),
            (Processing, Dispatched),
            (Shipped, Delivered),
            (Pending, Cancelled),
        ] {
            assert!(
                !OrderHandler.acts_on(&changed(from, to)),
                "{from:?} → {to:?} tells nothing of its own"
            );
        }
    }
}
