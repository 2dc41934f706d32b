//! Declines parts their business did not confirm in time (reason `timeout`),
//! without anyone asking: a sweep on the service's job runner, reading the
//! service's clock.

use anyhow::Context;
use async_trait::async_trait;
use job_queue::Sweep;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::fulfillment;
use crate::metrics::DispatchMetrics;

pub struct ConfirmationDeadline {
    pub metrics: DispatchMetrics,
}

#[async_trait]
impl Sweep for ConfirmationDeadline {
    fn name(&self) -> &'static str {
        "dispatcher.confirmation_deadline"
    }

    fn what(&self) -> &'static str {
        "parts past their confirmation deadline"
    }

    async fn batch(
        &self,
        conn: &mut PgConnection,
        now: OffsetDateTime,
        limit: i64,
    ) -> anyhow::Result<usize> {
        fulfillment::decline_overdue(conn, now, limit)
            .await
            .context("failed to decline parts past their deadline")
    }

    fn committed(&self, handled: usize) {
        self.metrics
            .confirmation_timeouts
            .inc_by(u64::try_from(handled).unwrap_or(u64::MAX));
    }
}
