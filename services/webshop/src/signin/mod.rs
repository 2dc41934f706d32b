//! Signing in and out. A sign-in method proves who someone is and yields
//! an [`Identity`] (who, and the bearer token to call the services with);
//! everything after that — the session row, the cookie, where the browser
//! goes next — is the same for every method and lives here.
//!
//! The methods: [`oidc`], an OpenID Connect provider's authorization code
//! flow with PKCE, when `HEYBLUE_WEBSHOP_OIDC_ISSUER` is set; and [`demo`],
//! the local stack's demo users, when `HEYBLUE_WEBSHOP_DEMO_SIGNIN` is on.
//! Both end in [`start_session`].
//!
//! The sign-in form is posted before any session exists, so it is guarded
//! against login CSRF by a double-submit cookie: the page sets a random
//! value in an HttpOnly cookie and repeats it in the form; a POST whose two
//! values differ is refused.

pub mod demo;
pub mod oidc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http_service::Role;
use serde::Deserialize;

use crate::pages::cart::Empty;
use crate::pages::{render, Nav, PageError, PageQuery};
use crate::session::{cookie_value, random_token, same_secret, CsrfForm, Identity, MaybeSession};
use crate::AppState;

/// The double-submit cookie of the sign-in form.
const SIGN_IN_COOKIE: &str = "heyblue_sign_in";
/// How long a sign-in form stays usable.
const SIGN_IN_FORM_SECONDS: u64 = 30 * 60;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    nav: Nav,
    next: String,
    form_token: String,
    demo: Option<Vec<demo::Choice>>,
    /// The link that starts an OpenID Connect sign-in, when one is set up.
    oidc: Option<String>,
    problem: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// `next` when it is a path of this site, else the start page: a link
/// must not send a freshly signed-in user elsewhere.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub async fn page(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    PageQuery(query): PageQuery<SignInQuery>,
) -> Result<Response, PageError> {
    sign_in_page(
        &state,
        session.as_ref(),
        local_path(query.next.as_deref()),
        None,
    )
    .await
}

async fn sign_in_page(
    state: &AppState,
    session: Option<&crate::session::Session>,
    next: String,
    problem: Option<String>,
) -> Result<Response, PageError> {
    let demo = match &state.demo {
        Some(demo) => Some(demo.choices(&state.api).await),
        None => None,
    };
    let oidc = state.oidc.as_ref().map(|_| {
        format!(
            "/sign-in/oidc?{}",
            serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default()
        )
    });
    let form_token = random_token();
    let cookie = state
        .sessions
        .cookie_with(SIGN_IN_COOKIE, &form_token, SIGN_IN_FORM_SECONDS);
    let html: Html<String> = render(&SignInPage {
        nav: Nav::of(session),
        next,
        form_token,
        demo,
        oidc,
        problem,
    })?;
    Ok(([(header::SET_COOKIE, cookie)], html).into_response())
}

/// Where a user goes after signing in when no page asked for it.
fn home(role: Role) -> &'static str {
    match role {
        Role::Business => "/business",
        Role::Admin => "/admin",
        _ => "/",
    }
}

/// The fields every sign-in form posts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    form_token: String,
    next: String,
    /// The demo user chosen.
    user: String,
}

/// Refuses a sign-in form that did not come from our sign-in page.
fn check_form_token(headers: &HeaderMap, form: &SignInForm) -> Result<(), PageError> {
    let cookie = cookie_value(headers, SIGN_IN_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !same_secret(cookie, &form.form_token) {
        return Err(PageError::Forbidden(
            "This sign-in form was not sent from this shop's sign-in page, or it is too old. Please open the sign-in page again."
                .to_owned(),
        ));
    }
    Ok(())
}

/// Starts a session for `identity` and sends the browser on to `next`.
pub async fn start_session(
    state: &AppState,
    identity: &Identity,
    next: &str,
) -> Result<Response, PageError> {
    let cookie = state
        .sessions
        .start(identity)
        .await
        .map_err(PageError::internal)?;
    let forget_form = state.sessions.cookie_with(SIGN_IN_COOKIE, "", 0);
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    for value in [cookie, forget_form] {
        if let Ok(value) = value.parse() {
            headers.append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// Ends the session on the server and makes the browser forget its cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    CsrfForm { session, .. }: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    state
        .sessions
        .end(&session)
        .await
        .map_err(PageError::internal)?;
    Ok((
        [(header::SET_COOKIE, state.sessions.clear_cookie())],
        Redirect::to("/"),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_this_site_are_followed_after_sign_in() {
        assert_eq!(local_path(Some("/orders/1?placed=1")), "/orders/1?placed=1");
        for elsewhere in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(local_path(None), "/");
    }
}
