//! The events user-points handles. What it publishes is written by `store`
//! into the outbox.

use async_trait::async_trait;
use messaging::{Handler, HandlerError};
use shared_events::connection::ConnectionEvent;
use shared_events::Envelope;
use sqlx::PgConnection;

use crate::domain::{AwardOutcome, NewAward};
use crate::store;

/// Credits `points_awarded` from the connection capability, once per `award_id`.
pub struct AwardHandler;

#[async_trait]
impl Handler<ConnectionEvent> for AwardHandler {
    #[tracing::instrument(skip_all, fields(event_id = %event.event_id))]
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ConnectionEvent>,
    ) -> Result<(), HandlerError> {
        let ConnectionEvent::PointsAwarded(awarded) = &event.event;
        let award = NewAward::new(
            awarded.award_id,
            awarded.user_id,
            awarded.points,
            &awarded.reason,
            Some(awarded.connection_id),
        )
        .map_err(|error| {
            HandlerError::permanent(
                anyhow::Error::new(error).context(format!("invalid award {}", awarded.award_id)),
            )
        })?;
        match store::credit_award(conn, &award).await? {
            AwardOutcome::Credited(_) => Ok(()),
            AwardOutcome::AlreadyCredited(_) => {
                tracing::info!(award_id = %award.award_id, "award credited before; nothing to do");
                Ok(())
            }
            AwardOutcome::Conflict(existing) => Err(HandlerError::permanent(anyhow::anyhow!(
                "award {} was credited before with other fields (user {}, {} points)",
                existing.award_id,
                existing.user_id,
                existing.points
            ))),
        }
    }
}
