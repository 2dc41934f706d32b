//! The rules of telling, applied inside the transaction of the event that
//! brings the news:
//!
//! - a fact is told once: `(order_id, kind, fact_key)` is unique, so a
//!   redelivered event, or the same fact re-sent under a new `event_id`,
//!   adds nothing;
//! - a fact about an order whose customer is not known yet is parked, and
//!   moves into the customer's inbox when an order event names them (topics
//!   arrive in any order between them, and nothing polls in the meantime);
//! - each notification is emailed once its order's address is known: the
//!   email is a durable job enqueued in the same transaction, sent after the
//!   commit and retried with backoff.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Customer, Notice};
use crate::store;

/// The job that emails one notification.
pub const EMAIL_JOB: &str = "email_notification";

/// The email job's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    pub notification_id: Uuid,
}

/// What became of a notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// In the customer's inbox now.
    Told,
    /// Told before; nothing changed.
    AlreadyTold,
    /// Waiting for the order's customer.
    Parked,
    /// The event only said whom the order belongs to.
    NothingToTell,
}

#[derive(Debug, thiserror::Error)]
pub enum TellError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the email job's payload does not serialize: {0}")]
    Job(#[from] serde_json::Error),
}

/// Applies what one event says about `order_id`: whom it belongs to
/// (`customer`, when the event names them) and the fact to tell (`notice`).
#[tracing::instrument(skip_all, fields(%order_id, kind = notice.as_ref().map(|n| n.kind.as_str())))]
pub async fn tell(
    conn: &mut PgConnection,
    order_id: Uuid,
    customer: Option<&Customer>,
    notice: Option<&Notice>,
) -> Result<Told, TellError> {
    store::lock_order(conn, order_id).await?;
    // Whether this event named the customer or their address for the first
    // time: only then can facts be parked, or notifications lack an email.
    let mut learnt = false;
    let known = match customer {
        Some(customer) => {
            let (known, new) = store::remember_customer(conn, customer).await?;
            learnt = new;
            if known.customer_id != customer.customer_id {
                tracing::warn!(
                    first = %known.customer_id,
                    now = %customer.customer_id,
                    "an event names another customer for the order; keeping the first"
                );
            }
            Some(known)
        }
        None => store::customer_of(conn, order_id).await?,
    };
    let told = match (&known, notice) {
        (_, None) => Told::NothingToTell,
        (Some(known), Some(notice)) => {
            if store::insert(conn, known.customer_id, notice).await? {
                Told::Told
            } else {
                Told::AlreadyTold
            }
        }
        (None, Some(notice)) => {
            store::park(conn, notice).await?;
            Told::Parked
        }
    };
    if let Some(known) = known {
        // Facts are parked only while no customer is known, so only an
        // event that names the customer first can have any to move.
        if learnt {
            let moved = store::unpark(conn, order_id, known.customer_id).await?;
            if moved > 0 {
                tracing::info!(moved, "parked notifications moved into the inbox");
            }
        }
        // Every notification made while the address was known has its
        // email queued in the transaction that made it.
        let new_mail = learnt || matches!(told, Told::Told);
        if let Some(email) = known.email.as_deref().filter(|_| new_mail) {
            for notification_id in store::claim_unsent_emails(conn, order_id, email).await? {
                job_queue::enqueue(
                    conn,
                    job_queue::NewJob::new(EMAIL_JOB, &EmailJob { notification_id })?
                        .dedupe_key(notification_id.to_string()),
                )
                .await?;
            }
        }
    }
    Ok(told)
}
