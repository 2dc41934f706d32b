//! What checkout asks its four peers, and the little of each answer it
//! keeps. The peers' wire types stay here; the rest of the service sees
//! domain types and [`CallError`].
//!
//! Every call that changes something at a peer is safe to repeat: a points
//! reservation is one per `order_id`, an authorization carries the
//! checkout's id as its `Idempotency-Key`, and voids and releases of what
//! is already voided or released change nothing. That is what lets a
//! compensation that failed be retried by a job until it is done.

use futures::future::try_join_all;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use service_client::{CallError, ServiceClient};
use time::OffsetDateTime;
use uuid::Uuid;

/// One client per peer, all with the service's token and timeout.
#[derive(Clone)]
pub struct Peers {
    pub catalog: ServiceClient,
    pub cart: ServiceClient,
    pub points: ServiceClient,
    pub gateway: ServiceClient,
}

/// cart's `GET /v1/carts/{user_id}`, as far as checkout reads it.
#[derive(Debug, Deserialize)]
struct CartBody {
    items: Vec<CartItem>,
}

/// One line of a cart: an offering and how many of it.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct CartItem {
    pub offering_id: Uuid,
    pub quantity: u32,
}

/// catalog's `GET /v1/offerings/{id}`, as far as checkout reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Offering {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub price_minor: i64,
    pub currency: String,
    pub points_price: i64,
    /// `None`: unlimited.
    pub stock: Option<i64>,
    pub active: bool,
}

#[derive(Debug, Deserialize)]
struct BalanceBody {
    available: i64,
}

#[derive(Debug, Serialize)]
struct ReservationRequest {
    user_id: Uuid,
    order_id: Uuid,
    checkout_id: Uuid,
    points: i64,
    ttl_seconds: i64,
}

/// Points held for an order.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// What checkout asks the gateway to authorize.
#[derive(Debug, Serialize)]
pub struct AuthorizationRequest<'a> {
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    pub customer_id: Uuid,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub provider: &'a str,
    pub payment_method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<&'a str>,
}

/// The gateway's answer to an authorization or its confirmation.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationBody {
    pub authorization_id: Uuid,
    pub status: AuthorizationStatus,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationStatus {
    Authorized,
    RequiresAction,
    Declined,
    /// Voided before it could be used (the order was voided meanwhile).
    Voided,
    /// Captured: only the order asks for that, after checkout finished.
    Captured,
}

/// Where the customer goes to finish a payment.
#[derive(Debug, Clone, Deserialize)]
pub struct NextAction {
    pub url: String,
}

impl Peers {
    /// The user's cart lines, in cart order.
    pub async fn cart(&self, user_id: Uuid) -> Result<Vec<CartItem>, CallError> {
        let cart: CartBody = self.cart.get(&format!("/v1/carts/{user_id}")).await?;
        Ok(cart.items)
    }

    /// Each offering, in the order asked; `None` for one catalog does not
    /// know (any more). Asked all at once: the customer waits for the
    /// slowest, not the sum.
    pub async fn offerings(&self, ids: &[Uuid]) -> Result<Vec<Option<Offering>>, CallError> {
        try_join_all(ids.iter().map(|id| async move {
            match self
                .catalog
                .get::<Offering>(&format!("/v1/offerings/{id}"))
                .await
            {
                Ok(offering) => Ok(Some(offering)),
                Err(error) if error.status() == StatusCode::NOT_FOUND => Ok(None),
                Err(error) => Err(error),
            }
        }))
        .await
    }

    /// The points the user can spend now.
    pub async fn available_points(&self, user_id: Uuid) -> Result<i64, CallError> {
        let balance: BalanceBody = self
            .points
            .get(&format!("/v1/points/balances/{user_id}"))
            .await?;
        Ok(balance.available)
    }

    /// Holds `points` for the order; the same order again returns the
    /// first reservation.
    pub async fn reserve(
        &self,
        user_id: Uuid,
        order_id: Uuid,
        checkout_id: Uuid,
        points: i64,
        ttl: std::time::Duration,
    ) -> Result<Reservation, CallError> {
        let request = ReservationRequest {
            user_id,
            order_id,
            checkout_id,
            points,
            ttl_seconds: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        };
        self.points.post("/v1/points/reservations", &request).await
    }

    /// Gives the points back; one already released (or expired, or never
    /// found) counts as released.
    pub async fn release(&self, reservation_id: Uuid) -> Result<(), CallError> {
        match self
            .points
            .delete(&format!("/v1/points/reservations/{reservation_id}"))
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.status() == StatusCode::NOT_FOUND => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Asks the gateway to authorize the payment, once per checkout.
    pub async fn authorize(
        &self,
        request: &AuthorizationRequest<'_>,
    ) -> Result<AuthorizationBody, CallError> {
        Ok(self
            .gateway
            .request(Method::POST, "/v1/payments/authorizations")
            .idempotency_key(format!("checkout-{}", request.checkout_id))
            .json(request)
            .send()
            .await?
            .body)
    }

    /// Finishes an authorization that needed the customer's action.
    pub async fn confirm(&self, authorization_id: Uuid) -> Result<AuthorizationBody, CallError> {
        Ok(self
            .gateway
            .request(
                Method::POST,
                &format!("/v1/payments/{authorization_id}/confirm"),
            )
            // A fresh key each time: a confirm answered `requires_action`
            // (the customer has not approved yet) must be asked again, not
            // replayed.
            .idempotency_key(Uuid::new_v4().to_string())
            .send()
            .await?
            .body)
    }

    /// Voids an authorization; voiding a voided one changes nothing.
    pub async fn void(&self, authorization_id: Uuid) -> Result<(), CallError> {
        self.gateway
            .request(
                Method::POST,
                &format!("/v1/payments/{authorization_id}/void"),
            )
            .idempotency_key(format!("void-{authorization_id}"))
            .send::<serde::de::IgnoredAny>()
            .await
            .map(drop)
    }

    /// Voids whatever authorization the order has, and marks the order so
    /// that one arriving later is voided too: for an authorize call whose
    /// answer was lost.
    pub async fn void_order(&self, order_id: Uuid) -> Result<(), CallError> {
        self.gateway
            .request(
                Method::POST,
                &format!("/v1/payments/orders/{order_id}/void"),
            )
            .idempotency_key(format!("void-order-{order_id}"))
            .send::<serde::de::IgnoredAny>()
            .await
            .map(drop)
    }
}
