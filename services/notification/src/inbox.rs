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
    // Whether this event named the customer or their address for the first
    // time: only then can facts be parked, or notifications lack an email.
    let (known, learnt) = store::take_order(conn, order_id, customer).await?;
    if let (Some(known), Some(customer)) = (&known, customer) {
        if known.customer_id != customer.customer_id {
            tracing::warn!(
                first = %known.customer_id,
                now = %customer.customer_id,
                "an event names another customer for the order; keeping the first"
            );
        }
    }
    // The notifications whose emails this transaction queues.
    let mut emails = Vec::new();
    let told = match (&known, notice) {
        (_, None) => Told::NothingToTell,
        (Some(known), Some(notice)) => {
            let email = known.email.as_deref();
            match store::insert(conn, known.customer_id, notice, email).await? {
                Some(id) => {
                    emails.extend(email.map(|_| id));
                    Told::Told
                }
                None => Told::AlreadyTold,
            }
        }
        (None, Some(notice)) => {
            store::park(conn, notice).await?;
            Told::Parked
        }
    };
    // Facts are parked, and notifications made without an address, only
    // while the customer or their address is unknown: only the event that
    // teaches it can have any to move or to email.
    if let Some(known) = known.filter(|_| learnt) {
        let moved = store::unpark(conn, order_id, known.customer_id).await?;
        if moved > 0 {
            tracing::info!(moved, "parked notifications moved into the inbox");
        }
        if let Some(email) = known.email.as_deref() {
            emails.extend(store::claim_unsent_emails(conn, order_id, email).await?);
        }
    }
    for notification_id in emails {
        job_queue::enqueue(
            conn,
            job_queue::NewJob::new(EMAIL_JOB, &EmailJob { notification_id })?
                .dedupe_key(notification_id.to_string()),
        )
        .await?;
    }
    Ok(told)
}
