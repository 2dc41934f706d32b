//! Provider webhooks: verified by the provider's own check, stored once per
//! (provider, provider event id) and acknowledged at once; a job then
//! processes each stored event, so a webhook delivered twice has one effect
//! and a slow database never makes the provider resend.
//!
//! What an event can change: a capture the gateway has not recorded as done
//! (`payment_successful` or `payment_failed`, once), and a pending refund
//! (`payment_refunded` or `payment_refund_failed`, once). Other events are
//! stored and left alone.

use async_trait::async_trait;
use job_queue::{Job, JobContext, JobError, JobHandler, NewJob};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Authorization, AuthorizationId, CallState, RefundId};
use crate::jobs::{self, Finish, Settled};
use crate::metrics::GatewayMetrics;
use crate::providers::{Providers, WebhookEvent, WebhookEventKind};
use crate::store;

const PROCESS: &str = "payment_gateway.process_webhook";

/// A verified event as stored: the translated fields the job acts on.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEvent {
    kind: StoredKind,
    object_id: Option<String>,
    authorization_id: Option<Uuid>,
    refund_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredKind {
    CustomerApproved,
    CustomerActionRequired,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentFailed,
    PaymentCanceled,
    RefundSucceeded,
    RefundFailed,
    Other,
}

impl From<&WebhookEventKind> for StoredKind {
    fn from(kind: &WebhookEventKind) -> Self {
        match kind {
            WebhookEventKind::CustomerApproved => StoredKind::CustomerApproved,
            WebhookEventKind::CustomerActionRequired => StoredKind::CustomerActionRequired,
            WebhookEventKind::PaymentAuthorized => StoredKind::PaymentAuthorized,
            WebhookEventKind::PaymentCaptured => StoredKind::PaymentCaptured,
            WebhookEventKind::PaymentFailed => StoredKind::PaymentFailed,
            WebhookEventKind::PaymentCanceled => StoredKind::PaymentCanceled,
            WebhookEventKind::RefundSucceeded => StoredKind::RefundSucceeded,
            WebhookEventKind::RefundFailed => StoredKind::RefundFailed,
            WebhookEventKind::Other => StoredKind::Other,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct ProcessPayload {
    provider: String,
    event_id: String,
}

/// Stores a verified event and enqueues its processing; `false` when the
/// provider delivered it before (and nothing is stored again).
#[tracing::instrument(skip_all, fields(provider = %event.provider, event_id = %event.event_id, event_type = %event.event_type))]
pub async fn receive(pool: &PgPool, event: &WebhookEvent) -> Result<bool, sqlx::Error> {
    let stored = StoredEvent {
        kind: StoredKind::from(&event.kind),
        object_id: event.object_id.clone(),
        authorization_id: event.authorization_id.map(|id| id.0),
        refund_id: event.refund_id.map(|id| id.0),
    };
    let stored =
        serde_json::to_value(&stored).map_err(|error| sqlx::Error::Encode(Box::new(error)))?;
    let provider = event.provider.as_str();
    let mut tx = pool.begin().await?;
    let new = store::insert_webhook_event(
        &mut tx,
        provider,
        &event.event_id,
        &event.event_type,
        &stored,
    )
    .await?;
    if new {
        let payload = ProcessPayload {
            provider: provider.to_owned(),
            event_id: event.event_id.clone(),
        };
        let job = NewJob::new(PROCESS, &payload)
            .map_err(|error| sqlx::Error::Encode(Box::new(error)))?
            .dedupe_key(format!("{provider}/{}", event.event_id));
        job_queue::enqueue(&mut tx, job).await?;
    }
    tx.commit().await?;
    Ok(new)
}

/// Processes one stored webhook event, once.
pub struct ProcessWebhook {
    pub providers: Providers,
    pub metrics: GatewayMetrics,
}

#[async_trait]
impl JobHandler for ProcessWebhook {
    fn kind(&self) -> &'static str {
        PROCESS
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let payload: ProcessPayload = job.payload()?;
        let mut conn = ctx.pool.acquire().await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let Some(stored) =
            store::lock_unprocessed_webhook(&mut tx, &payload.provider, &payload.event_id).await?
        else {
            return Ok(());
        };
        let event: StoredEvent = serde_json::from_value(stored).map_err(|error| {
            JobError::permanent(anyhow::Error::new(error).context("stored webhook does not decode"))
        })?;
        // The event's effect and its `processed_at` commit together.
        self.apply(&mut tx, &payload.provider, &event).await?;
        store::webhook_processed(&mut tx, &payload.provider, &payload.event_id).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl ProcessWebhook {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        event: &StoredEvent,
    ) -> Result<(), JobError> {
        match event.kind {
            StoredKind::PaymentCaptured => {
                let Some(authorization) = self.authorization_of(conn, provider, event).await?
                else {
                    return Ok(());
                };
                let Some(payment_provider) = self.providers.get(&authorization.provider) else {
                    return Ok(());
                };
                let transaction_id = event
                    .object_id
                    .clone()
                    .or_else(|| authorization.provider_reference.clone())
                    .unwrap_or_default();
                let finish = Finish {
                    authorization: &authorization,
                    provider: payment_provider.as_ref(),
                    correlation_id: authorization.order_id,
                    job: None,
                };
                let amount_minor =
                    match store::capture(conn, authorization.authorization_id).await? {
                        Some(capture) => capture.amount_minor,
                        None => authorization.amount.amount_minor(),
                    };
                finish.captured(conn, &transaction_id, amount_minor).await
            }
            StoredKind::PaymentFailed => {
                let Some(authorization) = self.authorization_of(conn, provider, event).await?
                else {
                    return Ok(());
                };
                let pending = store::capture(conn, authorization.authorization_id)
                    .await?
                    .is_some_and(|capture| capture.state == CallState::Pending);
                if !pending {
                    return Ok(());
                }
                let Some(payment_provider) = self.providers.get(&authorization.provider) else {
                    return Ok(());
                };
                Finish {
                    authorization: &authorization,
                    provider: payment_provider.as_ref(),
                    correlation_id: authorization.order_id,
                    job: None,
                }
                .failed(conn, "the provider reported the payment failed")
                .await
            }
            StoredKind::RefundSucceeded | StoredKind::RefundFailed => {
                let Some(refund_id) = event.refund_id.map(RefundId) else {
                    return Ok(());
                };
                let Some(refund) = store::lock_refund(conn, refund_id).await? else {
                    return Ok(());
                };
                let settled = match event.kind {
                    StoredKind::RefundFailed => {
                        Settled::Failed("the provider reported the refund failed")
                    }
                    _ => Settled::Refunded,
                };
                jobs::settle_refund(
                    conn,
                    refund.refund_id,
                    settled,
                    refund.order_id,
                    &self.metrics,
                )
                .await
            }
            StoredKind::CustomerApproved
            | StoredKind::CustomerActionRequired
            | StoredKind::PaymentAuthorized
            | StoredKind::PaymentCanceled
            | StoredKind::Other => Ok(()),
        }
    }

    /// The authorization the event is about: by the id we sent the
    /// provider, else by the provider's own reference.
    async fn authorization_of(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        event: &StoredEvent,
    ) -> Result<Option<Authorization>, JobError> {
        if let Some(id) = event.authorization_id {
            return Ok(store::lock_authorization(conn, AuthorizationId(id)).await?);
        }
        match &event.object_id {
            Some(reference) => {
                Ok(store::lock_authorization_by_reference(conn, provider, reference).await?)
            }
            None => Ok(None),
        }
    }
}
