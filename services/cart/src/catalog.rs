//! What cart asks catalog, and the little of catalog's answer it keeps.
//!
//! Cart asks catalog about an offering when a user puts it in the cart,
//! rather than keeping a copy of the catalog from `offering_changed`: a copy
//! would need the whole catalog's history to start from, which the topic
//! does not keep forever, and a cart is changed by hand, where one call
//! within catalog's few milliseconds costs nothing. The price of that
//! choice: while catalog is down, items cannot be added or changed (503),
//! though carts can still be read, emptied and checked out.

use serde::Deserialize;
use service_client::{CallError, ServiceClient};
use uuid::Uuid;

use crate::domain::OfferingState;

/// catalog's `GET /v1/offerings/{id}`, as far as cart reads it.
#[derive(Debug, Deserialize)]
struct OfferingBody {
    active: bool,
}

#[derive(Clone)]
pub struct Catalog(pub ServiceClient);

impl Catalog {
    /// Whether `offering_id` exists and can be bought.
    pub async fn offering_state(&self, offering_id: Uuid) -> Result<OfferingState, CallError> {
        match self
            .0
            .get::<OfferingBody>(&format!("/v1/offerings/{offering_id}"))
            .await
        {
            Ok(offering) if offering.active => Ok(OfferingState::Active),
            Ok(_) => Ok(OfferingState::Inactive),
            Err(error) if error.status() == reqwest::StatusCode::NOT_FOUND => {
                Ok(OfferingState::Unknown)
            }
            Err(error) => Err(error),
        }
    }
}
