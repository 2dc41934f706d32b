//! Demo sign-in, for the local stack only: anyone who opens the page may be
//! any of the demo users (`demo_shop`), so it is off unless
//! `HEYBLUE_WEBSHOP_DEMO_SIGNIN` turns it on, as the launcher does.
//!
//! The token is minted here with the fleet's HS256 secret and the same
//! claims the launcher prints for that user, and never leaves the server.
//! The business users act for a business whose id catalog assigned when it
//! was seeded; it is looked up by the demo business's name, each time, so a
//! form cannot choose it.

use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use demo_shop::{DemoUser, DEMO_BUSINESSES, DEMO_USERS};
use http_service::{mint_hs256, Role};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use uuid::Uuid;

use super::{check_form_token, home, local_path, sign_in_page, start_session, SignInForm};
use crate::api::Api;
use crate::pages::shop::Listing;
use crate::pages::PageError;
use crate::session::{Identity, User};
use crate::AppState;

/// The demo sign-in, with the secret its tokens are signed with.
#[derive(Clone)]
pub struct DemoSignIn {
    secret: SecretString,
    ttl: Duration,
}

/// One user the page offers.
pub struct Choice {
    pub key: String,
    pub label: String,
}

#[derive(Debug, Deserialize)]
struct Business {
    id: Uuid,
    name: String,
}

impl DemoSignIn {
    /// `ttl`: how long the minted tokens last, the session's lifetime.
    pub fn new(secret: SecretString, ttl: Duration) -> Self {
        DemoSignIn { secret, ttl }
    }

    /// Every demo user, each business owner with the business catalog has
    /// for them; owners of businesses catalog does not list are left out.
    async fn users(&self, api: &Api) -> Vec<(DemoUser, String)> {
        let listed = api
            .get(fleet::CATALOG, "/v1/businesses?limit=200")
            .send::<Listing<Business>>()
            .await
            .map(|answer| answer.body.items)
            .unwrap_or_default();
        let (admins, others): (Vec<DemoUser>, Vec<DemoUser>) = DEMO_USERS
            .iter()
            .copied()
            .partition(|user| user.role == Role::Admin);
        let owners = DEMO_BUSINESSES.iter().filter_map(|business| {
            let id = business.registered_id(listed.iter().map(|b| (b.name.as_str(), b.id)))?;
            Some((
                business.owner(id),
                format!("{} of {}", business.owner_email, business.name),
            ))
        });
        let describe = |user: DemoUser| {
            let role = user.role.as_str();
            (user, format!("{} ({role})", user.email))
        };
        others
            .into_iter()
            .map(describe)
            .chain(owners)
            .chain(admins.into_iter().map(describe))
            .collect()
    }

    pub async fn choices(&self, api: &Api) -> Vec<Choice> {
        self.users(api)
            .await
            .into_iter()
            .map(|(user, label)| Choice {
                key: user.id.to_string(),
                label,
            })
            .collect()
    }

    async fn identity(&self, api: &Api, key: &str) -> Option<Identity> {
        let (user, _) = self
            .users(api)
            .await
            .into_iter()
            .find(|(user, _)| user.id.to_string() == key)?;
        let token = mint_hs256(self.secret.expose_secret(), &user.claims(self.ttl));
        Some(Identity {
            user: User {
                id: user.id,
                role: user.role,
                email: Some(user.email.to_owned()),
                business_id: user.business_id,
            },
            method: "demo",
            access_token: token,
        })
    }
}

pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<axum::Form<SignInForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let Some(demo) = &state.demo else {
        return Err(PageError::NotFound);
    };
    let axum::Form(form) = form.map_err(|_| PageError::BadForm)?;
    check_form_token(&headers, &form)?;
    let Some(identity) = demo.identity(&state.api, &form.user).await else {
        let problem = "Please choose one of the demo users listed.".to_owned();
        return sign_in_page(&state, None, local_path(Some(&form.next)), Some(problem)).await;
    };
    let next = match local_path(Some(&form.next)).as_str() {
        "/" => home(identity.user.role).to_owned(),
        path => path.to_owned(),
    };
    start_session(&state, &identity, &next).await
}
