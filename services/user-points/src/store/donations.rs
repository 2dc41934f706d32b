//! Donations made.

use sqlx::PgConnection;

use crate::domain::{Donation, NewDonation};

/// Stores the donation; one to an unregistered charity breaks
/// `donations_charity_registered`.
#[tracing::instrument(skip_all, fields(donation_id = %donation.donation_id, charity_id = %donation.charity_id))]
pub async fn insert(
    conn: &mut PgConnection,
    donation: &NewDonation,
) -> Result<Donation, sqlx::Error> {
    let created_at = sqlx::query_scalar(
        "INSERT INTO donations (donation_id, officer_id, charity_id, points)
         VALUES ($1, $2, $3, $4)
         RETURNING created_at",
    )
    .bind(donation.donation_id)
    .bind(donation.officer_id)
    .bind(donation.charity_id)
    .bind(donation.points.get())
    .fetch_one(conn)
    .await?;
    Ok(Donation {
        donation_id: donation.donation_id,
        officer_id: donation.officer_id,
        charity_id: donation.charity_id,
        points: donation.points.get(),
        created_at,
    })
}
