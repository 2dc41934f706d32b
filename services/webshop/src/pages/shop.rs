//! The storefront: offerings to browse and search (`q`), a page at a time
//! by the API's cursor; one offering's page; putting it in the cart.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{money, render, see_other, Nav, PageError, PageQuery};
use crate::api::{Api, ApiError};
use crate::session::{CsrfForm, MaybeSession, Session};
use crate::AppState;

/// Offerings per storefront page.
const PAGE_SIZE: u32 = 12;

/// An offering as catalog answers it (the fields the pages show).
#[derive(Debug, Clone, Deserialize)]
pub struct Offering {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub price_minor: i64,
    pub currency: String,
    pub points_price: i64,
    pub stock: Option<i64>,
    pub active: bool,
}

#[derive(Debug, Deserialize)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Business {
    id: Uuid,
    name: String,
}

/// One offering as a card or a page shows it.
pub struct OfferingView {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: String,
    pub business: String,
    pub price: String,
    pub points_price: i64,
    pub availability: String,
    pub available: bool,
}

impl OfferingView {
    fn new(offering: &Offering, businesses: &HashMap<Uuid, String>) -> Self {
        let available = offering.active && offering.stock.is_none_or(|stock| stock > 0);
        let availability = match (offering.active, offering.stock) {
            (false, _) => "No longer on sale".to_owned(),
            (true, Some(0)) => "Sold out".to_owned(),
            (true, Some(stock)) if stock <= 5 => format!("Only {stock} left"),
            (true, _) => "In stock".to_owned(),
        };
        OfferingView {
            id: offering.id,
            title: offering.title.clone(),
            description: offering.description.clone(),
            kind: super::label(&offering.kind),
            business: businesses
                .get(&offering.business_id)
                .cloned()
                .unwrap_or_default(),
            price: money(offering.price_minor, &offering.currency),
            points_price: offering.points_price,
            availability,
            available,
        }
    }
}

/// Business names by id, for labels; an unreachable catalog leaves them out.
async fn business_names(api: &Api) -> HashMap<Uuid, String> {
    match api
        .get(fleet::CATALOG, "/v1/businesses?limit=200")
        .send::<Listing<Business>>()
        .await
    {
        Ok(answer) => answer
            .body
            .items
            .into_iter()
            .map(|business| (business.id, business.name))
            .collect(),
        Err(_) => HashMap::new(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct StorefrontQuery {
    q: Option<String>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "storefront.html")]
struct Storefront {
    nav: Nav,
    q: String,
    offerings: Vec<OfferingView>,
    next_page: Option<String>,
    first_page: Option<String>,
}

#[derive(Serialize)]
struct OfferingsQuery<'a> {
    limit: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    q: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<&'a str>,
}

pub async fn storefront(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    PageQuery(query): PageQuery<StorefrontQuery>,
) -> Result<Html<String>, PageError> {
    let q = query.q.unwrap_or_default().trim().to_owned();
    let api_query = serde_urlencoded::to_string(OfferingsQuery {
        limit: PAGE_SIZE,
        q: &q,
        cursor: query.cursor.as_deref(),
    })
    .map_err(|_| PageError::BadForm)?;
    let listed = match state
        .api
        .get(fleet::CATALOG, format!("/v1/offerings?{api_query}"))
        .send::<Listing<Offering>>()
        .await
    {
        Ok(answer) => answer.body,
        // A cursor from an old link: start again from the first page.
        Err(ApiError::Refused(refusal)) if refusal.code == "invalid_pagination" => {
            return Err(PageError::Refused {
                status: refusal.status,
                message: "That page of results is no longer available; please search again."
                    .to_owned(),
            })
        }
        Err(error) => return Err(error.into()),
    };
    let businesses = business_names(&state.api).await;
    let link = |cursor: Option<&str>| {
        let query = serde_urlencoded::to_string(OfferingsQuery {
            limit: PAGE_SIZE,
            q: &q,
            cursor,
        })
        .unwrap_or_default();
        format!("/?{query}")
    };
    render(&Storefront {
        nav: Nav::of(session.as_ref()),
        offerings: listed
            .items
            .iter()
            .map(|offering| OfferingView::new(offering, &businesses))
            .collect(),
        next_page: listed
            .next_cursor
            .as_deref()
            .map(|cursor| link(Some(cursor))),
        first_page: query.cursor.is_some().then(|| link(None)),
        q,
    })
}

#[derive(Template)]
#[template(path = "offering.html")]
struct OfferingPage {
    nav: Nav,
    offering: OfferingView,
    can_buy: bool,
    quantity: String,
    problem: Option<String>,
}

/// An id from a path; anything that is no UUID is simply not found.
pub fn parse_id(raw: &str) -> Result<Uuid, PageError> {
    raw.parse().map_err(|_| PageError::NotFound)
}

pub async fn offering(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
    Path(id): Path<String>,
) -> Result<Html<String>, PageError> {
    let id = parse_id(&id)?;
    offering_page(&state, session.as_ref(), id, "1".to_owned(), None).await
}

async fn offering_page(
    state: &AppState,
    session: Option<&Session>,
    id: Uuid,
    quantity: String,
    problem: Option<String>,
) -> Result<Html<String>, PageError> {
    let offering = state
        .api
        .get(fleet::CATALOG, format!("/v1/offerings/{id}"))
        .send::<Offering>()
        .await?
        .body;
    let businesses = business_names(&state.api).await;
    let nav = Nav::of(session);
    render(&OfferingPage {
        can_buy: nav.shopper,
        nav,
        offering: OfferingView::new(&offering, &businesses),
        quantity,
        problem,
    })
}

#[derive(Debug, Deserialize)]
pub struct AddToCart {
    offering_id: String,
    quantity: String,
}

#[derive(Debug, Deserialize)]
pub struct Cart {
    pub items: Vec<CartItem>,
}

#[derive(Debug, Deserialize)]
pub struct CartItem {
    pub offering_id: Uuid,
    pub quantity: u32,
}

/// At most this many of one offering in a cart (cart's rule).
pub const MAX_QUANTITY: u32 = 99;

/// `quantity` as typed, when it is a whole number from 1 to 99.
pub fn parse_quantity(quantity: &str) -> Result<u32, String> {
    match quantity.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_QUANTITY).contains(&n) => Ok(n),
        _ => Err(format!("Please enter a quantity from 1 to {MAX_QUANTITY}.")),
    }
}

pub async fn add_to_cart(
    State(state): State<AppState>,
    CsrfForm { session, form }: CsrfForm<AddToCart>,
) -> Result<Response, PageError> {
    let id = parse_id(&form.offering_id)?;
    let again = |problem: String| {
        let state = state.clone();
        let session = session.clone();
        let quantity = form.quantity.clone();
        async move {
            offering_page(&state, Some(&session), id, quantity, Some(problem))
                .await
                .map(axum::response::IntoResponse::into_response)
        }
    };
    let quantity = match parse_quantity(&form.quantity) {
        Ok(quantity) => quantity,
        Err(problem) => return again(problem).await,
    };
    let cart = state
        .api
        .get(fleet::CART, "/v1/cart")
        .bearer(session.token())
        .send::<Cart>()
        .await?
        .body;
    let held = cart
        .items
        .iter()
        .find(|item| item.offering_id == id)
        .map_or(0, |item| item.quantity);
    let total = held + quantity;
    if total > MAX_QUANTITY {
        return again(format!(
            "Your cart already holds {held} of this; at most {MAX_QUANTITY} fit."
        ))
        .await;
    }
    let put = state
        .api
        .put(fleet::CART, format!("/v1/cart/items/{id}"))
        .bearer(session.token())
        .json(&serde_json::json!({ "quantity": total }))
        .send::<serde_json::Value>()
        .await;
    match put {
        Ok(_) => Ok(see_other("/cart")),
        Err(error @ ApiError::Refused(_)) => again(error.message()).await,
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_is_a_whole_number_from_1_to_99() {
        assert_eq!(parse_quantity(" 3 "), Ok(3));
        assert_eq!(parse_quantity("99"), Ok(99));
        for wrong in ["0", "100", "-1", "two", ""] {
            assert!(parse_quantity(wrong).is_err(), "{wrong}");
        }
    }
}
