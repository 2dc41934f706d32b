//! One saga step against the database: lock the order, let
//! [`saga::apply`](crate::domain::saga::apply) decide, write the new state
//! and everything it publishes in the same transaction. The event handlers
//! and the customer's cancel both go through here, so the order's rules are
//! applied in one way only.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::saga::{self, Input, Refusal};
use crate::domain::Order;
use crate::store;

/// What became of one input.
#[derive(Debug)]
pub enum Outcome {
    /// Applied: the order as it now stands (written, its events in the outbox).
    Applied(Box<Order>),
    /// Not applied; nothing was written.
    Refused(Refusal),
}

/// Applies `input` to order `order_id` inside the caller's transaction.
#[tracing::instrument(skip_all, fields(order_id = %order_id, input = input.name()))]
pub async fn step(
    conn: &mut PgConnection,
    order_id: Uuid,
    input: Input,
    now: OffsetDateTime,
    correlation_id: Uuid,
) -> Result<Outcome, sqlx::Error> {
    let before = store::lock(conn, order_id).await?;
    step_locked(conn, before.as_ref(), input, now, correlation_id).await
}

/// [`step`] for an order the caller has locked already (`None`: none exists).
pub async fn step_locked(
    conn: &mut PgConnection,
    before: Option<&Order>,
    input: Input,
    now: OffsetDateTime,
    correlation_id: Uuid,
) -> Result<Outcome, sqlx::Error> {
    let decision = match saga::apply(before, input, now) {
        Ok(decision) => decision,
        Err(refusal) => return Ok(Outcome::Refused(refusal)),
    };
    match before {
        Some(before) => store::update(conn, before, &decision.order).await?,
        None => store::insert(conn, &decision.order).await?,
    }
    store::publish(
        conn,
        &decision.order,
        decision.commands,
        correlation_id,
        now,
    )
    .await?;
    Ok(Outcome::Applied(Box::new(decision.order)))
}
