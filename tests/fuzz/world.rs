//! What the fuzzer is given to work on: a caller of every role, and real
//! resources of every kind (a business, its offering, an order paid and in
//! the business's queue, its checkout, authorization and notifications, a
//! points reservation), so that the operations it calls with them reach
//! past "not found" into the handlers' real work.

use std::collections::BTreeMap;
use std::time::Duration;

use http_service::{mint_hs256, Claims, Role};
use serde_json::json;
use test_harness::Api;
use uuid::Uuid;

use crate::fixture::{DemoOrder, Fleet, JWT_SECRET};

/// One caller: a role's name and its bearer token (none for `none`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: &'static str,
    pub token: Option<String>,
}

/// The callers and the resources the fuzzer uses.
pub struct World {
    pub callers: Vec<Caller>,
    admin: String,
    service: String,
    civilian: (Uuid, String),
    charity: Uuid,
    officer: (Uuid, String),
    business: Uuid,
    other_business: Uuid,
    offering: String,
    order: String,
    checkout: String,
    authorization: String,
    notification: String,
    reservation: String,
}

impl World {
    /// Sets the world up on `fleet`'s demo shop, through its public APIs.
    pub async fn set_up(fleet: &Fleet) -> World {
        let api = |service: &str| Api::new(fleet.urls[service].clone());
        let token = |role: &str| fleet.token(role).token.clone();
        let businesses = fleet.tokens("business");
        assert!(businesses.len() >= 2, "the demo shop has two businesses");
        let (owner, other) = (businesses[0], businesses[1]);
        let service = mint_hs256(
            JWT_SECRET,
            &Claims::new(Uuid::new_v4(), Role::Service, Duration::from_secs(3600)),
        );
        let civilian = fleet.token("civilian");
        let business = owner
            .business_id
            .expect("a business token names its business");

        let offerings = api("catalog")
            .get(&format!("/v1/offerings?business_id={business}&limit=200"))
            .send()
            .await
            .expect_status(200)
            .body;
        // One with unlimited stock: the fuzzer may buy it again and again.
        let offering = offerings["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|offering| offering["stock"].is_null())
            .and_then(|offering| offering["id"].as_str())
            .expect("an offering of unlimited stock")
            .to_owned();

        // An order of the civilian's, paid and waiting in the business's queue.
        let DemoOrder {
            order,
            checkout,
            authorization,
            notification,
        } = fleet.demo_order("civilian", &offering).await;
        let reservation = api("user-points")
            .post("/v1/points/reservations")
            .bearer(&service)
            .json(&json!({
                "user_id": civilian.user_id,
                "order_id": Uuid::new_v4(),
                "checkout_id": Uuid::new_v4(),
                "points": 1,
                "ttl_seconds": 3600,
            }))
            .send()
            .await
            .expect_status(201)
            .body;

        let callers = vec![
            Caller {
                name: "none",
                token: None,
            },
            Caller {
                name: "civilian",
                token: Some(civilian.token.clone()),
            },
            Caller {
                name: "charity",
                token: Some(token("charity")),
            },
            Caller {
                name: "officer",
                token: Some(token("officer")),
            },
            Caller {
                name: "business",
                token: Some(owner.token.clone()),
            },
            Caller {
                name: "other-business",
                token: Some(other.token.clone()),
            },
            Caller {
                name: "admin",
                token: Some(token("admin")),
            },
            Caller {
                name: "service",
                token: Some(service.clone()),
            },
        ];
        World {
            callers,
            admin: token("admin"),
            service,
            civilian: (civilian.user_id, civilian.token.clone()),
            charity: fleet.token("charity").user_id,
            officer: (
                fleet.token("officer").user_id,
                fleet.token("officer").token.clone(),
            ),
            business,
            other_business: other.business_id.expect("a business id"),
            offering,
            order,
            checkout,
            authorization,
            notification,
            reservation: reservation["reservation_id"]
                .as_str()
                .expect("an id")
                .to_owned(),
        }
    }

    /// `schemathesis.toml` for `service`: the world's resources as the
    /// values of its path parameters.
    pub fn config(&self, service: &str) -> String {
        let mut operations: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        let civilian = self.civilian.0.to_string();
        let business = self.business.to_string();
        let mut by_name: Vec<(&str, &str)> = Vec::new();
        match service {
            "catalog" => {
                operations.insert("/v1/offerings/{id}", vec![("id", &self.offering)]);
                operations.insert("/v1/businesses/{id}", vec![("id", &business)]);
            }
            "cart" => by_name = vec![("offering_id", &self.offering), ("user_id", &civilian)],
            "checkout" => by_name = vec![("checkout_id", &self.checkout)],
            "user-points" => {
                by_name = vec![
                    ("user_id", &civilian),
                    ("reservation_id", &self.reservation),
                ]
            }
            "payment-gateway" => {
                by_name = vec![
                    ("authorization_id", &self.authorization),
                    ("order_id", &self.order),
                ]
            }
            "order" => by_name = vec![("id", &self.order)],
            "dispatcher" => by_name = vec![("business_id", &business), ("order_id", &self.order)],
            "notification" => by_name = vec![("notification_id", &self.notification)],
            _ => {}
        }
        let mut config = String::from("# heyblue fuzz: the world's ids\n");
        if !by_name.is_empty() {
            config.push_str("\n[parameters]\n");
            for (name, value) in by_name {
                config.push_str(&format!("\"path.{name}\" = \"{value}\"\n"));
            }
        }
        for (path, parameters) in operations {
            config.push_str(&format!("\n[[operations]]\ninclude-path = \"{path}\"\n"));
            config.push_str("parameters = { ");
            let pairs: Vec<String> = parameters
                .iter()
                .map(|(name, value)| format!("\"path.{name}\" = \"{value}\""))
                .collect();
            config.push_str(&pairs.join(", "));
            config.push_str(" }\n");
        }
        config
    }

    /// What the refused-request check reads of `service` (JSON `[url,
    /// token]` pairs): every resource of the world it owns, as an admin,
    /// the service role or the owner sees it.
    pub fn fingerprint(&self, fleet: &Fleet, service: &str) -> String {
        let url = |path: String| format!("{}{path}", fleet.urls[service]);
        let (civilian, civilian_token) = (&self.civilian.0, &self.civilian.1);
        let reads: Vec<(String, &str)> = match service {
            "catalog" => vec![
                (url("/v1/businesses?limit=200".into()), ""),
                (url(format!("/v1/businesses/{}", self.business)), ""),
                (
                    url("/v1/offerings?include_inactive=true&limit=200".into()),
                    &self.admin,
                ),
                (url(format!("/v1/offerings/{}", self.offering)), ""),
            ],
            "cart" => vec![
                (url(format!("/v1/carts/{civilian}")), &self.service),
                (url(format!("/v1/carts/{}", self.charity)), &self.service),
            ],
            "checkout" => vec![
                (
                    url(format!("/v1/checkouts/{}", self.checkout)),
                    civilian_token,
                ),
                (
                    format!(
                        "{}/v1/points/balances/{civilian}",
                        fleet.urls["user-points"]
                    ),
                    &self.service,
                ),
            ],
            "user-points" => vec![
                (
                    url(format!("/v1/points/balances/{civilian}")),
                    &self.service,
                ),
                (
                    url(format!("/v1/points/balances/{}", self.charity)),
                    &self.service,
                ),
                (
                    url(format!("/v1/points/balances/{}", self.officer.0)),
                    &self.service,
                ),
                (url("/v1/points/ledger?limit=200".into()), &self.officer.1),
                (url("/v1/points/charities?limit=200".into()), &self.admin),
            ],
            "payment-gateway" => vec![(
                url(format!("/v1/payments/{}", self.authorization)),
                &self.admin,
            )],
            "order" => vec![
                (url(format!("/v1/orders/{}", self.order)), &self.admin),
                (url("/v1/orders?limit=200".into()), &self.admin),
            ],
            "dispatcher" => vec![
                (
                    url(format!("/v1/dispatch/integrations/{}", self.business)),
                    &self.admin,
                ),
                (
                    url(format!("/v1/dispatch/integrations/{}", self.other_business)),
                    &self.admin,
                ),
                (
                    url(format!("/v1/dispatch/businesses/{}/orders", self.business)),
                    &self.admin,
                ),
            ],
            "notification" => vec![
                (url("/v1/notifications?limit=200".into()), civilian_token),
                (url("/v1/notifications?limit=200".into()), &self.officer.1),
            ],
            _ => Vec::new(),
        };
        serde_json::to_string(&reads).expect("JSON")
    }
}
