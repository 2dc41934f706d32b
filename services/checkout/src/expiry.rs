//! Checkouts nobody finished: a periodic task on the service's job runner,
//! reading the service's clock, finds unfinished checkouts that can no
//! longer be finished (their reservation expires within the safety margin,
//! or the TTL passed when no points were reserved), marks them `expired`
//! and leaves a job for each thing they hold, in one transaction. A later
//! confirm answers `409 checkout_expired`.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::Sweep;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::compensation::Compensation;
use crate::domain::CheckoutStatus;
use crate::store;

pub struct ExpireCheckouts {
    pub expiry_margin: Duration,
}

#[async_trait]
impl Sweep for ExpireCheckouts {
    fn name(&self) -> &'static str {
        "checkout.expire_checkouts"
    }

    fn what(&self) -> &'static str {
        "checkouts past their reservation"
    }

    fn batch_size(&self) -> i64 {
        100
    }

    async fn batch(
        &self,
        conn: &mut PgConnection,
        now: OffsetDateTime,
        limit: i64,
    ) -> anyhow::Result<usize> {
        let due = store::due_for_expiry(&mut *conn, now + self.expiry_margin, limit)
            .await
            .context("failed to read expired checkouts")?;
        for checkout in &due {
            store::finish(
                &mut *conn,
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
                job_queue::enqueue(&mut *conn, job)
                    .await
                    .with_context(|| format!("failed to leave a job for {compensation:?}"))?;
            }
            tracing::info!(
                checkout_id = %checkout.id,
                order_id = %checkout.order_id,
                "checkout left unfinished past its reservation; expired"
            );
        }
        Ok(due.len())
    }
}
