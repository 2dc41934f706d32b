//! The web pages: server-rendered HTML that works without JavaScript.
//!
//! Templates are askama's: they are compiled with the crate, so a template
//! that names a missing field or a wrong type fails the build instead of a
//! page at run time, and HTML escaping is on by default for `.html` files.
//! A runtime engine (minijinja, Tera) would let templates change without a
//! rebuild, which a shop whose pages ship with its code does not need.
//!
//! Handlers call the services as the signed-in user ([`crate::api`]) and
//! turn every refusal into a sentence on the page; a form that was refused
//! comes back with what was typed.

pub mod admin;
pub mod business;
pub mod cart;
pub mod checkout;
pub mod notifications;
pub mod offerings;
pub mod orders;
pub mod points;
pub mod shop;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use http_service::Role;

use crate::api::ApiError;
use crate::session::Session;

/// A page's query string, or the query's defaults when it cannot be read
/// (an old or hand-edited link): a page never refuses its URL over the
/// query.
pub struct PageQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PageQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = axum::extract::Query::<T>::from_request_parts(parts, state).await;
        Ok(PageQuery(
            query
                .map(|axum::extract::Query(query)| query)
                .unwrap_or_default(),
        ))
    }
}

/// The query of a paged list: where to go on from.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CursorQuery {
    pub cursor: Option<String>,
}

/// `path` (an API path or a page's, with a query or without) with
/// `cursor` added to its query, encoded.
pub fn with_cursor(path: &str, cursor: Option<&str>) -> String {
    match cursor {
        None => path.to_owned(),
        Some(cursor) => {
            let separator = if path.contains('?') { '&' } else { '?' };
            let encoded = serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default();
            format!("{path}{separator}{encoded}")
        }
    }
}

/// The style sheet every page links; small enough to serve from memory.
const STYLE_SHEET: &str = include_str!("../../static/webshop.css");

pub async fn style_sheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_SHEET,
    )
        .into_response()
}

/// The order page's script, which keeps it current (see
/// [`orders::events`]). A file of its own because the Content-Security-Policy
/// allows no inline script.
const ORDER_SCRIPT: &str = include_str!("../../static/order-live.js");

pub async fn order_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        ORDER_SCRIPT,
    )
        .into_response()
}

/// What the header of every page shows: who is signed in, the links their
/// role has, and the sign-out form with its CSRF token.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub signed_in: Option<String>,
    pub csrf: String,
    /// Civilians and charities shop and have orders.
    pub shopper: bool,
    pub business: bool,
    pub admin: bool,
    /// Everyone signed in has points (officers donate theirs).
    pub points: bool,
}

impl Nav {
    pub fn of(session: Option<&Session>) -> Nav {
        let Some(session) = session else {
            return Nav::default();
        };
        let role = session.user.role;
        let who = session
            .user
            .email
            .clone()
            .unwrap_or_else(|| session.user.id.to_string());
        Nav {
            signed_in: Some(format!("{who} ({role})")),
            csrf: session.csrf_token.clone(),
            shopper: matches!(role, Role::Civilian | Role::Charity),
            business: role == Role::Business,
            admin: role == Role::Admin,
            points: role != Role::Business,
        }
    }
}

/// Renders a template into a page.
pub fn render(template: &impl Template) -> Result<Html<String>, PageError> {
    template.render().map(Html).map_err(|error| {
        tracing::error!(error = %error, "a page failed to render");
        PageError::Internal
    })
}

/// Why a page could not be shown; each answers with a page of its own.
#[derive(Debug)]
pub enum PageError {
    /// No session: the sign-in page, then back to `next`.
    SignInRequired {
        next: String,
    },
    Forbidden(String),
    NotFound,
    /// A form whose fields do not parse: not sent by our pages.
    BadForm,
    /// A service refused, for a reason worth telling as it is.
    Refused {
        status: StatusCode,
        message: String,
    },
    Unavailable(String),
    Internal,
}

impl PageError {
    /// Logs `error` and answers a page that reveals nothing about it.
    pub fn internal(error: anyhow::Error) -> PageError {
        tracing::error!(error = ?error, "a page failed");
        PageError::Internal
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        match error.status() {
            StatusCode::NOT_FOUND => PageError::NotFound,
            // The token ran out or was revoked: sign in again.
            StatusCode::UNAUTHORIZED => PageError::SignInRequired {
                next: "/".to_owned(),
            },
            StatusCode::SERVICE_UNAVAILABLE => PageError::Unavailable(error.message()),
            status => PageError::Refused {
                status,
                message: error.message(),
            },
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::SignInRequired { next } => {
                let query =
                    serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                return Redirect::to(&format!("/sign-in?{query}")).into_response();
            }
            PageError::Forbidden(message) => {
                (StatusCode::FORBIDDEN, "Not allowed", message.as_str())
            }
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "There is nothing here, or it is not yours to see.",
            ),
            PageError::BadForm => (
                StatusCode::BAD_REQUEST,
                "The form could not be read",
                "Please go back, reload the page and try again.",
            ),
            PageError::Refused { status, message } => {
                (*status, "That did not work", message.as_str())
            }
            PageError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                message.as_str(),
            ),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. It has been logged; please try again.",
            ),
        };
        let page = ErrorPage {
            nav: Nav::default(),
            title,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (
                status,
                Html(format!(
                    "<!doctype html><title>{status}</title><p>{status}</p>"
                )),
            )
                .into_response(),
        }
    }
}

/// Any path no page or API route answers.
pub async fn not_found() -> PageError {
    PageError::NotFound
}

/// `1600` USD → `$16.00`; other currencies by their code.
pub fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let minor = minor.unsigned_abs();
    let amount = format!("{}.{:02}", minor / 100, minor % 100);
    match currency {
        "USD" => format!("{sign}${amount}"),
        "EUR" => format!("{sign}€{amount}"),
        "GBP" => format!("{sign}£{amount}"),
        other => format!("{sign}{amount} {other}"),
    }
}

/// `payment_processing` → `Payment processing`.
pub fn label(code: &str) -> String {
    let spaced = code.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `2026-11-06T14:30:00.123Z` → `2026-11-06 14:30 UTC`.
pub fn when(timestamp: &str) -> String {
    match timestamp.get(..16) {
        Some(prefix) if prefix.len() == 16 => format!("{} UTC", prefix.replacen('T', " ", 1)),
        _ => timestamp.to_owned(),
    }
}

/// A redirect after a successful POST, so a reload does not post again.
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_joins_the_query_or_starts_one_encoded() {
        assert_eq!(
            with_cursor("/v1/orders?limit=20", None),
            "/v1/orders?limit=20"
        );
        assert_eq!(
            with_cursor("/v1/orders?limit=20", Some("a+b/c")),
            "/v1/orders?limit=20&cursor=a%2Bb%2Fc"
        );
        assert_eq!(with_cursor("/orders", Some("x y")), "/orders?cursor=x+y");
    }

    #[test]
    fn money_reads_as_a_price() {
        assert_eq!(money(1600, "USD"), "$16.00");
        assert_eq!(money(5, "USD"), "$0.05");
        assert_eq!(money(-250, "EUR"), "-€2.50");
        assert_eq!(money(100, "CHF"), "1.00 CHF");
    }

    #[test]
    fn codes_and_times_read_as_words() {
        assert_eq!(label("payment_processing"), "Payment processing");
        assert_eq!(when("2026-11-06T14:30:00.123Z"), "2026-11-06 14:30 UTC");
        assert_eq!(when("soon"), "soon");
    }
}
