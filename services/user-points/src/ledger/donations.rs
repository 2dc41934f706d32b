//! An officer's donation: one transfer from the officer's available points
//! to a registered charity's.

use shared_events::points::{PointsCredited, PointsDonated, PointsEvent, PointsSource};
use shared_events::Envelope;
use sqlx::PgConnection;

use crate::domain::{Donation, EntryKind, Movement, NewDonation};
use crate::store;

/// Makes the donation. An unregistered charity breaks
/// `donations_charity_registered`; more than the officer has available
/// breaks `accounts_available_not_negative`. Either way nothing is written.
#[tracing::instrument(skip_all, fields(donation_id = %request.donation_id, officer_id = %request.officer_id, charity_id = %request.charity_id))]
pub async fn donate(
    conn: &mut PgConnection,
    request: &NewDonation,
) -> Result<Donation, sqlx::Error> {
    let donation = store::donations::insert(conn, request).await?;
    let reference = donation.donation_id.to_string();
    for (user_id, kind) in [
        (donation.officer_id, EntryKind::Donated),
        (donation.charity_id, EntryKind::Received),
    ] {
        let movement = Movement {
            user_id,
            kind,
            points: donation.points,
            order_id: None,
            reference: reference.clone(),
        };
        store::apply(conn, &movement).await?;
    }
    let donated = PointsEvent::PointsDonated(PointsDonated {
        user_id: donation.officer_id,
        charity_id: donation.charity_id,
        points: donation.points,
    });
    let credited = PointsEvent::PointsCredited(PointsCredited {
        user_id: donation.charity_id,
        points: donation.points,
        source: PointsSource::Donation,
        reference,
    });
    let events = [donated, credited].map(|event| Envelope::new(event, donation.donation_id));
    messaging::outbox::enqueue_all(conn, &events).await?;
    Ok(donation)
}
