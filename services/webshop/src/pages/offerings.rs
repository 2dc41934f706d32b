//! A business's offerings: the list (inactive ones too), a new one, and
//! changing one — its title, description, prices and stock — or taking it
//! off sale and back. Catalog decides what is valid; its refusals show on
//! the form with what was typed.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::shop::{parse_id, Listing};
use super::{label, money, render, see_other, Nav, PageError, PageQuery};
use crate::api::ApiError;
use crate::session::{CsrfForm, Session, SignedIn};
use crate::AppState;

/// An offering as catalog shows it.
#[derive(Debug, Deserialize)]
struct Offering {
    id: Uuid,
    business_id: Uuid,
    title: String,
    description: String,
    kind: String,
    price_minor: i64,
    currency: String,
    points_price: i64,
    stock: Option<i64>,
    active: bool,
}

struct OfferingRow {
    id: Uuid,
    title: String,
    kind: String,
    price: String,
    points_price: i64,
    stock: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "offerings.html")]
struct OfferingsPage {
    nav: Nav,
    offerings: Vec<OfferingRow>,
    notice: Option<String>,
    problem: Option<String>,
}

/// The offering form, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OfferingForm {
    title: String,
    description: String,
    kind: String,
    /// In the currency's main unit: `12.50`.
    price: String,
    points_price: String,
    /// Empty is unlimited.
    stock: String,
    /// A checkbox: present when ticked.
    active: Option<String>,
}

/// The kinds catalog knows, as the form offers them.
const KINDS: &[(&str, &str)] = &[
    ("product", "Product (shipped)"),
    ("voucher", "Voucher"),
    ("service", "Service"),
];

struct KindChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "offering_form.html")]
struct OfferingFormPage {
    nav: Nav,
    /// `None` for a new offering.
    id: Option<Uuid>,
    active: bool,
    kinds: Vec<KindChoice>,
    form: OfferingForm,
    currency: String,
    problem: Option<String>,
}

/// The business this session acts for; other roles have no offerings.
fn business_of(session: &Session) -> Result<Uuid, PageError> {
    session.user.business_id.ok_or_else(|| {
        PageError::Forbidden("Only a business's own users manage its offerings.".to_owned())
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    saved: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    PageQuery(query): PageQuery<ListQuery>,
) -> Result<Html<String>, PageError> {
    let notice = query.saved.map(|_| "Saved.".to_owned());
    list_page(&state, &session, notice, None).await
}

async fn list_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    problem: Option<String>,
) -> Result<Html<String>, PageError> {
    let business = business_of(session)?;
    let listed = state
        .api
        .get(
            fleet::CATALOG,
            format!("/v1/offerings?business_id={business}&include_inactive=true&limit=200"),
        )
        .bearer(session.token())
        .send::<Listing<Offering>>()
        .await?
        .body;
    render(&OfferingsPage {
        nav: Nav::of(Some(session)),
        offerings: listed
            .items
            .into_iter()
            .map(|offering| OfferingRow {
                id: offering.id,
                title: offering.title,
                kind: label(&offering.kind),
                price: money(offering.price_minor, &offering.currency),
                points_price: offering.points_price,
                stock: offering
                    .stock
                    .map_or_else(|| "Unlimited".to_owned(), |stock| stock.to_string()),
                active: offering.active,
            })
            .collect(),
        notice,
        problem,
    })
}

fn kinds(selected: &str) -> Vec<KindChoice> {
    KINDS
        .iter()
        .map(|(value, label)| KindChoice {
            value,
            label,
            selected: *value == selected,
        })
        .collect()
}

fn form_page(
    state: &AppState,
    session: &Session,
    id: Option<Uuid>,
    active: bool,
    form: OfferingForm,
    problem: Option<String>,
) -> Result<Html<String>, PageError> {
    render(&OfferingFormPage {
        nav: Nav::of(Some(session)),
        id,
        active,
        kinds: kinds(&form.kind),
        form,
        currency: state.shop_currency.clone(),
        problem,
    })
}

/// `GET /business/offerings/new`.
pub async fn new(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
) -> Result<Html<String>, PageError> {
    business_of(&session)?;
    let form = OfferingForm {
        kind: "product".to_owned(),
        active: Some("on".to_owned()),
        ..OfferingForm::default()
    };
    form_page(&state, &session, None, true, form, None)
}

/// What the form's numbers mean, or why they do not parse.
struct Numbers {
    price_minor: i64,
    points_price: i64,
    stock: Option<i64>,
}

fn numbers(form: &OfferingForm) -> Result<Numbers, String> {
    let price_minor = minor_units(&form.price)
        .ok_or_else(|| "The price must be an amount such as 12 or 12.50.".to_owned())?;
    let points_price = form
        .points_price
        .trim()
        .parse::<i64>()
        .map_err(|_| "The points price must be a whole number.".to_owned())?;
    let stock = match form.stock.trim() {
        "" => None,
        typed => Some(
            typed
                .parse::<i64>()
                .map_err(|_| "Stock must be a whole number, or empty for unlimited.".to_owned())?,
        ),
    };
    Ok(Numbers {
        price_minor,
        points_price,
        stock,
    })
}

/// `12.5` → 1250 minor units; at most two decimals.
fn minor_units(typed: &str) -> Option<i64> {
    let typed = typed.trim().trim_start_matches(['$', '€', '£']);
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match typed.split_once('.') {
        Some((whole, fraction)) if digits(fraction) && fraction.len() <= 2 => (whole, fraction),
        Some(_) => return None,
        None => (typed, ""),
    };
    if !digits(whole) {
        return None;
    }
    let cents = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction.parse::<i64>().ok()?,
    };
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[derive(Serialize)]
struct NewOffering<'a> {
    business_id: Uuid,
    title: &'a str,
    description: &'a str,
    kind: &'a str,
    price_minor: i64,
    currency: &'a str,
    points_price: i64,
    stock: Option<i64>,
    active: bool,
}

/// `POST /business/offerings`: lists a new offering.
pub async fn create(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<OfferingForm>,
) -> Result<Response, PageError> {
    let business = business_of(&session)?;
    let refused = |problem: String, form: OfferingForm| {
        form_page(&state, &session, None, true, form, Some(problem))
            .map(IntoResponse::into_response)
    };
    if !KINDS.iter().any(|(kind, _)| *kind == form.kind) {
        return refused(
            "Please choose what kind of offering it is.".to_owned(),
            form,
        );
    }
    let numbers = match numbers(&form) {
        Ok(numbers) => numbers,
        Err(why) => return refused(why, form),
    };
    let created = state
        .api
        .post(fleet::CATALOG, "/v1/offerings")
        .bearer(session.token())
        .json(&NewOffering {
            business_id: business,
            title: form.title.trim(),
            description: form.description.trim(),
            kind: &form.kind,
            price_minor: numbers.price_minor,
            currency: &state.shop_currency,
            points_price: numbers.points_price,
            stock: numbers.stock,
            active: form.active.is_some(),
        })
        .send::<serde_json::Value>()
        .await;
    match created {
        Ok(_) => Ok(see_other("/business/offerings?saved=1")),
        Err(error @ ApiError::Refused(_)) => refused(error.message(), form),
        Err(error) => Err(error.into()),
    }
}

/// One of this business's offerings; another's is "not found".
async fn own_offering(
    state: &AppState,
    session: &Session,
    id: Uuid,
) -> Result<Offering, PageError> {
    let business = business_of(session)?;
    let offering = state
        .api
        .get(fleet::CATALOG, format!("/v1/offerings/{id}"))
        .bearer(session.token())
        .send::<Offering>()
        .await?
        .body;
    if offering.business_id != business {
        return Err(PageError::NotFound);
    }
    Ok(offering)
}

/// `GET /business/offerings/{id}`: the form to change it.
pub async fn edit(
    State(state): State<AppState>,
    SignedIn(session): SignedIn,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id = parse_id(&id)?;
    let offering = own_offering(&state, &session, id).await?;
    let form = OfferingForm {
        title: offering.title,
        description: offering.description,
        kind: offering.kind,
        price: format!(
            "{}.{:02}",
            offering.price_minor / 100,
            offering.price_minor % 100
        ),
        points_price: offering.points_price.to_string(),
        stock: offering
            .stock
            .map(|stock| stock.to_string())
            .unwrap_or_default(),
        active: offering.active.then(|| "on".to_owned()),
    };
    form_page(&state, &session, Some(id), offering.active, form, None)
}

/// `POST /business/offerings/{id}`: saves the form's fields.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<OfferingForm>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let offering = own_offering(&state, &session, id).await?;
    let refused = |problem: String, mut form: OfferingForm| {
        form.kind = offering.kind.clone();
        form_page(
            &state,
            &session,
            Some(id),
            offering.active,
            form,
            Some(problem),
        )
        .map(IntoResponse::into_response)
    };
    let numbers = match numbers(&form) {
        Ok(numbers) => numbers,
        Err(why) => return refused(why, form),
    };
    let changed = state
        .api
        .patch(fleet::CATALOG, format!("/v1/offerings/{id}"))
        .bearer(session.token())
        .json(&json!({
            "title": form.title.trim(),
            "description": form.description.trim(),
            "price_minor": numbers.price_minor,
            "points_price": numbers.points_price,
            "stock": numbers.stock,
        }))
        .send::<serde_json::Value>()
        .await;
    match changed {
        Ok(_) => Ok(see_other("/business/offerings?saved=1")),
        Err(error @ ApiError::Refused(_)) => refused(error.message(), form),
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActiveForm {
    active: String,
}

/// `POST /business/offerings/{id}/active`: takes it off sale (`false`) or
/// puts it back (`true`).
pub async fn set_active(
    State(state): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, form }: CsrfForm<ActiveForm>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    own_offering(&state, &session, id).await?;
    let active = match form.active.as_str() {
        "true" => true,
        "false" => false,
        _ => return Err(PageError::BadForm),
    };
    let changed = state
        .api
        .patch(fleet::CATALOG, format!("/v1/offerings/{id}"))
        .bearer(session.token())
        .json(&json!({ "active": active }))
        .send::<serde_json::Value>()
        .await;
    match changed {
        Ok(_) => Ok(see_other("/business/offerings?saved=1")),
        Err(error @ ApiError::Refused(_)) => {
            list_page(&state, &session, None, Some(error.message()))
                .await
                .map(IntoResponse::into_response)
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_typed_in_the_main_unit() {
        assert_eq!(minor_units("12"), Some(1200));
        assert_eq!(minor_units(" $12.5 "), Some(1250));
        assert_eq!(minor_units("0.05"), Some(5));
        for wrong in ["", "12.345", "1,50", "-3", "abc", ".5", "12."] {
            assert_eq!(minor_units(wrong), None, "{wrong}");
        }
    }
}
