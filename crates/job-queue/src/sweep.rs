//! Sweeps: periodic tasks that work through whatever has fallen due
//! (reservations past their expiry, checkouts past their reservation, parts
//! past their confirmation deadline), a batch per transaction, until less
//! than a batch is left.
//!
//! A service writes only what one batch does, as a [`Sweep`]; [`Sweeper`]
//! turns it into the [`Periodic`] task that the runner schedules. Batches
//! keep each transaction short, so a backlog after an outage is worked off
//! without holding locks on thousands of rows at once.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::job::{JobContext, Periodic};

/// What one batch of a sweep does, inside the transaction [`Sweeper`]
/// opens and commits.
#[async_trait]
pub trait Sweep: Send + Sync + 'static {
    /// Unique in the service; names the schedule row, as [`Periodic::name`].
    fn name(&self) -> &'static str;

    /// What falls due, for the error context (`"expired reservations"`).
    fn what(&self) -> &'static str;

    /// How often the sweep runs: an item is handled at most this long after
    /// it falls due. Each run costs one indexed query when nothing is due.
    fn interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Items handled per transaction.
    fn batch_size(&self) -> i64 {
        200
    }

    /// Handles at most `limit` items due at `now`, and answers how many it
    /// handled. Everything it writes commits together, or not at all.
    async fn batch(
        &self,
        conn: &mut PgConnection,
        now: OffsetDateTime,
        limit: i64,
    ) -> anyhow::Result<usize>;

    /// Called once a batch has committed, with how many items it handled
    /// (to count them in `/metrics`).
    fn committed(&self, _handled: usize) {}
}

/// The [`Periodic`] task that runs a [`Sweep`] batch after batch.
pub struct Sweeper<S>(pub S);

#[async_trait]
impl<S: Sweep> Periodic for Sweeper<S> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn interval(&self) -> Duration {
        self.0.interval()
    }

    async fn tick(&self, ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        let sweep = &self.0;
        let limit = sweep.batch_size();
        loop {
            let mut tx = ctx
                .pool
                .begin()
                .await
                .with_context(|| format!("failed to begin sweeping {}", sweep.what()))?;
            let handled = sweep
                .batch(&mut tx, now, limit)
                .await
                .with_context(|| format!("failed to sweep {}", sweep.what()))?;
            tx.commit()
                .await
                .with_context(|| format!("failed to commit swept {}", sweep.what()))?;
            sweep.committed(handled);
            if i64::try_from(handled).unwrap_or(i64::MAX) < limit {
                return Ok(());
            }
        }
    }
}
