//! Reading orders: each customer their own, an admin everyone's, filtered by
//! status and paged; and the refusals (401, 403, 404 for another's order,
//! 422 for a bad filter or page), which change nothing.

mod support;

use http_service::auth::Role;
use support::{Shop, Submission};
use uuid::Uuid;

async fn placed(shop: &Shop, customer: Uuid) -> Submission {
    let mut order = Submission::priced(&[(Uuid::new_v4(), 1500, 500, 1)], 0);
    order.0.customer_id = customer;
    shop.publish(order.submitted(), order.id()).await;
    shop.wait_for_status(&order, "pending").await;
    order
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_list_their_own_orders_newest_first_and_admins_list_all_by_status() {
    let shop = support::start().await;
    let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let first = placed(&shop, ada).await;
    let second = placed(&shop, ada).await;
    let bobs = placed(&shop, bob).await;
    shop.publish(bobs.stock_rejected(), bobs.id()).await;
    shop.wait_for_status(&bobs, "cancelled").await;

    let own = shop
        .api
        .get("/v1/orders")
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&own), [second.id().to_string(), first.id().to_string()]);
    assert_eq!(own["next_cursor"], serde_json::Value::Null);
    assert_eq!(own["items"][0]["history"][0]["status"], "pending");

    let one = shop
        .api
        .get("/v1/orders?limit=1")
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&one), [second.id().to_string()]);
    let cursor = one["next_cursor"].as_str().expect("a next page");
    let rest = shop
        .api
        .get(&format!("/v1/orders?limit=1&cursor={cursor}"))
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&rest), [first.id().to_string()]);

    let all = shop
        .api
        .get("/v1/orders")
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&all).len(), 3);
    let cancelled = shop
        .api
        .get("/v1/orders?status=cancelled")
        .as_user(Uuid::new_v4(), Role::Admin)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&cancelled), [bobs.id().to_string()]);
    let bobs_pending = shop
        .api
        .get("/v1/orders?status=pending")
        .as_user(bob, Role::Civilian)
        .send()
        .await
        .expect_status(200)
        .body;
    assert_eq!(ids(&bobs_pending), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_refuse_strangers_other_roles_and_bad_filters_and_change_nothing() {
    let shop = support::start().await;
    let ada = Uuid::new_v4();
    let order = placed(&shop, ada).await;
    let before = shop.get(&order).await;
    let api = &shop.api;
    let path = format!("/v1/orders/{}", order.id());
    let cancel = format!("/v1/orders/{}/cancel", order.id());

    api.get("/v1/orders")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    api.get(&path)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    api.post(&cancel)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    api.get(&path)
        .bearer("not-a-token")
        .send()
        .await
        .expect_problem(401, "unauthorized");

    for role in [Role::Business, Role::Officer] {
        api.get("/v1/orders")
            .as_user(ada, role)
            .send()
            .await
            .expect_problem(403, "forbidden");
        api.post(&cancel)
            .as_user(ada, role)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }

    // Another customer's order does not exist for them.
    let stranger = Uuid::new_v4();
    api.get(&path)
        .as_user(stranger, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
    api.post(&cancel)
        .as_user(stranger, Role::Charity)
        .send()
        .await
        .expect_problem(404, "not_found");
    api.get(&format!("/v1/orders/{}", Uuid::new_v4()))
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");
    api.get("/v1/orders/not-a-uuid")
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_problem(404, "not_found");

    for query in ["status=shipping", "status=", "status=CANCELLED"] {
        api.get(&format!("/v1/orders?{query}"))
            .as_user(ada, Role::Civilian)
            .send()
            .await
            .expect_problem(422, "invalid_status");
    }
    for query in ["limit=0", "limit=201", "limit=ten", "cursor=garbage"] {
        api.get(&format!("/v1/orders?{query}"))
            .as_user(ada, Role::Civilian)
            .send()
            .await
            .expect_problem(422, "invalid_pagination");
    }

    // An admin and a service read any order; the refusals changed nothing.
    for role in [Role::Admin, Role::Service] {
        let seen = api
            .get(&path)
            .as_user(Uuid::new_v4(), role)
            .send()
            .await
            .expect_status(200)
            .body;
        assert_eq!(seen, before);
    }
}
