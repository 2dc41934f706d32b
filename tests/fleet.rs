//! The fleet as a user and an operator meet it: started by the launcher that
//! `scripts/run` starts, every service a process of its own, the embedded
//! broker reachable from outside, and the first slice end to end.

use std::time::{Duration, Instant};

use http_service::auth::{mint_hs256, Claims, Role};
use messaging::inspect::{publish_raw, read_topic};
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::Value;
use shared_events::connection::{ConnectionEvent, PointsAwarded};
use shared_events::{Envelope, EventFamily, Topic};
use uuid::Uuid;

use fixture::{signal, Fleet};

mod fixture;

/// What only the award journey needs of the fleet.
impl Fleet {
    fn bootstrap(&self) -> &str {
        &self.banner["KAFKA_BOOTSTRAP"]
    }

    fn signed_token(&self, user: Uuid, role: Role) -> String {
        mint_hs256(
            &self.banner["HEYBLUE_JWT_SECRET"],
            &Claims::new(user, role, Duration::from_secs(600)),
        )
    }

    async fn balance(&self, user: Uuid) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/points/balance", self.urls["user-points"]))
            .bearer_auth(self.signed_token(user, Role::Civilian))
            .send()
            .await
            .expect("balance request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("balance body")
    }

    async fn publish_award(&self, award_id: Uuid, user: Uuid, points: i64) {
        let event = Envelope::new(
            ConnectionEvent::PointsAwarded(PointsAwarded {
                award_id,
                user_id: user,
                points,
                reason: "helped at the community day".to_owned(),
                connection_id: Uuid::new_v4(),
            }),
            Uuid::new_v4(),
        );
        publish_raw(
            self.bootstrap(),
            ConnectionEvent::TOPIC.name(),
            &event.partition_key(),
            &event.to_json().expect("serialize event"),
            &[("event_type", "points_awarded")],
        )
        .await
        .expect("publish points_awarded");
    }

    async fn wait_for_available(&self, user: Uuid, points: i64) -> Duration {
        let started = Instant::now();
        while self.balance(user).await["available"] != points {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the balance never reached {points}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_award_published_to_the_fleets_broker_reaches_the_balance_once_even_across_a_crash() {
    let fleet = Fleet::start().await;
    assert_eq!(
        fleet.urls.len(),
        fleet::ALL.len(),
        "every service's URL is printed: {:?}",
        fleet.urls
    );
    for (name, url) in &fleet.urls {
        let ready = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("readyz request");
        assert_eq!(ready.status(), StatusCode::OK, "{name} is ready");
    }

    let user = Uuid::new_v4();
    let award = Uuid::new_v4();
    fleet.publish_award(award, user, 75).await;
    let took = fleet.wait_for_available(user, 75).await;
    println!(
        "award published -> visible in the balance: {} ms",
        took.as_millis()
    );

    // The same award again, then a second award for the same user as a
    // marker: one key, one partition, so once the marker is credited the
    // duplicate has been handled too.
    fleet.publish_award(award, user, 75).await;
    fleet.publish_award(Uuid::new_v4(), user, 5).await;
    fleet.wait_for_available(user, 80).await;
    let balance = fleet.balance(user).await;
    assert_eq!(
        balance["lifetime_earned"], 80,
        "the repeated award was not credited again"
    );

    let credited: Vec<Value> = read_topic(
        fleet.bootstrap(),
        Topic::Points.name(),
        Duration::from_secs(2),
    )
    .await
    .expect("read heyblue.points.v1")
    .iter()
    .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
    .filter(|event| {
        event["event_type"] == "points_credited" && event["user_id"] == user.to_string()
    })
    .collect();
    assert_eq!(
        credited.len(),
        2,
        "one points_credited per award: {credited:?}"
    );
    assert_eq!(credited[0]["reference"], award.to_string());
    assert_eq!(credited[0]["points"], 75);
    assert_eq!(credited[0]["producer"], "user-points");

    // A service that crashes is restarted by the launcher and picks up
    // where it left off: an award published while it is down still arrives.
    let crashed = fleet.pid("user-points");
    signal(crashed, Signal::SIGKILL);
    fleet.publish_award(Uuid::new_v4(), user, 20).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while fleet.pid("user-points") == crashed {
        assert!(Instant::now() < deadline, "user-points was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet
        .wait_until_ready("user-points", Duration::from_secs(60))
        .await;
    fleet.wait_for_available(user, 100).await;
    assert_eq!(fleet.balance(user).await["lifetime_earned"], 100);

    let urls = fleet.urls.clone();
    let status = fleet.stop().await;
    assert!(status.success(), "the launcher stops cleanly: {status}");
    for (name, url) in urls {
        assert!(
            reqwest::get(format!("{url}/healthz")).await.is_err(),
            "{name} is still answering after the stop"
        );
    }
}
