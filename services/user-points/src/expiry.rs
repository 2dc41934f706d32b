//! Releases reservations whose checkout did not finish in time, without
//! anyone asking: a sweep on the service's job runner, reading the service's
//! clock.

use anyhow::Context;
use async_trait::async_trait;
use job_queue::Sweep;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::ledger::reservations;
use crate::metrics::PointsMetrics;

pub struct ExpireReservations {
    pub metrics: PointsMetrics,
}

#[async_trait]
impl Sweep for ExpireReservations {
    fn name(&self) -> &'static str {
        "user_points.expire_reservations"
    }

    fn what(&self) -> &'static str {
        "expired reservations"
    }

    async fn batch(
        &self,
        conn: &mut PgConnection,
        now: OffsetDateTime,
        limit: i64,
    ) -> anyhow::Result<usize> {
        let expired = reservations::expire_due(conn, now, limit)
            .await
            .context("failed to release expired reservations")?;
        for reservation in &expired {
            tracing::info!(
                reservation_id = %reservation.reservation_id,
                order_id = %reservation.order_id,
                "reservation expired before its checkout finished; points released"
            );
        }
        Ok(expired.len())
    }

    fn committed(&self, handled: usize) {
        self.metrics
            .reservations_expired
            .inc_by(u64::try_from(handled).unwrap_or(u64::MAX));
    }
}
