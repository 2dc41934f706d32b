//! The email job: sends one notification, to the address and in the words
//! it was queued with, after the transaction that created it has committed.
//! Failures the mail server calls temporary (and unreachable servers) are
//! retried with the job queue's backoff; a malformed address or a permanent
//! refusal gives up.

use async_trait::async_trait;
use job_queue::{Job, JobContext, JobError, JobHandler};
use mail::{Email, Mailer};
use uuid::Uuid;

use crate::domain::wording;
use crate::inbox::{EmailJob, EmailMessage, EMAIL_JOB};
use crate::metrics::NotificationMetrics;
use crate::store;

/// Runs [`EMAIL_JOB`] jobs with the service's [`Mailer`].
pub struct SendEmail {
    pub mailer: Mailer,
    pub metrics: NotificationMetrics,
}

#[async_trait]
impl JobHandler for SendEmail {
    fn kind(&self) -> &'static str {
        EMAIL_JOB
    }

    #[tracing::instrument(skip_all, fields(job_id = job.id, attempt = job.attempt))]
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<(), JobError> {
        let EmailJob {
            notification_id,
            message,
        } = job.payload()?;
        let message = match message {
            Some(message) => message,
            None => queued_message(ctx, notification_id).await?,
        };
        let email = Email::text(&message.to, &message.title, &message.body)
            .with_html(wording::email_html(&message.title, &message.body))
            // One id per notification, so a resend after a crash is the same
            // message to the recipient's mail client.
            .with_message_id(format!("{notification_id}@notification.heyblue"));
        self.mailer.send(&email).await.map_err(|error| {
            let permanent = error.is_permanent();
            let outcome = if permanent { "abandoned" } else { "failed" };
            self.metrics.emails.with_label_values(&[outcome]).inc();
            let error = anyhow::Error::new(error)
                .context(format!("failed to email notification {notification_id}"));
            if permanent {
                JobError::permanent(error)
            } else {
                JobError::transient(error)
            }
        })?;
        self.metrics.emails.with_label_values(&["sent"]).inc();
        let mut conn = ctx.pool.acquire().await?;
        store::mark_emailed(&mut conn, notification_id, job).await?;
        Ok(())
    }
}

/// What notification `notification_id` was queued to email, for a job that
/// names only the notification. The connection is released before the
/// caller talks to the mail server: none is held across a call that may
/// take seconds.
async fn queued_message(ctx: &JobContext, notification_id: Uuid) -> Result<EmailMessage, JobError> {
    let mut conn = ctx.pool.acquire().await?;
    match store::queued_email(&mut conn, notification_id).await? {
        Some(queued) => Ok(queued.into()),
        None => Err(JobError::permanent(anyhow::anyhow!(
            "notification {notification_id} has no email queued"
        ))),
    }
}
