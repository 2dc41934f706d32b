//! How a checkout runs (DESIGN §3, §4 steps 1–2): price the cart, write the
//! checkout, hold the points, authorize the payment, and either finish it —
//! the checkout completed and `order_submitted` in one transaction — or give
//! back everything it holds before answering.
//!
//! Nothing here holds a database transaction across a call to a peer: the
//! checkout is written first (`in_progress`), each peer's answer is recorded
//! as it comes, and the final state change is one short transaction. A
//! checkout left `in_progress` by a crash is found by the expiry sweep.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use job_queue::Clock;
use shared_events::checkout::CheckoutEvent;
use shared_events::Envelope;
use sqlx::PgPool;
use uuid::Uuid;

use crate::compensation::{self, Compensation};
use crate::domain::{
    price, CartLine, Checkout, CheckoutRequest, CheckoutStatus, Points, Quantity, Quote, UnitPrice,
};
use crate::http::ApiError;
use crate::peers::{AuthorizationBody, AuthorizationRequest, AuthorizationStatus, Peers};
use crate::store;
use http_service::ErrorTable;

/// The decline code answered when the gateway declines without one.
const GENERIC_DECLINE: &str = "generic_decline";

/// The checkout process and what it needs.
#[derive(Clone)]
pub struct Checkouts {
    pub pool: PgPool,
    pub clock: Arc<dyn Clock>,
    pub peers: Peers,
    pub reservation_ttl: Duration,
    pub expiry_margin: Duration,
    /// How long one call to a peer may take.
    pub peer_timeout: Duration,
}

/// A quote of the caller's cart.
#[derive(Debug, Clone)]
pub struct PricedCart {
    pub quote: Quote,
    pub currency: String,
    pub available_points: i64,
}

/// Who checks out.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: Uuid,
    pub email: Option<String>,
}

/// How a checkout that did not fail stands.
#[derive(Debug, Clone)]
pub enum Outcome {
    Completed(Checkout),
    RequiresAction(Checkout),
}

/// What became of a payment, from the gateway's answer.
enum Payment {
    Answered(AuthorizationBody),
    Failed(service_client::CallError),
}

impl Checkouts {
    /// Prices the user's cart with `points_to_redeem` (all available points
    /// when `None`).
    #[tracing::instrument(skip(self))]
    pub async fn quote(
        &self,
        user_id: Uuid,
        points_to_redeem: Option<Points>,
    ) -> Result<PricedCart, ApiError> {
        let items = self.peers.cart(user_id).await?;
        if items.is_empty() {
            return Err(ApiError::CartEmpty);
        }
        let ids: Vec<Uuid> = items.iter().map(|item| item.offering_id).collect();
        let (offerings, available) = tokio::try_join!(
            self.peers.offerings(&ids),
            self.peers.available_points(user_id)
        )?;
        let mut lines = Vec::with_capacity(items.len());
        let mut currency = None;
        for (item, offering) in items.iter().zip(offerings) {
            let offering = match offering {
                Some(offering) if offering.active => offering,
                _ => return Err(ApiError::OfferingUnavailable(item.offering_id)),
            };
            if offering
                .stock
                .is_some_and(|stock| stock < i64::from(item.quantity))
            {
                return Err(ApiError::OutOfStock(item.offering_id));
            }
            currency.get_or_insert(offering.currency.clone());
            // cart and catalog hold these to the same rules; a value
            // outside them is a peer's bug, not the customer's.
            lines.push(CartLine {
                offering_id: offering.id,
                business_id: offering.business_id,
                title: offering.title,
                quantity: Quantity::new(item.quantity).context("cart answered a bad quantity")?,
                unit_price_minor: UnitPrice::new("price_minor", offering.price_minor)
                    .context("catalog answered a bad price")?,
                points_price: UnitPrice::new("points_price", offering.points_price)
                    .context("catalog answered a bad points price")?,
            });
        }
        let available_points = available.max(0);
        let budget = match points_to_redeem {
            Some(points) if points.get() > available_points => {
                return Err(ApiError::InsufficientPoints {
                    requested: points.get(),
                    available: available_points,
                })
            }
            Some(points) => points,
            None => Points::new(available_points).context("a balance is never negative")?,
        };
        let quote = price(&lines, budget).context("failed to price the cart")?;
        Ok(PricedCart {
            quote,
            currency: currency.unwrap_or_else(|| "USD".to_owned()),
            available_points,
        })
    }

    /// Runs a checkout from the request to its first answer.
    #[tracing::instrument(skip_all, fields(customer_id = %customer.id, checkout_id, order_id))]
    pub async fn submit(
        &self,
        customer: Customer,
        key: &str,
        request: CheckoutRequest,
    ) -> Result<Outcome, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let begun = store::find_by_key(&mut conn, customer.id, key).await?;
        drop(conn);
        if let Some(checkout) = begun {
            return self.resume(checkout).await;
        }
        let priced = self.quote(customer.id, request.points_to_redeem).await?;
        if priced.quote.total_minor > 0 && request.payment.is_none() {
            return Err(ApiError::PaymentMissing(priced.quote.total_minor));
        }
        let total = priced.quote.total_minor;
        let now = self.clock.now();
        let checkout = Checkout {
            id: Uuid::new_v4(),
            order_id: Uuid::new_v4(),
            customer_id: customer.id,
            customer_email: customer.email,
            status: CheckoutStatus::InProgress,
            currency: priced.currency,
            quote: priced.quote,
            available_points: priced.available_points,
            shipping_address: request.shipping_address,
            // Nothing is paid on a total of 0, whatever was sent.
            payment: request.payment.filter(|_| total > 0),
            return_url: request.return_url,
            reservation_id: None,
            expires_at: now + self.reservation_ttl,
            authorization_id: None,
            next_action_url: None,
            failure_code: None,
            created_at: now,
        };
        let span = tracing::Span::current();
        span.record("checkout_id", tracing::field::display(checkout.id));
        span.record("order_id", tracing::field::display(checkout.order_id));
        let mut conn = self.pool.acquire().await?;
        store::insert(&mut conn, &checkout, key).await?;
        drop(conn);
        self.carry_on(checkout).await
    }

    /// The checkout its key began before, met again: the request that began
    /// it died with its process before answering (its idempotency lease was
    /// no longer renewed and ran out), so it goes on where it stopped. Its points and authorization
    /// are keyed by its order, so asking for them again finds the first.
    #[tracing::instrument(skip_all, fields(checkout_id = %checkout.id, order_id = %checkout.order_id))]
    async fn resume(&self, checkout: Checkout) -> Result<Outcome, ApiError> {
        tracing::warn!(
            status = checkout.status.as_str(),
            "carrying on a checkout whose first request died"
        );
        match checkout.status {
            CheckoutStatus::Completed => Ok(Outcome::Completed(checkout)),
            CheckoutStatus::RequiresAction => Ok(Outcome::RequiresAction(checkout)),
            CheckoutStatus::Expired => Err(ApiError::CheckoutExpired(checkout.id)),
            CheckoutStatus::Failed => Err(ApiError::CheckoutFailed(checkout.id)),
            CheckoutStatus::InProgress
                if checkout.too_late(self.clock.now(), self.expiry_margin) =>
            {
                self.expire(checkout).await
            }
            CheckoutStatus::InProgress => self.carry_on(checkout).await,
        }
    }

    /// Holds the points, authorizes the payment and settles: the steps of a
    /// checkout after it is stored.
    async fn carry_on(&self, mut checkout: Checkout) -> Result<Outcome, ApiError> {
        if checkout.quote.points_applied > 0 {
            self.hold_points(&mut checkout).await?;
        }
        let Some(payment) = checkout.payment.clone() else {
            return self.complete(&checkout).await;
        };
        let answer = self
            .peers
            .authorize(&AuthorizationRequest {
                order_id: checkout.order_id,
                checkout_id: checkout.id,
                customer_id: checkout.customer_id,
                amount_minor: checkout.quote.total_minor,
                currency: &checkout.currency,
                provider: &payment.provider,
                payment_method: &payment.payment_method,
                return_url: checkout.return_url.as_deref(),
            })
            .await;
        let payment = match answer {
            Ok(body) => Payment::Answered(body),
            Err(error) => Payment::Failed(error),
        };
        self.settle(checkout, payment).await
    }

    /// Finishes a checkout that waited for the customer.
    #[tracing::instrument(skip(self))]
    pub async fn confirm(&self, customer_id: Uuid, id: Uuid) -> Result<Outcome, ApiError> {
        let checkout = self.get(customer_id, id).await?;
        let authorization_id = match checkout.status {
            CheckoutStatus::Completed => return Ok(Outcome::Completed(checkout)),
            CheckoutStatus::Expired => return Err(ApiError::CheckoutExpired(id)),
            CheckoutStatus::Failed => return Err(ApiError::CheckoutFailed(id)),
            CheckoutStatus::InProgress => return Err(ApiError::CheckoutInProgress(id)),
            CheckoutStatus::RequiresAction => checkout
                .authorization_id
                .context("a checkout requiring action has an authorization")?,
        };
        if checkout.too_late(self.clock.now(), self.expiry_margin) {
            return self.expire(checkout).await;
        }
        let payment = match self.peers.confirm(authorization_id).await {
            Ok(body) => Payment::Answered(body),
            Err(error) => Payment::Failed(error),
        };
        self.settle(checkout, payment).await
    }

    /// The customer's own checkout; another's is not found.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, customer_id: Uuid, id: Uuid) -> Result<Checkout, ApiError> {
        let mut conn = self.pool.acquire().await?;
        match store::find(&mut conn, id, false).await? {
            Some(checkout) if checkout.customer_id == customer_id => Ok(checkout),
            _ => Err(ApiError::NotFound(id)),
        }
    }

    /// Reserves the quote's points; on failure the checkout fails with
    /// nothing held.
    async fn hold_points(&self, checkout: &mut Checkout) -> Result<(), ApiError> {
        let reserved = self
            .peers
            .reserve(
                checkout.customer_id,
                checkout.order_id,
                checkout.id,
                checkout.quote.points_applied,
                self.reservation_ttl,
            )
            .await;
        match reserved {
            Ok(reservation) => {
                checkout.reservation_id = Some(reservation.reservation_id);
                checkout.expires_at = reservation.expires_at;
                let mut conn = self.pool.acquire().await?;
                store::set_reservation(
                    &mut conn,
                    checkout.id,
                    reservation.reservation_id,
                    reservation.expires_at,
                    self.clock.now(),
                )
                .await?;
                Ok(())
            }
            Err(error) => {
                // Without an answer, whether points are held is unknown.
                let compensations = if error.is_unavailable() {
                    vec![Compensation::ReleaseOrderPoints {
                        user_id: checkout.customer_id,
                        order_id: checkout.order_id,
                        checkout_id: checkout.id,
                        points: checkout.quote.points_applied,
                    }]
                } else {
                    Vec::new()
                };
                let answer = ApiError::from(error);
                match self
                    .give_up(checkout, CheckoutStatus::Failed, answer, compensations)
                    .await
                {
                    Err(answer) => Err(answer),
                    // Nobody else knows this checkout before its points
                    // are held: it cannot have been finished meanwhile.
                    Ok(_) => Err(ApiError::Internal(anyhow::anyhow!(
                        "checkout {} finished while its points were being reserved",
                        checkout.id
                    ))),
                }
            }
        }
    }

    /// Acts on the gateway's answer to an authorization or a confirmation.
    async fn settle(&self, mut checkout: Checkout, payment: Payment) -> Result<Outcome, ApiError> {
        let body = match payment {
            Payment::Answered(body) => body,
            Payment::Failed(error) => {
                let mut compensations = self.releases(&checkout);
                if error.is_unavailable() {
                    // The gateway may have made an authorization whose
                    // answer was lost, or may still make it.
                    compensations.push(match checkout.authorization_id {
                        Some(authorization_id) => {
                            Compensation::VoidAuthorization { authorization_id }
                        }
                        None => Compensation::VoidOrder {
                            order_id: checkout.order_id,
                        },
                    });
                } else if let Some(authorization_id) = checkout.authorization_id {
                    compensations.push(Compensation::VoidAuthorization { authorization_id });
                }
                let answer = ApiError::from(error);
                return self
                    .give_up(&checkout, CheckoutStatus::Failed, answer, compensations)
                    .await;
            }
        };
        if checkout.authorization_id != Some(body.authorization_id) {
            checkout.authorization_id = Some(body.authorization_id);
            let mut conn = self.pool.acquire().await?;
            store::set_authorization(
                &mut conn,
                checkout.id,
                body.authorization_id,
                self.clock.now(),
            )
            .await?;
        }
        match body.status {
            AuthorizationStatus::Authorized | AuthorizationStatus::Captured => {
                if checkout.too_late(self.clock.now(), self.expiry_margin) {
                    return self.expire(checkout).await;
                }
                self.complete(&checkout).await
            }
            AuthorizationStatus::RequiresAction => {
                let Some(next_action) = body.next_action else {
                    let error = anyhow::anyhow!(
                        "payment-gateway asked for action on {} without saying where",
                        body.authorization_id
                    );
                    let answer = ApiError::Internal(error);
                    let mut compensations = self.releases(&checkout);
                    compensations.push(Compensation::VoidAuthorization {
                        authorization_id: body.authorization_id,
                    });
                    return self
                        .give_up(&checkout, CheckoutStatus::Failed, answer, compensations)
                        .await;
                };
                let mut conn = self.pool.acquire().await?;
                if !store::await_action(&mut conn, checkout.id, &next_action.url, self.clock.now())
                    .await?
                {
                    return self.finished_meanwhile(checkout.id).await;
                }
                checkout.status = CheckoutStatus::RequiresAction;
                checkout.next_action_url = Some(next_action.url);
                Ok(Outcome::RequiresAction(checkout))
            }
            AuthorizationStatus::Voided => {
                let answer = ApiError::CheckoutFailed(checkout.id);
                let compensations = self.releases(&checkout);
                self.give_up(&checkout, CheckoutStatus::Failed, answer, compensations)
                    .await
            }
            AuthorizationStatus::Declined => {
                let decline_code = body.decline_code.as_deref().unwrap_or(GENERIC_DECLINE);
                let answer = ApiError::declined(decline_code);
                let compensations = self.releases(&checkout);
                self.give_up(&checkout, CheckoutStatus::Failed, answer, compensations)
                    .await
            }
        }
    }

    /// The checkout completed and its `order_submitted`, in one transaction.
    async fn complete(&self, checkout: &Checkout) -> Result<Outcome, ApiError> {
        let mut tx = self.pool.begin().await?;
        let Some(completed) = store::finish(
            &mut tx,
            checkout.id,
            CheckoutStatus::Completed,
            None,
            self.clock.now(),
        )
        .await?
        else {
            tx.rollback().await?;
            return self.finished_meanwhile(checkout.id).await;
        };
        let event = CheckoutEvent::OrderSubmitted(completed.order_submitted());
        messaging::outbox::enqueue(&mut tx, &Envelope::new(event, completed.order_id))
            .await
            .with_context(|| format!("failed to publish order {}", completed.order_id))?;
        tx.commit().await?;
        tracing::info!(order_id = %completed.order_id, "order submitted");
        Ok(Outcome::Completed(completed))
    }

    /// Gives back what a checkout that can no longer be finished holds, and
    /// marks it expired.
    async fn expire(&self, checkout: Checkout) -> Result<Outcome, ApiError> {
        let mut compensations = self.releases(&checkout);
        compensations.extend(
            checkout
                .authorization_id
                .map(|authorization_id| Compensation::VoidAuthorization { authorization_id }),
        );
        let answer = ApiError::CheckoutExpired(checkout.id);
        self.give_up(&checkout, CheckoutStatus::Expired, answer, compensations)
            .await
    }

    /// The release of the checkout's points, if it holds any.
    fn releases(&self, checkout: &Checkout) -> Vec<Compensation> {
        checkout
            .reservation_id
            .map(|reservation_id| Compensation::ReleaseReservation { reservation_id })
            .into_iter()
            .collect()
    }

    /// Ends the checkout as `status` and gives back what it holds, before
    /// answering with `answer`.
    ///
    /// The checkout is claimed first — marked `status` only if it is still
    /// unfinished, with a job per compensation in the same transaction —
    /// so a request that lost a race (to a confirm that completed it, or
    /// to the sweep) gives back nothing an order now owns, and a crash
    /// right after the commit still leaves the jobs. Then each
    /// compensation is made at once; the job repeats it a little later,
    /// which changes nothing when it was made (every one is idempotent)
    /// and makes it when the peer was down.
    async fn give_up(
        &self,
        checkout: &Checkout,
        status: CheckoutStatus,
        answer: ApiError,
        compensations: Vec<Compensation>,
    ) -> Result<Outcome, ApiError> {
        let code = match &answer {
            ApiError::Edge(problem) => problem.code().to_owned(),
            other => other
                .problem_code()
                .map_or("internal_error", |row| row.code)
                .to_owned(),
        };
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        if store::finish(&mut tx, checkout.id, status, Some(&code), now)
            .await?
            .is_none()
        {
            tx.rollback().await?;
            return self.finished_meanwhile(checkout.id).await;
        }
        for compensation in &compensations {
            let job = compensation
                .job()
                .context("failed to encode a compensation job")?
                .run_at(now + compensation::SAFETY_NET_DELAY);
            job_queue::enqueue(&mut tx, job)
                .await
                .with_context(|| format!("failed to leave a job for {compensation:?}"))?;
        }
        tx.commit().await?;
        let left = compensation::attempt(&self.peers, compensations).await;
        tracing::info!(
            status = status.as_str(),
            %code,
            left_to_jobs = left.len(),
            "checkout did not finish; what it held is given back"
        );
        Err(answer)
    }

    /// The answer for a checkout someone else finished while this request
    /// was waiting on a peer (a second confirm, the expiry sweep).
    async fn finished_meanwhile(&self, id: Uuid) -> Result<Outcome, ApiError> {
        let mut conn = self.pool.acquire().await?;
        let checkout = store::find(&mut conn, id, false)
            .await?
            .with_context(|| format!("checkout {id} disappeared"))?;
        match checkout.status {
            CheckoutStatus::Completed => Ok(Outcome::Completed(checkout)),
            CheckoutStatus::RequiresAction => Ok(Outcome::RequiresAction(checkout)),
            CheckoutStatus::Expired => Err(ApiError::CheckoutExpired(id)),
            CheckoutStatus::Failed => Err(ApiError::CheckoutFailed(id)),
            CheckoutStatus::InProgress => Err(ApiError::CheckoutInProgress(id)),
        }
    }
}
