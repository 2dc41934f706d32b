//! catalog's HTTP API as its users see it: admins register businesses,
//! businesses list and change their own offerings, anyone browses and
//! searches; every bad request gets a problem and changes nothing.

mod support;

use std::time::Duration;

use http_service::auth::{mint_hs256, Claims, Role};
use serde_json::{json, Value};
use test_harness::JWT_SECRET;
use uuid::Uuid;

/// A token of the business `business_id`.
fn business_token(business_id: Uuid) -> String {
    mint_hs256(
        JWT_SECRET,
        &Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(3600))
            .with_business_id(business_id),
    )
}

fn offering_body(business_id: Uuid, title: &str) -> Value {
    json!({
        "business_id": business_id,
        "title": title,
        "description": "Hand made in the city.",
        "kind": "product",
        "price_minor": 2_500,
        "currency": "USD",
        "points_price": 250,
        "stock": 7,
    })
}

use support::{start, Fixture};

impl Fixture {
    async fn business(&self, name: &str) -> Uuid {
        let answer = self
            .api
            .post("/v1/businesses")
            .as_user(self.admin, Role::Admin)
            .json(&json!({"name": name, "contact_email": "owner@example.com"}))
            .send()
            .await
            .expect_status(201);
        serde_json::from_value(answer.body["id"].clone()).expect("business id")
    }

    async fn offering(&self, business_id: Uuid, title: &str) -> Value {
        self.api
            .post("/v1/offerings")
            .bearer(&business_token(business_id))
            .json(&offering_body(business_id, title))
            .send()
            .await
            .expect_status(201)
            .body
    }

    /// Every offering, inactive ones included, as an admin sees them.
    async fn all_offerings(&self) -> Value {
        self.api
            .get("/v1/offerings?include_inactive=true&limit=200")
            .as_user(self.admin, Role::Admin)
            .send()
            .await
            .expect_status(200)
            .body["items"]
            .clone()
    }

    async fn titles(&self, path: &str) -> Vec<String> {
        let answer = self.api.get(path).send().await.expect_status(200);
        answer.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["title"].as_str().expect("title").to_owned())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_registers_businesses_that_anyone_can_read_page_by_page() {
    let fixture = start().await;
    let answer = fixture
        .api
        .post("/v1/businesses")
        .as_user(fixture.admin, Role::Admin)
        .json(&json!({"name": " Blue Bakery ", "contact_email": "bake@example.com"}))
        .send()
        .await
        .expect_status(201);
    let bakery = answer.body.clone();
    assert_eq!(bakery["name"], "Blue Bakery");
    assert_eq!(bakery["contact_email"], "bake@example.com");
    assert!(bakery["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    fixture.business("Florist").await;
    fixture.business("Cobbler").await;

    let id = bakery["id"].as_str().expect("id");
    let read = fixture
        .api
        .get(&format!("/v1/businesses/{id}"))
        .send()
        .await
        .expect_status(200);
    assert_eq!(read.body, bakery);

    let first = fixture
        .api
        .get("/v1/businesses?limit=2")
        .send()
        .await
        .expect_status(200);
    let cursor = first.body["next_cursor"].as_str().expect("a next page");
    let second = fixture
        .api
        .get(&format!("/v1/businesses?limit=2&cursor={cursor}"))
        .send()
        .await
        .expect_status(200);
    let names: Vec<&str> = first.body["items"]
        .as_array()
        .into_iter()
        .chain(second.body["items"].as_array())
        .flatten()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["Cobbler", "Florist", "Blue Bakery"]);
    assert_eq!(second.body["next_cursor"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_business_requests_get_a_problem_and_register_nothing() {
    let fixture = start().await;
    let valid = json!({"name": "Bakery", "contact_email": "bake@example.com"});

    fixture
        .api
        .post("/v1/businesses")
        .json(&valid)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    for role in [Role::Business, Role::Civilian, Role::Service] {
        fixture
            .api
            .post("/v1/businesses")
            .as_user(Uuid::new_v4(), role)
            .json(&valid)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    fixture
        .api
        .post("/v1/businesses")
        .as_user(fixture.admin, Role::Admin)
        .raw_json("{\"name\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    for body in [
        json!({"name": "", "contact_email": "bake@example.com"}),
        json!({"name": "x".repeat(201), "contact_email": "bake@example.com"}),
        json!({"name": "Bakery", "contact_email": "not an email"}),
        json!({"name": 5, "contact_email": "bake@example.com"}),
        json!({"contact_email": "bake@example.com"}),
    ] {
        fixture
            .api
            .post("/v1/businesses")
            .as_user(fixture.admin, Role::Admin)
            .json(&body)
            .send()
            .await
            .expect_problem(422, "invalid_body");
    }
    fixture
        .api
        .get(&format!("/v1/businesses/{}", Uuid::new_v4()))
        .send()
        .await
        .expect_problem(404, "not_found");
    fixture
        .api
        .get("/v1/businesses/not-a-uuid")
        .send()
        .await
        .expect_problem(404, "not_found");
    for query in ["limit=0", "limit=201", "limit=ten", "cursor=bogus"] {
        fixture
            .api
            .get(&format!("/v1/businesses?{query}"))
            .send()
            .await
            .expect_problem(422, "invalid_pagination");
    }

    let listed = fixture
        .api
        .get("/v1/businesses")
        .send()
        .await
        .expect_status(200);
    assert_eq!(listed.body, json!({"items": [], "next_cursor": null}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_lists_and_changes_its_own_offerings() {
    let fixture = start().await;
    let bakery = fixture.business("Bakery").await;
    let created = fixture.offering(bakery, "Rye loaf").await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["business_id"], json!(bakery));
    assert_eq!(created["kind"], "product");
    assert_eq!(created["price_minor"], 2_500);
    assert_eq!(created["currency"], "USD");
    assert_eq!(created["points_price"], 250);
    assert_eq!(created["stock"], 7);
    assert_eq!(created["active"], true);
    let read = fixture
        .api
        .get(&format!("/v1/offerings/{id}"))
        .send()
        .await
        .expect_status(200);
    assert_eq!(read.body, created);

    let patched = fixture
        .api
        .patch(&format!("/v1/offerings/{id}"))
        .bearer(&business_token(bakery))
        .json(&json!({"title": "Dark rye loaf", "price_minor": 2_700, "stock": null}))
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(patched["title"], "Dark rye loaf");
    assert_eq!(patched["price_minor"], 2_700);
    assert_eq!(patched["stock"], Value::Null, "null stock is unlimited");
    assert_eq!(patched["points_price"], 250, "fields left out stay");
    assert_eq!(patched["created_at"], created["created_at"]);

    let deactivated = fixture
        .api
        .patch(&format!("/v1/offerings/{id}"))
        .as_user(fixture.admin, Role::Admin)
        .json(&json!({"active": false, "stock": 3}))
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(deactivated["active"], false);
    assert_eq!(deactivated["stock"], 3);
    assert_eq!(deactivated["title"], "Dark rye loaf");

    // Inactive offerings leave the public list; the business itself still
    // sees them.
    assert!(fixture.titles("/v1/offerings").await.is_empty());
    let own = fixture
        .api
        .get(&format!(
            "/v1/offerings?business_id={bakery}&include_inactive=true"
        ))
        .bearer(&business_token(bakery))
        .send()
        .await
        .expect_status(200);
    assert_eq!(own.body["items"][0]["title"], "Dark rye loaf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offering_requests_get_a_problem_and_change_nothing() {
    let fixture = start().await;
    let bakery = fixture.business("Bakery").await;
    let florist = fixture.business("Florist").await;
    let loaf = fixture.offering(bakery, "Rye loaf").await;
    let loaf_path = format!("/v1/offerings/{}", loaf["id"].as_str().expect("id"));
    let before = fixture.all_offerings().await;

    // Who may create.
    fixture
        .api
        .post("/v1/offerings")
        .json(&offering_body(bakery, "Bun"))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    fixture
        .api
        .post("/v1/offerings")
        .as_user(Uuid::new_v4(), Role::Civilian)
        .json(&offering_body(bakery, "Bun"))
        .send()
        .await
        .expect_problem(403, "forbidden");
    fixture
        .api
        .post("/v1/offerings")
        .bearer(&business_token(florist))
        .json(&offering_body(bakery, "Bun"))
        .send()
        .await
        .expect_problem(403, "forbidden");

    // What may be created.
    fixture
        .api
        .post("/v1/offerings")
        .bearer(&business_token(bakery))
        .raw_json("{\"title\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    for (field, value) in [
        ("title", json!("  ")),
        ("title", json!(12)),
        ("kind", json!("gift")),
        ("price_minor", json!(0)),
        ("price_minor", json!(100_000_001)),
        ("price_minor", json!("ten")),
        ("price_minor", json!(1e30)),
        ("points_price", json!(0)),
        ("points_price", json!(100_000_001)),
        ("stock", json!(-1)),
        ("currency", json!("EUR")),
        ("currency", json!("dollars")),
        ("business_id", json!("not-a-uuid")),
    ] {
        let mut body = offering_body(bakery, "Bun");
        body[field] = value.clone();
        let answer = fixture
            .api
            .post("/v1/offerings")
            .bearer(&business_token(bakery))
            .json(&body)
            .send()
            .await;
        assert_eq!(answer.status, 422, "{field} = {value}: {}", answer.text);
        assert_eq!(answer.code(), "invalid_body", "{field} = {value}");
    }
    let unregistered = Uuid::new_v4();
    fixture
        .api
        .post("/v1/offerings")
        .as_user(fixture.admin, Role::Admin)
        .json(&offering_body(unregistered, "Bun"))
        .send()
        .await
        .expect_problem(422, "unknown_business");

    // Who may change, and what.
    fixture
        .api
        .patch(&loaf_path)
        .bearer(&business_token(florist))
        .json(&json!({"price_minor": 1}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    fixture
        .api
        .patch(&loaf_path)
        .as_user(Uuid::new_v4(), Role::Civilian)
        .json(&json!({"price_minor": 1}))
        .send()
        .await
        .expect_problem(403, "forbidden");
    for body in [
        json!({"price_minor": 0}),
        json!({"stock": -5}),
        json!({"title": ""}),
        json!({"currency": "EUR"}),
        json!({"kind": "voucher"}),
        json!({"active": "yes"}),
    ] {
        fixture
            .api
            .patch(&loaf_path)
            .bearer(&business_token(bakery))
            .json(&body)
            .send()
            .await
            .expect_problem(422, "invalid_body");
    }
    fixture
        .api
        .patch(&loaf_path)
        .bearer(&business_token(bakery))
        .raw_json("{")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    for path in [
        format!("/v1/offerings/{}", Uuid::new_v4()),
        "/v1/offerings/not-a-uuid".to_owned(),
    ] {
        fixture
            .api
            .patch(&path)
            .as_user(fixture.admin, Role::Admin)
            .json(&json!({"price_minor": 1}))
            .send()
            .await
            .expect_problem(404, "not_found");
        fixture
            .api
            .get(&path)
            .send()
            .await
            .expect_problem(404, "not_found");
    }

    assert_eq!(fixture.all_offerings().await, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_searches_offerings_ranked_by_relevance() {
    let fixture = start().await;
    let outfitter = fixture.business("Outfitter").await;
    let bakery = fixture.business("Bakery").await;
    fixture.offering(outfitter, "Camping stove").await;
    fixture.offering(outfitter, "Storm lantern").await;
    fixture.offering(bakery, "Lantern cookies").await;
    fixture.offering(bakery, "Rye loaf").await;

    assert_eq!(
        fixture.titles("/v1/offerings?q=lantern").await.len(),
        2,
        "title words are found"
    );
    assert_eq!(
        fixture
            .titles(&format!("/v1/offerings?q=lantern&business_id={bakery}"))
            .await,
        ["Lantern cookies"]
    );
    assert_eq!(
        fixture.titles("/v1/offerings").await,
        [
            "Rye loaf",
            "Lantern cookies",
            "Storm lantern",
            "Camping stove"
        ],
        "newest first"
    );

    // Page through a search one item at a time.
    let mut titles = Vec::new();
    let mut path = "/v1/offerings?q=lantern%20OR%20stove&limit=1".to_owned();
    loop {
        let page = fixture.api.get(&path).send().await.expect_status(200);
        titles.extend(
            page.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["title"].as_str().map(str::to_owned)),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/offerings?q=lantern%20OR%20stove&limit=1&cursor={cursor}")
            }
            None => break,
        }
    }
    titles.sort();
    assert_eq!(
        titles,
        ["Camping stove", "Lantern cookies", "Storm lantern"]
    );

    let plain = fixture
        .api
        .get("/v1/offerings?limit=1")
        .send()
        .await
        .expect_status(200);
    let plain_cursor = plain.body["next_cursor"].as_str().expect("more pages");
    fixture
        .api
        .get(&format!("/v1/offerings?q=lantern&cursor={plain_cursor}"))
        .send()
        .await
        .expect_problem(422, "invalid_pagination");
    fixture
        .api
        .get(&format!("/v1/offerings?q={}", "a".repeat(201)))
        .send()
        .await
        .expect_problem(422, "invalid_search");
    fixture
        .api
        .get("/v1/offerings?business_id=not-a-uuid")
        .send()
        .await
        .expect_problem(400, "invalid_query");
    fixture
        .api
        .get("/v1/offerings?include_inactive=maybe")
        .send()
        .await
        .expect_problem(400, "invalid_query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_offerings_are_listed_only_for_their_business_or_an_admin() {
    let fixture = start().await;
    let bakery = fixture.business("Bakery").await;
    let florist = fixture.business("Florist").await;
    fixture.offering(bakery, "Rye loaf").await;
    let path = format!("/v1/offerings?business_id={bakery}&include_inactive=true");

    fixture
        .api
        .get(&path)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    fixture
        .api
        .get(&path)
        .bearer(&business_token(florist))
        .send()
        .await
        .expect_problem(403, "forbidden");
    fixture
        .api
        .get(&path)
        .as_user(Uuid::new_v4(), Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    fixture
        .api
        .get("/v1/offerings?include_inactive=true")
        .bearer(&business_token(bakery))
        .send()
        .await
        .expect_problem(403, "forbidden");
    fixture
        .api
        .get(&path)
        .bearer(&business_token(bakery))
        .send()
        .await
        .expect_status(200);
    fixture
        .api
        .get(&path)
        .as_user(fixture.admin, Role::Admin)
        .send()
        .await
        .expect_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_sent_twice_with_one_idempotency_key_creates_once() {
    let fixture = start().await;
    let create = || {
        fixture
            .api
            .post("/v1/businesses")
            .as_user(fixture.admin, Role::Admin)
            .idempotency_key("register-roastery")
            .json(&json!({"name": "Roastery", "contact_email": "roast@example.com"}))
    };
    let first = create().send().await.expect_status(201);
    let again = create().send().await.expect_status(201);
    assert_eq!(again.body, first.body, "the first answer, replayed");
    let listed = fixture
        .api
        .get("/v1/businesses")
        .send()
        .await
        .expect_status(200);
    let named: Vec<_> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|business| business["name"] == "Roastery")
        .collect();
    assert_eq!(named.len(), 1, "one business, not two");
    let other = fixture
        .api
        .post("/v1/businesses")
        .as_user(fixture.admin, Role::Admin)
        .idempotency_key("register-roastery")
        .json(&json!({"name": "Bakery", "contact_email": "bake@example.com"}))
        .send()
        .await;
    other.expect_problem(422, "idempotency_key_reused");
}
