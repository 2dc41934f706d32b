//! The sandbox provider's authentication page, the gateway's stand-in for a
//! bank's 3-D Secure page: `GET` shows Approve and Fail buttons (and changes
//! nothing), their `POST` records the customer's verdict and sends them back
//! to the shop's `return_url`. No bearer token: the customer's browser comes
//! here, and the unguessable authorization id is the capability. Only
//! sandbox authorizations waiting for the customer have a page.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use http_service::problem::Path;
use http_service::{routes, OpenApiRouter};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, GatewayState};
use crate::domain::{Authorization, AuthorizationId, AuthorizationState};
use crate::providers::{sandbox, CustomerVerdict};
use crate::store;

pub fn router() -> OpenApiRouter<GatewayState> {
    OpenApiRouter::new().routes(routes!(page, answer))
}

/// The customer's answer, as the page's form posts it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerdictForm {
    /// `approve` or `fail`.
    verdict: String,
}

async fn waiting_sandbox_authorization(
    pool: &PgPool,
    authorization_id: AuthorizationId,
) -> Result<Authorization, ApiError> {
    let mut conn = pool.acquire().await?;
    store::authorization(&mut conn, authorization_id)
        .await?
        .filter(|authorization| {
            authorization.provider == sandbox::ID.as_str()
                && authorization.state == AuthorizationState::RequiresAction
        })
        .ok_or(ApiError::AuthorizationNotFound(authorization_id))
}

/// The sandbox's authentication page (no token; the customer's browser).
#[utoipa::path(
    get,
    path = "/v1/payments/sandbox/authentications/{authorization_id}",
    tag = "sandbox",
    params(("authorization_id" = Uuid, Path, description = "The authorization waiting for the customer")),
    responses(
        (status = OK, description = "A page with Approve and Fail buttons", content_type = "text/html", body = String),
        (status = NOT_FOUND, description = "No sandbox authorization waits for the customer under this id"),
    )
)]
#[tracing::instrument(skip_all, fields(%authorization_id))]
async fn page(
    State(pool): State<PgPool>,
    Path(authorization_id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let authorization =
        waiting_sandbox_authorization(&pool, AuthorizationId(authorization_id)).await?;
    let policy = page_policy(authorization.return_url.as_deref());
    let page = Html(format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hey, Blue! sandbox: confirm your payment</title></head>
<body>
<h1>Confirm your payment</h1>
<p>The sandbox bank asks you to confirm a payment of {amount}.</p>
<form method="post">
<button type="submit" name="verdict" value="approve">Approve</button>
<button type="submit" name="verdict" value="fail">Fail</button>
</form>
</body>
</html>
"#,
        amount = authorization.amount,
    ));
    Ok(([(header::CONTENT_SECURITY_POLICY, policy)], page).into_response())
}

/// The shared policy for HTML pages, with the `return_url`'s origin added
/// to `form-action`: the page's form is answered with a redirect there, and
/// browsers hold such redirects to `form-action` too.
fn page_policy(return_url: Option<&str>) -> HeaderValue {
    let origin = return_url
        .and_then(|url| reqwest::Url::parse(url).ok())
        .map(|url| url.origin())
        .filter(|origin| origin.is_tuple())
        .map(|origin| origin.ascii_serialization());
    let policy = http_service::server::content_security_policy(origin.as_deref());
    // An ASCII serialization of an origin is always a valid header value;
    // should it somehow not be, the shared default still applies.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        HeaderValue::from_static(http_service::server::HTML_CONTENT_SECURITY_POLICY)
    })
}

/// Records the customer's verdict and sends them back to the shop (no
/// token; the page's form).
#[utoipa::path(
    post,
    path = "/v1/payments/sandbox/authentications/{authorization_id}",
    tag = "sandbox",
    params(("authorization_id" = Uuid, Path, description = "The authorization waiting for the customer")),
    request_body(content = VerdictForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = SEE_OTHER, description = "Recorded; on to the authorization's return_url"),
        (status = OK, description = "Recorded; a page saying so, when there is no return_url", content_type = "text/html", body = String),
        (status = NOT_FOUND, description = "No sandbox authorization waits for the customer under this id"),
        (status = UNPROCESSABLE_ENTITY, description = "The verdict is neither approve nor fail"),
    )
)]
#[tracing::instrument(skip_all, fields(%authorization_id))]
async fn answer(
    State(pool): State<PgPool>,
    Path(authorization_id): Path<Uuid>,
    form: Result<Form<VerdictForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(|rejection| ApiError::InvalidBody(rejection.body_text()))?;
    let verdict = match form.verdict.as_str() {
        "approve" => CustomerVerdict::Approved,
        "fail" => CustomerVerdict::Failed,
        other => {
            return Err(ApiError::InvalidBody(format!(
                "verdict must be approve or fail, not {other:?}"
            )))
        }
    };
    let authorization_id = AuthorizationId(authorization_id);
    let authorization = waiting_sandbox_authorization(&pool, authorization_id).await?;
    let mut conn = pool.acquire().await?;
    store::record_verdict(&mut conn, authorization_id, verdict).await?;
    tracing::info!(?verdict, "sandbox authentication answered");
    Ok(match authorization.return_url {
        Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        None => Html(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Done</title></head>\
             <body><h1>Done</h1><p>You can return to the shop.</p></body></html>\n",
        )
        .into_response(),
    })
}
