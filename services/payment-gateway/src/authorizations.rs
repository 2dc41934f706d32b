//! The synchronous side of the gateway, what checkout calls: authorize,
//! confirm after the customer's action, void one authorization or whatever
//! an order has. The provider is called between two short writes, never
//! inside a transaction: the first records the attempt (so an order void
//! sees it in flight; one statement when the order has no authorization
//! yet), the second records the answer with its event. An answer
//! lost on the way keeps the authorization pending for a job that asks the
//! provider again ([`resolve_unanswered`]).

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Authorization, AuthorizationId, AuthorizationState, CustomerId, Money};
use crate::events;
use crate::jobs;
use crate::providers::{
    AuthorizeOutcome, AuthorizeRequest, ConfirmRequest, PaymentMethod, PaymentProvider,
    ProviderError, ProviderReference, Providers,
};
use crate::store::{self, AuthorizationInsert};

/// How long an authorization may wait for its provider's answer before it
/// counts as abandoned: well past every provider's timeout.
const ABANDONED_AFTER: time::Duration = time::Duration::minutes(2);

/// An authorization checkout asks for, parsed.
#[derive(Debug, Clone)]
pub struct NewAuthorization {
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    pub customer_id: CustomerId,
    pub amount: Money,
    pub provider: String,
    pub payment_method: PaymentMethod,
    pub return_url: Option<String>,
}

/// Why an authorization request, confirm or void was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("provider {0:?} is not configured here")]
    UnknownProvider(String),
    #[error("{provider} takes at least {minimum}")]
    AmountBelowMinimum { provider: String, minimum: Money },
    #[error("order {0} was voided; its payment is not taken")]
    OrderVoided(Uuid),
    #[error("authorization {0} is still waiting for its provider's answer")]
    InProgress(AuthorizationId),
    #[error("no authorization {0} exists")]
    NotFound(AuthorizationId),
    #[error("authorization {0} was captured; refund it instead")]
    AlreadyCaptured(AuthorizationId),
    #[error("authorization {0} was declined; nothing is held")]
    NotVoidable(AuthorizationId),
    #[error("authorization {0} was voided")]
    Voided(AuthorizationId),
    #[error("the provider refused the request: {0}")]
    Refused(String),
    #[error("the payment provider cannot be reached")]
    ProviderUnavailable(#[source] ProviderError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Authorizes `request` at its provider; an order that has an authorization
/// already gets that one back.
#[tracing::instrument(skip_all, fields(order_id = %request.order_id, provider = %request.provider))]
pub async fn authorize(
    pool: &PgPool,
    providers: &Providers,
    request: NewAuthorization,
) -> Result<Authorization, PaymentError> {
    let provider = providers
        .get(&request.provider)
        .ok_or_else(|| PaymentError::UnknownProvider(request.provider.clone()))?;
    if let Some(minimum) = provider.minimum_amount(request.amount.currency()) {
        if request.amount.amount_minor() < minimum.amount_minor() {
            return Err(PaymentError::AmountBelowMinimum {
                provider: request.provider,
                minimum,
            });
        }
    }
    let now = OffsetDateTime::now_utc();
    let pending = Authorization {
        authorization_id: AuthorizationId(Uuid::now_v7()),
        order_id: request.order_id,
        checkout_id: request.checkout_id,
        customer_id: request.customer_id,
        provider: request.provider.clone(),
        payment_method: request.payment_method.as_str().to_owned(),
        provider_reference: None,
        amount: request.amount.clone(),
        return_url: request.return_url.clone(),
        redirect_url: None,
        state: AuthorizationState::Pending,
        decline_code: None,
        created_at: now,
        updated_at: now,
    };
    let recorded = {
        let mut conn = pool.acquire().await?;
        store::insert_authorization_unless_voided(&mut conn, &pending).await?
    };
    match recorded {
        AuthorizationInsert::Inserted => {}
        AuthorizationInsert::OrderVoided => {
            return Err(PaymentError::OrderVoided(request.order_id))
        }
        AuthorizationInsert::OrderHasOne => {
            if let Some(existing) = existing_or_replaced(pool, &pending, now).await? {
                return Ok(existing);
            }
        }
    }

    let call = AuthorizeRequest {
        authorization_id: pending.authorization_id,
        customer_id: request.customer_id,
        amount: request.amount,
        payment_method: request.payment_method,
        return_url: request.return_url,
    };
    let outcome = match provider.authorize(&call).await {
        Ok(outcome) => outcome,
        Err(error @ ProviderError::OutcomeUnknown { .. }) => {
            // The request may have reached the provider, which may hold the
            // amount now. Keep the authorization and let a job ask again
            // with the same idempotency key; its answer settles the
            // authorization as this one would have, voiding it at once if
            // the order was voided meanwhile (as checkout does after a 5xx).
            let mut tx = pool.begin().await?;
            store::insert_unanswered(&mut tx, pending.authorization_id, &error.to_string()).await?;
            jobs::enqueue_resolve_authorization(&mut tx, pending.authorization_id).await?;
            tx.commit().await?;
            tracing::warn!(
                authorization_id = %pending.authorization_id,
                error = %error,
                "authorization's answer lost; asking the provider again in a job"
            );
            return Err(provider_failure(error));
        }
        Err(error) => {
            // Refused, or never sent: nothing stands, the order may ask again.
            let mut conn = pool.acquire().await?;
            store::delete_pending_authorization(&mut conn, pending.authorization_id).await?;
            return Err(provider_failure(error));
        }
    };
    settle(pool, pending, outcome).await
}

/// The authorization `pending`'s order has already, to answer with
/// (`None` once `pending` has replaced it): an authorization abandoned
/// while waiting for its provider is forgotten, and `pending` recorded in
/// its place.
async fn existing_or_replaced(
    pool: &PgPool,
    pending: &Authorization,
    now: OffsetDateTime,
) -> Result<Option<Authorization>, PaymentError> {
    let order_id = pending.order_id;
    let mut tx = pool.begin().await?;
    let existing = store::lock_authorization_of_order(&mut tx, order_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("order {order_id} has no authorization"))?;
    // One whose answer was lost is never abandoned: a job is asking the
    // provider for it, and the provider may hold the amount.
    let abandoned = existing.state == AuthorizationState::Pending
        && now - existing.created_at > ABANDONED_AFTER
        && !store::is_unanswered(&mut tx, existing.authorization_id).await?;
    if !abandoned {
        tx.commit().await?;
        return match existing.state {
            AuthorizationState::Pending => Err(PaymentError::InProgress(existing.authorization_id)),
            _ => Ok(Some(existing)),
        };
    }
    // The request that made it died before the provider answered (a crash,
    // a restart): it never will. Forget it and ask anew.
    tracing::warn!(
        authorization_id = %existing.authorization_id,
        "authorization abandoned while waiting for its provider; asking again"
    );
    store::delete_pending_authorization(&mut tx, existing.authorization_id).await?;
    match store::insert_authorization_unless_voided(&mut tx, pending).await? {
        AuthorizationInsert::Inserted => {}
        AuthorizationInsert::OrderVoided => return Err(PaymentError::OrderVoided(order_id)),
        AuthorizationInsert::OrderHasOne => {
            return Err(PaymentError::InProgress(existing.authorization_id))
        }
    }
    tx.commit().await?;
    Ok(None)
}

/// How asking again for an authorization whose answer was lost ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The answer was recorded (or had been), the hold released if the
    /// order was voided meanwhile.
    Settled,
    /// The provider refused the request itself: nothing is held, and the
    /// authorization is forgotten so the order may ask again.
    Refused,
}

/// Repeats the provider's authorize for a pending authorization whose first
/// answer was lost, under the same idempotency key: the provider answers
/// with the first call's result, or makes the call if the first never
/// arrived. The answer is settled as [`authorize`] would have settled it.
#[tracing::instrument(skip(pool, providers))]
pub async fn resolve_unanswered(
    pool: &PgPool,
    providers: &Providers,
    authorization_id: AuthorizationId,
) -> Result<Resolution, PaymentError> {
    let authorization = {
        let mut conn = pool.acquire().await?;
        store::authorization(&mut conn, authorization_id)
            .await?
            .ok_or(PaymentError::NotFound(authorization_id))?
    };
    if authorization.state != AuthorizationState::Pending {
        return Ok(Resolution::Settled);
    }
    let provider = provider_of(providers, &authorization)?;
    let payment_method = PaymentMethod::new(&authorization.payment_method).map_err(|error| {
        PaymentError::Internal(anyhow::anyhow!(
            "authorization {authorization_id} has an unusable payment method: {error}"
        ))
    })?;
    let call = AuthorizeRequest {
        authorization_id,
        customer_id: authorization.customer_id,
        amount: authorization.amount.clone(),
        payment_method,
        return_url: authorization.return_url.clone(),
    };
    match provider.authorize(&call).await {
        Ok(outcome) => match settle(pool, authorization, outcome).await {
            Ok(_) | Err(PaymentError::OrderVoided(_) | PaymentError::Voided(_)) => {
                Ok(Resolution::Settled)
            }
            Err(error) => Err(error),
        },
        Err(ProviderError::Refused { code, message, .. }) => {
            tracing::warn!(%authorization_id, code, message, "the provider refused the authorization whose answer was lost");
            let mut conn = pool.acquire().await?;
            store::delete_pending_authorization(&mut conn, authorization_id).await?;
            Ok(Resolution::Refused)
        }
        Err(
            error @ (ProviderError::OutcomeUnknown { .. }
            | ProviderError::Unavailable { .. }
            | ProviderError::Misconfigured { .. }),
        ) => Err(PaymentError::ProviderUnavailable(error)),
    }
}

/// Finishes an authorization after the customer's action; an authorization
/// that is settled already answers as it stands.
#[tracing::instrument(skip_all, fields(%authorization_id))]
pub async fn confirm(
    pool: &PgPool,
    providers: &Providers,
    authorization_id: AuthorizationId,
) -> Result<Authorization, PaymentError> {
    let mut conn = pool.acquire().await?;
    let authorization = store::authorization(&mut conn, authorization_id)
        .await?
        .ok_or(PaymentError::NotFound(authorization_id))?;
    match authorization.state {
        AuthorizationState::RequiresAction => {}
        AuthorizationState::Pending => return Err(PaymentError::InProgress(authorization_id)),
        AuthorizationState::Voided => return Err(PaymentError::Voided(authorization_id)),
        AuthorizationState::Authorized
        | AuthorizationState::Declined
        | AuthorizationState::Captured => return Ok(authorization),
    }
    let provider = provider_of(providers, &authorization)?;
    let verdict = store::verdict(&mut conn, authorization_id).await?;
    drop(conn);
    let call = ConfirmRequest {
        authorization_id,
        reference: reference_of(&authorization)?,
        return_url: authorization.return_url.clone(),
        customer_verdict: verdict,
    };
    let outcome = provider.confirm(&call).await.map_err(provider_failure)?;
    settle(pool, authorization, outcome).await
}

/// Records a provider's answer to an authorize or confirm, unless the order
/// was voided meanwhile: then the hold is released at once.
async fn settle(
    pool: &PgPool,
    asked: Authorization,
    outcome: AuthorizeOutcome,
) -> Result<Authorization, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut authorization = store::lock_authorization(&mut tx, asked.authorization_id)
        .await?
        .ok_or(PaymentError::NotFound(asked.authorization_id))?;
    if authorization.state != asked.state {
        // Another request settled it first (a concurrent confirm, a void).
        tx.commit().await?;
        return match authorization.state {
            AuthorizationState::Voided => Err(PaymentError::Voided(asked.authorization_id)),
            _ => Ok(authorization),
        };
    }
    match outcome {
        AuthorizeOutcome::Authorized { reference } => {
            authorization.provider_reference = Some(reference.as_str().to_owned());
            authorization.redirect_url = None;
            authorization.state = AuthorizationState::Authorized;
        }
        AuthorizeOutcome::RequiresAction {
            reference,
            redirect_url,
        } => {
            authorization.provider_reference = Some(reference.as_str().to_owned());
            authorization.redirect_url = Some(redirect_url);
            authorization.state = AuthorizationState::RequiresAction;
        }
        AuthorizeOutcome::Declined { decline_code } => {
            authorization.redirect_url = None;
            authorization.decline_code = Some(decline_code);
            authorization.state = AuthorizationState::Declined;
        }
    }
    if !store::save_authorization_unless_order_voided(&mut tx, &authorization).await? {
        let holds = authorization.state != AuthorizationState::Declined;
        if holds {
            let order_id = authorization.order_id;
            void_in(&mut tx, &mut authorization, order_id).await?;
        } else {
            store::save_authorization(&mut tx, &authorization).await?;
        }
        tx.commit().await?;
        return Err(PaymentError::OrderVoided(authorization.order_id));
    }
    if authorization.state == AuthorizationState::Authorized {
        events::authorized(&mut tx, &authorization).await?;
    }
    tx.commit().await?;
    Ok(authorization)
}

/// Voids one authorization; voiding it again answers the same.
#[tracing::instrument(skip_all, fields(%authorization_id))]
pub async fn void(
    pool: &PgPool,
    authorization_id: AuthorizationId,
) -> Result<Authorization, PaymentError> {
    let mut tx = pool.begin().await?;
    let mut authorization = store::lock_authorization(&mut tx, authorization_id)
        .await?
        .ok_or(PaymentError::NotFound(authorization_id))?;
    match authorization.state {
        AuthorizationState::RequiresAction | AuthorizationState::Authorized => {
            if store::capture(&mut tx, authorization_id).await?.is_some() {
                return Err(PaymentError::AlreadyCaptured(authorization_id));
            }
            let order_id = authorization.order_id;
            void_in(&mut tx, &mut authorization, order_id).await?;
        }
        AuthorizationState::Voided => {}
        AuthorizationState::Captured => {
            return Err(PaymentError::AlreadyCaptured(authorization_id))
        }
        AuthorizationState::Declined => return Err(PaymentError::NotVoidable(authorization_id)),
        AuthorizationState::Pending => return Err(PaymentError::InProgress(authorization_id)),
    }
    tx.commit().await?;
    Ok(authorization)
}

/// Voids the order's authorization, if any, and leaves the mark that voids
/// one arriving later. Returns the ids voided (now or before).
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn void_order(
    pool: &PgPool,
    order_id: Uuid,
) -> Result<Vec<AuthorizationId>, PaymentError> {
    let mut tx = pool.begin().await?;
    store::mark_order_voided(&mut tx, order_id).await?;
    let Some(mut authorization) = store::lock_authorization_of_order(&mut tx, order_id).await?
    else {
        tx.commit().await?;
        return Ok(Vec::new());
    };
    let authorization_id = authorization.authorization_id;
    let voided = match authorization.state {
        AuthorizationState::RequiresAction | AuthorizationState::Authorized => {
            if store::capture(&mut tx, authorization_id).await?.is_some() {
                return Err(PaymentError::AlreadyCaptured(authorization_id));
            }
            void_in(&mut tx, &mut authorization, order_id).await?;
            vec![authorization_id]
        }
        // The authorize call still in flight (or the job asking again for
        // one whose answer was lost) finds the mark when it lands.
        AuthorizationState::Pending | AuthorizationState::Voided => vec![authorization_id],
        AuthorizationState::Declined => Vec::new(),
        AuthorizationState::Captured => {
            return Err(PaymentError::AlreadyCaptured(authorization_id))
        }
    };
    tx.commit().await?;
    Ok(voided)
}

/// Marks `authorization` voided here and hands the provider call to a job,
/// which retries until the provider has released the hold.
pub(crate) async fn void_in(
    conn: &mut sqlx::PgConnection,
    authorization: &mut Authorization,
    correlation_id: Uuid,
) -> Result<(), PaymentError> {
    authorization.state = AuthorizationState::Voided;
    store::save_authorization(conn, authorization).await?;
    if store::insert_void(conn, authorization.authorization_id).await? {
        jobs::enqueue_void(conn, authorization.authorization_id, correlation_id).await?;
    }
    Ok(())
}

fn provider_of(
    providers: &Providers,
    authorization: &Authorization,
) -> Result<std::sync::Arc<dyn PaymentProvider>, PaymentError> {
    providers.get(&authorization.provider).ok_or_else(|| {
        PaymentError::Internal(anyhow::anyhow!(
            "authorization {} was made with provider {}, which is no longer configured",
            authorization.authorization_id,
            authorization.provider
        ))
    })
}

fn reference_of(authorization: &Authorization) -> Result<ProviderReference, PaymentError> {
    authorization
        .provider_reference
        .as_deref()
        .map(ProviderReference::new)
        .ok_or_else(|| {
            PaymentError::Internal(anyhow::anyhow!(
                "authorization {} has no provider reference",
                authorization.authorization_id
            ))
        })
}

fn provider_failure(error: ProviderError) -> PaymentError {
    match error {
        ProviderError::Refused { code, message, .. } => {
            PaymentError::Refused(format!("{code}: {message}"))
        }
        ProviderError::OutcomeUnknown { .. }
        | ProviderError::Unavailable { .. }
        | ProviderError::Misconfigured { .. } => PaymentError::ProviderUnavailable(error),
    }
}
