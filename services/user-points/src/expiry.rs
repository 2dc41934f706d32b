//! Releases reservations whose checkout did not finish in time, without
//! anyone asking: a periodic task on the service's job runner, reading the
//! service's clock.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{JobContext, Periodic};
use time::OffsetDateTime;

use crate::ledger::reservations;
use crate::metrics::PointsMetrics;

/// How often the sweep runs: a reservation is released at most this long
/// after it expires. One indexed query when nothing is due.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Reservations released per transaction.
const BATCH: i64 = 200;

pub struct ExpireReservations {
    pub metrics: PointsMetrics,
}

#[async_trait]
impl Periodic for ExpireReservations {
    fn name(&self) -> &'static str {
        "user_points.expire_reservations"
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
            let expired = reservations::expire_due(&mut tx, now, BATCH)
                .await
                .context("failed to release expired reservations")?;
            tx.commit()
                .await
                .context("failed to commit released reservations")?;
            for reservation in &expired {
                tracing::info!(
                    reservation_id = %reservation.reservation_id,
                    order_id = %reservation.order_id,
                    "reservation expired before its checkout finished; points released"
                );
            }
            self.metrics
                .reservations_expired
                .inc_by(expired.len() as u64);
            if (expired.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }
}
