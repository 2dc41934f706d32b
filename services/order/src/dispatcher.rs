//! What order asks the dispatcher: to withdraw every part of an order the
//! customer cancels, synchronously, before anything is given back.
//!
//! Synchronous because the answer decides the customer's: once a business
//! has confirmed its part the order can no longer be cancelled, and only the
//! dispatcher knows that the instant it is asked (the `order_confirmed`
//! event may still be on its way to us).

use reqwest::Method;
use service_client::{CallError, ServiceClient};
use uuid::Uuid;

/// The dispatcher's answer to a withdraw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// Every part is withdrawn (or marked, so parts not yet arrived are never sent).
    Withdrawn,
    /// A part is confirmed by its business.
    NotCancellable,
}

#[derive(Clone)]
pub struct Dispatcher(pub ServiceClient);

impl Dispatcher {
    /// `POST /v1/dispatch/orders/{order_id}/withdraw`.
    #[tracing::instrument(skip(self))]
    pub async fn withdraw(&self, order_id: Uuid) -> Result<Withdrawal, CallError> {
        let answer = self
            .0
            .request(
                Method::POST,
                &format!("/v1/dispatch/orders/{order_id}/withdraw"),
            )
            .send::<serde::de::IgnoredAny>()
            .await;
        match answer {
            Ok(_) => Ok(Withdrawal::Withdrawn),
            Err(error) if error.is_rejected_with("not_cancellable") => {
                Ok(Withdrawal::NotCancellable)
            }
            Err(error) => Err(error),
        }
    }
}
