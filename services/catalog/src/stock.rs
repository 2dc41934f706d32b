//! Stock held per order: reserving an order's lines all or none, and giving
//! stock back on request. Both are idempotent per business key, not only per
//! event: an order is decided once (`order_created` re-sent with a new
//! `event_id` answers the same and changes nothing), and each (order,
//! offering) gives back at most what it holds, however often a release is
//! requested.

use shared_events::catalog::{CatalogEvent, StockRejected, StockReleased, StockReserved};
use shared_events::order::{OrderCreated, StockReleaseRequested};
use shared_events::{Envelope, StockLine};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{decide_reservation, releasable, ReservationDecision};
use crate::events::offering_changed;
use crate::store::{self, RecordedOrder};

/// Why an order's stock could not be decided. Retrying cannot help with
/// anything but a database failure.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    #[error("order {order_id} asks for 0 units of offering {offering_id}")]
    ZeroQuantity { order_id: Uuid, offering_id: Uuid },
    #[error("order {0} was decided before with other lines")]
    LinesChanged(Uuid),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What [`reserve`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    /// Decided now; the answer and any stock changes are enqueued.
    Decided(CatalogEvent),
    /// Decided before with the same lines; the same answer is enqueued again
    /// (the sender is evidently still waiting for it) and nothing else changed.
    Repeated(CatalogEvent),
}

/// Reserves stock for all of `order`'s lines or none, once per order, and
/// enqueues `stock_reserved` or `stock_rejected`, plus `offering_changed`
/// for every offering whose stock went down.
#[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
pub async fn reserve(
    conn: &mut PgConnection,
    order: &OrderCreated,
    correlation_id: Uuid,
) -> Result<ReserveOutcome, StockError> {
    let order_id = order.order_id;
    if let Some(line) = order.lines.iter().find(|line| line.quantity == 0) {
        return Err(StockError::ZeroQuantity {
            order_id,
            offering_id: line.offering_id,
        });
    }
    let requested: Vec<(Uuid, i64)> = order
        .lines
        .iter()
        .map(|line| (line.offering_id, i64::from(line.quantity)))
        .collect();

    let mut offering_ids: Vec<Uuid> = requested.iter().map(|(id, _)| *id).collect();
    offering_ids.sort_unstable();
    offering_ids.dedup();
    let Some(holdings) =
        store::claim_order_and_lock_holdings(conn, order_id, order.customer_id, &offering_ids)
            .await?
    else {
        let recorded = store::recorded_order(conn, order_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let recorded_lines: Vec<(Uuid, i64)> = recorded
            .lines
            .iter()
            .map(|&(offering_id, quantity, _)| (offering_id, quantity))
            .collect();
        if recorded_lines != requested {
            return Err(StockError::LinesChanged(order_id));
        }
        let answer = answer_for(order_id, &recorded);
        messaging::outbox::enqueue(conn, &Envelope::new(answer.clone(), correlation_id)).await?;
        return Ok(ReserveOutcome::Repeated(answer));
    };

    let (recorded, takes) = match decide_reservation(&requested, &holdings) {
        ReservationDecision::Reserve(takes) => {
            let recorded = RecordedOrder {
                reserved: true,
                lines: requested.iter().map(|&(id, q)| (id, q, false)).collect(),
            };
            (recorded, takes)
        }
        ReservationDecision::Reject { short_offering_ids } => {
            let recorded = RecordedOrder {
                reserved: false,
                lines: requested
                    .iter()
                    .map(|&(id, q)| (id, q, short_offering_ids.contains(&id)))
                    .collect(),
            };
            (recorded, Vec::new())
        }
    };
    let changed = store::record_decision(conn, order_id, &recorded, &takes).await?;

    // What the reservation publishes, in one statement: the offerings whose
    // stock changed, then the answer.
    let mut events: Vec<_> = changed
        .iter()
        .map(|offering| offering_changed(offering, correlation_id))
        .collect();
    let answer = answer_for(order_id, &recorded);
    events.push(Envelope::new(answer.clone(), correlation_id));
    messaging::outbox::enqueue_all(conn, &events).await?;
    Ok(ReserveOutcome::Decided(answer))
}

/// The event that answers an order decided as `recorded`.
fn answer_for(order_id: Uuid, recorded: &RecordedOrder) -> CatalogEvent {
    let lines: Vec<StockLine> = recorded
        .lines
        .iter()
        .map(|&(offering_id, quantity, _)| StockLine {
            offering_id,
            quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
        })
        .collect();
    if recorded.reserved {
        CatalogEvent::StockReserved(StockReserved { order_id, lines })
    } else {
        let mut short_offering_ids: Vec<Uuid> = Vec::new();
        for &(offering_id, _, short) in &recorded.lines {
            if short && !short_offering_ids.contains(&offering_id) {
                short_offering_ids.push(offering_id);
            }
        }
        CatalogEvent::StockRejected(StockRejected {
            order_id,
            lines,
            short_offering_ids,
        })
    }
}

/// Gives back what `request` asks for, each offering at most up to what the
/// order still holds of it, and enqueues `stock_released` with what was
/// actually given back, plus `offering_changed` for every offering whose
/// stock went up. Returns the lines released.
///
/// When nothing is given back (everything asked for was released before,
/// or the order holds nothing: rejected, never seen), nothing is published:
/// `stock_released` states that stock went back on sale, and none did.
#[tracing::instrument(skip_all, fields(order_id = %request.order_id))]
pub async fn release(
    conn: &mut PgConnection,
    request: &StockReleaseRequested,
    correlation_id: Uuid,
) -> Result<Vec<StockLine>, sqlx::Error> {
    let order_id = request.order_id;
    // Lines naming the same offering twice ask for the sum.
    let mut asked: Vec<(Uuid, i64)> = Vec::new();
    for line in &request.lines {
        match asked.iter_mut().find(|(id, _)| *id == line.offering_id) {
            Some((_, total)) => *total += i64::from(line.quantity),
            None => asked.push((line.offering_id, i64::from(line.quantity))),
        }
    }
    let mut offering_ids: Vec<Uuid> = asked.iter().map(|(id, _)| *id).collect();
    offering_ids.sort_unstable();
    let held = store::lock_held_stock(conn, order_id, &offering_ids).await?;

    // Stock goes back in offering id order, like reservations take it.
    let mut given_back: Vec<(Uuid, i64)> = Vec::new();
    for holding in &held {
        let Some(&(_, requested)) = asked.iter().find(|(id, _)| *id == holding.offering_id) else {
            continue;
        };
        let quantity = releasable(requested, holding.reserved, holding.released);
        if quantity == 0 {
            continue;
        }
        if let Some(changed) =
            store::give_back_stock(conn, order_id, holding.offering_id, quantity).await?
        {
            messaging::outbox::enqueue(conn, &offering_changed(&changed, correlation_id)).await?;
        }
        given_back.push((holding.offering_id, quantity));
    }

    let lines: Vec<StockLine> = asked
        .iter()
        .filter_map(|(offering_id, _)| {
            given_back
                .iter()
                .find(|(id, _)| id == offering_id)
                .map(|&(offering_id, quantity)| StockLine {
                    offering_id,
                    quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
                })
        })
        .collect();
    if lines.is_empty() {
        tracing::info!("nothing left to release for this request");
        return Ok(lines);
    }
    let released = CatalogEvent::StockReleased(StockReleased {
        order_id,
        lines: lines.clone(),
    });
    messaging::outbox::enqueue(conn, &Envelope::new(released, correlation_id)).await?;
    Ok(lines)
}
