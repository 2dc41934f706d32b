//! `GET/POST /v1/dispatch/actions/{token}`: the email plugin's links. The
//! GET shows the part and a button (with the fields the answer needs) and
//! changes nothing; the POST applies the answer and uses the link up, in one
//! transaction with the part's change and its event.
//!
//! Refusals (a tampered, expired or used link, an answer out of order) are
//! a short HTML page for a browser and problem+json for any other client,
//! with the same status and code.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use http_service::problem::Path;
use http_service::{routes, ErrorTable, OpenApiRouter};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, DispatchState};
use crate::domain::{
    Action, ActionError, Carrier, DeclineReason, Dispatch, Reference, TrackingNumber,
};
use crate::links::{Link, LinkAction};
use crate::plugins::email::escape;
use crate::{fulfillment, store};

pub fn router() -> OpenApiRouter<DispatchState> {
    OpenApiRouter::new().routes(routes!(show, take))
}

/// What the page's form sends; which fields count depends on the link.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionForm {
    /// With a confirm link: the business's own reference.
    reference: Option<String>,
    /// Required with a decline link.
    reason: Option<String>,
    /// Required with a shipped link.
    carrier: Option<String>,
    /// Required with a shipped link.
    tracking_number: Option<String>,
}

impl ActionForm {
    fn into_action(self, action: LinkAction) -> Result<Action, ActionError> {
        let filled = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
        let required = |value: Option<String>, field: &'static str| {
            filled(value).ok_or(ActionError::Missing { field })
        };
        Ok(match action {
            LinkAction::Confirm => Action::Confirm {
                reference: filled(self.reference)
                    .as_deref()
                    .map(Reference::new)
                    .transpose()?,
            },
            LinkAction::Decline => Action::Decline {
                reason: DeclineReason::new(&required(self.reason, "reason")?)?,
            },
            LinkAction::Shipped => Action::Ship {
                carrier: Carrier::new(&required(self.carrier, "carrier")?)?,
                tracking_number: TrackingNumber::new(&required(
                    self.tracking_number,
                    "tracking_number",
                )?)?,
            },
            LinkAction::Delivered => Action::Deliver,
        })
    }
}

/// The page an action link opens (email plugin); changes nothing.
#[utoipa::path(
    get,
    path = "/v1/dispatch/actions/{token}",
    tag = "dispatch",
    params(("token" = String, Path, description = "The signed link")),
    responses(
        (status = OK, description = "The part and a button that applies the answer", content_type = "text/html", body = String),
        (status = UNAUTHORIZED, description = "Not a link this service issued"),
        (status = GONE, description = "The link expired or was used"),
    )
)]
#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<DispatchState>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    match open(&state, &token).await {
        Ok((link, part)) => Html(form_page(&link, &part)).into_response(),
        Err(error) => refuse(&headers, error),
    }
}

/// Apply the answer a link stands for (email plugin); the link is then used up.
#[utoipa::path(
    post,
    path = "/v1/dispatch/actions/{token}",
    tag = "dispatch",
    params(("token" = String, Path, description = "The signed link")),
    request_body(content = ActionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = OK, description = "Applied", content_type = "text/html", body = String),
        (status = UNAUTHORIZED, description = "Not a link this service issued"),
        (status = CONFLICT, description = "The part was withdrawn, or the answer is out of order"),
        (status = GONE, description = "The link expired or was used"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "A field the answer needs is missing or invalid"),
    )
)]
#[tracing::instrument(skip_all)]
async fn take(
    State(state): State<DispatchState>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    match apply(&state, &token, &body).await {
        Ok(part) => Html(page(
            "Thank you",
            &format!(
                "<p>Order {} is now <strong>{}</strong>.</p>",
                part.order_id, part.status
            ),
        ))
        .into_response(),
        Err(error) => refuse(&headers, error),
    }
}

/// The link and its part, if the link may still be used.
async fn open(state: &DispatchState, token: &str) -> Result<(Link, Dispatch), ApiError> {
    let link = state.links.open(token, state.service.clock.now())?;
    let mut conn = state.service.pool.acquire().await?;
    if store::link_used(&mut conn, link.link_id).await? {
        return Err(ApiError::LinkUsed);
    }
    let part = store::by_id(&mut conn, link.dispatch_id)
        .await?
        .ok_or(crate::links::LinkError::Tampered)?;
    Ok((link, part))
}

async fn apply(state: &DispatchState, token: &str, body: &[u8]) -> Result<Dispatch, ApiError> {
    let now = state.service.clock.now();
    let link = state.links.open(token, now)?;
    let form: ActionForm = serde_urlencoded::from_bytes(body).map_err(|error| {
        http_service::Problem::unprocessable("invalid_body", format!("not a form: {error}"))
    })?;
    let action = form.into_action(link.action)?;
    let mut tx = state.service.pool.begin().await?;
    if !store::use_link(&mut tx, link.link_id, link.dispatch_id, now).await? {
        return Err(ApiError::LinkUsed);
    }
    let part = store::by_id_for_update(&mut tx, link.dispatch_id)
        .await?
        .ok_or(crate::links::LinkError::Tampered)?;
    // A refused answer rolls back, so the link stays usable.
    let part = fulfillment::act(&mut tx, part, action, now).await??;
    tx.commit().await?;
    Ok(part)
}

/// A browser gets a page; any other client the problem.
fn refuse(headers: &HeaderMap, error: ApiError) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match (wants_html, error.problem_code()) {
        (true, Some(code)) => {
            let message = error.to_string();
            tracing::info!(code = code.code, %message, "action link refused");
            let body = page(
                "This link cannot be used",
                &format!(
                    "<p>{}</p><p><code>{}</code></p>",
                    escape(&message),
                    code.code
                ),
            );
            (code.status, Html(body)).into_response()
        }
        _ => error.into_response(),
    }
}

fn form_page(link: &Link, part: &Dispatch) -> String {
    let (title, fields, button) = match link.action {
        LinkAction::Confirm => (
            "Confirm this order",
            r#"<label>Your reference (optional) <input name="reference" maxlength="200"></label>"#,
            "Confirm",
        ),
        LinkAction::Decline => (
            "Decline this order",
            r#"<label>Why? <textarea name="reason" required maxlength="200"></textarea></label>"#,
            "Decline",
        ),
        LinkAction::Shipped => (
            "Mark this order shipped",
            r#"<label>Carrier <input name="carrier" required maxlength="200"></label>
<label>Tracking number <input name="tracking_number" required maxlength="200"></label>"#,
            "Mark shipped",
        ),
        LinkAction::Delivered => ("Mark this order delivered", "", "Mark delivered"),
    };
    let lines: String = part
        .lines
        .iter()
        .map(|line| format!("<li>{} × {}</li>", line.quantity, escape(&line.title)))
        .collect();
    page(
        title,
        &format!(
            "<p>Order {} — now <strong>{}</strong>.</p><ul>{lines}</ul>
<form method=\"post\">{fields}<button type=\"submit\">{button}</button></form>",
            part.order_id, part.status
        ),
    )
}

fn page(title: &str, content: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Hey, Blue!</title></head>\
<body><h1>{title}</h1>{content}</body></html>"
    )
}
