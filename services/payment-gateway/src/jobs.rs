//! The provider calls that follow an authorization, each a durable job run
//! after the transaction that decided it commits: capture, void and refund,
//! and asking again for an authorization whose answer was lost.
//!
//! A job runs at least once, and a provider's answer can be lost on the
//! way, so every call carries an idempotency key derived from our ids, and
//! a job that has called before asks the provider (`lookup`) what became of
//! that call before it calls again: a payment is never taken twice.

use std::sync::Arc;

use async_trait::async_trait;
use job_queue::{Job, JobContext, JobError, JobHandler, NewJob};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::authorizations::{self, PaymentError};
use crate::domain::{Authorization, AuthorizationId, CallState, Capture, Money, Refund, RefundId};
use crate::events;
use crate::metrics::GatewayMetrics;
use crate::providers::{
    CaptureRequest, Lookup, PaymentProvider, PaymentState, ProviderError, ProviderReference,
    Providers, RefundRequest, VoidRequest,
};
use crate::store;

/// Calls a refused capture or refund gets before the gateway gives up on
/// it (with the job queue's backoff between them: about 1 s, then 2 s).
pub const REFUSALS_BEFORE_GIVING_UP: u32 = 3;

const CAPTURE: &str = "payment_gateway.capture";
const VOID: &str = "payment_gateway.void";
const REFUND: &str = "payment_gateway.refund";
const RESOLVE_AUTHORIZATION: &str = "payment_gateway.resolve_authorization";

#[derive(Debug, Serialize, Deserialize)]
struct CapturePayload {
    authorization_id: Uuid,
    correlation_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct VoidPayload {
    authorization_id: Uuid,
    correlation_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefundPayload {
    refund_id: Uuid,
    correlation_id: Uuid,
}

#[derive(Debug, Serialize, Deserialize)]
struct ResolveAuthorizationPayload {
    authorization_id: Uuid,
}

fn job(kind: &'static str, payload: &impl Serialize, key: String) -> Result<NewJob, sqlx::Error> {
    Ok(NewJob::new(kind, payload)
        .map_err(|error| sqlx::Error::Encode(Box::new(error)))?
        .dedupe_key(key))
}

/// Captures the authorization after the caller's transaction commits.
pub async fn enqueue_capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let payload = CapturePayload {
        authorization_id: authorization_id.0,
        correlation_id,
    };
    job_queue::enqueue(conn, job(CAPTURE, &payload, authorization_id.to_string())?).await?;
    Ok(())
}

/// Releases the hold at the provider after the caller's transaction commits.
pub async fn enqueue_void(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let payload = VoidPayload {
        authorization_id: authorization_id.0,
        correlation_id,
    };
    job_queue::enqueue(conn, job(VOID, &payload, authorization_id.to_string())?).await?;
    Ok(())
}

/// Makes the refund after the caller's transaction commits.
pub async fn enqueue_refund(
    conn: &mut PgConnection,
    refund_id: RefundId,
    correlation_id: Uuid,
) -> Result<(), sqlx::Error> {
    let payload = RefundPayload {
        refund_id: refund_id.0,
        correlation_id,
    };
    job_queue::enqueue(conn, job(REFUND, &payload, refund_id.to_string())?).await?;
    Ok(())
}

/// Asks the provider again for an authorization whose answer was lost,
/// after the caller's transaction commits.
pub async fn enqueue_resolve_authorization(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<(), sqlx::Error> {
    let payload = ResolveAuthorizationPayload {
        authorization_id: authorization_id.0,
    };
    let key = authorization_id.to_string();
    job_queue::enqueue(conn, job(RESOLVE_AUTHORIZATION, &payload, key)?).await?;
    Ok(())
}

fn provider_of(
    providers: &Providers,
    authorization: &Authorization,
) -> Result<Arc<dyn PaymentProvider>, JobError> {
    providers.get(&authorization.provider).ok_or_else(|| {
        JobError::permanent(anyhow::anyhow!(
            "provider {} of authorization {} is not configured",
            authorization.provider,
            authorization.authorization_id
        ))
    })
}

fn reference_of(authorization: &Authorization) -> Result<ProviderReference, JobError> {
    authorization
        .provider_reference
        .as_deref()
        .map(ProviderReference::new)
        .ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "authorization {} has no provider reference",
                authorization.authorization_id
            ))
        })
}

async fn load_authorization(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<Authorization, JobError> {
    store::authorization(conn, authorization_id)
        .await?
        .ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "no authorization {authorization_id} exists"
            ))
        })
}

async fn load_authorization_with_capture(
    conn: &mut PgConnection,
    authorization_id: AuthorizationId,
) -> Result<(Authorization, Option<Capture>), JobError> {
    store::authorization_with_capture(conn, authorization_id)
        .await?
        .ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "no authorization {authorization_id} exists"
            ))
        })
}

/// Takes the authorized amount: `payment_successful` or, once the provider
/// has refused it [`REFUSALS_BEFORE_GIVING_UP`] times, `payment_failed`.
pub struct CaptureJob {
    pub providers: Providers,
}

#[async_trait]
impl JobHandler for CaptureJob {
    fn kind(&self) -> &'static str {
        CAPTURE
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: CapturePayload = job.payload()?;
        let authorization_id = AuthorizationId(payload.authorization_id);
        let mut conn = ctx.pool.acquire().await?;
        let (authorization, capture) =
            load_authorization_with_capture(&mut conn, authorization_id).await?;
        let Some(capture) = capture else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "authorization {authorization_id} has no capture to make"
            )));
        };
        if capture.state != CallState::Pending {
            return Ok(());
        }
        let provider = provider_of(&self.providers, &authorization)?;
        let reference = reference_of(&authorization)?;
        let finish = Finish {
            authorization: &authorization,
            provider: provider.as_ref(),
            correlation_id: payload.correlation_id,
            job: Some(job),
        };

        if capture.attempts > 0 {
            // An earlier call may have reached the provider with its answer
            // lost: ask before calling again.
            let state = provider
                .lookup(&Lookup::Authorization {
                    authorization_id,
                    reference: reference.clone(),
                })
                .await
                .map_err(JobError::transient)?;
            match state {
                PaymentState::Captured {
                    transaction_id,
                    amount_minor,
                } => {
                    return finish
                        .captured(&mut conn, transaction_id.as_str(), amount_minor)
                        .await
                }
                PaymentState::Authorized | PaymentState::NotFound => {}
                PaymentState::Processing | PaymentState::RequiresAction { .. } => {
                    return Err(JobError::transient(anyhow::anyhow!(
                        "the provider is still working on authorization {authorization_id}"
                    )))
                }
                PaymentState::Voided => {
                    return finish
                        .failed(&mut conn, "the authorization was voided")
                        .await
                }
                PaymentState::Declined { decline_code } => {
                    return finish
                        .failed(&mut conn, &format!("declined: {decline_code}"))
                        .await
                }
                PaymentState::Refunded { .. } | PaymentState::RefundFailed { .. } => {
                    return Err(JobError::permanent(anyhow::anyhow!(
                        "the provider answered a payment lookup with a refund"
                    )))
                }
            }
        }

        store::count_capture_attempt(&mut conn, authorization_id).await?;
        let amount = Money::new(
            capture.amount_minor,
            authorization.amount.currency().clone(),
        )
        .map_err(|error| JobError::permanent(anyhow::anyhow!(error)))?;
        let request = CaptureRequest {
            authorization_id,
            reference,
            amount,
        };
        match provider.capture(&request).await {
            Ok(captured) => {
                finish
                    .captured(
                        &mut conn,
                        captured.transaction_id.as_str(),
                        captured.amount.amount_minor(),
                    )
                    .await
            }
            Err(ProviderError::Refused { code, message, .. })
                if job.attempt >= REFUSALS_BEFORE_GIVING_UP =>
            {
                finish
                    .failed(
                        &mut conn,
                        &format!("the provider refused the capture: {code}: {message}"),
                    )
                    .await
            }
            Err(error) => {
                store::capture_attempt_failed(&mut conn, authorization_id, &error.to_string())
                    .await?;
                Err(JobError::transient(error))
            }
        }
    }
}

/// How a capture ends, whoever learnt it (the job, or a webhook).
pub(crate) struct Finish<'a> {
    pub authorization: &'a Authorization,
    pub provider: &'a dyn PaymentProvider,
    pub correlation_id: Uuid,
    /// The capture job, when it learnt the outcome: it ends in the commit
    /// that records the outcome.
    pub job: Option<&'a Job>,
}

impl Finish<'_> {
    /// The money was taken: `payment_successful`, once.
    pub async fn captured(
        &self,
        conn: &mut PgConnection,
        transaction_id: &str,
        amount_minor: i64,
    ) -> Result<(), JobError> {
        let authorization_id = self.authorization.authorization_id;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let Some(authorization) = store::lock_authorization(&mut tx, authorization_id).await?
        else {
            return Err(JobError::permanent(anyhow::anyhow!(
                "no authorization {authorization_id} exists"
            )));
        };
        if !store::record_capture_succeeded(&mut tx, authorization_id, amount_minor, transaction_id)
            .await?
        {
            return Ok(());
        }
        events::successful(
            &mut tx,
            &authorization,
            self.provider.method_kind(),
            transaction_id,
            amount_minor,
            self.correlation_id,
        )
        .await?;
        self.end_job(&mut tx).await?;
        tx.commit().await?;
        tracing::info!(%authorization_id, transaction_id, amount_minor, "captured");
        Ok(())
    }

    /// The capture will not happen: `payment_failed`, once.
    pub async fn failed(&self, conn: &mut PgConnection, reason: &str) -> Result<(), JobError> {
        let authorization_id = self.authorization.authorization_id;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if !store::fail_pending_capture(&mut tx, authorization_id, reason).await? {
            return Ok(());
        }
        events::failed(&mut tx, self.authorization, reason, self.correlation_id).await?;
        self.end_job(&mut tx).await?;
        tx.commit().await?;
        tracing::warn!(%authorization_id, reason, "capture failed");
        Ok(())
    }

    async fn end_job(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if let Some(job) = self.job {
            job_queue::finish(conn, job).await?;
        }
        Ok(())
    }
}

/// Releases a hold the gateway has marked voided: `payment_voided` once
/// the provider confirms.
pub struct VoidJob {
    pub providers: Providers,
}

#[async_trait]
impl JobHandler for VoidJob {
    fn kind(&self) -> &'static str {
        VOID
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: VoidPayload = job.payload()?;
        let authorization_id = AuthorizationId(payload.authorization_id);
        let mut conn = ctx.pool.acquire().await?;
        let authorization = load_authorization(&mut conn, authorization_id).await?;
        if store::lock_void_pending(&mut conn, authorization_id).await? != Some(true) {
            return Ok(());
        }
        let provider = provider_of(&self.providers, &authorization)?;
        let reference = reference_of(&authorization)?;
        let request = VoidRequest {
            authorization_id,
            reference: reference.clone(),
        };
        match provider.void(&request).await {
            Ok(()) => {}
            Err(ProviderError::Refused { code, message, .. }) => {
                // Refused because there is nothing left to release?
                let state = provider
                    .lookup(&Lookup::Authorization {
                        authorization_id,
                        reference,
                    })
                    .await
                    .map_err(JobError::transient)?;
                match state {
                    // Nothing is held: voided already, never made, or
                    // never approved by the customer.
                    PaymentState::Voided
                    | PaymentState::NotFound
                    | PaymentState::Declined { .. }
                    | PaymentState::RequiresAction { .. } => {}
                    other => {
                        let error = format!("the provider refused the void ({code}: {message}); it reports {other:?}");
                        store::void_attempt_failed(&mut conn, authorization_id, &error).await?;
                        return Err(JobError::permanent(anyhow::anyhow!(error)));
                    }
                }
            }
            Err(error) => {
                store::void_attempt_failed(&mut conn, authorization_id, &error.to_string()).await?;
                return Err(JobError::transient(error));
            }
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        if store::lock_void_pending(&mut tx, authorization_id).await? == Some(true) {
            store::void_done(&mut tx, authorization_id).await?;
            events::voided(
                &mut tx,
                authorization.order_id,
                authorization_id,
                payload.correlation_id,
            )
            .await?;
        }
        tx.commit().await?;
        tracing::info!(%authorization_id, "voided at the provider");
        Ok(())
    }
}

/// Settles an authorization whose provider answer was lost: repeats the
/// authorize under the same idempotency key until the provider answers, so
/// a hold it made is recorded, and released if the order was voided.
pub struct ResolveAuthorizationJob {
    pub providers: Providers,
}

#[async_trait]
impl JobHandler for ResolveAuthorizationJob {
    fn kind(&self) -> &'static str {
        RESOLVE_AUTHORIZATION
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: ResolveAuthorizationPayload = job.payload()?;
        let authorization_id = AuthorizationId(payload.authorization_id);
        match authorizations::resolve_unanswered(&ctx.pool, &self.providers, authorization_id).await
        {
            Ok(resolution) => {
                tracing::info!(%authorization_id, ?resolution, "lost authorization answer resolved");
                Ok(())
            }
            // Forgotten already: nothing is left to settle.
            Err(PaymentError::NotFound(_)) => Ok(()),
            Err(
                error @ (PaymentError::ProviderUnavailable(_)
                | PaymentError::Database(_)
                | PaymentError::InProgress(_)),
            ) => Err(JobError::transient(error)),
            Err(error) => Err(JobError::permanent(error)),
        }
    }
}

/// Gives (part of) a capture back: `payment_refunded` or, once the provider
/// has refused it [`REFUSALS_BEFORE_GIVING_UP`] times, `payment_refund_failed`.
pub struct RefundJob {
    pub providers: Providers,
    pub metrics: GatewayMetrics,
}

#[async_trait]
impl JobHandler for RefundJob {
    fn kind(&self) -> &'static str {
        REFUND
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: RefundPayload = job.payload()?;
        let refund_id = RefundId(payload.refund_id);
        let correlation_id = payload.correlation_id;
        let mut conn = ctx.pool.acquire().await?;
        // Locked in a statement of its own: it waits for a settlement under
        // way and reads how it ended; no lock is held afterwards.
        let refund = store::lock_refund(&mut conn, refund_id)
            .await?
            .ok_or_else(|| JobError::permanent(anyhow::anyhow!("no refund {refund_id}")))?;
        if refund.state != CallState::Pending {
            return Ok(());
        }
        let (authorization, capture) =
            load_authorization_with_capture(&mut conn, refund.authorization_id).await?;
        let transaction_id = match capture {
            Some(capture) if capture.state == CallState::Succeeded => capture.transaction_id,
            Some(capture) if capture.state == CallState::Pending => {
                return Err(JobError::transient(anyhow::anyhow!(
                    "the capture of authorization {} is still under way",
                    refund.authorization_id
                )))
            }
            Some(_) | None => None,
        };
        let Some(transaction_id) = transaction_id else {
            let reason = format!(
                "authorization {} was never captured; there is nothing to refund",
                refund.authorization_id
            );
            return settle_refund(
                &mut conn,
                refund_id,
                Settled::Failed(&reason),
                correlation_id,
                &self.metrics,
            )
            .await;
        };
        let provider = provider_of(&self.providers, &authorization)?;
        let reference = reference_of(&authorization)?;
        let transaction_id = ProviderReference::new(transaction_id);

        if refund.attempts > 0 {
            let state = provider
                .lookup(&Lookup::Refund {
                    refund_id,
                    reference: reference.clone(),
                    transaction_id: transaction_id.clone(),
                })
                .await
                .map_err(JobError::transient)?;
            match state {
                PaymentState::Refunded { .. } => {
                    return settle_refund(
                        &mut conn,
                        refund_id,
                        Settled::Refunded,
                        correlation_id,
                        &self.metrics,
                    )
                    .await
                }
                PaymentState::RefundFailed { reason } => {
                    return settle_refund(
                        &mut conn,
                        refund_id,
                        Settled::Failed(&reason),
                        correlation_id,
                        &self.metrics,
                    )
                    .await
                }
                PaymentState::NotFound => {}
                PaymentState::Processing => {
                    return Err(JobError::transient(anyhow::anyhow!(
                        "the provider is still working on refund {refund_id}"
                    )))
                }
                other => {
                    return Err(JobError::permanent(anyhow::anyhow!(
                        "the provider answered a refund lookup with {other:?}"
                    )))
                }
            }
        }

        store::count_refund_attempt(&mut conn, refund_id).await?;
        let amount = Money::new(refund.amount_minor, authorization.amount.currency().clone())
            .map_err(|error| JobError::permanent(anyhow::anyhow!(error)))?;
        let request = RefundRequest {
            refund_id,
            authorization_id: refund.authorization_id,
            reference,
            transaction_id,
            amount,
        };
        match provider.refund(&request).await {
            Ok(_) => {
                settle_refund(
                    &mut conn,
                    refund_id,
                    Settled::Refunded,
                    correlation_id,
                    &self.metrics,
                )
                .await
            }
            Err(ProviderError::Refused { code, message, .. }) => {
                let reason = format!("the provider refused the refund: {code}: {message}");
                if job.attempt >= REFUSALS_BEFORE_GIVING_UP {
                    settle_refund(
                        &mut conn,
                        refund_id,
                        Settled::Failed(&reason),
                        correlation_id,
                        &self.metrics,
                    )
                    .await
                } else {
                    store::refund_attempt_failed(&mut conn, refund_id, &reason).await?;
                    Err(JobError::transient(anyhow::anyhow!(reason)))
                }
            }
            Err(error) => {
                store::refund_attempt_failed(&mut conn, refund_id, &error.to_string()).await?;
                Err(JobError::transient(error))
            }
        }
    }
}

/// How a refund ended.
pub(crate) enum Settled<'a> {
    Refunded,
    Failed(&'a str),
}

/// Records the end of a pending refund with its event, once.
pub(crate) async fn settle_refund(
    conn: &mut PgConnection,
    refund_id: RefundId,
    settled: Settled<'_>,
    correlation_id: Uuid,
    metrics: &GatewayMetrics,
) -> Result<(), JobError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let Some(refund) = store::lock_refund(&mut tx, refund_id).await? else {
        return Ok(());
    };
    if refund.state != CallState::Pending {
        return Ok(());
    }
    match settled {
        Settled::Refunded => {
            let mut refund = refund;
            refund.state = CallState::Succeeded;
            refund.last_error = None;
            store::save_refund(&mut tx, &refund).await?;
            events::refunded(&mut tx, &refund, correlation_id).await?;
            tx.commit().await?;
            tracing::info!(%refund_id, amount_minor = refund.amount_minor, "refunded");
        }
        Settled::Failed(reason) => {
            fail_refund(&mut tx, refund, reason, correlation_id, metrics).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Marks `refund` failed and publishes `payment_refund_failed`, counted
/// for an operator. Counted when written: a transaction that rolls back
/// and is retried counts it twice, which errs on the side of a look.
pub(crate) async fn fail_refund(
    conn: &mut PgConnection,
    mut refund: Refund,
    reason: &str,
    correlation_id: Uuid,
    metrics: &GatewayMetrics,
) -> Result<(), sqlx::Error> {
    refund.state = CallState::Failed;
    refund.last_error = Some(reason.to_owned());
    store::save_refund(conn, &refund).await?;
    events::refund_failed(conn, &refund, reason, correlation_id).await?;
    metrics.refund_failures.inc();
    tracing::error!(refund_id = %refund.refund_id, order_id = %refund.order_id, reason, "refund failed; an operator must settle it");
    Ok(())
}
