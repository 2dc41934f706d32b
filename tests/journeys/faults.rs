//! The journey of an order with a fault in its middle: a service killed
//! with SIGKILL (the launcher starts it again), the broker down for ten
//! seconds, PostgreSQL restarted. Each still ends delivered, charged once,
//! with its points spent once and its stock taken once, and prints how long
//! it took to settle after the fault ended.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_service::Role;
use serde_json::Value;
use uuid::Uuid;

use crate::buying::{deliver, place};
use crate::invariants::{
    one_email_per_notification, order_settled, points_conserved, stock_conserved,
};
use crate::world::{checkout_body, get, Person, World};

/// How long the broker stays away.
const OUTAGE: Duration = Duration::from_secs(10);

/// A shop and a customer with two mugs in their cart and 500 points.
async fn customer_at_checkout(world: &World) -> (crate::world::Business, String, Person) {
    let shop = world.business("Mugs").await;
    let mug = world.offering(&shop, "Mug", 1_800, 900, Some(MUGS)).await;
    let civilian = world.person(Role::Civilian, POINTS).await;
    world.add_to_cart(&civilian, &mug, 2).await;
    (shop, mug, civilian)
}

/// Places an order, lets `fault` happen to the fleet, then follows the order
/// to its delivery and checks the invariants.
async fn survives<F, Fut>(world: &World, what: &str, fault: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let (shop, mug, civilian) = customer_at_checkout(world).await;
    let order_id = place(
        world,
        &civilian,
        &checkout_body(POINTS, Some("pm_card_visa")),
    )
    .await;
    fault().await;
    let ended = Instant::now();
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    println!(
        "settled: {what}: the order reached its business {:.1} s after the fault ended",
        ended.elapsed().as_secs_f64()
    );
    finish(world, (&shop, &mug, MUGS), &civilian, &order_id, POINTS).await;
}

/// The stock of the mug a customer buys two of, and the points they spend.
const MUGS: i64 = 6;
const POINTS: i64 = 500;

/// Delivers the order (of one part, `shop`'s, of `mug`, which had `stock`
/// units) and checks that nothing was lost or doubled: one part, the
/// `points` spent once, the stock taken once, one email per notification.
pub async fn finish(
    world: &World,
    (shop, mug, stock): (&crate::world::Business, &str, i64),
    civilian: &Person,
    order_id: &str,
    points: i64,
) {
    deliver(world, shop, order_id).await;
    world.wait_for_status(civilian, order_id, "delivered").await;
    let order = order_settled(world, civilian, order_id).await;
    let queue = get(
        &world.dispatch,
        &format!("/v1/dispatch/businesses/{}/orders", shop.id),
        &shop.token,
    )
    .await;
    assert_eq!(
        queue["items"].as_array().map(Vec::len),
        Some(1),
        "one part: {queue}"
    );
    let spent = points_conserved(world, civilian).await;
    assert_eq!(
        spent.get("spent"),
        Some(&points),
        "the points are spent once"
    );
    stock_conserved(world, mug, stock, &[order]).await;
    world
        .wait_for_inbox(
            civilian,
            order_id,
            &[
                ("placed", 1),
                ("paid", 1),
                ("dispatched", 1),
                ("confirmed", 1),
                ("shipped", 1),
                ("delivered", 1),
            ],
        )
        .await;
    one_email_per_notification(world, civilian).await;
}

pub async fn an_order_survives_the_order_service_killed_mid_journey(world: Arc<World>) {
    survives(&world, "order killed", || world.fleet.crash("order")).await;
}

pub async fn a_capture_survives_the_payment_gateway_killed_mid_journey(world: Arc<World>) {
    survives(&world, "payment-gateway killed", || {
        world.fleet.crash("payment-gateway")
    })
    .await;
}

pub async fn parts_survive_the_dispatcher_killed_mid_journey(world: Arc<World>) {
    survives(&world, "dispatcher killed", || {
        world.fleet.crash("dispatcher")
    })
    .await;
}

pub async fn an_order_rides_out_the_broker_down_for_ten_seconds(world: Arc<World>) {
    survives(&world, "broker down for 10 s", || async {
        world.fleet.set_broker_up(false).await;
        tokio::time::sleep(OUTAGE).await;
        world.fleet.set_broker_up(true).await;
    })
    .await;
}

/// The broker killed with SIGKILL, an order placed while it is away (its
/// events wait in the services' outboxes), and the broker back with none of
/// its state, as one that lost its disk: no topics, offsets or producer
/// ids. The services create their topics again and the order goes through
/// once. Only tansu can lose its state; the journey runs on it alone.
///
/// Run while the fleet is quiet: what the broker held and no one had read
/// yet is gone with its disk, out of any outbox's reach.
pub async fn an_order_placed_while_the_broker_is_away_survives_its_return_without_state(
    world: Arc<World>,
) {
    let (shop, mug, civilian) = customer_at_checkout(&world).await;
    world.fleet.set_broker_up(false).await;
    let order_id = place(
        &world,
        &civilian,
        &checkout_body(POINTS, Some("pm_card_visa")),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    world
        .fleet
        .restart_broker_without_state()
        .await
        .expect("the fleet runs on a broker that can lose its state");
    let ended = Instant::now();
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    println!(
        "settled: broker back without its state: the order reached its business {:.1} s after the broker returned",
        ended.elapsed().as_secs_f64()
    );
    finish(&world, (&shop, &mug, MUGS), &civilian, &order_id, POINTS).await;
}

pub async fn an_order_rides_out_a_postgres_restart(world: Arc<World>) {
    survives(&world, "PostgreSQL restarted", || {
        world.fleet.restart_postgres()
    })
    .await;
}

/// Submits without panicking when the service is gone: the status and body,
/// or None when no answer came.
async fn try_submit(
    world: &World,
    person: &Person,
    body: &Value,
    key: &str,
) -> Option<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(world.checkout.url("/v1/checkouts"))
        .bearer_auth(&person.token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

pub async fn a_checkout_survives_the_checkout_service_killed_and_is_retried(world: Arc<World>) {
    let (shop, mug, civilian) = customer_at_checkout(&world).await;
    let body = checkout_body(POINTS, Some("pm_card_visa"));
    let key = Uuid::new_v4().to_string();

    // Checkout dies while the customer's request is in flight; the customer
    // retries with the same key until the shop answers. A retry waits out
    // the dead request's lease, then carries on the checkout it began.
    let (in_flight, ()) = tokio::join!(try_submit(&world, &civilian, &body, &key), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        world.fleet.crash("checkout").await;
    });
    let ended = Instant::now();
    let mut answer = in_flight;
    let unanswered = |answer: &Option<(u16, Value)>| match answer {
        None => true,
        Some((status, body)) => *status >= 500 || body["code"] == "idempotency_key_in_flight",
    };
    while unanswered(&answer) {
        assert!(
            ended.elapsed() < Duration::from_secs(150),
            "no answer: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        answer = try_submit(&world, &civilian, &body, &key).await;
    }
    let (status, submitted) = answer.expect("an answer");
    assert_eq!(status, 201, "{submitted}");
    let order_id = submitted["order_id"].as_str().expect("order id").to_owned();
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    println!(
        "settled: checkout killed: the retried checkout placed its order {:.1} s after the fault ended",
        ended.elapsed().as_secs_f64()
    );
    let orders = get(&world.orders, "/v1/orders?limit=100", &civilian.token).await;
    assert_eq!(
        orders["items"].as_array().map(Vec::len),
        Some(1),
        "one order: {orders}"
    );
    finish(&world, (&shop, &mug, MUGS), &civilian, &order_id, POINTS).await;
}
