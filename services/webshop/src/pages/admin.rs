//! The admin's pages: the businesses (registering one), the charities
//! officers give to (registering one), and how each business's parts reach
//! it (its dispatch integration: the portal, a webhook or email). Each
//! service decides what is valid; refusals show beside the form, which
//! keeps what was typed.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use http_service::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::shop::{parse_id, Listing};
use super::{render, see_other, when, Nav, PageError, PageQuery};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

#[derive(Debug, Deserialize)]
struct Business {
    id: Uuid,
    name: String,
    contact_email: String,
    created_at: String,
}

#[derive(Debug, Deserialize)]
struct Charity {
    charity_id: Uuid,
    name: String,
}

#[derive(Debug, Deserialize)]
struct Integration {
    plugin: String,
    #[serde(default)]
    config: Value,
}

/// A business's dispatch integration form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IntegrationForm {
    plugin: String,
    webhook_url: String,
    webhook_secret: String,
    email_address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BusinessForm {
    name: String,
    contact_email: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CharityForm {
    charity_id: String,
    name: String,
}

/// The plugins the dispatcher knows, as the form offers them.
const PLUGINS: &[(&str, &str)] = &[
    ("portal", "The shop's business pages"),
    ("webhook", "A webhook to the business's system"),
    ("email", "Email with action links"),
];

struct PluginChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

struct BusinessView {
    id: Uuid,
    name: String,
    contact_email: String,
    registered: String,
    /// How its parts reach it now, in words.
    integration: String,
    plugins: Vec<PluginChoice>,
    form: IntegrationForm,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    notice: Option<String>,
    businesses: Vec<BusinessView>,
    business_form: BusinessForm,
    business_problem: Option<String>,
    charities: Vec<Charity>,
    charity_form: CharityForm,
    charity_problem: Option<String>,
}

/// What a refused form brings back to the page.
#[derive(Default)]
struct Refused {
    business: Option<(BusinessForm, String)>,
    charity: Option<(CharityForm, String)>,
    integration: Option<(Uuid, IntegrationForm, String)>,
}

fn admin_only(session: &Session) -> Result<(), PageError> {
    if session.user.role == Role::Admin {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Only the shop's admins see these pages.".to_owned(),
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AdminQuery {
    saved: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<AdminQuery>,
) -> Result<Html<String>, PageError> {
    let notice = query.saved.map(|_| "Saved.".to_owned());
    admin_page(&state, &session, notice, Refused::default()).await
}

async fn admin_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    refused: Refused,
) -> Result<Html<String>, PageError> {
    admin_only(session)?;
    let businesses = state
        .api
        .get(fleet::CATALOG, "/v1/businesses?limit=200")
        .bearer(session.token())
        .send::<Listing<Business>>()
        .await?
        .body
        .items;
    let integrations = futures::future::join_all(businesses.iter().map(|business| {
        state
            .api
            .get(
                fleet::DISPATCHER,
                format!("/v1/dispatch/integrations/{}", business.id),
            )
            .bearer(session.token())
            .send::<Integration>()
    }))
    .await;
    let charities = state
        .api
        .get(fleet::USER_POINTS, "/v1/points/charities?limit=200")
        .bearer(session.token())
        .send::<Listing<Charity>>()
        .await?
        .body
        .items;
    let mut businesses_shown = Vec::with_capacity(businesses.len());
    for (business, integration) in businesses.into_iter().zip(integrations) {
        let integration = integration?.body;
        let (form, problem) = match &refused.integration {
            Some((id, form, problem)) if *id == business.id => {
                (form.clone(), Some(problem.clone()))
            }
            _ => (form_of(&integration), None),
        };
        businesses_shown.push(BusinessView {
            id: business.id,
            name: business.name,
            contact_email: business.contact_email,
            registered: when(&business.created_at),
            integration: describe(&integration),
            plugins: PLUGINS
                .iter()
                .map(|(value, label)| PluginChoice {
                    value,
                    label,
                    selected: *value == form.plugin,
                })
                .collect(),
            form,
            problem,
        });
    }
    let (business_form, business_problem) = match refused.business {
        Some((form, problem)) => (form, Some(problem)),
        None => (BusinessForm::default(), None),
    };
    let (charity_form, charity_problem) = match refused.charity {
        Some((form, problem)) => (form, Some(problem)),
        None => (CharityForm::default(), None),
    };
    render(&AdminPage {
        nav: Nav::of(Some(session)),
        notice,
        businesses: businesses_shown,
        business_form,
        business_problem,
        charities,
        charity_form,
        charity_problem,
    })
}

/// The form as the stored integration fills it (never with its secret,
/// which the dispatcher does not show).
fn form_of(integration: &Integration) -> IntegrationForm {
    let text = |field: &str| {
        integration.config[field]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    IntegrationForm {
        plugin: integration.plugin.clone(),
        webhook_url: text("url"),
        webhook_secret: String::new(),
        email_address: text("address"),
    }
}

fn describe(integration: &Integration) -> String {
    let text = |field: &str| integration.config[field].as_str().unwrap_or("?").to_owned();
    match integration.plugin.as_str() {
        "portal" => "The shop's business pages".to_owned(),
        "webhook" => format!("Webhook to {}", text("url")),
        "email" => format!("Email to {}", text("address")),
        other => other.to_owned(),
    }
}

/// The page again after a refusal, or the refusal as a page of its own
/// when the service could not be asked at all.
async fn refused_page(
    state: &AppState,
    session: &Session,
    refused: Refused,
) -> Result<Response, PageError> {
    admin_page(state, session, None, refused)
        .await
        .map(IntoResponse::into_response)
}

/// `POST /admin/businesses`: registers a business.
pub async fn register_business(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<BusinessForm>,
) -> Result<Response, PageError> {
    admin_only(&session)?;
    let registered = state
        .api
        .post(fleet::CATALOG, "/v1/businesses")
        .bearer(session.token())
        .json(&json!({ "name": form.name.trim(), "contact_email": form.contact_email.trim() }))
        .send::<Value>()
        .await;
    match registered {
        Ok(_) => Ok(see_other("/admin?saved=1")),
        Err(error @ ApiError::Refused(_)) => {
            let refused = Refused {
                business: Some((form, error.message())),
                ..Refused::default()
            };
            refused_page(&state, &session, refused).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /admin/charities`: registers a charity's points account.
pub async fn register_charity(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<CharityForm>,
) -> Result<Response, PageError> {
    admin_only(&session)?;
    let Ok(charity_id) = form.charity_id.trim().parse::<Uuid>() else {
        let refused = Refused {
            charity: Some((
                form,
                "The charity's account id is a UUID, such as 00000000-0000-4000-8000-000000000002."
                    .to_owned(),
            )),
            ..Refused::default()
        };
        return refused_page(&state, &session, refused).await;
    };
    let registered = state
        .api
        .post(fleet::USER_POINTS, "/v1/points/charities")
        .bearer(session.token())
        .json(&json!({ "charity_id": charity_id, "name": form.name.trim() }))
        .send::<Value>()
        .await;
    match registered {
        Ok(_) => Ok(see_other("/admin?saved=1")),
        Err(error @ ApiError::Refused(_)) => {
            let refused = Refused {
                charity: Some((form, error.message())),
                ..Refused::default()
            };
            refused_page(&state, &session, refused).await
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /admin/integrations/{business_id}`: how that business's parts
/// reach it from now on.
pub async fn set_integration(
    State(state): State<AppState>,
    Path(business): Path<String>,
    CsrfForm { session, form }: CsrfForm<IntegrationForm>,
) -> Result<Response, PageError> {
    admin_only(&session)?;
    let business = parse_id(&business)?;
    let config = match form.plugin.as_str() {
        "webhook" => json!({ "url": form.webhook_url.trim(), "secret": form.webhook_secret }),
        "email" => json!({ "address": form.email_address.trim() }),
        _ => json!({}),
    };
    let stored = state
        .api
        .put(
            fleet::DISPATCHER,
            format!("/v1/dispatch/integrations/{business}"),
        )
        .bearer(session.token())
        .json(&json!({ "plugin": form.plugin, "config": config }))
        .send::<Value>()
        .await;
    match stored {
        Ok(_) => Ok(see_other("/admin?saved=1")),
        Err(error @ ApiError::Refused(_)) => {
            let mut form = form;
            // A secret is never shown again, refused or not.
            form.webhook_secret.clear();
            let refused = Refused {
                integration: Some((business, form, error.message())),
                ..Refused::default()
            };
            refused_page(&state, &session, refused).await
        }
        Err(error) => Err(error.into()),
    }
}
