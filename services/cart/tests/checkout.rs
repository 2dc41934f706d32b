//! What a checkout does to the cart: the bought quantities come out, once.

use std::time::Duration;

use cart::domain::{Cart, CheckoutOutcome, Quantity};
use cart::store;
use shared_events::checkout::{CheckoutEvent, OrderSubmitted};
use shared_events::{Address, Envelope, Line};
use sqlx::PgPool;
use test_harness::{eventually, TestService};
use uuid::Uuid;

fn line(offering_id: Uuid, quantity: u32) -> Line {
    Line {
        offering_id,
        business_id: Uuid::new_v4(),
        title: "Coffee for two".to_owned(),
        quantity,
        unit_price_minor: 500,
        points_applied: 0,
        discount_minor: 0,
        amount_due_minor: 500 * i64::from(quantity),
    }
}

fn order_submitted(order_id: Uuid, customer_id: Uuid, lines: Vec<Line>) -> Envelope<CheckoutEvent> {
    let total = lines.iter().map(|line| line.amount_due_minor).sum();
    Envelope::new(
        CheckoutEvent::OrderSubmitted(OrderSubmitted {
            order_id,
            checkout_id: Uuid::new_v4(),
            customer_id,
            customer_email: None,
            reservation_id: None,
            currency: "USD".to_owned(),
            lines,
            subtotal_minor: total,
            discount_minor: 0,
            total_minor: total,
            points_applied: 0,
            shipping_address: Address {
                name: "Ada Lovelace".to_owned(),
                line1: "1 Main St".to_owned(),
                line2: None,
                city: "Springfield".to_owned(),
                postal_code: "12345".to_owned(),
                country: "US".to_owned(),
            },
            payment: None,
        }),
        order_id,
    )
}

async fn quantities(pool: &PgPool, user: Uuid) -> Vec<(Uuid, u32)> {
    let mut conn = pool.acquire().await.expect("connection");
    let Cart { items, .. } = store::cart(&mut conn, user).await.expect("read cart");
    items
        .into_iter()
        .map(|item| (item.offering_id, item.quantity.get()))
        .collect()
}

async fn put(pool: &PgPool, user: Uuid, offering: Uuid, quantity: i64) {
    let mut conn = pool.acquire().await.expect("connection");
    let quantity = Quantity::new(quantity).expect("valid quantity");
    store::set_item(&mut conn, user, offering, quantity)
        .await
        .expect("set item");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_lowers_each_line_once_and_keeps_what_was_added_after_it() {
    let db = test_harness::fresh_database(&["cart"]).await;
    let broker = test_harness::own_broker();
    let bootstrap = broker.bootstrap_servers();
    // Nothing here adds items through the API, so catalog is never asked.
    let settings = cart::Settings {
        catalog_url: "http://catalog.invalid".parse().expect("a URL"),
    };
    let service = TestService::start_with(&cart::SPEC, cart::build, &db, bootstrap, settings).await;
    let pool = PgPool::connect(db.url("cart")).await.expect("connect");
    let (user, other_user) = (Uuid::new_v4(), Uuid::new_v4());
    let (mug, tea, soap) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    put(&pool, user, mug, 3).await;
    put(&pool, user, tea, 1).await;
    put(&pool, other_user, mug, 2).await;

    // Checked out: 2 mugs and the tea. Meanwhile, on another device, soap.
    let order_id = Uuid::new_v4();
    let submitted = order_submitted(order_id, user, vec![line(mug, 2), line(tea, 1)]);
    put(&pool, user, soap, 4).await;
    test_harness::events::publish(bootstrap, &submitted).await;
    eventually(Duration::from_secs(20), "the cart is lowered", || async {
        quantities(&pool, user).await == vec![(mug, 1), (soap, 4)]
    })
    .await;

    // The same order announced again, as a new event: nothing more comes out.
    let again = order_submitted(order_id, user, vec![line(mug, 2), line(tea, 1)]);
    test_harness::events::publish(bootstrap, &again).await;
    // A later order of this user on the same partition proves the re-sent
    // one was handled before it.
    let later = order_submitted(Uuid::new_v4(), user, vec![line(soap, 1)]);
    test_harness::events::publish(bootstrap, &later).await;
    eventually(
        Duration::from_secs(20),
        "the later order is applied",
        || async { quantities(&pool, user).await == vec![(mug, 1), (soap, 3)] },
    )
    .await;
    assert_eq!(
        quantities(&pool, other_user).await,
        vec![(mug, 2)],
        "another user's cart is untouched"
    );
    service.stop().await.expect("clean stop");
}

async fn updated_at(pool: &PgPool, user: Uuid) -> Option<time::OffsetDateTime> {
    let mut conn = pool.acquire().await.expect("connection");
    store::cart(&mut conn, user)
        .await
        .expect("read cart")
        .updated_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_is_marked_changed_only_by_what_changes_it() {
    let db = test_harness::fresh_database(&["cart"]).await;
    let broker = test_harness::own_broker();
    let settings = cart::Settings {
        catalog_url: "http://catalog.invalid".parse().expect("a URL"),
    };
    let service = TestService::start_with(
        &cart::SPEC,
        cart::build,
        &db,
        broker.bootstrap_servers(),
        settings,
    )
    .await;
    let pool = PgPool::connect(db.url("cart")).await.expect("connect");
    let (user, mug, tea) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut conn = pool.acquire().await.expect("connection");

    store::remove_item(&mut conn, user, mug)
        .await
        .expect("remove");
    store::clear(&mut conn, user).await.expect("clear");
    assert_eq!(updated_at(&pool, user).await, None, "no cart appears");

    put(&pool, user, mug, 3).await;
    let added = updated_at(&pool, user).await;
    store::remove_item(&mut conn, user, tea)
        .await
        .expect("remove");
    assert_eq!(updated_at(&pool, user).await, added, "nothing was removed");

    let order_id = Uuid::new_v4();
    let outcome = store::apply_checkout(&mut conn, order_id, user, &[(mug, 1), (mug, 1)])
        .await
        .expect("apply");
    assert_eq!(outcome, CheckoutOutcome::Lowered);
    let lowered = updated_at(&pool, user).await;
    assert!(lowered > added, "the checkout changed the cart");
    assert_eq!(quantities(&pool, user).await, vec![(mug, 1)]);

    let again = store::apply_checkout(&mut conn, order_id, user, &[(mug, 2)])
        .await
        .expect("apply again");
    assert_eq!(again, CheckoutOutcome::AlreadyApplied);
    assert_eq!(updated_at(&pool, user).await, lowered, "applied once only");
    assert_eq!(quantities(&pool, user).await, vec![(mug, 1)]);

    store::clear(&mut conn, user).await.expect("clear");
    let cleared = updated_at(&pool, user).await;
    assert!(cleared > lowered, "clearing changed the cart");
    assert_eq!(quantities(&pool, user).await, vec![]);
    store::clear(&mut conn, user).await.expect("clear again");
    assert_eq!(
        updated_at(&pool, user).await,
        cleared,
        "nothing was cleared"
    );
    drop(conn);
    service.stop().await.expect("clean stop");
}
