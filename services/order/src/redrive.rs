//! Orders stuck in a status: a periodic task on the service's job runner,
//! reading the service's clock, that counts open orders unchanged past the
//! limit (by status and age, in `/metrics`) and publishes their pending
//! commands again — the same commands with the same business ids, which
//! their receivers apply once per business key (DESIGN §6), so a re-drive of
//! a command that did arrive changes nothing.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{JobContext, Periodic};
use shared_events::Envelope;
use time::OffsetDateTime;

use crate::domain::OrderStatus;
use crate::metrics::OrderMetrics;
use crate::store;

/// How often stuck orders are looked for.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Orders re-driven per transaction.
const BATCH: i64 = 100;

/// Age buckets of the stuck gauge, as multiples of the stuck limit.
const AGE_BUCKETS: [(&str, u32); 3] = [("1x", 1), ("4x", 4), ("96x", 96)];

pub struct RedriveStuckOrders {
    pub stuck_after: Duration,
    pub metrics: OrderMetrics,
}

#[async_trait]
impl Periodic for RedriveStuckOrders {
    fn name(&self) -> &'static str {
        "order.redrive_stuck_orders"
    }

    fn interval(&self) -> Duration {
        SWEEP_EVERY.min(self.stuck_after)
    }

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        let limit = now - self.stuck_after;
        self.count(ctx, now, limit).await?;
        loop {
            let mut tx = ctx
                .pool
                .begin()
                .await
                .context("failed to begin re-driving stuck orders")?;
            let stuck = store::stuck(&mut tx, limit, BATCH)
                .await
                .context("failed to find stuck orders")?;
            for (order_id, status) in &stuck {
                let commands = store::pending_commands(&mut tx, *order_id, *status)
                    .await
                    .with_context(|| format!("failed to read order {order_id}'s commands"))?;
                let envelopes: Vec<_> = commands
                    .iter()
                    .map(|(command, correlation_id)| {
                        Envelope::new(command.clone(), *correlation_id)
                    })
                    .collect();
                messaging::outbox::enqueue_all(&mut tx, &envelopes)
                    .await
                    .with_context(|| format!("failed to re-drive order {order_id}"))?;
                store::mark_redriven(&mut tx, *order_id, now)
                    .await
                    .with_context(|| format!("failed to mark order {order_id} re-driven"))?;
                self.metrics.redriven_commands.inc_by(commands.len() as u64);
                tracing::warn!(
                    %order_id,
                    status = status.as_str(),
                    commands = commands.len(),
                    "order stuck past the limit; its pending commands are published again"
                );
            }
            tx.commit()
                .await
                .context("failed to commit re-driven orders")?;
            if (stuck.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }
}

impl RedriveStuckOrders {
    /// Sets the gauge from scratch: every (status, bucket) pair, 0 included,
    /// so a series that emptied says so.
    async fn count(
        &self,
        ctx: &JobContext,
        now: OffsetDateTime,
        limit: OffsetDateTime,
    ) -> anyhow::Result<()> {
        let mut conn = ctx
            .pool
            .acquire()
            .await
            .context("failed to count stuck orders")?;
        let open = store::open_since(&mut conn, limit)
            .await
            .context("failed to count stuck orders")?;
        for status in OrderStatus::ALL.iter().filter(|s| !s.is_terminal()) {
            for (bucket, _) in AGE_BUCKETS {
                self.metrics
                    .stuck_orders
                    .with_label_values(&[status.as_str(), bucket])
                    .set(0);
            }
        }
        for (status, updated_at) in open {
            let age = now - updated_at;
            let bucket = AGE_BUCKETS
                .iter()
                .rev()
                .find(|(_, times)| age >= self.stuck_after * *times)
                .map_or(AGE_BUCKETS[0].0, |(bucket, _)| bucket);
            self.metrics
                .stuck_orders
                .with_label_values(&[status.as_str(), bucket])
                .inc();
        }
        Ok(())
    }
}
