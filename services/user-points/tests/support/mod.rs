//! user-points started for a test: its own database and broker, a clock the
//! test moves, and what its users look at (balance, ledger, events).

#![allow(dead_code)] // each test binary uses its own share of these

use std::sync::Arc;
use std::time::Duration;

use http_service::auth::Role;
use job_queue::ManualClock;
use messaging::embedded::EmbeddedBroker;
use serde_json::{json, Value};
use service_host::HostConfig;
use shared_events::points::PointsEvent;
use test_harness::{Api, TestService, JWT_SECRET};
use uuid::Uuid;

pub struct Points {
    pub service: TestService,
    pub api: Api,
    pub broker: EmbeddedBroker,
    pub clock: Arc<ManualClock>,
}

pub async fn start() -> Points {
    let db = test_harness::fresh_database(&["points"]).await;
    let broker = test_harness::own_broker();
    let clock = Arc::new(ManualClock::starting_now());
    let mut config = HostConfig::for_test(db.url("points"), broker.bootstrap_servers(), JWT_SECRET);
    config.clock = clock.clone();
    let service =
        TestService::start_configured(&user_points::SPEC, user_points::build, config, ()).await;
    Points {
        api: service.api(),
        service,
        broker,
        clock,
    }
}

impl Points {
    pub fn bootstrap(&self) -> &str {
        self.broker.bootstrap_servers()
    }

    /// Credits `points` to `user` as an admin would.
    pub async fn award(&self, user: Uuid, points: i64) {
        self.api
            .post("/v1/points/awards")
            .as_user(Uuid::new_v4(), Role::Admin)
            .json(&json!({"award_id": Uuid::new_v4(), "user_id": user, "points": points, "reason": "welcome"}))
            .send()
            .await
            .expect_status(201);
    }

    /// `user`'s balance as checkout reads it; neither part is ever negative.
    pub async fn balance(&self, user: Uuid) -> Value {
        let balance = self
            .api
            .get(&format!("/v1/points/balances/{user}"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
            .expect_status(200)
            .body;
        assert!(balance["available"].as_i64() >= Some(0), "{balance}");
        assert!(balance["reserved"].as_i64() >= Some(0), "{balance}");
        balance
    }

    /// `(available, reserved, lifetime_spent)` of `user`.
    pub async fn points(&self, user: Uuid) -> (i64, i64, i64) {
        let b = self.balance(user).await;
        let field = |name: &str| b[name].as_i64().unwrap_or(i64::MIN);
        (
            field("available"),
            field("reserved"),
            field("lifetime_spent"),
        )
    }

    /// The kinds and points of `user`'s ledger, oldest first.
    pub async fn ledger(&self, user: Uuid, role: Role) -> Vec<(String, i64)> {
        let page = self
            .api
            .get("/v1/points/ledger?limit=200")
            .as_user(user, role)
            .send()
            .await
            .expect_status(200)
            .body;
        let mut entries: Vec<(String, i64)> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap_or_default().to_owned(),
                    e["points"].as_i64().unwrap_or_default(),
                )
            })
            .collect();
        entries.reverse();
        entries
    }

    /// The events published on `heyblue.points.v1` about `user`, in order.
    pub async fn events_of(&self, user: Uuid, at_least: usize) -> Vec<PointsEvent> {
        // The relay publishes right after each commit, but not within it:
        // wait for the events the test expects before reading them all.
        test_harness::eventually(
            Duration::from_secs(20),
            &format!("{at_least} events of user {user} are published"),
            || async { self.events_now(user).await.len() >= at_least },
        )
        .await;
        self.events_now(user).await
    }

    async fn events_now(&self, user: Uuid) -> Vec<PointsEvent> {
        test_harness::events::read_events::<PointsEvent>(self.bootstrap())
            .await
            .into_iter()
            .map(|envelope| envelope.event)
            .filter(|event| event.user_id() == user)
            .collect()
    }

    /// Waits until `user`'s `(available, reserved, lifetime_spent)` is `expected`.
    pub async fn wait_for(&self, user: Uuid, expected: (i64, i64, i64), what: &str) {
        test_harness::eventually(Duration::from_secs(20), what, || async {
            self.points(user).await == expected
        })
        .await;
    }
}
