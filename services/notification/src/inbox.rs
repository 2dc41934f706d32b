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
//!   email is a durable job enqueued in the same transaction, carrying the
//!   address and the words, sent after the commit and retried with backoff.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Customer, Notice};
use crate::store::{self, TakenOrder};

/// The job that emails one notification.
pub const EMAIL_JOB: &str = "email_notification";

/// The email job's payload: the notification, and what its email says as
/// it was queued. Neither the address nor the words of a notification
/// change once it is queued for email, so the job sends them without
/// reading the notification again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailJob {
    pub notification_id: Uuid,
    /// `None` in a job that names only the notification (as jobs queued by
    /// earlier versions of the service do): the job reads it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<EmailMessage>,
}

/// What one notification's email says, and to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailMessage {
    pub to: String,
    pub title: String,
    pub body: String,
}

impl From<store::QueuedEmail> for EmailMessage {
    fn from(queued: store::QueuedEmail) -> Self {
        EmailMessage {
            to: queued.to,
            title: queued.title,
            body: queued.body,
        }
    }
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
    let TakenOrder {
        known,
        learnt,
        notified,
    } = store::take_order(conn, order_id, customer, notice).await?;
    if let (Some(known), Some(customer)) = (&known, customer) {
        if known.customer_id != customer.customer_id {
            tracing::warn!(
                first = %known.customer_id,
                now = %customer.customer_id,
                "an event names another customer for the order; keeping the first"
            );
        }
    }
    // The emails this transaction queues.
    let mut emails = Vec::new();
    let told = match (notice, &known, notified) {
        (None, _, _) => Told::NothingToTell,
        (Some(_), None, _) => Told::Parked,
        (Some(_), Some(_), None) => Told::AlreadyTold,
        (Some(notice), Some(known), Some(notification_id)) => {
            if let Some(to) = &known.email {
                emails.push(EmailJob {
                    notification_id,
                    message: Some(EmailMessage {
                        to: to.clone(),
                        title: notice.title.clone(),
                        body: notice.body.clone(),
                    }),
                });
            }
            Told::Told
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
            let unsent = store::claim_unsent_emails(conn, order_id, email).await?;
            emails.extend(
                unsent
                    .into_iter()
                    .map(|(notification_id, queued)| EmailJob {
                        notification_id,
                        message: Some(queued.into()),
                    }),
            );
        }
    }
    for email in emails {
        let dedupe_key = email.notification_id.to_string();
        job_queue::enqueue(
            conn,
            job_queue::NewJob::new(EMAIL_JOB, &email)?.dedupe_key(dedupe_key),
        )
        .await?;
    }
    Ok(told)
}
