//! The HTTP edge of dispatcher: one router per resource, declared with
//! `routes!` so each route carries its documentation, the state they share,
//! and the one error type they answer with.
//!
//! - [`integrations`]: which plugin each business uses (admin).
//! - [`parts`]: a business's queue and its answers through the API.
//! - [`withdraw`]: the order service withdrawing an order's parts.
//! - [`webhooks`]: a business's answers by signed webhook.
//! - [`actions`]: a business's answers by emailed link.

mod actions;
mod body;
mod integrations;
mod parts;
mod webhooks;
mod withdraw;

use std::sync::Arc;

use axum::extract::FromRef;
use http_service::auth::{Authenticator, Role};
use http_service::{service_api, AuthUser, ErrorTable, OpenApiRouter};
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::{ActionError, Refusal, UnknownStatus};
use crate::fulfillment::NotCancellable;
use crate::links::{LinkError, LinkSigner};
use crate::plugins::{InvalidConfig, Plugins};
use crate::settings::Settings;
use service_host::ServiceState;

/// What dispatcher's handlers share.
#[derive(Clone)]
pub struct DispatchState {
    pub service: ServiceState,
    pub plugins: Arc<Plugins>,
    pub links: LinkSigner,
    pub settings: Arc<Settings>,
}

impl FromRef<DispatchState> for PgPool {
    fn from_ref(state: &DispatchState) -> Self {
        state.service.pool.clone()
    }
}

impl FromRef<DispatchState> for Authenticator {
    fn from_ref(state: &DispatchState) -> Self {
        state.service.auth.clone()
    }
}

/// The service's routes with their OpenAPI document.
pub fn router(state: DispatchState) -> OpenApiRouter {
    let routes = OpenApiRouter::new()
        .merge(integrations::router())
        .merge(parts::router())
        .merge(withdraw::router())
        .merge(webhooks::router())
        .merge(actions::router())
        .with_state(state);
    service_api(
        routes,
        "dispatcher",
        env!("CARGO_PKG_VERSION"),
        ApiError::CODES,
    )
}

http_service::error_table! {
    /// Everything a dispatcher handler can answer besides success: each variant's
    /// status and stable `code` in one table.
    pub enum ApiError {
        #[error("{0}")]
        InvalidAction(#[from] ActionError) => (UNPROCESSABLE_ENTITY, "invalid_body"),
        #[error("{0}")]
        InvalidStatusFilter(#[from] UnknownStatus) => (UNPROCESSABLE_ENTITY, "invalid_status"),
        #[error("no plugin is called {0:?}")]
        UnknownPlugin(String) => (UNPROCESSABLE_ENTITY, "unknown_plugin"),
        #[error("{0}")]
        InvalidConfig(#[from] InvalidConfig) => (UNPROCESSABLE_ENTITY, "invalid_config"),
        #[error("an admin acting on a part names its business with ?business_id=")]
        BusinessIdRequired => (UNPROCESSABLE_ENTITY, "business_id_required"),
        #[error("no part of order {0} belongs to this business")]
        PartNotFound(Uuid) => (NOT_FOUND, "not_found"),
        #[error("{0}")]
        OrderCancelled(Refusal) => (CONFLICT, "order_cancelled"),
        #[error("{0}")]
        InvalidTransition(Refusal) => (CONFLICT, "invalid_transition"),
        #[error("{0}; the order can no longer be cancelled")]
        NotCancellable(#[from] NotCancellable) => (CONFLICT, "not_cancellable"),
        #[error("the request's signature is missing, wrong or stale: {0}")]
        InvalidSignature(String) => (UNAUTHORIZED, "invalid_signature"),
        #[error("{0}")]
        InvalidLink(LinkError) => (UNAUTHORIZED, "invalid_link"),
        #[error("{0}")]
        LinkExpired(LinkError) => (GONE, "link_expired"),
        #[error("the link was used already; each link works once")]
        LinkUsed => (GONE, "link_used"),
    }
    // The CHECKs on `dispatches` guard the fulfillment machine, which every
    // change passes first: a violation is a bug, an internal 500.
    constraints {}
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Cancelled { .. } => ApiError::OrderCancelled(refusal),
            Refusal::InvalidTransition { .. } => ApiError::InvalidTransition(refusal),
        }
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Tampered => ApiError::InvalidLink(error),
            LinkError::Expired => ApiError::LinkExpired(error),
        }
    }
}

/// The caller may act for `business_id`: that business itself or an admin.
/// Acting for another business is 403 (DESIGN §2).
fn require_business(caller: &AuthUser, business_id: Uuid) -> Result<(), ApiError> {
    match caller.role() {
        Role::Admin => Ok(()),
        Role::Business if caller.claims.business_id == Some(business_id) => Ok(()),
        Role::Business => Err(ApiError::from(http_service::Problem::forbidden(
            "A business acts only for itself.",
        ))),
        Role::Civilian | Role::Charity | Role::Officer | Role::Service => Err(
            http_service::Problem::forbidden("This action is not allowed for the caller's role.")
                .into(),
        ),
    }
}

/// The business whose part the caller acts on: a business's own, or the one
/// an admin names.
fn acting_business(caller: &AuthUser, named: Option<Uuid>) -> Result<Uuid, ApiError> {
    match (caller.role(), named) {
        (Role::Admin, Some(business_id)) => Ok(business_id),
        (Role::Admin, None) => Err(ApiError::BusinessIdRequired),
        (Role::Business, _) => {
            let own = caller.claims.business_id.ok_or_else(|| {
                http_service::Problem::forbidden("The token names no business to act for.")
            })?;
            if let Some(named) = named {
                require_business(caller, named)?;
            }
            Ok(own)
        }
        (Role::Civilian | Role::Charity | Role::Officer | Role::Service, _) => Err(
            http_service::Problem::forbidden("This action is not allowed for the caller's role.")
                .into(),
        ),
    }
}
