//! The demo shop as a shopper meets it on the fleet that `scripts/run`
//! starts: the seeded offerings are on sale from the businesses the banner
//! names, a cart outlives its service being killed, and a second start on
//! the same data seeds nothing twice.

use std::collections::HashSet;

use serde_json::{json, Value};
use test_harness::Api;
use uuid::Uuid;

use fixture::Fleet;

mod fixture;

/// Every active offering: one page holds the whole demo shop.
async fn offerings(catalog: &Api) -> Vec<Value> {
    let answer = catalog
        .get("/v1/offerings?limit=200")
        .send()
        .await
        .expect_status(200);
    assert_eq!(answer.body["next_cursor"], Value::Null, "one page");
    answer.body["items"].as_array().expect("items").clone()
}

fn ids(values: &[Value], field: &str) -> HashSet<String> {
    values
        .iter()
        .map(|value| value[field].as_str().expect(field).to_owned())
        .collect()
}

/// The business ids the banner's business tokens claim.
fn banner_businesses(fleet: &Fleet) -> HashSet<String> {
    fleet
        .tokens("business")
        .iter()
        .map(|owner| {
            owner
                .business_id
                .expect("a business token names its business")
        })
        .map(|id| id.to_string())
        .collect()
}

async fn cart_of(cart: &Api, token: &str) -> Value {
    cart.get("/v1/cart")
        .bearer(token)
        .send()
        .await
        .expect_status(200)
        .body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_shop_is_on_sale_and_a_cart_outlives_a_cart_crash_and_a_restart() {
    let fleet = Fleet::start().await;
    let catalog = Api::new(fleet.urls["catalog"].clone());
    let cart = Api::new(fleet.urls["cart"].clone());

    // A dozen offerings of every kind, priced in dollars and points, from
    // exactly the businesses whose tokens the banner prints.
    let listed = offerings(&catalog).await;
    assert_eq!(listed.len(), 12, "{listed:#?}");
    let kinds: HashSet<&str> = listed
        .iter()
        .map(|offering| offering["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, HashSet::from(["product", "voucher", "service"]));
    for offering in &listed {
        assert_eq!(offering["currency"], "USD", "{offering}");
        assert!(offering["price_minor"].as_i64() >= Some(1), "{offering}");
        assert!(offering["points_price"].as_i64() >= Some(1), "{offering}");
    }
    assert!(
        listed.iter().any(|offering| offering["stock"] == 3),
        "one offering is nearly sold out"
    );
    let businesses = banner_businesses(&fleet);
    assert!(businesses.len() >= 2, "{businesses:?}");
    assert_eq!(ids(&listed, "business_id"), businesses);

    // Each business token acts for its own business and no other.
    let owners = fleet.tokens("business");
    for (owner, other) in owners.iter().zip(owners.iter().cycle().skip(1)) {
        let own = owner.business_id.expect("business id");
        let profile = catalog
            .get(&format!("/v1/businesses/{own}"))
            .send()
            .await
            .expect_status(200);
        assert!(!profile.body["name"].as_str().unwrap_or_default().is_empty());
        catalog
            .get(&format!(
                "/v1/offerings?business_id={own}&include_inactive=true"
            ))
            .bearer(&owner.token)
            .send()
            .await
            .expect_status(200);
        let other = other.business_id.expect("business id");
        catalog
            .get(&format!(
                "/v1/offerings?business_id={other}&include_inactive=true"
            ))
            .bearer(&owner.token)
            .send()
            .await
            .expect_status(403);
    }

    // The demo civilian puts a product of each of two businesses in the cart.
    let civilian = fleet.token("civilian").clone();
    let product_of = |business: Option<Uuid>| {
        let business = business.expect("business id").to_string();
        listed
            .iter()
            .find(|offering| {
                offering["business_id"] == business.as_str()
                    && offering["kind"] == "product"
                    && offering["stock"].is_null()
            })
            .unwrap_or_else(|| panic!("no product of {business}"))["id"]
            .clone()
    };
    let first = product_of(owners[0].business_id);
    let second = product_of(owners[1].business_id);
    for (offering, quantity) in [(&first, 2), (&second, 1)] {
        let offering = offering.as_str().expect("offering id");
        cart.put(&format!("/v1/cart/items/{offering}"))
            .bearer(&civilian.token)
            .json(&json!({ "quantity": quantity }))
            .send()
            .await
            .expect_status(200);
    }
    let filled = cart_of(&cart, &civilian.token).await;
    assert_eq!(filled["user_id"], civilian.user_id.to_string());
    assert_eq!(
        filled["items"],
        json!([
            { "offering_id": first, "quantity": 2 },
            { "offering_id": second, "quantity": 1 },
        ])
    );

    // Killed without a chance to clean up, the cart service is started
    // again by the launcher and shows the same cart.
    fleet.crash("cart").await;
    assert_eq!(cart_of(&cart, &civilian.token).await, filled);

    // The next start on the same data finds the shop in place: the same
    // businesses, no offering twice, and the cart still as it was.
    let offering_ids = ids(&listed, "id");
    let fleet = fleet.restart().await;
    assert_eq!(banner_businesses(&fleet), businesses);
    assert_eq!(ids(&offerings(&catalog).await, "id"), offering_ids);
    let civilian = fleet.token("civilian").clone();
    assert_eq!(cart_of(&cart, &civilian.token).await, filled);

    let status = fleet.stop().await;
    assert!(status.success(), "the launcher stops cleanly: {status}");
}
