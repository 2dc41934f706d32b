//! The cart as its users see it, with a real catalog beside it: one cart per
//! user, the same from every device, items in the order first added, and
//! every bad request refused without changing anything.

use std::time::Duration;

use cart::Settings;
use catalog::CatalogSettings;
use http_service::auth::{mint_hs256, Claims, Role};
use messaging::embedded::EmbeddedBroker;
use serde_json::{json, Value};
use test_harness::{Api, TestService, JWT_SECRET};
use uuid::Uuid;

struct Shop {
    _broker: EmbeddedBroker,
    catalog_service: Option<TestService>,
    _cart_service: TestService,
    cart: Api,
    catalog: Api,
    business_id: Uuid,
}

async fn shop() -> Shop {
    let db = test_harness::fresh_database(&["catalog", "cart"]).await;
    let broker = test_harness::own_broker();
    let bootstrap = broker.bootstrap_servers().to_owned();
    let catalog_service = TestService::start_with(
        &catalog::SPEC,
        catalog::build,
        &db,
        &bootstrap,
        CatalogSettings::default(),
    )
    .await;
    let settings = Settings {
        catalog_url: catalog_service.base_url.parse().expect("catalog URL"),
    };
    let cart_service =
        TestService::start_with(&cart::SPEC, cart::build, &db, &bootstrap, settings).await;
    let catalog = catalog_service.api();
    let business = catalog
        .post("/v1/businesses")
        .as_user(Uuid::new_v4(), Role::Admin)
        .json(&json!({"name": "Corner Shop", "contact_email": "corner@example.com"}))
        .send()
        .await
        .expect_status(201);
    Shop {
        _broker: broker,
        cart: cart_service.api(),
        catalog_service: Some(catalog_service),
        _cart_service: cart_service,
        catalog,
        business_id: serde_json::from_value(business.body["id"].clone()).expect("business id"),
    }
}

impl Shop {
    /// An offering of the shop's business, on sale unless `active` is false.
    async fn offering(&self, title: &str, active: bool) -> Uuid {
        let token = mint_hs256(
            JWT_SECRET,
            &Claims::new(Uuid::new_v4(), Role::Business, Duration::from_secs(600))
                .with_business_id(self.business_id),
        );
        let created = self
            .catalog
            .post("/v1/offerings")
            .bearer(&token)
            .json(&json!({
                "business_id": self.business_id,
                "title": title,
                "description": "From the corner shop.",
                "kind": "product",
                "price_minor": 1_200,
                "currency": "USD",
                "points_price": 120,
                "stock": 10,
                "active": active,
            }))
            .send()
            .await
            .expect_status(201);
        serde_json::from_value(created.body["id"].clone()).expect("offering id")
    }

    async fn cart_of(&self, user: Uuid, role: Role) -> Value {
        self.cart
            .get("/v1/cart")
            .as_user(user, role)
            .send()
            .await
            .expect_status(200)
            .body
    }

    async fn put(&self, user: Uuid, offering: Uuid, quantity: Value) -> test_harness::Answer {
        self.cart
            .put(&format!("/v1/cart/items/{offering}"))
            .as_user(user, Role::Civilian)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
    }
}

fn items(cart: &Value) -> Vec<(String, u64)> {
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["offering_id"].as_str().expect("id").to_owned(),
                item["quantity"].as_u64().expect("quantity"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_keeps_items_in_the_order_first_added_and_is_the_same_everywhere() {
    let shop = shop().await;
    let (mug, tea) = (
        shop.offering("Mug", true).await,
        shop.offering("Tea", true).await,
    );
    let ada = Uuid::new_v4();
    let empty = shop.cart_of(ada, Role::Civilian).await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["updated_at"], Value::Null);

    shop.put(ada, mug, json!(2)).await.expect_status(200);
    let after_tea = shop.put(ada, tea, json!(1)).await.expect_status(200);
    assert_eq!(
        items(&after_tea.body),
        vec![(mug.to_string(), 2), (tea.to_string(), 1)]
    );
    // Changing the mug's quantity keeps its place at the front.
    shop.put(ada, mug, json!(5)).await.expect_status(200);
    // Another device of the same user sees the same cart; checkout does too.
    let seen = shop.cart_of(ada, Role::Civilian).await;
    assert_eq!(
        items(&seen),
        vec![(mug.to_string(), 5), (tea.to_string(), 1)]
    );
    let for_checkout = shop
        .cart
        .get(&format!("/v1/carts/{ada}"))
        .as_user(Uuid::new_v4(), Role::Service)
        .send()
        .await
        .expect_status(200);
    assert_eq!(for_checkout.body, seen);

    let without_mug = shop
        .cart
        .delete(&format!("/v1/cart/items/{mug}"))
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(200);
    assert_eq!(items(&without_mug.body), vec![(tea.to_string(), 1)]);
    shop.cart
        .delete("/v1/cart")
        .as_user(ada, Role::Civilian)
        .send()
        .await
        .expect_status(204);
    assert_eq!(shop.cart_of(ada, Role::Civilian).await["items"], json!([]));

    // A charity shops too.
    let charity = Uuid::new_v4();
    shop.cart
        .put(&format!("/v1/cart/items/{tea}"))
        .as_user(charity, Role::Charity)
        .json(&json!({"quantity": 99}))
        .send()
        .await
        .expect_status(200);
    assert_eq!(
        items(&shop.cart_of(charity, Role::Charity).await),
        vec![(tea.to_string(), 99)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_a_problem_and_change_nothing() {
    let shop = shop().await;
    let (mug, retired) = (
        shop.offering("Mug", true).await,
        shop.offering("Retired mug", false).await,
    );
    let ada = Uuid::new_v4();
    shop.put(ada, mug, json!(1)).await.expect_status(200);
    let before = shop.cart_of(ada, Role::Civilian).await;

    for quantity in [json!(0), json!(100), json!(-1), json!("two"), json!(1.5)] {
        shop.put(ada, mug, quantity)
            .await
            .expect_problem(422, "invalid_body");
    }
    shop.cart
        .put(&format!("/v1/cart/items/{mug}"))
        .as_user(ada, Role::Civilian)
        .raw_json("{\"quantity\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    shop.put(ada, Uuid::new_v4(), json!(1))
        .await
        .expect_problem(404, "not_found");
    shop.put(ada, retired, json!(1))
        .await
        .expect_problem(409, "offering_unavailable");
    shop.cart
        .put("/v1/cart/items/not-a-uuid")
        .as_user(ada, Role::Civilian)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .expect_problem(404, "not_found");

    // Only civilians and charities have carts; only the service reads another's.
    for role in [Role::Officer, Role::Business, Role::Admin, Role::Service] {
        shop.cart
            .get("/v1/cart")
            .as_user(Uuid::new_v4(), role)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    shop.cart
        .get(&format!("/v1/carts/{ada}"))
        .as_user(Uuid::new_v4(), Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    shop.cart
        .get("/v1/cart")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    shop.cart
        .get("/v1/cart")
        .bearer("forged.token.value")
        .send()
        .await
        .expect_problem(401, "unauthorized");

    assert_eq!(shop.cart_of(ada, Role::Civilian).await, before);
    // Another user's actions never touch Ada's cart.
    let bob = Uuid::new_v4();
    shop.cart
        .delete("/v1/cart")
        .as_user(bob, Role::Civilian)
        .send()
        .await
        .expect_status(204);
    assert_eq!(shop.cart_of(ada, Role::Civilian).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_catalog_down_items_cannot_be_added_but_the_cart_is_still_served() {
    let mut shop = shop().await;
    let mug = shop.offering("Mug", true).await;
    let ada = Uuid::new_v4();
    shop.put(ada, mug, json!(2)).await.expect_status(200);
    let catalog = shop.catalog_service.take().expect("catalog runs");
    catalog.stop().await.expect("catalog stops");
    shop.put(ada, mug, json!(3))
        .await
        .expect_problem(503, "dependency_unavailable");
    let cart = shop.cart_of(ada, Role::Civilian).await;
    assert_eq!(items(&cart), vec![(mug.to_string(), 2)]);
}
