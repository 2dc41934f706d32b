//! Giving back what a checkout that did not finish holds at its peers: its
//! points reservation and its payment authorization.
//!
//! A failing checkout leaves a durable job per [`Compensation`] in the
//! transaction that marks it failed, then makes each one at once, before
//! it answers. The job, due [`SAFETY_NET_DELAY`] later, repeats it — which
//! changes nothing when it was made, and makes it when the peer was down or
//! slow — and [`CompensationJob`] retries with backoff until the peer
//! takes it. Each is safe to repeat (see `peers`).

use std::time::Duration;

use async_trait::async_trait;
use job_queue::{Job, JobContext, JobError, JobHandler, NewJob};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use service_client::CallError;
use uuid::Uuid;

use crate::peers::Peers;

/// The job kind that carries a [`Compensation`].
pub const KIND: &str = "checkout.compensate";

/// How long after a checkout failed its compensation jobs run: long enough
/// that the immediate attempt usually made them already.
pub const SAFETY_NET_DELAY: Duration = Duration::from_secs(10);

/// How long a reservation made only to release it at once is held, should
/// the release itself fail: user-points lets it go by itself then.
const PROBE_TTL: Duration = Duration::from_secs(60);

/// One thing a checkout gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Compensation {
    /// `DELETE /v1/points/reservations/{id}`.
    ReleaseReservation { reservation_id: Uuid },
    /// The reserve call's answer was lost, so the reservation's id is
    /// unknown: reserving again for the same order returns the first one
    /// (or makes one), which is then released.
    ReleaseOrderPoints {
        user_id: Uuid,
        order_id: Uuid,
        checkout_id: Uuid,
        points: i64,
    },
    /// `POST /v1/payments/{id}/void`.
    VoidAuthorization { authorization_id: Uuid },
    /// `POST /v1/payments/orders/{order_id}/void`: the authorize call's
    /// answer was lost; the gateway voids what the order has and any
    /// authorization that arrives for it later.
    VoidOrder { order_id: Uuid },
}

impl Compensation {
    /// Makes the call once.
    pub async fn run(&self, peers: &Peers) -> Result<(), CallError> {
        match *self {
            Compensation::ReleaseReservation { reservation_id } => {
                peers.release(reservation_id).await
            }
            Compensation::ReleaseOrderPoints {
                user_id,
                order_id,
                checkout_id,
                points,
            } => {
                match peers
                    .reserve(user_id, order_id, checkout_id, points, PROBE_TTL)
                    .await
                {
                    Ok(reservation) => peers.release(reservation.reservation_id).await,
                    // Nothing is held for the order, and the first request
                    // (were it still on its way) would find the same.
                    Err(error) if error.is_rejected_with("insufficient_points") => Ok(()),
                    Err(error) => Err(error),
                }
            }
            Compensation::VoidAuthorization { authorization_id } => {
                peers.void(authorization_id).await
            }
            Compensation::VoidOrder { order_id } => peers.void_order(order_id).await,
        }
    }

    /// The job that retries this compensation, one per held thing.
    pub fn job(&self) -> Result<NewJob, serde_json::Error> {
        let key = match self {
            Compensation::ReleaseReservation { reservation_id } => {
                format!("release/{reservation_id}")
            }
            Compensation::ReleaseOrderPoints { order_id, .. } => {
                format!("release-order/{order_id}")
            }
            Compensation::VoidAuthorization { authorization_id } => {
                format!("void/{authorization_id}")
            }
            Compensation::VoidOrder { order_id } => format!("void-order/{order_id}"),
        };
        Ok(NewJob::new(KIND, self)?.dedupe_key(key))
    }
}

/// Tries each compensation now; returns those that could not be made
/// (their jobs make them later).
pub async fn attempt(peers: &Peers, compensations: Vec<Compensation>) -> Vec<Compensation> {
    let mut left = Vec::new();
    for compensation in compensations {
        if let Err(error) = compensation.run(peers).await {
            tracing::warn!(?compensation, %error, "compensation could not be made now; its job makes it later");
            left.push(compensation);
        }
    }
    left
}

/// Retries a compensation until its peer takes it.
pub struct CompensationJob {
    pub peers: Peers,
}

#[async_trait]
impl JobHandler for CompensationJob {
    fn kind(&self) -> &'static str {
        KIND
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, _ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let compensation: Compensation = job.payload()?;
        match compensation.run(&self.peers).await {
            Ok(()) => {
                tracing::info!(?compensation, "compensation made");
                Ok(())
            }
            Err(error) if error.is_unavailable() => Err(JobError::transient(error)),
            // A reservation bound to its order belongs to the order now, and
            // a refusal will not change on retry: an operator must look.
            Err(error) if error.status() == StatusCode::CONFLICT || error.problem().is_some() => {
                tracing::error!(?compensation, %error, "peer refused a compensation");
                Err(JobError::permanent(error))
            }
            Err(error) => Err(JobError::transient(error)),
        }
    }
}
