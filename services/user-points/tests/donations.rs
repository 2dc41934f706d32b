//! Charities and officers' donations as admins, officers and charities see
//! them.

mod support;

use http_service::auth::Role;
use serde_json::{json, Value};
use shared_events::points::{PointsEvent, PointsSource};
use support::Points;
use test_harness::Answer;
use uuid::Uuid;

impl Points {
    async fn register(&self, charity_id: Uuid, name: &str) -> Answer {
        self.api
            .post("/v1/points/charities")
            .as_user(Uuid::new_v4(), Role::Admin)
            .json(&json!({"charity_id": charity_id, "name": name}))
            .send()
            .await
    }

    async fn donate(&self, officer: Uuid, body: &Value) -> Answer {
        self.api
            .post("/v1/points/donations")
            .as_user(officer, Role::Officer)
            .json(body)
            .send()
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charities_are_registered_once_by_admins_and_listed_for_anyone_signed_in() {
    let points = support::start().await;
    let api = &points.api;
    let (food_bank, shelter) = (Uuid::new_v4(), Uuid::new_v4());

    let first = points
        .register(food_bank, "Food Bank")
        .await
        .expect_status(201);
    assert_eq!(first.body["charity_id"], json!(food_bank));
    assert_eq!(first.body["name"], "Food Bank");
    let again = points
        .register(food_bank, "Food Bank")
        .await
        .expect_status(201);
    assert_eq!(first.body, again.body);
    points
        .register(food_bank, "Another Name")
        .await
        .expect_problem(409, "charity_already_registered");
    points
        .register(shelter, "Animal Shelter")
        .await
        .expect_status(201);

    let body = json!({"charity_id": Uuid::new_v4(), "name": "Nobody"});
    api.post("/v1/points/charities")
        .json(&body)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    for role in [Role::Service, Role::Officer, Role::Charity] {
        api.post("/v1/points/charities")
            .as_user(Uuid::new_v4(), role)
            .json(&body)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    api.post("/v1/points/charities")
        .as_user(Uuid::new_v4(), Role::Admin)
        .raw_json("{\"charity_id\"")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    for bad in [
        json!({"charity_id": Uuid::new_v4(), "name": "  "}),
        json!({"charity_id": Uuid::new_v4(), "name": "n".repeat(201)}),
        json!({"charity_id": "not-a-uuid", "name": "Nobody"}),
        json!({"name": "Nobody"}),
    ] {
        api.post("/v1/points/charities")
            .as_user(Uuid::new_v4(), Role::Admin)
            .json(&bad)
            .send()
            .await
            .expect_problem(422, "invalid_body");
    }

    api.get("/v1/points/charities")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    let page = api
        .get("/v1/points/charities?limit=1")
        .as_user(Uuid::new_v4(), Role::Officer)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        page["items"],
        json!([{"charity_id": shelter, "name": "Animal Shelter"}])
    );
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = api
        .get(&format!("/v1/points/charities?limit=1&cursor={cursor}"))
        .as_user(Uuid::new_v4(), Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(
        rest,
        json!({"items": [{"charity_id": food_bank, "name": "Food Bank"}], "next_cursor": null})
    );
    for query in ["limit=0", "cursor=nope"] {
        api.get(&format!("/v1/points/charities?{query}"))
            .as_user(Uuid::new_v4(), Role::Civilian)
            .send()
            .await
            .expect_problem(422, "invalid_pagination");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_donates_to_a_registered_charity_in_one_transfer_and_bad_donations_change_nothing(
) {
    let points = support::start().await;
    let (officer, charity) = (Uuid::new_v4(), Uuid::new_v4());
    points.award(officer, 100).await;
    points
        .register(charity, "Food Bank")
        .await
        .expect_status(201);

    let donation = points
        .donate(officer, &json!({"charity_id": charity, "points": 30}))
        .await
        .expect_status(201)
        .body;
    assert_eq!(donation["user_id"], json!(officer));
    assert_eq!(donation["charity_id"], json!(charity));
    assert_eq!(donation["points"], 30);
    let donation_id = donation["donation_id"].as_str().expect("id").to_owned();

    // Refusals, each leaving both balances as they are.
    let api = &points.api;
    let valid = json!({"charity_id": charity, "points": 5});
    api.post("/v1/points/donations")
        .json(&valid)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    for role in [Role::Civilian, Role::Charity, Role::Admin, Role::Service] {
        api.post("/v1/points/donations")
            .as_user(officer, role)
            .json(&valid)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    api.post("/v1/points/donations")
        .as_user(officer, Role::Officer)
        .raw_json("{\"points\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    for bad in [
        json!({"charity_id": charity, "points": 0}),
        json!({"charity_id": charity, "points": -1}),
        json!({"charity_id": charity, "points": 1e13}),
        json!({"charity_id": "food-bank", "points": 5}),
        json!({"charity_id": charity}),
    ] {
        points
            .donate(officer, &bad)
            .await
            .expect_problem(422, "invalid_body");
    }
    points
        .donate(officer, &json!({"charity_id": Uuid::new_v4(), "points": 5}))
        .await
        .expect_problem(422, "unknown_charity");
    points
        .donate(officer, &json!({"charity_id": charity, "points": 71}))
        .await
        .expect_problem(409, "insufficient_points");

    assert_eq!(
        points.balance(officer).await,
        json!({"user_id": officer, "available": 70, "reserved": 0, "lifetime_earned": 100, "lifetime_spent": 0})
    );
    assert_eq!(
        points.balance(charity).await,
        json!({"user_id": charity, "available": 30, "reserved": 0, "lifetime_earned": 30, "lifetime_spent": 0})
    );
    assert_eq!(
        points.ledger(officer, Role::Officer).await,
        [("awarded".to_owned(), 100), ("donated".to_owned(), 30)]
    );
    assert_eq!(
        points.ledger(charity, Role::Charity).await,
        [("received".to_owned(), 30)]
    );
    let officer_events = points.events_of(officer, 2).await;
    assert!(
        matches!(officer_events.as_slice(), [
            PointsEvent::PointsCredited(_),
            PointsEvent::PointsDonated(d),
        ] if d.charity_id == charity && d.points == 30),
        "{officer_events:?}"
    );
    let charity_events = points.events_of(charity, 1).await;
    assert!(
        matches!(charity_events.as_slice(), [PointsEvent::PointsCredited(c)]
            if c.source == PointsSource::Donation && c.points == 30 && c.reference == donation_id),
        "{charity_events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_donation_repeated_with_its_idempotency_key_is_made_once() {
    let points = support::start().await;
    let (officer, charity) = (Uuid::new_v4(), Uuid::new_v4());
    points.award(officer, 100).await;
    points
        .register(charity, "Food Bank")
        .await
        .expect_status(201);
    let donate = |body: Value| {
        points
            .api
            .post("/v1/points/donations")
            .as_user(officer, Role::Officer)
            .idempotency_key("donation-1")
            .json(&body)
            .send()
    };

    let first = donate(json!({"charity_id": charity, "points": 25}))
        .await
        .expect_status(201);
    let again = donate(json!({"charity_id": charity, "points": 25}))
        .await
        .expect_status(201);
    assert_eq!(first.body, again.body);
    donate(json!({"charity_id": charity, "points": 26}))
        .await
        .expect_problem(422, "idempotency_key_reused");
    assert_eq!(points.points(officer).await, (75, 0, 0));
    assert_eq!(points.points(charity).await, (25, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_donations_racing_for_one_balance_one_wins() {
    let points = support::start().await;
    let (officer, charity) = (Uuid::new_v4(), Uuid::new_v4());
    points.award(officer, 100).await;
    points
        .register(charity, "Food Bank")
        .await
        .expect_status(201);

    let body = json!({"charity_id": charity, "points": 60});
    let (one, other) = tokio::join!(points.donate(officer, &body), points.donate(officer, &body));
    let mut statuses = [one.status.as_u16(), other.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409]);
    let refused = if one.status == 409 { &one } else { &other };
    assert_eq!(refused.code(), "insufficient_points");

    assert_eq!(points.points(officer).await, (40, 0, 0));
    assert_eq!(points.points(charity).await, (60, 0, 0));
    assert_eq!(
        points.ledger(officer, Role::Officer).await,
        [("awarded".to_owned(), 100), ("donated".to_owned(), 60)]
    );
    assert_eq!(
        points.ledger(charity, Role::Charity).await,
        [("received".to_owned(), 60)]
    );
}
