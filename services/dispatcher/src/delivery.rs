//! Durable delivery of a part by its plugin (webhook, email): a job written
//! in the transaction that stored the part, run after the commit and outside
//! any transaction, so a slow business holds no lock and a restart loses
//! nothing. Each try is its own job (`attempt` 1, 2, …), scheduled after an
//! exponential backoff with jitter; the last failed try declines the part as
//! `dispatch_failed`.
//!
//! A part reaches its business once per try at most: a try starts only
//! while the part is still `queued`, and the dedupe key `(dispatch_id,
//! attempt)` keeps a re-sent event or a re-run job from adding another.
//!
//! A part withdrawn after its business got it is called back the same way
//! ([`NotifyWithdrawals`]): retried with backoff, and after the last try
//! logged for an operator, since nothing about the order is left to change.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::{Job, JobContext, JobError, JobHandler, NewJob};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Status;
use crate::fulfillment;
use crate::metrics::DispatchMetrics;
use crate::plugins::{DeliveryError, Plugins};
use crate::settings::DeliverySettings;
use crate::store;

pub const KIND: &str = "deliver_part";
pub const WITHDRAWAL_KIND: &str = "notify_withdrawal";

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct DeliverPart {
    dispatch_id: Uuid,
    /// 1 for the first try.
    attempt: u32,
}

/// Writes try `attempt` of the part's delivery, due at `run_at` (now when
/// `None`), in the caller's transaction.
pub async fn schedule(
    conn: &mut PgConnection,
    dispatch_id: Uuid,
    attempt: u32,
    run_at: Option<OffsetDateTime>,
) -> Result<(), sqlx::Error> {
    enqueue(conn, KIND, dispatch_id, attempt, run_at).await
}

/// Writes try `attempt` of telling the business its part was withdrawn.
pub async fn schedule_withdrawal(
    conn: &mut PgConnection,
    dispatch_id: Uuid,
    attempt: u32,
    run_at: Option<OffsetDateTime>,
) -> Result<(), sqlx::Error> {
    enqueue(conn, WITHDRAWAL_KIND, dispatch_id, attempt, run_at).await
}

async fn enqueue(
    conn: &mut PgConnection,
    kind: &'static str,
    dispatch_id: Uuid,
    attempt: u32,
    run_at: Option<OffsetDateTime>,
) -> Result<(), sqlx::Error> {
    let mut job = NewJob::new(
        kind,
        &DeliverPart {
            dispatch_id,
            attempt,
        },
    )
    .map_err(|error| sqlx::Error::Encode(Box::new(error)))?
    .dedupe_key(format!("{dispatch_id}/{attempt}"));
    if let Some(at) = run_at {
        job = job.run_at(at);
    }
    job_queue::enqueue(conn, job).await?;
    Ok(())
}

/// The wait before try `attempt + 1`: `base × 2^(attempt − 1)`, at most
/// `max`, of which a random half is taken off so that parts failing together
/// do not retry together.
pub fn backoff(settings: &DeliverySettings, attempt: u32) -> Duration {
    let doubling = 2u32.saturating_pow(attempt.saturating_sub(1));
    let full = settings
        .base_backoff
        .saturating_mul(doubling)
        .min(settings.max_backoff);
    let half = full / 2;
    let jitter = rand::rng().random_range(0.0..=1.0);
    half + half.mul_f64(jitter)
}

/// Runs one try of a part's delivery.
pub struct DeliverParts {
    pub plugins: Arc<Plugins>,
    pub settings: DeliverySettings,
    pub metrics: DispatchMetrics,
}

#[async_trait]
impl JobHandler for DeliverParts {
    fn kind(&self) -> &'static str {
        KIND
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, dispatch_id, attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let DeliverPart {
            dispatch_id,
            attempt,
        } = job.payload()?;
        tracing::Span::current()
            .record("dispatch_id", tracing::field::display(dispatch_id))
            .record("attempt", attempt);
        let mut conn = ctx.pool.acquire().await?;
        let part = store::by_id(&mut conn, dispatch_id)
            .await?
            .ok_or_else(|| JobError::permanent(anyhow::anyhow!("no part {dispatch_id}")))?;
        if part.status != Status::Queued {
            tracing::info!(status = %part.status, "part is no longer waiting to be placed");
            return Ok(());
        }
        let (plugin, config) = self
            .plugins
            .for_business(&mut conn, part.business_id)
            .await
            .map_err(JobError::transient)?;
        drop(conn);

        let outcome = plugin.deliver(&part, &config).await;

        let now = ctx.now();
        let mut tx = ctx.pool.begin().await?;
        let part = store::by_id_for_update(&mut tx, dispatch_id)
            .await?
            .context("the part vanished during its delivery")
            .map_err(JobError::permanent)?;
        // Whether this try declined the part, counted once it committed.
        let declined = match outcome {
            Ok(delivered) => {
                let status = part.status;
                if fulfillment::placed(&mut tx, part, delivered.reference, now).await? {
                    tracing::info!(plugin = plugin.name(), "part placed at its business");
                } else if status.is_confirmed_or_later() {
                    tracing::info!(%status, "the business answered before its delivery was recorded");
                } else if status == Status::Cancelled {
                    tracing::warn!("the part was withdrawn during its delivery; calling it back");
                    schedule_withdrawal(&mut tx, dispatch_id, 1, None).await?;
                } else {
                    tracing::warn!(
                        %status,
                        "the business received a part that was withdrawn or declined during its delivery"
                    );
                }
                false
            }
            Err(DeliveryError::Retryable(error)) if attempt < self.settings.attempts => {
                let wait = backoff(&self.settings, attempt);
                tracing::warn!(error = format!("{error:#}"), retry_in = ?wait, "delivery failed; will retry");
                store::record_failed_attempt(
                    &mut tx,
                    dispatch_id,
                    i32::try_from(attempt).unwrap_or(i32::MAX),
                    &format!("{error:#}"),
                    now,
                )
                .await?;
                schedule(&mut tx, dispatch_id, attempt + 1, Some(now + wait)).await?;
                false
            }
            Err(DeliveryError::Retryable(error) | DeliveryError::Permanent(error)) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "delivery failed for good; declining the part"
                );
                fulfillment::failed(&mut tx, part, &format!("{error:#}"), now).await?
            }
        };
        // The try's outcome and the job's end commit together.
        job_queue::finish(&mut tx, job).await?;
        tx.commit().await?;
        if declined {
            self.metrics
                .dispatch_failed
                .with_label_values(&[plugin.name()])
                .inc();
        }
        Ok(())
    }
}

/// Runs one try of telling a business that its part was withdrawn.
pub struct NotifyWithdrawals {
    pub plugins: Arc<Plugins>,
    pub settings: DeliverySettings,
    pub metrics: DispatchMetrics,
}

#[async_trait]
impl JobHandler for NotifyWithdrawals {
    fn kind(&self) -> &'static str {
        WITHDRAWAL_KIND
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, dispatch_id, attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let DeliverPart {
            dispatch_id,
            attempt,
        } = job.payload()?;
        tracing::Span::current()
            .record("dispatch_id", tracing::field::display(dispatch_id))
            .record("attempt", attempt);
        let mut conn = ctx.pool.acquire().await?;
        let part = store::by_id(&mut conn, dispatch_id)
            .await?
            .ok_or_else(|| JobError::permanent(anyhow::anyhow!("no part {dispatch_id}")))?;
        let (plugin, config) = self
            .plugins
            .for_business(&mut conn, part.business_id)
            .await
            .map_err(JobError::transient)?;
        drop(conn);
        match plugin.withdraw(&part, &config).await {
            Ok(()) => {
                tracing::info!(
                    plugin = plugin.name(),
                    "business told its part was withdrawn"
                );
            }
            Err(DeliveryError::Retryable(error)) if attempt < self.settings.attempts => {
                let wait = backoff(&self.settings, attempt);
                tracing::warn!(error = format!("{error:#}"), retry_in = ?wait, "withdrawal notice failed; will retry");
                let mut tx = ctx.pool.begin().await?;
                schedule_withdrawal(&mut tx, dispatch_id, attempt + 1, Some(ctx.now() + wait))
                    .await?;
                tx.commit().await?;
            }
            Err(DeliveryError::Retryable(error) | DeliveryError::Permanent(error)) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    order_id = %part.order_id,
                    business_id = %part.business_id,
                    "the business could not be told that its part was withdrawn; tell it by hand"
                );
                self.metrics
                    .withdrawal_notices_failed
                    .with_label_values(&[plugin.name()])
                    .inc();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_keeps_at_least_half() {
        let settings = DeliverySettings {
            attempts: 10,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
        };
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            for _ in 0..50 {
                let wait = backoff(&settings, attempt).as_millis();
                assert!(
                    (full / 2..=full).contains(&wait),
                    "try {attempt}: {wait} ms"
                );
            }
        }
    }
}
