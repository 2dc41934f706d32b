//! Reports the parked facts in `/metrics`: a periodic task on the service's
//! job runner, reading the service's clock. Parked facts need no sweep
//! (the order's first event moves them), only someone to notice when an
//! order's events never come.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{JobContext, Periodic};
use time::OffsetDateTime;

use crate::metrics::NotificationMetrics;
use crate::store;

/// How often the gauges are refreshed; one small query each time.
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

pub struct ReportParked {
    pub metrics: NotificationMetrics,
}

#[async_trait]
impl Periodic for ReportParked {
    fn name(&self) -> &'static str {
        "notification.report_parked"
    }

    fn interval(&self) -> Duration {
        REPORT_EVERY
    }

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        let mut conn = ctx
            .pool
            .acquire()
            .await
            .context("failed to connect to count parked notifications")?;
        let (count, oldest) = store::parked_summary(&mut conn)
            .await
            .context("failed to count parked notifications")?;
        self.metrics.parked.set(count);
        self.metrics
            .parked_oldest_seconds
            .set(oldest.map_or(0, |at| (now - at).whole_seconds().max(0)));
        Ok(())
    }
}
