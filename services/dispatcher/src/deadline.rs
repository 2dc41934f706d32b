//! Declines parts their business did not confirm in time (reason `timeout`),
//! without anyone asking: a periodic task on the service's job runner,
//! reading the service's clock.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{JobContext, Periodic};
use time::OffsetDateTime;

use crate::fulfillment;
use crate::metrics::DispatchMetrics;

/// How often the sweep runs: a part is declined at most this long after its
/// deadline. One indexed query when nothing is due.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Parts declined per transaction.
const BATCH: i64 = 200;

pub struct ConfirmationDeadline {
    pub metrics: DispatchMetrics,
}

#[async_trait]
impl Periodic for ConfirmationDeadline {
    fn name(&self) -> &'static str {
        "dispatcher.confirmation_deadline"
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
                .context("failed to begin the deadline sweep")?;
            let declined = fulfillment::decline_overdue(&mut tx, now, BATCH)
                .await
                .context("failed to decline parts past their deadline")?;
            tx.commit()
                .await
                .context("failed to commit parts declined past their deadline")?;
            self.metrics
                .confirmation_timeouts
                .inc_by(u64::try_from(declined).unwrap_or(u64::MAX));
            if declined < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                return Ok(());
            }
        }
    }
}
