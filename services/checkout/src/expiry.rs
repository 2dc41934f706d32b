//! Checkouts nobody finished: a periodic task on the service's job runner,
//! reading the service's clock, finds unfinished checkouts that can no
//! longer be finished (their reservation expires within the safety margin,
//! or the TTL passed when no points were reserved), marks them `expired`
//! and leaves a job for each thing they hold, in one transaction. A later
//! confirm answers `409 checkout_expired`.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{JobContext, Periodic};
use time::OffsetDateTime;

use crate::compensation::Compensation;
use crate::domain::CheckoutStatus;
use crate::store;

/// A checkout is expired at most this long after it can no longer be
/// finished. One indexed query when nothing is due.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Checkouts expired per transaction.
const BATCH: i64 = 100;

pub struct ExpireCheckouts {
    pub expiry_margin: Duration,
}

#[async_trait]
impl Periodic for ExpireCheckouts {
    fn name(&self) -> &'static str {
        "checkout.expire_checkouts"
    }

    fn interval(&self) -> Duration {
        SWEEP_EVERY
    }

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        loop {
            let mut tx = ctx
                .pool
                .begin()
                .await
                .context("failed to begin the expiry sweep")?;
            let due = store::due_for_expiry(&mut tx, now + self.expiry_margin, BATCH)
                .await
                .context("failed to read expired checkouts")?;
            for checkout in &due {
                store::finish(
                    &mut tx,
                    checkout.id,
                    CheckoutStatus::Expired,
                    Some("checkout_expired"),
                    now,
                )
                .await
                .with_context(|| format!("failed to expire checkout {}", checkout.id))?;
                let mut held: Vec<Compensation> = checkout
                    .reservation_id
                    .map(|reservation_id| Compensation::ReleaseReservation { reservation_id })
                    .into_iter()
                    .collect();
                match (checkout.authorization_id, checkout.status) {
                    (Some(authorization_id), _) => {
                        held.push(Compensation::VoidAuthorization { authorization_id });
                    }
                    // Left `in_progress` by a request that died mid-way: an
                    // authorization may exist that nobody recorded.
                    (None, CheckoutStatus::InProgress) if checkout.payment.is_some() => {
                        held.push(Compensation::VoidOrder {
                            order_id: checkout.order_id,
                        });
                    }
                    (None, _) => {}
                }
                for compensation in &held {
                    let job = compensation
                        .job()
                        .context("failed to encode a compensation job")?;
                    job_queue::enqueue(&mut tx, job)
                        .await
                        .with_context(|| format!("failed to leave a job for {compensation:?}"))?;
                }
                tracing::info!(
                    checkout_id = %checkout.id,
                    order_id = %checkout.order_id,
                    "checkout left unfinished past its reservation; expired"
                );
            }
            tx.commit()
                .await
                .context("failed to commit expired checkouts")?;
            if (due.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }
}
