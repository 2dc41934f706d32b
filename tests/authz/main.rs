//! The authorization matrix: every documented operation of every service ×
//! every caller (no token, civilian, charity, officer, the business that
//! owns the resource, another business, admin, service) × the caller's own
//! resource and another's, each answered as DESIGN §2 says: 401 without a
//! token, 403 for a role not allowed or for acting for another business,
//! 404 for another customer's resource or another business's part, and
//! otherwise admitted. The cases are generated from one table
//! (`table.rs`), and a second test checks that the table covers every
//! operation of every service's `/openapi.json`, naming any it misses.
//!
//! One fleet serves both (the launcher, as `scripts/run` starts it).

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http_service::{mint_hs256, Claims, Role};
use libtest_mimic::{Arguments, Failed, Trial};
use reqwest::Method;
use serde_json::{json, Value};
use test_harness::Api;
use uuid::Uuid;

use fixture::{Fleet, JWT_SECRET};
use table::{routes, Caller, Expect, Ids, Owner, Route, Whose, CALLERS};

#[path = "../fixture/mod.rs"]
mod fixture;
mod table;

/// Services whose documents the table must cover (the webshop documents
/// none: its `/v1` is theirs).
const SERVICES: [&str; 8] = [
    "catalog",
    "cart",
    "checkout",
    "user-points",
    "payment-gateway",
    "order",
    "dispatcher",
    "notification",
];

/// A customer's resources.
struct Customer {
    id: Uuid,
    token: String,
    order: String,
    checkout: String,
    authorization: String,
    notification: String,
}

/// A business's: its id, its owner's token and an offering.
struct Shop {
    id: Uuid,
    token: String,
    offering: String,
}

/// The fleet and two of everything, so that every case has an own and
/// another's resource: the civilian bought from the business, the charity
/// from the other business.
struct World {
    fleet: Fleet,
    civilian: Customer,
    charity: Customer,
    business: Shop,
    other_business: Shop,
    officer: String,
    admin: String,
    service: String,
    reservations: [String; 2],
    charity_name: String,
}

impl World {
    async fn set_up(fleet: Fleet) -> World {
        let api = |service: &str| Api::new(fleet.urls[service].clone());
        let businesses = fleet.tokens("business");
        let shop = |index: usize| {
            let token = businesses[index];
            let id = token.business_id.expect("a business id");
            let token = token.token.clone();
            let catalog = api("catalog");
            async move {
                let offerings = catalog
                    .get(&format!("/v1/offerings?business_id={id}&limit=200"))
                    .send()
                    .await
                    .expect_status(200)
                    .body;
                let offering = offerings["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|offering| offering["stock"].is_null())
                    .and_then(|offering| offering["id"].as_str())
                    .expect("an offering of unlimited stock")
                    .to_owned();
                Shop {
                    id,
                    token,
                    offering,
                }
            }
        };
        let business = shop(0).await;
        let other_business = shop(1).await;
        let civilian = customer(&fleet, "civilian", &business.offering).await;
        let charity = customer(&fleet, "charity", &other_business.offering).await;
        let service = mint_hs256(
            JWT_SECRET,
            &Claims::new(Uuid::new_v4(), Role::Service, Duration::from_secs(3600)),
        );
        let mut reservations = Vec::new();
        for _ in 0..2 {
            let reserved = api("user-points")
                .post("/v1/points/reservations")
                .bearer(&service)
                .json(&json!({
                    "user_id": civilian.id, "order_id": Uuid::new_v4(),
                    "checkout_id": Uuid::new_v4(), "points": 1, "ttl_seconds": 3600,
                }))
                .send()
                .await
                .expect_status(201)
                .body;
            reservations.push(reserved["reservation_id"].as_str().expect("id").to_owned());
        }
        let admin = fleet.token("admin").token.clone();
        let charities = api("user-points")
            .get("/v1/points/charities?limit=200")
            .bearer(&admin)
            .send()
            .await
            .expect_status(200)
            .body;
        let charity_name = charities["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|item| item["charity_id"] == charity.id.to_string())
            .and_then(|item| item["name"].as_str())
            .expect("the demo charity is registered")
            .to_owned();
        World {
            officer: fleet.token("officer").token.clone(),
            admin,
            service,
            reservations: reservations.try_into().expect("two reservations"),
            charity_name,
            civilian,
            charity,
            business,
            other_business,
            fleet,
        }
    }

    fn token(&self, caller: Caller) -> Option<&str> {
        Some(match caller {
            Caller::None => return None,
            Caller::Civilian => &self.civilian.token,
            Caller::Charity => &self.charity.token,
            Caller::Officer => &self.officer,
            Caller::Business => &self.business.token,
            Caller::OtherBusiness => &self.other_business.token,
            Caller::Admin => &self.admin,
            Caller::Service => &self.service,
        })
    }

    /// The customer whose resource a case names: the caller's own, or
    /// another's (for callers who have none, the civilian's and the
    /// charity's).
    fn customer(&self, caller: Caller, whose: Whose) -> &Customer {
        match (caller == Caller::Charity, whose) {
            (true, Whose::Own) | (false, Whose::Another) => &self.charity,
            _ => &self.civilian,
        }
    }

    fn shop(&self, caller: Caller, whose: Whose) -> &Shop {
        match (caller == Caller::OtherBusiness, whose) {
            (true, Whose::Own) | (false, Whose::Another) => &self.other_business,
            _ => &self.business,
        }
    }

    /// The route's path with the case's resources in it.
    fn path(&self, route: &Route, caller: Caller, whose: Whose) -> String {
        let customer = self.customer(caller, whose);
        let shop = self.shop(caller, whose);
        // A business's part: the civilian's order is at the business, the
        // charity's at the other one.
        let part = if shop.id == self.business.id {
            &self.civilian.order
        } else {
            &self.charity.order
        };
        let mut path = route.path.to_owned();
        let value = |name: &str| -> String {
            match (route.service, name) {
                ("catalog", "id") if route.path.starts_with("/v1/businesses") => {
                    shop.id.to_string()
                }
                ("catalog", "id") => shop.offering.clone(),
                ("order", "id") => customer.order.clone(),
                ("dispatcher", "order_id") if route.owner == Owner::Part => part.clone(),
                (_, "order_id") => customer.order.clone(),
                (_, "checkout_id") => customer.checkout.clone(),
                (_, "authorization_id") => customer.authorization.clone(),
                (_, "notification_id") => customer.notification.clone(),
                (_, "user_id") => customer.id.to_string(),
                (_, "business_id") => shop.id.to_string(),
                (_, "offering_id") => self.business.offering.clone(),
                (_, "reservation_id") => {
                    self.reservations[usize::from(whose == Whose::Another)].clone()
                }
                (_, "token") => "not-a-link".to_owned(),
                (service, name) => panic!("{service}: no value for the path parameter {name}"),
            }
        };
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').expect("a closed parameter") + start;
            let name = path[start + 1..end].to_owned();
            path.replace_range(start..=end, &value(&name));
        }
        path
    }

    fn ids(&self, caller: Caller, whose: Whose) -> Ids {
        Ids {
            civilian: self.civilian.id,
            charity: self.charity.id,
            charity_name: self.charity_name.clone(),
            business: self.shop(caller, whose).id,
        }
    }
}

/// The demo customer in `role`, whose order of `offering` waits in the
/// business's queue.
async fn customer(fleet: &Fleet, role: &str, offering: &str) -> Customer {
    let demo = fleet.token(role);
    let bought = fleet.demo_order(role, offering).await;
    Customer {
        id: demo.user_id,
        token: demo.token.clone(),
        order: bought.order,
        checkout: bought.checkout,
        authorization: bought.authorization,
        notification: bought.notification,
    }
}

/// Every documented `(service, METHOD path)` the table has no row for.
async fn table_covers_every_documented_operation(world: &World) -> Result<(), Failed> {
    let table: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|route| {
            (
                route.service.to_owned(),
                format!("{} {}", route.method, route.path),
            )
        })
        .collect();
    let mut documented = BTreeSet::new();
    for service in SERVICES {
        let document = reqwest::get(format!("{}/openapi.json", world.fleet.urls[service]))
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| format!("{service}/openapi.json: {error}"))?
            .json::<Value>()
            .await
            .map_err(|error| format!("{service}/openapi.json: {error}"))?;
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        for (path, item) in paths {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                const METHODS: [&str; 8] = [
                    "get", "put", "post", "delete", "options", "head", "patch", "trace",
                ];
                if METHODS.contains(&method.as_str()) {
                    documented.insert((
                        service.to_owned(),
                        format!("{} {path}", method.to_uppercase()),
                    ));
                }
            }
        }
    }
    let missing: Vec<String> = documented
        .difference(&table)
        .map(|(service, operation)| format!("{service}: {operation}"))
        .collect();
    let stale: Vec<String> = table
        .difference(&documented)
        .map(|(service, operation)| format!("{service}: {operation}"))
        .collect();
    if missing.is_empty() && stale.is_empty() {
        eprintln!(
            "authz: the table covers all {} documented operations",
            documented.len()
        );
        return Ok(());
    }
    Err(format!(
        "the authorization table and the services' documents disagree\n\
         documented, not in the table:\n  {}\nin the table, not documented:\n  {}",
        missing.join("\n  "),
        stale.join("\n  ")
    )
    .into())
}

/// Every route × caller × whose resource, as DESIGN §2 says.
async fn every_operation_answers_every_caller_as_design_says(world: &World) -> Result<(), Failed> {
    let routes = routes();
    // Reads first, then changes, so that what a change does (a cancelled
    // order, a withdrawn part) comes after every read of it.
    let (reads, writes): (Vec<&Route>, Vec<&Route>) =
        routes.iter().partition(|route| route.method == "GET");
    let mut wrong = Vec::new();
    let mut cases = 0;
    let mut admitted_2xx = 0;
    for route in reads.into_iter().chain(writes) {
        let mut everyone = BTreeSet::new();
        for caller in CALLERS {
            for whose in [Whose::Own, Whose::Another] {
                cases += 1;
                let path = world.path(route, caller, whose);
                let api = Api::new(world.fleet.urls[route.service].clone());
                let method = Method::from_bytes(route.method.as_bytes()).expect("a method");
                let mut call = api.request(method, &path);
                if let Some(token) = world.token(caller) {
                    call = call.bearer(token);
                }
                if route.keyed {
                    call = call.idempotency_key(&Uuid::new_v4().to_string());
                }
                let body = (route.body)(&world.ids(caller, whose));
                if !body.is_null() {
                    call = call.json(&body);
                }
                let answer = call.send().await;
                let status = answer.status.as_u16();
                let expected = route.expect(caller, whose);
                let problem_json = answer
                    .headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .is_some_and(|value| value.starts_with("application/problem+json"));
                let right = match expected {
                    Expect::Status(wanted) => status == wanted && problem_json,
                    Expect::Allowed => !matches!(status, 401 | 403 | 404) && status < 500,
                    Expect::SameForEveryone => {
                        everyone.insert(status);
                        status < 500
                    }
                };
                if expected == Expect::Allowed && (200..300).contains(&status) {
                    admitted_2xx += 1;
                }
                if !right {
                    wrong.push(format!(
                        "{} {} {} as {} on {} resource: expected {:?}, got {status} {}",
                        route.service,
                        route.method,
                        path,
                        caller.name(),
                        if whose == Whose::Own {
                            "its own"
                        } else {
                            "another's"
                        },
                        expected,
                        answer.text.chars().take(200).collect::<String>()
                    ));
                }
            }
        }
        if everyone.len() > 1 {
            wrong.push(format!(
                "{} {} {} answers callers differently although its signature decides: {everyone:?}",
                route.service, route.method, route.path
            ));
        }
    }
    eprintln!(
        "authz: {cases} cases ({} routes × {} callers × own and another's); {admitted_2xx} admitted with 2xx",
        routes.len(),
        CALLERS.len()
    );
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {cases} cases answered otherwise than DESIGN §2 says:\n{}",
            wrong.len(),
            wrong.join("\n")
        )
        .into())
    }
}

type Check = for<'a> fn(
    &'a World,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), Failed>> + 'a>,
>;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let checks: Vec<(&str, Check)> = vec![
        ("the_table_covers_every_documented_operation", |world| {
            Box::pin(table_covers_every_documented_operation(world))
        }),
        (
            "every_operation_answers_every_caller_as_design_says",
            |world| Box::pin(every_operation_answers_every_caller_as_design_says(world)),
        ),
    ];
    if args.list {
        let trials = checks
            .iter()
            .map(|(name, _)| Trial::test(*name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let runtime = Arc::new(tokio::runtime::Runtime::new().expect("a runtime"));
    let world = Arc::new(runtime.block_on(async { World::set_up(Fleet::start().await).await }));
    let trials = checks
        .into_iter()
        .map(|(name, check)| {
            let (world, runtime) = (world.clone(), runtime.clone());
            Trial::test(name, move || runtime.block_on(check(&world)))
        })
        .collect();
    let mut failed = libtest_mimic::run(&args, trials).has_failed();
    let Ok(world) = Arc::try_unwrap(world) else {
        panic!("a test still holds the world");
    };
    let status = runtime.block_on(world.fleet.stop());
    if !status.success() {
        eprintln!("the launcher did not stop cleanly: {status}");
        failed = true;
    }
    if failed {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}
