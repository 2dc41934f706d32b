//! The saga's rules, in one place: [`apply`] takes the order as it stands
//! and one thing that happened to it, and answers the order as it stands
//! afterwards plus every command and fact the order publishes because of it
//! — or a [`Refusal`], in which case nothing is applied.
//!
//! Read it top to bottom as DESIGN §4: creation (step 3), stock (3–4),
//! payment (4–5), the parts at their businesses (6–7), and the compensations
//! of step 8 where each of those can go wrong, then the customer's cancel.
//!
//! Idempotent by business state, not only by event id: an event re-sent as a
//! new event, or one that arrives after the order has moved past it, finds
//! the order no longer in the state it applies to and is refused, so no
//! second command, refund or status change is ever issued. The only events
//! that still act on a cancelled order are those that must be compensated:
//! stock reserved after the cancel is released, a capture after the cancel
//! is refunded in full — each once, because applying it changes the state
//! that let it act.

use shared_events::checkout::OrderSubmitted;
use shared_events::order::{
    self as wire, OrderCancelled, OrderCreated, OrderEvent, OrderReadyForDispatch,
    OrderStatusChanged, PaymentCaptureRequested, PaymentRefundRequested, PaymentVoidRequested,
    PointsRefundRequested, PointsReleaseRequested, PointsSpendRequested, StockReleaseRequested,
};
use shared_events::{DispatchPart, StockLine};
use time::OffsetDateTime;
use uuid::Uuid;

use super::ids::{refund_id, RefundPurpose};
use super::{
    CancellationReason, Fulfillment, FulfillmentStatus, HistoryEntry, Line, Order, OrderStatus,
    Payment, PaymentState, PointsHold, PointsState, Refund, RefundState, StockHold, Tracking,
};

/// Something that happened to an order: another service's event, or the
/// customer's cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Submitted(Box<OrderSubmitted>),
    StockReserved,
    StockRejected,
    PaymentSucceeded {
        authorization_id: Uuid,
        transaction_id: String,
    },
    PaymentFailed {
        authorization_id: Uuid,
        reason: String,
    },
    RefundSucceeded {
        refund_id: Uuid,
    },
    RefundFailed {
        refund_id: Uuid,
        reason: String,
    },
    Dispatched {
        business_id: Uuid,
    },
    Confirmed {
        business_id: Uuid,
    },
    Shipped {
        business_id: Uuid,
        tracking: Tracking,
    },
    Delivered {
        business_id: Uuid,
    },
    Declined {
        business_id: Uuid,
        reason: String,
    },
    Withdrawn {
        business_id: Uuid,
    },
    /// The dispatcher has withdrawn every part; see [`check_cancel`].
    CustomerCancel,
}

impl Input {
    pub fn name(&self) -> &'static str {
        match self {
            Input::Submitted(_) => "order_submitted",
            Input::StockReserved => "stock_reserved",
            Input::StockRejected => "stock_rejected",
            Input::PaymentSucceeded { .. } => "payment_successful",
            Input::PaymentFailed { .. } => "payment_failed",
            Input::RefundSucceeded { .. } => "payment_refunded",
            Input::RefundFailed { .. } => "payment_refund_failed",
            Input::Dispatched { .. } => "order_dispatched",
            Input::Confirmed { .. } => "order_confirmed",
            Input::Shipped { .. } => "order_shipped",
            Input::Delivered { .. } => "order_delivered",
            Input::Declined { .. } => "order_declined",
            Input::Withdrawn { .. } => "order_withdrawn",
            Input::CustomerCancel => "customer_cancel",
        }
    }
}

/// The order after an input, and everything it publishes because of it,
/// in the order it is published.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub order: Order,
    pub commands: Vec<OrderEvent>,
}

/// Why an input was not applied. Nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the order exists already")]
    OrderExists,
    #[error("no such order")]
    UnknownOrder,
    #[error("the submitted order contradicts itself: {0}")]
    InvalidSubmission(&'static str),
    #[error("{input} does not apply to an order that is {status:?} (stock {stock:?})")]
    NotExpected {
        input: &'static str,
        status: OrderStatus,
        stock: StockHold,
    },
    #[error("{input} names authorization {got}, not the order's")]
    AuthorizationMismatch { input: &'static str, got: Uuid },
    #[error("the order has no part of business {0}")]
    UnknownPart(Uuid),
    #[error("business {business_id}'s part cannot move from {from:?} to {to:?}")]
    FulfillmentTransition {
        business_id: Uuid,
        from: FulfillmentStatus,
        to: FulfillmentStatus,
    },
    #[error("the order has no refund {0}")]
    UnknownRefund(Uuid),
    #[error("refund {0} is settled already")]
    RefundSettled(Uuid),
    #[error("the order is cancelled already")]
    AlreadyCancelled,
    #[error("a part of the order is confirmed by its business")]
    NotCancellable,
    #[error("the payment is being captured")]
    PaymentInProgress,
}

impl Refusal {
    /// A refusal that means a producer broke the contract, not a duplicate or
    /// late event: an operator looks at it.
    pub fn is_contradiction(&self) -> bool {
        matches!(
            self,
            Refusal::InvalidSubmission(_)
                | Refusal::AuthorizationMismatch { .. }
                | Refusal::UnknownPart(_)
        )
    }
}

/// Applies `input` to `order` (`None`: no order with that id yet) at `now`.
pub fn apply(
    order: Option<&Order>,
    input: Input,
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let Some(order) = order else {
        return match input {
            Input::Submitted(submitted) => create(&submitted, now),
            _ => Err(Refusal::UnknownOrder),
        };
    };
    let mut step = Step {
        order: order.clone(),
        commands: Vec::new(),
        now,
    };
    match input {
        Input::Submitted(_) => return Err(Refusal::OrderExists),
        Input::StockReserved => step.stock_reserved()?,
        Input::StockRejected => step.stock_rejected()?,
        Input::PaymentSucceeded {
            authorization_id,
            transaction_id,
        } => step.payment_succeeded(authorization_id, transaction_id)?,
        Input::PaymentFailed {
            authorization_id, ..
        } => step.payment_failed(authorization_id)?,
        Input::RefundSucceeded { refund_id } => step.refund_settled(refund_id, None)?,
        Input::RefundFailed { refund_id, reason } => {
            step.refund_settled(refund_id, Some(reason))?
        }
        Input::Dispatched { business_id } => {
            step.part_moves(business_id, FulfillmentStatus::Sent, "order_dispatched")?
        }
        Input::Confirmed { business_id } => {
            step.part_moves(business_id, FulfillmentStatus::Confirmed, "order_confirmed")?
        }
        Input::Shipped {
            business_id,
            tracking,
        } => {
            step.part_moves(business_id, FulfillmentStatus::Shipped, "order_shipped")?;
            step.part_mut(business_id)?.tracking = Some(tracking);
        }
        Input::Delivered { business_id } => {
            step.part_moves(business_id, FulfillmentStatus::Delivered, "order_delivered")?
        }
        Input::Declined {
            business_id,
            reason,
        } => step.part_declined(business_id, reason)?,
        Input::Withdrawn { business_id } => step.part_withdrawn(business_id)?,
        Input::CustomerCancel => step.customer_cancel()?,
    }
    step.order.updated_at = now;
    Ok(Decision {
        order: step.order,
        commands: step.commands,
    })
}

/// Whether the customer may cancel `order` now (DESIGN §3): not during a
/// capture, not once a business confirmed its part. `AlreadyCancelled` is
/// not an error to the customer: cancelling again answers as the first time.
pub fn check_cancel(order: &Order) -> Result<(), Refusal> {
    if order.status == OrderStatus::Cancelled {
        return Err(Refusal::AlreadyCancelled);
    }
    if order.status == OrderStatus::PaymentProcessing {
        return Err(Refusal::PaymentInProgress);
    }
    let confirmed = order.fulfillments.iter().any(|part| {
        matches!(
            part.status,
            FulfillmentStatus::Confirmed
                | FulfillmentStatus::Shipped
                | FulfillmentStatus::Delivered
        )
    });
    if confirmed || order.status >= OrderStatus::Confirmed {
        return Err(Refusal::NotCancellable);
    }
    Ok(())
}

/// Step 3: the order exists (`pending`), one `queued` part per business, and
/// catalog is asked to reserve its stock (`order_created`).
fn create(submitted: &OrderSubmitted, now: OffsetDateTime) -> Result<Decision, Refusal> {
    if submitted.lines.is_empty() {
        return Err(Refusal::InvalidSubmission("the order has no lines"));
    }
    if submitted.total_minor != submitted.subtotal_minor - submitted.discount_minor {
        return Err(Refusal::InvalidSubmission(
            "total is not subtotal minus discount",
        ));
    }
    if submitted.total_minor > 0 && submitted.payment.is_none() {
        return Err(Refusal::InvalidSubmission(
            "a total above 0 without an authorization",
        ));
    }
    let lines: Vec<Line> = submitted
        .lines
        .iter()
        .map(|line| Line {
            offering_id: line.offering_id,
            business_id: line.business_id,
            title: line.title.clone(),
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
            points_applied: line.points_applied,
            discount_minor: line.discount_minor,
            amount_due_minor: line.amount_due_minor,
        })
        .collect();
    let mut fulfillments: Vec<Fulfillment> = Vec::new();
    for line in &lines {
        if fulfillments
            .iter()
            .all(|part| part.business_id != line.business_id)
        {
            fulfillments.push(Fulfillment {
                business_id: line.business_id,
                status: FulfillmentStatus::Queued,
                tracking: None,
                reason: None,
            });
        }
    }
    let order = Order {
        id: submitted.order_id,
        checkout_id: submitted.checkout_id,
        customer_id: submitted.customer_id,
        customer_email: submitted.customer_email.clone(),
        currency: submitted.currency.clone(),
        subtotal_minor: submitted.subtotal_minor,
        discount_minor: submitted.discount_minor,
        total_minor: submitted.total_minor,
        points_applied: submitted.points_applied,
        shipping_address: submitted.shipping_address.clone(),
        status: OrderStatus::Pending,
        cancellation_reason: None,
        stock: StockHold::Awaiting,
        payment: submitted.payment.as_ref().map(|payment| Payment {
            authorization_id: payment.authorization_id,
            provider: payment.provider.clone(),
            transaction_id: None,
            state: PaymentState::Authorized,
        }),
        points: submitted.reservation_id.map(|reservation_id| PointsHold {
            reservation_id,
            state: PointsState::Reserved,
        }),
        fulfillments,
        refunds: Vec::new(),
        history: vec![HistoryEntry {
            status: OrderStatus::Pending,
            at: now,
            reason: None,
        }],
        created_at: now,
        updated_at: now,
        lines,
    };
    let created = OrderCreated {
        order_id: order.id,
        customer_id: order.customer_id,
        lines: stock_lines(order.lines.iter()),
    };
    Ok(Decision {
        order,
        commands: vec![created.into()],
    })
}

/// One input being applied: the order as it becomes, and what it publishes.
struct Step {
    order: Order,
    commands: Vec<OrderEvent>,
    now: OffsetDateTime,
}

impl Step {
    fn not_expected(&self, input: &'static str) -> Refusal {
        Refusal::NotExpected {
            input,
            status: self.order.status,
            stock: self.order.stock,
        }
    }

    /// Steps 3–4: stock is held. A paid order asks for its capture; a total-0
    /// order goes straight to `processing`. Held for an order the customer
    /// cancelled meanwhile, it goes straight back.
    fn stock_reserved(&mut self) -> Result<(), Refusal> {
        match (self.order.status, self.order.stock) {
            (OrderStatus::Pending, StockHold::Awaiting) => {
                self.order.stock = StockHold::Reserved;
                let total = self.order.total_minor;
                match self.order.payment.as_mut() {
                    Some(payment) if total > 0 && payment.state == PaymentState::Authorized => {
                        payment.state = PaymentState::CaptureRequested;
                        let capture = PaymentCaptureRequested {
                            order_id: self.order.id,
                            authorization_id: payment.authorization_id,
                            amount_minor: total,
                            currency: self.order.currency.clone(),
                        };
                        self.commands.push(capture.into());
                        self.move_to(OrderStatus::PaymentProcessing, None);
                    }
                    _ => {
                        // Nothing to capture; an authorization of 0 is let go.
                        self.void_payment();
                        self.start_processing();
                    }
                }
                Ok(())
            }
            (OrderStatus::Cancelled, StockHold::Awaiting) => {
                self.order.stock = StockHold::Released;
                self.release_stock(self.order.lines.clone().iter());
                Ok(())
            }
            _ => Err(self.not_expected("stock_reserved")),
        }
    }

    /// Step 8: no stock → void the authorization, release the points, cancel.
    fn stock_rejected(&mut self) -> Result<(), Refusal> {
        match (self.order.status, self.order.stock) {
            (OrderStatus::Pending, StockHold::Awaiting) => {
                self.order.stock = StockHold::Rejected;
                self.void_payment();
                self.release_points();
                self.cancel(CancellationReason::OutOfStock);
                Ok(())
            }
            // Cancelled before catalog answered: nothing is held, nothing to give back.
            (OrderStatus::Cancelled, StockHold::Awaiting) => {
                self.order.stock = StockHold::Rejected;
                Ok(())
            }
            _ => Err(self.not_expected("stock_rejected")),
        }
    }

    /// Steps 4–5: paid → `processing`. A capture of an order cancelled
    /// meanwhile is refunded in full.
    fn payment_succeeded(
        &mut self,
        authorization_id: Uuid,
        transaction_id: String,
    ) -> Result<(), Refusal> {
        let status = self.order.status;
        let Some(payment) = self.order.payment.as_mut() else {
            return Err(self.not_expected("payment_successful"));
        };
        if payment.authorization_id != authorization_id {
            return Err(Refusal::AuthorizationMismatch {
                input: "payment_successful",
                got: authorization_id,
            });
        }
        match (status, payment.state) {
            (OrderStatus::PaymentProcessing, PaymentState::CaptureRequested) => {
                payment.state = PaymentState::Captured;
                payment.transaction_id = Some(transaction_id);
                self.start_processing();
                Ok(())
            }
            (
                OrderStatus::Cancelled,
                PaymentState::Authorized | PaymentState::CaptureRequested | PaymentState::Voided,
            ) => {
                payment.state = PaymentState::Captured;
                payment.transaction_id = Some(transaction_id);
                let reason = self
                    .order
                    .cancellation_reason
                    .unwrap_or(CancellationReason::CustomerCancelled);
                self.refund(
                    None,
                    self.order.total_minor,
                    0,
                    RefundPurpose::LateCapture,
                    reason.as_str(),
                );
                Ok(())
            }
            _ => Err(self.not_expected("payment_successful")),
        }
    }

    /// Step 8: the capture failed → release stock and points, cancel.
    fn payment_failed(&mut self, authorization_id: Uuid) -> Result<(), Refusal> {
        let status = self.order.status;
        let Some(payment) = self.order.payment.as_mut() else {
            return Err(self.not_expected("payment_failed"));
        };
        if payment.authorization_id != authorization_id {
            return Err(Refusal::AuthorizationMismatch {
                input: "payment_failed",
                got: authorization_id,
            });
        }
        if (status, payment.state)
            != (
                OrderStatus::PaymentProcessing,
                PaymentState::CaptureRequested,
            )
        {
            return Err(self.not_expected("payment_failed"));
        }
        payment.state = PaymentState::Failed;
        self.order.stock = StockHold::Released;
        self.release_stock(self.order.lines.clone().iter());
        self.release_points();
        self.cancel(CancellationReason::PaymentFailed);
        Ok(())
    }

    /// payment-gateway's answer to one of our refunds. A refund that failed
    /// may still succeed later (an operator retried it); one that succeeded
    /// stays so.
    fn refund_settled(&mut self, refund_id: Uuid, failure: Option<String>) -> Result<(), Refusal> {
        let refund = self
            .order
            .refunds
            .iter_mut()
            .find(|refund| refund.refund_id == refund_id)
            .ok_or(Refusal::UnknownRefund(refund_id))?;
        match (refund.state, failure) {
            (RefundState::Requested, Some(reason)) => {
                refund.state = RefundState::Failed;
                refund.failure = Some(reason);
            }
            (RefundState::Requested | RefundState::Failed, None) => {
                refund.state = RefundState::Refunded;
                refund.failure = None;
            }
            _ => return Err(Refusal::RefundSettled(refund_id)),
        }
        Ok(())
    }

    /// Steps 6–7: a part moves along its machine, and the order follows its
    /// parts.
    fn part_moves(
        &mut self,
        business_id: Uuid,
        to: FulfillmentStatus,
        input: &'static str,
    ) -> Result<(), Refusal> {
        if self.order.status < OrderStatus::Processing {
            return Err(self.not_expected(input));
        }
        let part = self.part_mut(business_id)?;
        if !part.status.can_move_to(to) {
            return Err(Refusal::FulfillmentTransition {
                business_id,
                from: part.status,
                to,
            });
        }
        part.status = to;
        self.follow_parts();
        Ok(())
    }

    /// Step 8: a part declined → refund exactly that part (its money and
    /// points), release its stock; every part declined → cancelled.
    fn part_declined(&mut self, business_id: Uuid, reason: String) -> Result<(), Refusal> {
        self.part_moves(business_id, FulfillmentStatus::Declined, "order_declined")?;
        self.part_mut(business_id)?.reason = Some(reason.clone());
        let lines: Vec<Line> = self.order.lines_of(business_id).cloned().collect();
        self.release_stock(lines.iter());
        let (amount, points) = self.part_refundable(business_id);
        self.refund(
            Some(business_id),
            amount,
            points,
            RefundPurpose::PartDeclined,
            &reason,
        );
        Ok(())
    }

    /// The dispatcher confirms what the customer's cancel already recorded.
    fn part_withdrawn(&mut self, business_id: Uuid) -> Result<(), Refusal> {
        let cancelled = self.order.status == OrderStatus::Cancelled;
        let part = self.part_mut(business_id)?;
        if !cancelled || !part.status.can_move_to(FulfillmentStatus::Cancelled) {
            return Err(Refusal::FulfillmentTransition {
                business_id,
                from: part.status,
                to: FulfillmentStatus::Cancelled,
            });
        }
        part.status = FulfillmentStatus::Cancelled;
        Ok(())
    }

    /// Step 8, the customer: the dispatcher has withdrawn the parts. Before
    /// payment: void and release. After: refund per part (one entry per
    /// business), release the stock.
    fn customer_cancel(&mut self) -> Result<(), Refusal> {
        check_cancel(&self.order)?;
        let open: Vec<Uuid> = self
            .order
            .fulfillments
            .iter()
            .filter(|part| part.status.can_move_to(FulfillmentStatus::Cancelled))
            .map(|part| part.business_id)
            .collect();
        if self.order.stock == StockHold::Reserved {
            // Declined parts gave their stock back when they were declined.
            let lines: Vec<Line> = self
                .order
                .lines
                .iter()
                .filter(|line| open.contains(&line.business_id))
                .cloned()
                .collect();
            self.order.stock = StockHold::Released;
            self.release_stock(lines.iter());
        }
        for business_id in open {
            let (amount, points) = self.part_refundable(business_id);
            if amount > 0 || points > 0 {
                self.refund(
                    Some(business_id),
                    amount,
                    points,
                    RefundPurpose::CustomerCancelled,
                    CancellationReason::CustomerCancelled.as_str(),
                );
            }
        }
        self.void_payment();
        self.release_points();
        self.cancel(CancellationReason::CustomerCancelled);
        Ok(())
    }

    fn part_mut(&mut self, business_id: Uuid) -> Result<&mut Fulfillment, Refusal> {
        self.order
            .fulfillments
            .iter_mut()
            .find(|part| part.business_id == business_id)
            .ok_or(Refusal::UnknownPart(business_id))
    }

    /// Step 7: the order's status is the lowest among its parts still in
    /// play, and only moves forward; with none left, every part was declined.
    fn follow_parts(&mut self) {
        if self.order.status.is_terminal() {
            return;
        }
        let in_play: Vec<OrderStatus> = self
            .order
            .fulfillments
            .iter()
            .filter_map(|part| part.status.order_status())
            .collect();
        match in_play.into_iter().min() {
            None => self.cancel(CancellationReason::DeclinedByBusiness),
            Some(lowest) if lowest > self.order.status => self.move_to(lowest, None),
            Some(_) => {}
        }
    }

    /// Step 5: paid (or free) → `processing`: spend the points, hand each
    /// business its part.
    fn start_processing(&mut self) {
        self.move_to(OrderStatus::Processing, None);
        // A reservation of 0 points is not DESIGN's (checkout makes none),
        // but if one comes it is let go rather than spent.
        if self.order.points_applied == 0 {
            self.release_points();
        }
        if let Some(points) = self.order.points.as_mut() {
            if points.state == PointsState::Reserved {
                points.state = PointsState::Spent;
                let spend = PointsSpendRequested {
                    order_id: self.order.id,
                    customer_id: self.order.customer_id,
                    reservation_id: points.reservation_id,
                    points: self.order.points_applied,
                };
                self.commands.push(spend.into());
            }
        }
        let parts = self
            .order
            .fulfillments
            .iter()
            .map(|part| DispatchPart {
                business_id: part.business_id,
                lines: self
                    .order
                    .lines_of(part.business_id)
                    .map(wire_line)
                    .collect(),
            })
            .collect();
        let ready = OrderReadyForDispatch {
            order_id: self.order.id,
            customer_id: self.order.customer_id,
            shipping_address: self.order.shipping_address.clone(),
            parts,
        };
        self.commands.push(ready.into());
    }

    /// What a part is worth in what was actually taken: its money once
    /// captured, its points once spent.
    fn part_refundable(&self, business_id: Uuid) -> (i64, i64) {
        let (amount, points) = self.order.part_value(business_id);
        let captured = self
            .order
            .payment
            .as_ref()
            .is_some_and(|payment| payment.state == PaymentState::Captured);
        let spent = self
            .order
            .points
            .is_some_and(|hold| hold.state == PointsState::Spent);
        (
            if captured { amount } else { 0 },
            if spent { points } else { 0 },
        )
    }

    /// Appends one refund entry and asks for its money and points back
    /// (each skipped when 0). A refund of the same part for the same purpose
    /// exists at most once: its id is derived from them.
    fn refund(
        &mut self,
        business_id: Option<Uuid>,
        amount_minor: i64,
        points: i64,
        purpose: RefundPurpose,
        reason: &str,
    ) {
        let refund_id = refund_id(self.order.id, business_id, purpose);
        if self.order.refund(refund_id).is_some() {
            return;
        }
        let authorization_id = self
            .order
            .payment
            .as_ref()
            .map(|payment| payment.authorization_id);
        let money = match authorization_id {
            Some(authorization_id) if amount_minor > 0 => Some(PaymentRefundRequested {
                order_id: self.order.id,
                authorization_id,
                refund_id,
                business_id,
                amount_minor,
                currency: self.order.currency.clone(),
                reason: reason.to_owned(),
            }),
            _ => None,
        };
        self.order.refunds.push(Refund {
            refund_id,
            business_id,
            amount_minor: money.as_ref().map_or(0, |refund| refund.amount_minor),
            points,
            reason: reason.to_owned(),
            // Only money has an answer to wait for; points come back by the command alone.
            state: if money.is_some() {
                RefundState::Requested
            } else {
                RefundState::Refunded
            },
            failure: None,
            at: self.now,
        });
        if let Some(money) = money {
            self.commands.push(money.into());
        }
        if let (Some(business_id), true) = (business_id, points > 0) {
            let points = PointsRefundRequested {
                order_id: self.order.id,
                customer_id: self.order.customer_id,
                refund_id,
                business_id,
                points,
            };
            self.commands.push(points.into());
        }
    }

    fn release_stock<'a>(&mut self, lines: impl Iterator<Item = &'a Line>) {
        let lines = stock_lines(lines);
        if lines.is_empty() {
            return;
        }
        let release = StockReleaseRequested {
            order_id: self.order.id,
            lines,
        };
        self.commands.push(release.into());
    }

    /// Lets go of an authorization that was never captured.
    fn void_payment(&mut self) {
        let Some(payment) = self.order.payment.as_mut() else {
            return;
        };
        if payment.state != PaymentState::Authorized {
            return;
        }
        payment.state = PaymentState::Voided;
        let void = PaymentVoidRequested {
            order_id: self.order.id,
            authorization_id: payment.authorization_id,
            amount_minor: self.order.total_minor,
            currency: self.order.currency.clone(),
        };
        self.commands.push(void.into());
    }

    /// Gives back points that were reserved and never spent.
    fn release_points(&mut self) {
        let Some(points) = self.order.points.as_mut() else {
            return;
        };
        if points.state != PointsState::Reserved {
            return;
        }
        points.state = PointsState::Released;
        let release = PointsReleaseRequested {
            order_id: self.order.id,
            customer_id: self.order.customer_id,
            reservation_id: points.reservation_id,
            points: self.order.points_applied,
        };
        self.commands.push(release.into());
    }

    /// Ends the order: parts not yet placed are cancelled with it.
    fn cancel(&mut self, reason: CancellationReason) {
        for part in &mut self.order.fulfillments {
            if part.status.can_move_to(FulfillmentStatus::Cancelled) {
                part.status = FulfillmentStatus::Cancelled;
            }
        }
        self.order.cancellation_reason = Some(reason);
        self.move_to(OrderStatus::Cancelled, Some(reason.as_str()));
        let cancelled = OrderCancelled {
            order_id: self.order.id,
            customer_id: self.order.customer_id,
            reason: wire_reason(reason),
        };
        self.commands.push(cancelled.into());
    }

    /// Every status change is in the history and on the topic.
    fn move_to(&mut self, to: OrderStatus, reason: Option<&str>) {
        let from = self.order.status;
        debug_assert!(from.can_move_to(to), "{from:?} → {to:?}");
        self.order.status = to;
        self.order.history.push(HistoryEntry {
            status: to,
            at: self.now,
            reason: reason.map(str::to_owned),
        });
        let changed = OrderStatusChanged {
            order_id: self.order.id,
            customer_id: self.order.customer_id,
            customer_email: self.order.customer_email.clone(),
            from: wire_status(from),
            to: wire_status(to),
            reason: reason.map(str::to_owned),
        };
        self.commands.push(changed.into());
    }
}

fn stock_lines<'a>(lines: impl Iterator<Item = &'a Line>) -> Vec<StockLine> {
    lines
        .map(|line| StockLine {
            offering_id: line.offering_id,
            quantity: line.quantity,
        })
        .collect()
}

fn wire_line(line: &Line) -> shared_events::Line {
    shared_events::Line {
        offering_id: line.offering_id,
        business_id: line.business_id,
        title: line.title.clone(),
        quantity: line.quantity,
        unit_price_minor: line.unit_price_minor,
        points_applied: line.points_applied,
        discount_minor: line.discount_minor,
        amount_due_minor: line.amount_due_minor,
    }
}

pub fn wire_status(status: OrderStatus) -> wire::OrderStatus {
    match status {
        OrderStatus::Pending => wire::OrderStatus::Pending,
        OrderStatus::PaymentProcessing => wire::OrderStatus::PaymentProcessing,
        OrderStatus::Processing => wire::OrderStatus::Processing,
        OrderStatus::Dispatched => wire::OrderStatus::Dispatched,
        OrderStatus::Confirmed => wire::OrderStatus::Confirmed,
        OrderStatus::Shipped => wire::OrderStatus::Shipped,
        OrderStatus::Delivered => wire::OrderStatus::Delivered,
        OrderStatus::Cancelled => wire::OrderStatus::Cancelled,
    }
}

fn wire_reason(reason: CancellationReason) -> wire::CancellationReason {
    match reason {
        CancellationReason::OutOfStock => wire::CancellationReason::OutOfStock,
        CancellationReason::PaymentFailed => wire::CancellationReason::PaymentFailed,
        CancellationReason::DeclinedByBusiness => wire::CancellationReason::DeclinedByBusiness,
        CancellationReason::CustomerCancelled => wire::CancellationReason::CustomerCancelled,
    }
}

#[cfg(test)]
mod tests {
    use shared_events::{Address, PaymentRef};

    use super::*;

    const B1: Uuid = Uuid::from_u128(0xb1);
    const B2: Uuid = Uuid::from_u128(0xb2);
    const AUTH: Uuid = Uuid::from_u128(0xa0);

    fn line(business_id: Uuid, amount: i64, points: i64) -> shared_events::Line {
        shared_events::Line {
            offering_id: Uuid::new_v4(),
            business_id,
            title: "Mug".to_owned(),
            quantity: 1,
            unit_price_minor: amount + points,
            points_applied: points,
            discount_minor: points,
            amount_due_minor: amount,
        }
    }

    fn submitted() -> OrderSubmitted {
        OrderSubmitted {
            order_id: Uuid::new_v4(),
            checkout_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            customer_email: Some("ada@example.com".to_owned()),
            reservation_id: Some(Uuid::new_v4()),
            currency: "USD".to_owned(),
            lines: vec![line(B1, 900, 100), line(B2, 500, 0)],
            subtotal_minor: 1500,
            discount_minor: 100,
            total_minor: 1400,
            points_applied: 100,
            shipping_address: Address {
                name: "Ada".to_owned(),
                line1: "1 Main St".to_owned(),
                line2: None,
                city: "Springfield".to_owned(),
                postal_code: "12345".to_owned(),
                country: "US".to_owned(),
            },
            payment: Some(PaymentRef {
                authorization_id: AUTH,
                provider: "sandbox".to_owned(),
            }),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn run(inputs: Vec<Input>) -> Order {
        let mut order: Option<Order> = None;
        for input in inputs {
            let name = input.name();
            let decision = apply(order.as_ref(), input, now())
                .unwrap_or_else(|refusal| panic!("{name} refused while setting up: {refusal}"));
            order = Some(decision.order);
        }
        order.expect("at least one input")
    }

    fn both(make: fn(Uuid) -> Input) -> Vec<Input> {
        vec![make(B1), make(B2)]
    }

    fn paid() -> Input {
        Input::PaymentSucceeded {
            authorization_id: AUTH,
            transaction_id: "pi_1".to_owned(),
        }
    }

    /// The order in each status, reached the way DESIGN's journey reaches it.
    fn orders() -> Vec<(&'static str, Order)> {
        let submit = || Input::Submitted(Box::new(submitted()));
        let to_processing = || vec![submit(), Input::StockReserved, paid()];
        let with = |mut inputs: Vec<Input>, more: Vec<Vec<Input>>| {
            for step in more {
                inputs.extend(step);
            }
            run(inputs)
        };
        let dispatched = || vec![both(|b| Input::Dispatched { business_id: b })];
        let confirmed = || {
            let mut steps = dispatched();
            steps.push(both(|b| Input::Confirmed { business_id: b }));
            steps
        };
        let shipped = || {
            let mut steps = confirmed();
            steps.push(both(|b| Input::Shipped {
                business_id: b,
                tracking: Tracking {
                    carrier: "UPS".to_owned(),
                    tracking_number: "1Z".to_owned(),
                },
            }));
            steps
        };
        let delivered = || {
            let mut steps = shipped();
            steps.push(both(|b| Input::Delivered { business_id: b }));
            steps
        };
        vec![
            ("pending", run(vec![submit()])),
            (
                "payment_processing",
                run(vec![submit(), Input::StockReserved]),
            ),
            ("processing", run(to_processing())),
            ("dispatched", with(to_processing(), dispatched())),
            ("confirmed", with(to_processing(), confirmed())),
            ("shipped", with(to_processing(), shipped())),
            ("delivered", with(to_processing(), delivered())),
            (
                "cancelled_out_of_stock",
                run(vec![submit(), Input::StockRejected]),
            ),
            (
                "cancelled_before_stock",
                run(vec![submit(), Input::CustomerCancel]),
            ),
        ]
    }

    fn inputs() -> Vec<Input> {
        vec![
            Input::Submitted(Box::new(submitted())),
            Input::StockReserved,
            Input::StockRejected,
            paid(),
            Input::PaymentFailed {
                authorization_id: AUTH,
                reason: "card_declined".to_owned(),
            },
            Input::Dispatched { business_id: B1 },
            Input::Confirmed { business_id: B1 },
            Input::Shipped {
                business_id: B1,
                tracking: Tracking {
                    carrier: "UPS".to_owned(),
                    tracking_number: "1Z".to_owned(),
                },
            },
            Input::Delivered { business_id: B1 },
            Input::Declined {
                business_id: B1,
                reason: "closed".to_owned(),
            },
            Input::Withdrawn { business_id: B1 },
            Input::CustomerCancel,
        ]
    }

    #[test]
    fn every_input_in_every_status_is_applied_or_refused_as_the_design_says() {
        // Columns: submitted, stock reserved, stock rejected, paid, payment
        // failed, dispatched, confirmed, shipped, delivered, declined,
        // withdrawn, customer cancel. `A` applied, `.` refused.
        let table = [
            ("pending", ".AA........A"),
            ("payment_processing", "...AA......."),
            ("processing", ".....A...A.A"),
            ("dispatched", "......A..A.A"),
            ("confirmed", ".......A...."),
            ("shipped", "........A..."),
            ("delivered", "............"),
            ("cancelled_out_of_stock", "...A........"),
            ("cancelled_before_stock", ".AAA........"),
        ];
        let mut wrong = Vec::new();
        for (name, order) in orders() {
            let (_, row) = table
                .iter()
                .find(|(state, _)| *state == name)
                .expect("a row per state");
            assert_eq!(row.len(), 12, "a column per input");
            for (input, expected) in inputs().into_iter().zip(row.chars()) {
                let input_name = input.name();
                let applied = apply(Some(&order), input, now()).is_ok();
                if applied != (expected == 'A') {
                    wrong.push(format!(
                        "{name} + {input_name}: expected {}, got {}",
                        if expected == 'A' {
                            "applied"
                        } else {
                            "refused"
                        },
                        if applied { "applied" } else { "refused" }
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn the_order_machine_only_moves_forward_or_to_cancelled_and_never_leaves_an_end() {
        use OrderStatus::*;
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let expected = match from {
                    Delivered | Cancelled => false,
                    _ => to == Cancelled || to > from,
                };
                assert_eq!(from.can_move_to(to), expected, "{from:?} → {to:?}");
            }
        }
        assert!(
            Pending.can_move_to(Processing),
            "a total of 0 skips payment"
        );
        assert!(Processing.can_move_to(Shipped), "the order may skip steps");
        assert!(!Shipped.can_move_to(Confirmed));
    }

    #[test]
    fn the_fulfillment_machine_allows_exactly_the_designs_transitions() {
        use FulfillmentStatus::*;
        let allowed = [
            (Queued, Sent),
            (Sent, Confirmed),
            (Confirmed, Shipped),
            (Shipped, Delivered),
            (Queued, Declined),
            (Sent, Declined),
            (Queued, Cancelled),
            (Sent, Cancelled),
        ];
        for from in FulfillmentStatus::ALL {
            for to in FulfillmentStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
    }

    #[test]
    fn the_status_is_the_lowest_part_in_play_and_a_declined_part_does_not_hold_it_back() {
        let order = run(vec![
            Input::Submitted(Box::new(submitted())),
            Input::StockReserved,
            paid(),
            Input::Dispatched { business_id: B1 },
        ]);
        assert_eq!(order.status, OrderStatus::Processing, "B2 is still queued");
        let decision = apply(
            Some(&order),
            Input::Declined {
                business_id: B2,
                reason: "closed".to_owned(),
            },
            now(),
        )
        .expect("declined");
        assert_eq!(decision.order.status, OrderStatus::Dispatched);
        assert_eq!(decision.order.refunds.len(), 1);
        assert_eq!(decision.order.refunds[0].amount_minor, 500);
        assert_eq!(decision.order.refunds[0].points, 0);
    }

    #[test]
    fn a_total_of_zero_goes_from_pending_straight_to_processing() {
        let mut free = submitted();
        free.lines = vec![line(B1, 0, 1000)];
        free.subtotal_minor = 1000;
        free.discount_minor = 1000;
        free.total_minor = 0;
        free.points_applied = 1000;
        free.payment = None;
        let order = run(vec![Input::Submitted(Box::new(free))]);
        let decision = apply(Some(&order), Input::StockReserved, now()).expect("reserved");
        assert_eq!(decision.order.status, OrderStatus::Processing);
        let statuses: Vec<_> = decision.order.history.iter().map(|h| h.status).collect();
        assert_eq!(statuses, [OrderStatus::Pending, OrderStatus::Processing]);
        assert!(decision
            .commands
            .iter()
            .all(|c| !matches!(c, OrderEvent::PaymentCaptureRequested(_))));
    }
}
