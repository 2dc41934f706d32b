//! The shop the load buys from and the people who buy: businesses and
//! offerings of its own, with stock that never runs out, registered
//! through catalog as an admin would, and many civilians, each with a token
//! minted with the fleet's secret and points awarded by the admin.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::{stream, StreamExt, TryStreamExt};
use http_service::auth::{mint_hs256, Claims, Role};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::fleet::Fleet;

/// Businesses of the load's shop; each order buys from one of them.
const BUSINESSES: usize = 2;
/// Offerings per business: enough that stock reservations of concurrent
/// orders rarely wait on the same row.
const OFFERINGS_PER_BUSINESS: usize = 4;
/// Far more than any run buys.
const STOCK: i64 = 1_000_000_000;
/// A unit's price in cents and in points.
const PRICE_MINOR: i64 = 2_500;
/// Points each buyer starts with: enough for thousands of orders.
const POINTS_AWARDED: i64 = 1_000_000;
/// Setup calls made at once.
const SETUP_CONCURRENCY: usize = 16;

/// Where the journeys go and what they can buy.
#[derive(Debug, Clone)]
pub struct Shop {
    pub client: reqwest::Client,
    pub cart: String,
    pub checkout: String,
    pub orders: String,
    pub offerings: Vec<Uuid>,
}

/// A civilian who buys.
#[derive(Debug, Clone)]
pub struct User {
    pub token: String,
}

/// Buyers not in a journey right now, the longest idle first, so a user's
/// cart has long been lowered by its last order when it shops again.
#[derive(Default)]
pub struct Users(Mutex<VecDeque<User>>);

impl Users {
    pub fn take(&self) -> Option<User> {
        self.0.lock().ok()?.pop_front()
    }

    pub fn give_back(&self, user: User) {
        if let Ok(mut users) = self.0.lock() {
            users.push_back(user);
        }
    }
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// The HTTP client every journey shares: keeps connections open to every
/// service, answers awaited at most 30 s.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .context("failed to build the HTTP client")
}

impl Shop {
    /// Registers the businesses and offerings on `fleet`'s catalog.
    pub async fn open(fleet: &Fleet, client: reqwest::Client) -> anyhow::Result<Shop> {
        let catalog = fleet.url(&fleet::CATALOG)?.to_owned();
        let run = Uuid::new_v4().simple().to_string();
        let mut offerings = Vec::new();
        for b in 0..BUSINESSES {
            let business: Created = admin_post(
                &client,
                &fleet.admin_token,
                &format!("{catalog}/v1/businesses"),
                &json!({
                    "name": format!("Load business {b} ({})", &run[..8]),
                    "contact_email": format!("load-business-{b}@example.test"),
                }),
            )
            .await?;
            for o in 0..OFFERINGS_PER_BUSINESS {
                let offering: Created = admin_post(
                    &client,
                    &fleet.admin_token,
                    &format!("{catalog}/v1/offerings"),
                    &json!({
                        "business_id": business.id,
                        "title": format!("Load voucher {b}.{o}"),
                        "description": "A voucher bought by the load benchmark.",
                        "kind": "voucher",
                        "price_minor": PRICE_MINOR,
                        "currency": "USD",
                        "points_price": PRICE_MINOR,
                        "stock": STOCK,
                    }),
                )
                .await?;
                offerings.push(offering.id);
            }
        }
        Ok(Shop {
            client,
            cart: fleet.url(&fleet::CART)?.to_owned(),
            checkout: fleet.url(&fleet::CHECKOUT)?.to_owned(),
            orders: fleet.url(&fleet::ORDER)?.to_owned(),
            offerings,
        })
    }
}

/// `count` fresh civilians, each awarded [`POINTS_AWARDED`] points by the admin.
pub async fn sign_up(
    fleet: &Fleet,
    client: &reqwest::Client,
    count: usize,
) -> anyhow::Result<Users> {
    let points = format!("{}/v1/points/awards", fleet.url(&fleet::USER_POINTS)?);
    let users: Vec<User> = stream::iter(0..count)
        .map(|n| {
            let points = points.clone();
            async move {
                let id = Uuid::new_v4();
                let claims = Claims::new(id, Role::Civilian, Duration::from_secs(86_400))
                    .with_email(format!("load-{n}@example.test"));
                let user = User {
                    token: mint_hs256(&fleet.jwt_secret, &claims),
                };
                let _: serde::de::IgnoredAny = admin_post(
                    client,
                    &fleet.admin_token,
                    &points,
                    &json!({
                        "award_id": Uuid::new_v4(),
                        "user_id": id,
                        "points": POINTS_AWARDED,
                        "reason": "load benchmark",
                    }),
                )
                .await?;
                anyhow::Ok(user)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(Users(Mutex::new(users.into())))
}

async fn admin_post<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    token: &str,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<T> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("POST {url}"))?;
    if !status.is_success() {
        bail!("POST {url} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url} answered {status}: {text}"))
}
