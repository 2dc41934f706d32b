//! The core of the microkernel: every change to a part goes through here,
//! checked against the fulfillment machine, and writes its
//! `heyblue.dispatch.v1` event into the outbox in the caller's transaction.
//! Plugins and HTTP handlers decide *that* something happened; this module
//! decides what it means.

use std::time::Duration;

use messaging::outbox;
use shared_events::dispatch::{
    DispatchEvent, DispatchFailed, OrderConfirmed, OrderDeclined, OrderDelivered, OrderDispatched,
    OrderShipped, OrderWithdrawn,
};
use shared_events::order::OrderReadyForDispatch;
use shared_events::Envelope;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::delivery;
use crate::domain::{
    Action, Dispatch, NewDispatch, Refusal, Status, REASON_DISPATCH_FAILED, REASON_TIMEOUT,
};
use crate::plugins::{Placement, Plugins};
use crate::store;

async fn publish(
    conn: &mut PgConnection,
    part: &Dispatch,
    event: impl Into<DispatchEvent>,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(conn, &Envelope::new(event.into(), part.correlation_id)).await
}

/// What arriving `order_ready_for_dispatch` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The parts that were new; an event that came again makes none.
    Stored(Vec<Dispatch>),
    /// The order was withdrawn before its parts arrived: none is stored, so
    /// none reaches a business.
    Withdrawn,
}

/// Stores each new part and hands it to its business's plugin: one that
/// places on arrival (`portal`) makes it `sent` at once, with
/// `order_dispatched`; the others get a durable delivery job.
#[tracing::instrument(skip_all, fields(order_id = %ready.order_id))]
pub async fn arrive(
    conn: &mut PgConnection,
    plugins: &Plugins,
    ready: &OrderReadyForDispatch,
    correlation_id: Uuid,
    confirm_deadline: Duration,
    now: OffsetDateTime,
) -> anyhow::Result<Arrival> {
    if store::mark_arrived(conn, ready.order_id, now)
        .await?
        .withdrawn
    {
        return Ok(Arrival::Withdrawn);
    }
    let confirm_by = now + confirm_deadline;
    let mut stored = Vec::new();
    for part in &ready.parts {
        let new = NewDispatch {
            order_id: ready.order_id,
            business_id: part.business_id,
            customer_id: ready.customer_id,
            correlation_id,
            lines: part.lines.clone(),
            shipping_address: ready.shipping_address.clone(),
        };
        let (plugin, _) = plugins.for_business(conn, part.business_id).await?;
        let status = match plugin.placement() {
            Placement::OnArrival => Status::Sent,
            Placement::Delivery => Status::Queued,
        };
        let Some(dispatch) =
            store::insert(conn, &new, plugin.name(), status, confirm_by, now).await?
        else {
            tracing::info!(business_id = %part.business_id, "part stored before; nothing to do");
            continue;
        };
        match plugin.placement() {
            Placement::OnArrival => {
                publish(
                    conn,
                    &dispatch,
                    OrderDispatched {
                        order_id: dispatch.order_id,
                        business_id: dispatch.business_id,
                        dispatch_id: dispatch.dispatch_id,
                        reference: None,
                    },
                )
                .await?;
            }
            Placement::Delivery => delivery::schedule(conn, dispatch.dispatch_id, 1, None).await?,
        }
        stored.push(dispatch);
    }
    Ok(Arrival::Stored(stored))
}

/// Applies a business's action to its part and publishes what it means.
#[tracing::instrument(skip_all, fields(dispatch_id = %part.dispatch_id, action = action.name()))]
pub async fn act(
    conn: &mut PgConnection,
    mut part: Dispatch,
    action: Action,
    now: OffsetDateTime,
) -> Result<Result<Dispatch, Refusal>, sqlx::Error> {
    // A business that confirms a part still `queued` has it: its plugin's
    // delivery reached it and the business answered before that delivery
    // was recorded (a webhook that confirms before it returns). The part was
    // placed, so it is `sent` first, as the delivery would have made it.
    if part.status == Status::Queued && matches!(action, Action::Confirm { .. }) {
        let reference = part.reference.clone();
        if placed(conn, part.clone(), reference, now).await? {
            part.status = Status::Sent;
            part.delivery_attempts += 1;
        }
    }
    let next = match part.check(&action) {
        Ok(next) => next,
        Err(refusal) => {
            tracing::warn!(status = %part.status, %refusal, "action refused");
            return Ok(Err(refusal));
        }
    };
    part.status = next;
    part.updated_at = now;
    let (order_id, business_id, dispatch_id) = (part.order_id, part.business_id, part.dispatch_id);
    let event: DispatchEvent = match action {
        Action::Confirm { reference } => {
            part.reference = reference.map(|r| r.into_inner()).or(part.reference);
            OrderConfirmed {
                order_id,
                business_id,
                dispatch_id,
                reference: part.reference.clone(),
            }
            .into()
        }
        Action::Decline { reason } => {
            part.reason = Some(reason.into_inner());
            OrderDeclined {
                order_id,
                business_id,
                dispatch_id,
                reason: part.reason.clone().unwrap_or_default(),
            }
            .into()
        }
        Action::Ship {
            carrier,
            tracking_number,
        } => {
            part.carrier = Some(carrier.into_inner());
            part.tracking_number = Some(tracking_number.into_inner());
            OrderShipped {
                order_id,
                business_id,
                dispatch_id,
                carrier: part.carrier.clone().unwrap_or_default(),
                tracking_number: part.tracking_number.clone().unwrap_or_default(),
            }
            .into()
        }
        Action::Deliver => OrderDelivered {
            order_id,
            business_id,
            dispatch_id,
            reference: part.reference.clone(),
        }
        .into(),
    };
    store::update(conn, &part).await?;
    publish(conn, &part, event).await?;
    Ok(Ok(part))
}

/// Why a withdraw was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("business {business_id} confirmed its part of order {order_id}")]
pub struct NotCancellable {
    pub order_id: Uuid,
    pub business_id: Uuid,
}

/// Withdraws every part of the order still waiting for its business, all or
/// none: refused once any part is confirmed. Leaves a mark first, so parts
/// that arrive later are never sent. Withdrawing again changes nothing.
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn withdraw(
    conn: &mut PgConnection,
    order_id: Uuid,
    now: OffsetDateTime,
) -> Result<Result<Vec<Dispatch>, NotCancellable>, sqlx::Error> {
    store::mark_withdrawn(conn, order_id, now).await?;
    let parts = store::parts_of_order_for_update(conn, order_id).await?;
    if let Some(confirmed) = parts.iter().find(|p| p.status.is_confirmed_or_later()) {
        return Ok(Err(NotCancellable {
            order_id,
            business_id: confirmed.business_id,
        }));
    }
    let mut withdrawn = Vec::new();
    for mut part in parts {
        if !part.status.can_become(Status::Cancelled) {
            // Declined or withdrawn before: nothing is left to take back.
            continue;
        }
        let had_it = part.status == Status::Sent;
        part.status = Status::Cancelled;
        part.updated_at = now;
        store::update(conn, &part).await?;
        if had_it {
            delivery::schedule_withdrawal(conn, part.dispatch_id, 1, None).await?;
        }
        publish(
            conn,
            &part,
            OrderWithdrawn {
                order_id,
                business_id: part.business_id,
                dispatch_id: part.dispatch_id,
            },
        )
        .await?;
        withdrawn.push(part);
    }
    Ok(Ok(withdrawn))
}

/// The plugin placed a queued part at its business: it is `sent`. `false`
/// when the part is no longer queued (withdrawn or declined meanwhile).
#[tracing::instrument(skip_all, fields(dispatch_id = %part.dispatch_id))]
pub async fn placed(
    conn: &mut PgConnection,
    mut part: Dispatch,
    reference: Option<String>,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    if part.status != Status::Queued {
        return Ok(false);
    }
    part.status = Status::Sent;
    part.reference = reference;
    part.delivery_attempts += 1;
    part.updated_at = now;
    store::update(conn, &part).await?;
    publish(
        conn,
        &part,
        OrderDispatched {
            order_id: part.order_id,
            business_id: part.business_id,
            dispatch_id: part.dispatch_id,
            reference: part.reference.clone(),
        },
    )
    .await?;
    Ok(true)
}

/// The plugin gave up placing a queued part: `dispatch_failed` for
/// operators and `order_declined` (reason `dispatch_failed`) for the order.
#[tracing::instrument(skip_all, fields(dispatch_id = %part.dispatch_id))]
pub async fn failed(
    conn: &mut PgConnection,
    mut part: Dispatch,
    error: &str,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    if part.status != Status::Queued {
        return Ok(false);
    }
    part.status = Status::Declined;
    part.reason = Some(REASON_DISPATCH_FAILED.to_owned());
    part.delivery_attempts += 1;
    part.updated_at = now;
    store::update(conn, &part).await?;
    store::record_failed_attempt(conn, part.dispatch_id, part.delivery_attempts, error, now)
        .await?;
    let (order_id, business_id, dispatch_id) = (part.order_id, part.business_id, part.dispatch_id);
    publish(
        conn,
        &part,
        DispatchFailed {
            order_id,
            business_id,
            dispatch_id,
            error: error.to_owned(),
        },
    )
    .await?;
    publish(
        conn,
        &part,
        OrderDeclined {
            order_id,
            business_id,
            dispatch_id,
            reason: REASON_DISPATCH_FAILED.to_owned(),
        },
    )
    .await?;
    Ok(true)
}

/// Declines up to `batch` parts whose confirmation deadline passed, with
/// reason `timeout`; returns how many.
#[tracing::instrument(skip_all)]
pub async fn decline_overdue(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    batch: i64,
) -> Result<usize, sqlx::Error> {
    let overdue = store::overdue_for_update(conn, now, batch).await?;
    let count = overdue.len();
    for mut part in overdue {
        part.status = Status::Declined;
        part.reason = Some(REASON_TIMEOUT.to_owned());
        part.updated_at = now;
        store::update(conn, &part).await?;
        publish(
            conn,
            &part,
            OrderDeclined {
                order_id: part.order_id,
                business_id: part.business_id,
                dispatch_id: part.dispatch_id,
                reason: REASON_TIMEOUT.to_owned(),
            },
        )
        .await?;
        tracing::info!(dispatch_id = %part.dispatch_id, order_id = %part.order_id, "part not confirmed in time; declined");
    }
    Ok(count)
}
