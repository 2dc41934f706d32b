//! Demo data for a freshly started fleet: fixed users with long-lived
//! tokens, points for the civilian and the officer, a registered charity,
//! and a small shop — two businesses with a dozen offerings between them.
//!
//! Seeding goes through the services' public APIs with an admin token, as
//! an operator would, never into their tables. It is idempotent against a
//! kept database however long ago it last ran, without leaning on
//! `Idempotency-Key` retention (24 h): users and awards have fixed ids
//! (user-points deduplicates awards by `award_id` and charities by
//! `charity_id`), while catalog assigns the ids of businesses and
//! offerings, so those are listed first — a business found by its name, an
//! offering by its business and title — and only what is missing is
//! created.
//!
//! A service that does not offer an endpoint yet gets a warning and the
//! rest goes on. Any other failed call is a failure, reported with the call
//! and the service's answer; the fleet still runs, since its services are
//! fine, and a restart seeds what is still missing.

use std::time::Duration;

use anyhow::Context;
pub use demo_shop::*;
use http_service::{mint_hs256, Role};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shop's currency: catalog's default.
pub const CURRENCY: &str = "USD";

/// Catalog's largest page.
const PAGE_LIMIT: u32 = 200;

/// A demo user and a token for it.
#[derive(Debug, Clone)]
pub struct DemoToken {
    pub user: DemoUser,
    pub token: String,
}

/// A long-lived token for every demo user, and one for the owner of every
/// business that catalog has; the admin's comes last.
pub fn demo_tokens(secret: &str, businesses: &[SeededBusiness]) -> Vec<DemoToken> {
    let (admins, others): (Vec<DemoUser>, Vec<DemoUser>) = DEMO_USERS
        .iter()
        .copied()
        .partition(|user| user.role == Role::Admin);
    others
        .into_iter()
        .chain(businesses.iter().map(SeededBusiness::owner))
        .chain(admins)
        .map(|user| DemoToken {
            user,
            token: mint_hs256(secret, &user.claims(DEMO_TOKEN_TTL)),
        })
        .collect()
}

/// Where the services to seed listen.
#[derive(Debug, Clone)]
pub struct Targets {
    pub catalog: String,
    pub user_points: String,
}

/// A demo business as catalog has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededBusiness {
    pub business: &'static DemoBusiness,
    /// Catalog's id for it.
    pub id: Uuid,
    /// How many of its demo offerings catalog lists.
    pub offerings: usize,
    /// How many of those this run created.
    pub created: usize,
}

impl SeededBusiness {
    pub fn owner(&self) -> DemoUser {
        self.business.owner(self.id)
    }
}

/// What seeding left in place, and what went wrong.
#[derive(Debug, Default)]
pub struct SeedReport {
    pub businesses: Vec<SeededBusiness>,
    /// The charity, once user-points has it registered.
    pub charity: Option<DemoCharity>,
    /// Endpoints a service does not offer yet.
    pub warnings: Vec<String>,
    /// Calls that failed for another reason.
    pub failures: Vec<String>,
}

impl SeedReport {
    /// `result`'s value; a failed call is recorded, as a warning or a
    /// failure, prefixed with `what` it kept from happening.
    fn note<T>(&mut self, what: &str, result: Result<T, CallError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error @ CallError::Unsupported { .. }) => {
                self.warnings.push(format!("{what}: {error}"));
                None
            }
            Err(error @ CallError::Failed { .. }) => {
                self.failures.push(format!("{what}: {error}"));
                None
            }
        }
    }
}

/// Seeds the demo data. Only an unusable HTTP client is an error; what the
/// services refused is in the report.
pub async fn seed(targets: &Targets, secret: &str) -> anyhow::Result<SeedReport> {
    let seeder = Seeder::new(targets, secret)?;
    let mut report = SeedReport::default();
    for award in &DEMO_AWARDS {
        let what = format!("no demo points for {}", award.user_id);
        report.note(&what, seeder.award_points(award).await);
    }
    let registered = seeder.register_charity(&DEMO_CHARITY).await;
    report.charity = report
        .note("the demo charity is not registered", registered)
        .map(|()| DEMO_CHARITY);
    seeder.seed_shop(&mut report).await;
    Ok(report)
}

/// The catalog id of `business` among the `listed` ones (newest first, as
/// catalog lists them): the oldest of that name, which holds the offerings
/// seeded first should two ever exist.
pub fn registered_id(business: &DemoBusiness, listed: &[ListedBusiness]) -> Option<Uuid> {
    business.registered_id(listed.iter().map(|found| (found.name.as_str(), found.id)))
}

/// The demo offerings of `business` (catalog id `business_id`) that are not
/// among the `listed` ones, active or not.
pub fn missing_offerings(
    business: &DemoBusiness,
    business_id: Uuid,
    listed: &[ListedOffering],
) -> Vec<&'static DemoOffering> {
    business
        .offerings()
        .filter(|offering| {
            !listed
                .iter()
                .any(|have| have.business_id == business_id && have.title == offering.title)
        })
        .collect()
}

/// A business as `GET /v1/businesses` lists it (the fields seeding reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedBusiness {
    pub id: Uuid,
    pub name: String,
}

/// An offering as `GET /v1/offerings` lists it (the fields seeding reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListedOffering {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
}

/// A page of a list endpoint.
#[derive(Debug, Deserialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// `POST /v1/businesses`.
#[derive(Debug, Serialize)]
struct BusinessRequest<'a> {
    name: &'a str,
    contact_email: &'a str,
}

/// `POST /v1/offerings`.
#[derive(Debug, Serialize)]
struct OfferingRequest<'a> {
    business_id: Uuid,
    title: &'a str,
    description: &'a str,
    kind: Kind,
    price_minor: i64,
    currency: &'a str,
    points_price: i64,
    stock: Option<i64>,
}

/// The fields of a problem+json answer that explain it.
#[derive(Debug, Default, Deserialize)]
struct ProblemBody {
    code: Option<String>,
    detail: Option<String>,
}

/// A seeding call that did not do its part.
#[derive(Debug, thiserror::Error)]
enum CallError {
    /// The service has no such endpoint (yet).
    #[error("{call} is not offered yet ({status})")]
    Unsupported { call: String, status: StatusCode },
    #[error("{call} failed: {reason}")]
    Failed { call: String, reason: String },
}

/// The HTTP side of seeding, as an admin.
struct Seeder<'a> {
    client: reqwest::Client,
    admin_token: String,
    targets: &'a Targets,
}

impl<'a> Seeder<'a> {
    fn new(targets: &'a Targets, secret: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("failed to build the seeding HTTP client")?;
        let admin = DEMO_USERS
            .iter()
            .find(|user| user.role == Role::Admin)
            .context("the demo users include no admin")?;
        Ok(Seeder {
            client,
            admin_token: mint_hs256(secret, &admin.claims(Duration::from_secs(600))),
            targets,
        })
    }

    /// The businesses, then for each demo business its id (registering it
    /// when missing) and its missing offerings.
    async fn seed_shop(&self, report: &mut SeedReport) {
        let listed = self
            .list_all::<ListedBusiness>(&self.catalog("/v1/businesses"))
            .await;
        let Some(listed) = report.note("the demo shop is not seeded", listed) else {
            return;
        };
        for business in &DEMO_BUSINESSES {
            let id = match registered_id(business, &listed) {
                Some(id) => id,
                None => {
                    let what = format!("demo business {:?} is not registered", business.name);
                    match report.note(&what, self.register_business(business).await) {
                        Some(id) => id,
                        None => continue,
                    }
                }
            };
            let what = format!("the offerings of {:?} are not seeded", business.name);
            let url = self.catalog(&format!(
                "/v1/offerings?business_id={id}&include_inactive=true"
            ));
            let Some(listed) = report.note(&what, self.list_all::<ListedOffering>(&url).await)
            else {
                continue;
            };
            let missing = missing_offerings(business, id, &listed);
            let mut seeded = SeededBusiness {
                business,
                id,
                offerings: business.offerings().count() - missing.len(),
                created: 0,
            };
            for offering in missing {
                let what = format!("demo offering {:?} is not listed", offering.title);
                if report
                    .note(&what, self.create_offering(id, offering).await)
                    .is_some()
                {
                    seeded.offerings += 1;
                    seeded.created += 1;
                }
            }
            report.businesses.push(seeded);
        }
    }

    fn catalog(&self, path: &str) -> String {
        format!("{}{path}", self.targets.catalog)
    }

    /// Every item of a list endpoint, page by page.
    async fn list_all<T: DeserializeOwned>(&self, url: &str) -> Result<Vec<T>, CallError> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_url = format!("{url}{separator}limit={PAGE_LIMIT}");
            if let Some(cursor) = &cursor {
                page_url.push_str("&cursor=");
                page_url.push_str(cursor);
            }
            let page: Page<T> = self
                .call(Method::GET, &page_url, None::<&()>, &[StatusCode::OK])
                .await?;
            items.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }

    async fn register_business(&self, business: &DemoBusiness) -> Result<Uuid, CallError> {
        let created: ListedBusiness = self
            .call(
                Method::POST,
                &self.catalog("/v1/businesses"),
                Some(&BusinessRequest {
                    name: business.name,
                    contact_email: business.contact_email,
                }),
                &[StatusCode::CREATED],
            )
            .await?;
        Ok(created.id)
    }

    async fn create_offering(
        &self,
        business_id: Uuid,
        offering: &DemoOffering,
    ) -> Result<(), CallError> {
        let _: ListedOffering = self
            .call(
                Method::POST,
                &self.catalog("/v1/offerings"),
                Some(&OfferingRequest {
                    business_id,
                    title: offering.title,
                    description: offering.description,
                    kind: offering.kind,
                    price_minor: offering.price_minor,
                    currency: CURRENCY,
                    points_price: offering.points_price,
                    stock: offering.stock,
                }),
                &[StatusCode::CREATED],
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/points/awards`. The same `award_id` again answers like the
    /// first time; a conflict is an award made by an earlier run too.
    async fn award_points(&self, award: &DemoAward) -> Result<(), CallError> {
        let url = format!("{}/v1/points/awards", self.targets.user_points);
        self.call::<serde::de::IgnoredAny>(
            Method::POST,
            &url,
            Some(award),
            &[StatusCode::CREATED, StatusCode::OK, StatusCode::CONFLICT],
        )
        .await
        .map(drop)
    }

    /// `POST /v1/points/charities`; registering it again answers like the
    /// first time.
    async fn register_charity(&self, charity: &DemoCharity) -> Result<(), CallError> {
        let url = format!("{}/v1/points/charities", self.targets.user_points);
        self.call::<serde::de::IgnoredAny>(
            Method::POST,
            &url,
            Some(charity),
            &[StatusCode::CREATED],
        )
        .await
        .map(drop)
    }

    /// One call as the admin: the body of an answer with one of the `ok`
    /// statuses.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<&impl Serialize>,
        ok: &[StatusCode],
    ) -> Result<T, CallError> {
        let call = format!("{method} {url}");
        let mut request = self
            .client
            .request(method, url)
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let failed = |reason: String| CallError::Failed {
            call: call.clone(),
            reason,
        };
        let response = request
            .send()
            .await
            .map_err(|error| failed(format!("{error}")))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|error| failed(format!("the answer could not be read: {error}")))?;
        if ok.contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|error| failed(format!("{status} with an unexpected body: {error}")));
        }
        match refusal(status, &text) {
            Refusal::Unsupported => Err(CallError::Unsupported {
                call: call.clone(),
                status,
            }),
            Refusal::Failed(reason) => Err(failed(reason)),
        }
    }
}

/// How an answer outside the expected statuses reads.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No such endpoint: the service does not take this yet.
    Unsupported,
    /// Anything else, said in a line.
    Failed(String),
}

/// A 404 or 405 to a path seeding only posts to or lists is an endpoint
/// that is missing; any other answer is a failure, explained by the
/// problem's `code` and `detail` when it has them.
fn refusal(status: StatusCode, body: &str) -> Refusal {
    if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        return Refusal::Unsupported;
    }
    let problem: ProblemBody = serde_json::from_str(body).unwrap_or_default();
    let reason = match (problem.code, problem.detail) {
        (Some(code), Some(detail)) => format!("answered {status} {code}: {detail}"),
        (Some(code), None) => format!("answered {status} {code}"),
        (None, _) if body.trim().is_empty() => format!("answered {status}"),
        (None, _) => {
            let excerpt: String = body.chars().take(200).collect();
            format!("answered {status}: {excerpt}")
        }
    };
    Refusal::Failed(reason)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn listed_business(id: u128, name: &str) -> ListedBusiness {
        ListedBusiness {
            id: Uuid::from_u128(id),
            name: name.to_owned(),
        }
    }

    fn listed_offering(business_id: Uuid, title: &str) -> ListedOffering {
        ListedOffering {
            id: Uuid::new_v4(),
            business_id,
            title: title.to_owned(),
        }
    }

    #[test]
    fn every_fixed_role_has_one_demo_user_with_a_distinct_id() {
        let mut roles: Vec<&str> = DEMO_USERS.iter().map(|u| u.role.as_str()).collect();
        roles.sort_unstable();
        assert_eq!(roles, ["admin", "charity", "civilian", "officer"]);
        let ids: HashSet<Uuid> = DEMO_USERS
            .iter()
            .map(|u| u.id)
            .chain(DEMO_BUSINESSES.iter().map(|b| b.owner_id))
            .collect();
        assert_eq!(ids.len(), DEMO_USERS.len() + DEMO_BUSINESSES.len());
    }

    #[test]
    fn a_business_owner_token_claims_the_catalog_id_of_its_business() {
        let business_id = Uuid::new_v4();
        let seeded = SeededBusiness {
            business: &DEMO_BUSINESSES[1],
            id: business_id,
            offerings: 6,
            created: 0,
        };
        let tokens = demo_tokens("secret", std::slice::from_ref(&seeded));
        assert_eq!(tokens.len(), DEMO_USERS.len() + 1);
        for demo in &tokens {
            let claims = demo.user.claims(DEMO_TOKEN_TTL);
            assert_eq!(claims.sub, demo.user.id);
            assert_eq!(claims.role, demo.user.role);
            let expected = (demo.user.role == Role::Business).then_some(business_id);
            assert_eq!(claims.business_id, expected);
        }
        let owners: Vec<Uuid> = tokens
            .iter()
            .filter(|demo| demo.user.role == Role::Business)
            .map(|demo| demo.user.id)
            .collect();
        assert_eq!(owners, [DEMO_BUSINESSES[1].owner_id]);
    }

    #[test]
    fn awards_go_to_the_civilian_and_the_officer_and_the_charity_is_the_charity_user() {
        let civilian = DEMO_USERS[0];
        let officer = DEMO_USERS[2];
        assert_eq!(civilian.role, Role::Civilian);
        assert_eq!(officer.role, Role::Officer);
        let users: Vec<Uuid> = DEMO_AWARDS.iter().map(|a| a.user_id).collect();
        assert_eq!(users, [civilian.id, officer.id]);
        assert_eq!(DEMO_USERS[1].role, Role::Charity);
        assert_eq!(DEMO_CHARITY.charity_id, DEMO_USERS[1].id);
    }

    #[test]
    fn the_shop_has_a_dozen_offerings_of_every_kind_across_its_businesses() {
        assert_eq!(DEMO_OFFERINGS.len(), 12);
        for business in &DEMO_BUSINESSES {
            assert!(business.offerings().count() >= 3, "{}", business.name);
        }
        let sold_by_a_business = DEMO_OFFERINGS
            .iter()
            .all(|o| DEMO_BUSINESSES.iter().any(|b| b.name == o.business));
        assert!(sold_by_a_business);
        for kind in [Kind::Product, Kind::Voucher, Kind::Service] {
            assert!(DEMO_OFFERINGS.iter().any(|o| o.kind == kind), "{kind:?}");
        }
        assert!(DEMO_OFFERINGS
            .iter()
            .any(|o| o.stock.is_some_and(|stock| stock <= 3)));
    }

    #[test]
    fn demo_names_and_titles_are_unique_and_prices_within_catalogs_bounds() {
        let names: HashSet<&str> = DEMO_BUSINESSES.iter().map(|b| b.name).collect();
        assert_eq!(names.len(), DEMO_BUSINESSES.len());
        let titles: HashSet<(&str, &str)> = DEMO_OFFERINGS
            .iter()
            .map(|o| (o.business, o.title))
            .collect();
        assert_eq!(titles.len(), DEMO_OFFERINGS.len());
        for offering in DEMO_OFFERINGS {
            assert!((1..=100_000_000).contains(&offering.price_minor));
            assert!((1..=100_000_000).contains(&offering.points_price));
            assert!(offering.stock.is_none_or(|stock| stock >= 0));
            assert!(offering.title.chars().count() <= 200);
        }
    }

    #[test]
    fn a_kept_business_is_found_by_name_and_the_oldest_of_a_name_wins() {
        let roaster = &DEMO_BUSINESSES[0];
        assert_eq!(registered_id(roaster, &[]), None);
        let listed = [
            listed_business(3, roaster.name),
            listed_business(2, "Another shop"),
            listed_business(1, roaster.name),
        ];
        assert_eq!(registered_id(roaster, &listed), Some(Uuid::from_u128(1)));
        assert_eq!(registered_id(&DEMO_BUSINESSES[1], &listed), None);
    }

    #[test]
    fn only_offerings_missing_from_their_own_business_are_created() {
        let roaster = &DEMO_BUSINESSES[0];
        let roaster_id = Uuid::from_u128(1);
        let all: Vec<&str> = roaster.offerings().map(|o| o.title).collect();
        assert_eq!(
            missing_offerings(roaster, roaster_id, &[])
                .iter()
                .map(|o| o.title)
                .collect::<Vec<_>>(),
            all
        );

        let listed = [
            listed_offering(roaster_id, all[0]),
            // The same title at another business does not count.
            listed_offering(Uuid::from_u128(2), all[1]),
            listed_offering(roaster_id, "Something the business added itself"),
        ];
        let missing: Vec<&str> = missing_offerings(roaster, roaster_id, &listed)
            .iter()
            .map(|o| o.title)
            .collect();
        assert_eq!(missing, all[1..]);

        let everything: Vec<ListedOffering> = all
            .iter()
            .map(|title| listed_offering(roaster_id, title))
            .collect();
        assert!(missing_offerings(roaster, roaster_id, &everything).is_empty());
    }

    #[test]
    fn a_missing_endpoint_is_unsupported_and_other_refusals_say_why() {
        assert_eq!(refusal(StatusCode::NOT_FOUND, ""), Refusal::Unsupported);
        assert_eq!(
            refusal(StatusCode::METHOD_NOT_ALLOWED, ""),
            Refusal::Unsupported
        );
        let problem = r#"{"type":"about:blank","title":"Unprocessable","status":422,
            "detail":"price_minor must be 1 to 100000000","code":"validation_failed"}"#;
        assert_eq!(
            refusal(StatusCode::UNPROCESSABLE_ENTITY, problem),
            Refusal::Failed(
                "answered 422 Unprocessable Entity validation_failed: price_minor must be 1 to 100000000"
                    .to_owned()
            )
        );
        assert_eq!(
            refusal(StatusCode::INTERNAL_SERVER_ERROR, ""),
            Refusal::Failed("answered 500 Internal Server Error".to_owned())
        );
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, "upstream gone"),
            Refusal::Failed("answered 502 Bad Gateway: upstream gone".to_owned())
        );
    }

    #[test]
    fn notes_sort_refusals_into_warnings_and_failures() {
        let mut report = SeedReport::default();
        let unsupported: Result<(), CallError> = Err(CallError::Unsupported {
            call: "POST http://127.0.0.1:8081/v1/businesses".to_owned(),
            status: StatusCode::NOT_FOUND,
        });
        let failed: Result<(), CallError> = Err(CallError::Failed {
            call: "POST http://127.0.0.1:8084/v1/points/charities".to_owned(),
            reason: "answered 500 Internal Server Error".to_owned(),
        });
        assert_eq!(report.note("the shop", Ok(7)), Some(7));
        assert_eq!(report.note("the shop", unsupported), None);
        assert_eq!(report.note("the charity", failed), None);
        assert_eq!(
            report.warnings,
            ["the shop: POST http://127.0.0.1:8081/v1/businesses is not offered yet (404 Not Found)"]
        );
        assert_eq!(
            report.failures,
            ["the charity: POST http://127.0.0.1:8084/v1/points/charities failed: answered 500 Internal Server Error"]
        );
    }
}
