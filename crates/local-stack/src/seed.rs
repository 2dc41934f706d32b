//! Demo data for a freshly started fleet: fixed users (one per role) with
//! long-lived tokens, and points for the civilian and the officer.
//!
//! Every id here is fixed, so the banner shows the same users on every run
//! and reseeding a kept database changes nothing: awards carry fixed
//! `award_id`s that user-points deduplicates on.
//!
//! Seeding goes through the services' public APIs, as a frontend or an admin
//! would, never into their tables. A service that does not offer an endpoint
//! yet gets a warning, not a failed start. Catalog businesses and offerings
//! belong here too, once catalog's API takes them.

use std::time::Duration;

use anyhow::Context;
use http_service::{mint_hs256, Claims, Role};
use reqwest::StatusCode;
use serde::Serialize;
use uuid::Uuid;

/// How long the printed demo tokens stay valid.
pub const DEMO_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The business the demo business user acts for.
pub const DEMO_BUSINESS_ID: Uuid = Uuid::from_u128(0xb0000000_0000_4000_8000_000000000001);

/// One demo user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoUser {
    pub role: Role,
    pub id: Uuid,
    pub email: &'static str,
    pub business_id: Option<Uuid>,
}

/// The demo users, one per human role.
pub const DEMO_USERS: [DemoUser; 5] = [
    DemoUser {
        role: Role::Civilian,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000001),
        email: "civilian@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Charity,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000002),
        email: "charity@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Officer,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000003),
        email: "officer@demo.heyblue.local",
        business_id: None,
    },
    DemoUser {
        role: Role::Business,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000004),
        email: "business@demo.heyblue.local",
        business_id: Some(DEMO_BUSINESS_ID),
    },
    DemoUser {
        role: Role::Admin,
        id: Uuid::from_u128(0x00000000_0000_4000_8000_000000000005),
        email: "admin@demo.heyblue.local",
        business_id: None,
    },
];

/// A points award the demo starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DemoAward {
    pub award_id: Uuid,
    pub user_id: Uuid,
    pub points: i64,
    pub reason: &'static str,
}

/// Points for the civilian (to redeem) and the officer (to donate).
pub const DEMO_AWARDS: [DemoAward; 2] = [
    DemoAward {
        award_id: Uuid::from_u128(0xa0000000_0000_4000_8000_000000000001),
        user_id: DEMO_USERS[0].id,
        points: 5_000,
        reason: "demo: welcome points for the civilian",
    },
    DemoAward {
        award_id: Uuid::from_u128(0xa0000000_0000_4000_8000_000000000002),
        user_id: DEMO_USERS[2].id,
        points: 2_000,
        reason: "demo: connection points for the officer",
    },
];

/// A demo user and a token for it.
#[derive(Debug, Clone)]
pub struct DemoToken {
    pub user: DemoUser,
    pub token: String,
}

impl DemoUser {
    /// The claims of this user's token, valid for `ttl`.
    pub fn claims(&self, ttl: Duration) -> Claims {
        let claims = Claims::new(self.id, self.role, ttl).with_email(self.email);
        match self.business_id {
            Some(business_id) => claims.with_business_id(business_id),
            None => claims,
        }
    }
}

/// A long-lived token for every demo user.
pub fn demo_tokens(secret: &str) -> Vec<DemoToken> {
    DEMO_USERS
        .iter()
        .map(|user| DemoToken {
            user: *user,
            token: mint_hs256(secret, &user.claims(DEMO_TOKEN_TTL)),
        })
        .collect()
}

/// Where the services to seed listen.
#[derive(Debug, Clone)]
pub struct Targets {
    pub user_points: String,
}

/// Seeds what the services accept so far. Returns warnings for what could
/// not be seeded; only an unusable HTTP client is an error.
pub async fn seed(targets: &Targets, secret: &str) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .context("failed to build the seeding HTTP client")?;
    let admin = DEMO_USERS
        .iter()
        .find(|user| user.role == Role::Admin)
        .context("the demo users include no admin")?;
    let admin_token = mint_hs256(secret, &admin.claims(Duration::from_secs(600)));

    let mut warnings = Vec::new();
    for award in DEMO_AWARDS {
        if let Some(warning) =
            award_points(&client, &targets.user_points, &admin_token, &award).await
        {
            warnings.push(warning);
        }
    }
    Ok(warnings)
}

/// `POST /v1/points/awards`; `None` when the award is in place.
async fn award_points(
    client: &reqwest::Client,
    base_url: &str,
    admin_token: &str,
    award: &DemoAward,
) -> Option<String> {
    let url = format!("{base_url}/v1/points/awards");
    let response = client
        .post(&url)
        .bearer_auth(admin_token)
        .json(award)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            return Some(format!(
                "could not award demo points to {}: POST {url} failed: {error}",
                award.user_id
            ))
        }
    };
    award_outcome(response.status(), award.user_id)
}

/// Whether an answer to an award means it is in place. A conflict is an
/// award made by an earlier run.
fn award_outcome(status: StatusCode, user_id: Uuid) -> Option<String> {
    if status.is_success() || status == StatusCode::CONFLICT {
        None
    } else if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
        Some(format!(
            "user-points does not take awards yet ({status}); {user_id} starts without demo points"
        ))
    } else {
        Some(format!(
            "user-points answered {status} to the demo award for {user_id}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_but_service_has_one_demo_user_with_a_distinct_id() {
        let mut roles: Vec<&str> = DEMO_USERS.iter().map(|u| u.role.as_str()).collect();
        roles.sort_unstable();
        assert_eq!(
            roles,
            ["admin", "business", "charity", "civilian", "officer"]
        );
        let mut ids: Vec<Uuid> = DEMO_USERS.iter().map(|u| u.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), DEMO_USERS.len());
    }

    #[test]
    fn only_the_business_user_acts_for_a_business() {
        for user in DEMO_USERS {
            let claims = user.claims(DEMO_TOKEN_TTL);
            assert_eq!(claims.sub, user.id);
            assert_eq!(claims.role, user.role);
            let expected = (user.role == Role::Business).then_some(DEMO_BUSINESS_ID);
            assert_eq!(claims.business_id, expected);
        }
    }

    #[test]
    fn awards_go_to_the_civilian_and_the_officer() {
        let civilian = DEMO_USERS[0];
        let officer = DEMO_USERS[2];
        assert_eq!(civilian.role, Role::Civilian);
        assert_eq!(officer.role, Role::Officer);
        let users: Vec<Uuid> = DEMO_AWARDS.iter().map(|a| a.user_id).collect();
        assert_eq!(users, [civilian.id, officer.id]);
    }

    #[test]
    fn a_missing_awards_endpoint_is_a_warning_and_a_repeat_is_fine() {
        let user = DEMO_USERS[0].id;
        assert_eq!(award_outcome(StatusCode::CREATED, user), None);
        assert_eq!(award_outcome(StatusCode::OK, user), None);
        assert_eq!(award_outcome(StatusCode::CONFLICT, user), None);
        assert!(award_outcome(StatusCode::NOT_FOUND, user).is_some());
        assert!(award_outcome(StatusCode::INTERNAL_SERVER_ERROR, user).is_some());
    }
}
