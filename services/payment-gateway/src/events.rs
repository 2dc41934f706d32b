//! What payment-gateway publishes on `heyblue.payment.v1` (written into the
//! outbox in the caller's transaction) and the one handler it registers: the
//! order's payment commands on `heyblue.order.v1`.
//!
//! The handler only records a command, once per its business key (a capture
//! or void once per authorization, a refund once per `refund_id`), and
//! enqueues the job that calls the provider after the commit: a provider
//! call never runs inside the consumer's transaction.

use async_trait::async_trait;
use messaging::{Handler, HandlerError};
use shared_events::order::OrderEvent;
use shared_events::{
    Envelope, PaymentAuthorized, PaymentCaptureRequested, PaymentEvent, PaymentFailed,
    PaymentProcessing, PaymentRefundFailed, PaymentRefundRequested, PaymentRefunded, PaymentStatus,
    PaymentSuccessful, PaymentVoidRequested, PaymentVoided,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::authorizations;
use crate::domain::{
    Authorization, AuthorizationId, AuthorizationState, CallState, Refund, RefundId,
};
use crate::jobs;
use crate::metrics::GatewayMetrics;
use crate::store;

async fn publish(
    conn: &mut PgConnection,
    event: impl Into<PaymentEvent>,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    messaging::outbox::enqueue(conn, &Envelope::new(event.into(), correlation_id)).await
}

/// `payment_authorized`: the amount is held.
pub async fn authorized(
    conn: &mut PgConnection,
    authorization: &Authorization,
) -> Result<(), sqlx::Error> {
    let event = PaymentAuthorized {
        order_id: authorization.order_id,
        authorization_id: authorization.authorization_id.0,
        provider: authorization.provider.clone(),
        amount_minor: authorization.amount.amount_minor(),
        currency: authorization.amount.currency().to_string(),
    };
    publish(conn, event, authorization.order_id).await
}

/// `payment_processing`: the capture was accepted and is under way.
pub async fn processing(
    conn: &mut PgConnection,
    authorization: &Authorization,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentProcessing {
        order_id: authorization.order_id,
        authorization_id: authorization.authorization_id.0,
    };
    publish(conn, event, correlation_id).await
}

/// `payment_successful`: the provider took `amount_minor`.
pub async fn successful(
    conn: &mut PgConnection,
    authorization: &Authorization,
    payment_method: shared_events::PaymentMethod,
    transaction_id: &str,
    amount_minor: i64,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentSuccessful {
        order_id: authorization.order_id,
        customer_id: authorization.customer_id.0,
        payment_method,
        transaction_id: transaction_id.to_owned(),
        currency: authorization.amount.currency().to_string(),
        payment_status: PaymentStatus::Success,
        amount_minor,
        provider: authorization.provider.clone(),
        authorization_id: authorization.authorization_id.0,
    };
    publish(conn, event, correlation_id).await
}

/// `payment_failed`: the capture was refused.
pub async fn failed(
    conn: &mut PgConnection,
    authorization: &Authorization,
    reason: &str,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentFailed {
        order_id: authorization.order_id,
        authorization_id: authorization.authorization_id.0,
        reason: reason.to_owned(),
    };
    publish(conn, event, correlation_id).await
}

/// `payment_voided`: the provider released the hold.
pub async fn voided(
    conn: &mut PgConnection,
    order_id: Uuid,
    authorization_id: AuthorizationId,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentVoided {
        order_id,
        authorization_id: authorization_id.0,
    };
    publish(conn, event, correlation_id).await
}

/// `payment_refunded`.
pub async fn refunded(
    conn: &mut PgConnection,
    refund: &Refund,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentRefunded {
        order_id: refund.order_id,
        refund_id: refund.refund_id.0,
        amount_minor: refund.amount_minor,
        currency: refund.currency.clone(),
        reason: refund.reason.clone(),
    };
    publish(conn, event, correlation_id).await
}

/// `payment_refund_failed`, with why in `reason`.
pub async fn refund_failed(
    conn: &mut PgConnection,
    refund: &Refund,
    reason: &str,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let event = PaymentRefundFailed {
        order_id: refund.order_id,
        refund_id: refund.refund_id.0,
        amount_minor: refund.amount_minor,
        currency: refund.currency.clone(),
        reason: reason.to_owned(),
    };
    publish(conn, event, correlation_id).await
}

/// Records the order's capture, void and refund commands and enqueues their
/// provider calls; the order's other events are not for the gateway.
pub struct OrderCommandHandler {
    pub metrics: GatewayMetrics,
}

#[async_trait]
impl Handler<OrderEvent> for OrderCommandHandler {
    fn acts_on(&self, event: &OrderEvent) -> bool {
        matches!(
            event,
            OrderEvent::PaymentCaptureRequested(_)
                | OrderEvent::PaymentVoidRequested(_)
                | OrderEvent::PaymentRefundRequested(_)
        )
    }

    #[tracing::instrument(skip_all, fields(event_id = %event.event_id, order_id = %event.event.order_id()))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<OrderEvent>,
    ) -> Result<(), HandlerError> {
        match &event.event {
            OrderEvent::PaymentCaptureRequested(command) => {
                capture_requested(conn, command, event.correlation_id).await
            }
            OrderEvent::PaymentVoidRequested(command) => {
                void_requested(conn, command, event.correlation_id).await
            }
            OrderEvent::PaymentRefundRequested(command) => {
                refund_requested(conn, command, event.correlation_id, &self.metrics).await
            }
            OrderEvent::OrderCreated(_)
            | OrderEvent::PointsSpendRequested(_)
            | OrderEvent::PointsReleaseRequested(_)
            | OrderEvent::PointsRefundRequested(_)
            | OrderEvent::StockReleaseRequested(_)
            | OrderEvent::OrderReadyForDispatch(_)
            | OrderEvent::OrderStatusChanged(_)
            | OrderEvent::OrderCancelled(_) => Ok(()),
        }
    }
}

/// The authorization a command names, locked; a command about an
/// authorization this gateway never made goes to the dead-letter topic.
async fn command_target(
    conn: &mut PgConnection,
    authorization_id: Uuid,
    order_id: Uuid,
) -> Result<Authorization, HandlerError> {
    let authorization = store::lock_authorization(conn, AuthorizationId(authorization_id))
        .await?
        .ok_or_else(|| unknown_authorization(authorization_id))?;
    ensure_of_order(&authorization, order_id)?;
    Ok(authorization)
}

fn unknown_authorization(authorization_id: Uuid) -> HandlerError {
    HandlerError::permanent(anyhow::anyhow!(
        "no authorization {authorization_id} exists"
    ))
}

fn ensure_of_order(authorization: &Authorization, order_id: Uuid) -> Result<(), HandlerError> {
    if authorization.order_id != order_id {
        return Err(HandlerError::permanent(anyhow::anyhow!(
            "authorization {} belongs to order {}, not {order_id}",
            authorization.authorization_id,
            authorization.order_id
        )));
    }
    Ok(())
}

async fn capture_requested(
    conn: &mut PgConnection,
    command: &PaymentCaptureRequested,
    correlation_id: Uuid,
) -> Result<(), HandlerError> {
    // The capture is recorded before the command is judged, so that a
    // command sent again is answered once, whatever it asked.
    let (authorization, recorded) = store::lock_authorization_recording_capture(
        conn,
        AuthorizationId(command.authorization_id),
        command.order_id,
        command.amount_minor.max(1),
    )
    .await?
    .ok_or_else(|| unknown_authorization(command.authorization_id))?;
    ensure_of_order(&authorization, command.order_id)?;
    let authorization_id = authorization.authorization_id;
    if !recorded {
        tracing::info!(%authorization_id, "capture requested before; nothing to do");
        return Ok(());
    }
    let refusal = match authorization.state {
        AuthorizationState::Authorized => {
            if command.amount_minor < 1
                || command.amount_minor > authorization.amount.amount_minor()
                || !command
                    .currency
                    .eq_ignore_ascii_case(authorization.amount.currency().as_str())
            {
                Some(format!(
                    "capture of {} {} does not fit the authorization of {}",
                    command.amount_minor, command.currency, authorization.amount
                ))
            } else {
                None
            }
        }
        AuthorizationState::Voided => Some("the authorization was voided".to_owned()),
        AuthorizationState::Declined => Some("the authorization was declined".to_owned()),
        AuthorizationState::RequiresAction | AuthorizationState::Pending => {
            Some("the authorization was never completed".to_owned())
        }
        AuthorizationState::Captured => Some("the authorization was captured before".to_owned()),
    };
    match refusal {
        None => {
            processing(conn, &authorization, correlation_id).await?;
            jobs::enqueue_capture(conn, authorization_id, correlation_id).await?;
        }
        Some(reason) => {
            tracing::warn!(%authorization_id, reason, "capture refused");
            if !store::fail_pending_capture(conn, authorization_id, &reason).await? {
                return Err(HandlerError::transient(anyhow::anyhow!("capture vanished")));
            }
            failed(conn, &authorization, &reason, correlation_id).await?;
        }
    }
    Ok(())
}

async fn void_requested(
    conn: &mut PgConnection,
    command: &PaymentVoidRequested,
    correlation_id: Uuid,
) -> Result<(), HandlerError> {
    let mut authorization =
        command_target(conn, command.authorization_id, command.order_id).await?;
    let authorization_id = authorization.authorization_id;
    match authorization.state {
        AuthorizationState::Authorized | AuthorizationState::RequiresAction => {
            if store::capture(conn, authorization_id).await?.is_some() {
                tracing::error!(%authorization_id, "void requested after a capture; refund it instead");
                return Ok(());
            }
            // The job publishes `payment_voided` once the provider has
            // released the hold.
            authorizations::void_in(conn, &mut authorization, correlation_id)
                .await
                .map_err(|error| HandlerError::transient(anyhow::Error::new(error)))?;
        }
        AuthorizationState::Voided => {
            tracing::info!(%authorization_id, "voided before; nothing to do");
        }
        AuthorizationState::Declined | AuthorizationState::Pending => {
            tracing::info!(%authorization_id, "nothing is held; nothing to void");
        }
        AuthorizationState::Captured => {
            tracing::error!(%authorization_id, "void requested after a capture; refund it instead");
        }
    }
    Ok(())
}

async fn refund_requested(
    conn: &mut PgConnection,
    command: &PaymentRefundRequested,
    correlation_id: Uuid,
    metrics: &GatewayMetrics,
) -> Result<(), HandlerError> {
    let refund = Refund {
        refund_id: RefundId(command.refund_id),
        authorization_id: AuthorizationId(command.authorization_id),
        order_id: command.order_id,
        business_id: command.business_id,
        amount_minor: command.amount_minor,
        currency: command.currency.to_ascii_uppercase(),
        reason: command.reason.clone(),
        state: CallState::Pending,
        attempts: 0,
        last_error: None,
        updated_at: time::OffsetDateTime::now_utc(),
    };
    if command.amount_minor < 1 {
        return Err(HandlerError::permanent(anyhow::anyhow!(
            "refund {} of {} is not a positive amount",
            command.refund_id,
            command.amount_minor
        )));
    }
    // Once per refund_id, whatever else the command says.
    if !store::insert_refund(conn, &refund).await? {
        tracing::info!(refund_id = %command.refund_id, "refund requested before; nothing to do");
        return Ok(());
    }
    let captured = match store::authorization(conn, refund.authorization_id).await? {
        Some(authorization) if authorization.order_id == command.order_id => {
            store::capture(conn, refund.authorization_id).await?
        }
        Some(_) | None => None,
    };
    match captured.map(|capture| capture.state) {
        Some(CallState::Succeeded | CallState::Pending) => {
            jobs::enqueue_refund(conn, refund.refund_id, correlation_id).await?;
        }
        Some(CallState::Failed) | None => {
            let reason = format!(
                "authorization {} of order {} was never captured; there is nothing to refund",
                command.authorization_id, command.order_id
            );
            jobs::fail_refund(conn, refund, &reason, correlation_id, metrics).await?;
        }
    }
    Ok(())
}
