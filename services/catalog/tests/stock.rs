//! Stock as order sees it, through Kafka: `order_created` answered with
//! `stock_reserved` or `stock_rejected` (all lines or none, never below
//! zero), `stock_release_requested` answered with `stock_released` (never
//! more than was reserved), and every command applied once per order
//! however often it is sent.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use catalog::domain::{
    Currency, Description, NewBusiness, NewOffering, Offering, OfferingKind, PointsPrice,
    PriceMinor, Stock, Title,
};
use catalog::store;
use shared_events::catalog::CatalogEvent;
use shared_events::order::{OrderCreated, OrderEvent, StockReleaseRequested};
use shared_events::{Envelope, StockLine};
use sqlx::PgPool;
use test_harness::events::{publish, read_events};
use test_harness::eventually;
use uuid::Uuid;

use support::{start, Fixture};

impl Fixture {
    /// A new business with one offering of `stock` units (`None`: unlimited).
    async fn offering(&self, title: &str, stock: Option<i64>) -> Offering {
        let mut tx = self.pool.begin().await.expect("begin");
        let business = store::create_business(
            &mut tx,
            &NewBusiness {
                name: catalog::domain::BusinessName::new("Corner Shop").expect("name"),
                contact_email: catalog::domain::ContactEmail::new("shop@example.com")
                    .expect("email"),
            },
        )
        .await
        .expect("create business");
        let offering = store::create_offering(
            &mut tx,
            &NewOffering {
                business_id: business.id,
                title: Title::new(title).expect("title"),
                description: Description::new("").expect("description"),
                kind: OfferingKind::Product,
                price_minor: PriceMinor::new(1_500).expect("price"),
                currency: Currency::USD,
                points_price: PointsPrice::new(150).expect("points price"),
                stock: Stock::new(stock).expect("stock"),
                active: true,
            },
        )
        .await
        .expect("create offering");
        tx.commit().await.expect("commit");
        offering
    }

    async fn stock(&self, offering_id: Uuid) -> Option<i64> {
        let mut conn = self.pool.acquire().await.expect("connection");
        store::get_offering(&mut conn, offering_id)
            .await
            .expect("get offering")
            .expect("the offering exists")
            .stock
    }

    async fn publish(&self, event: OrderEvent) {
        publish(
            self.broker.bootstrap_servers(),
            &Envelope::new(event, Uuid::new_v4()),
        )
        .await;
    }

    async fn catalog_events(&self) -> Vec<CatalogEvent> {
        read_events::<CatalogEvent>(self.broker.bootstrap_servers())
            .await
            .into_iter()
            .map(|envelope| envelope.event)
            .collect()
    }

    /// The answers (`stock_reserved` / `stock_rejected`) about `order_id`,
    /// once there are `count` of them.
    async fn answers(&self, order_id: Uuid, count: usize) -> Vec<CatalogEvent> {
        eventually(
            Duration::from_secs(30),
            &format!("{count} answers about order {order_id}"),
            || async { self.answers_now(order_id).await.len() >= count },
        )
        .await;
        self.answers_now(order_id).await
    }

    async fn answers_now(&self, order_id: Uuid) -> Vec<CatalogEvent> {
        self.catalog_events()
            .await
            .into_iter()
            .filter(|event| {
                matches!(
                    event,
                    CatalogEvent::StockReserved(_) | CatalogEvent::StockRejected(_)
                ) && event.order_id() == Some(order_id)
            })
            .collect()
    }

    /// The `stock_released` events about `order_id`.
    async fn releases(&self, order_id: Uuid) -> Vec<Vec<StockLine>> {
        self.catalog_events()
            .await
            .into_iter()
            .filter_map(|event| match event {
                CatalogEvent::StockReleased(released) if released.order_id == order_id => {
                    Some(released.lines)
                }
                _ => None,
            })
            .collect()
    }

    /// `offering_changed` events about `offering_id`, oldest first.
    async fn changes(&self, offering_id: Uuid) -> Vec<Option<i64>> {
        self.catalog_events()
            .await
            .into_iter()
            .filter_map(|event| match event {
                CatalogEvent::OfferingChanged(changed) if changed.id == offering_id => {
                    Some(changed.stock)
                }
                _ => None,
            })
            .collect()
    }
}

fn line(offering: &Offering, quantity: u32) -> StockLine {
    StockLine {
        offering_id: offering.id,
        quantity,
    }
}

fn order_created(order_id: Uuid, lines: Vec<StockLine>) -> OrderEvent {
    OrderEvent::OrderCreated(OrderCreated {
        order_id,
        customer_id: Uuid::new_v4(),
        lines,
    })
}

fn release_requested(order_id: Uuid, lines: Vec<StockLine>) -> OrderEvent {
    OrderEvent::StockReleaseRequested(StockReleaseRequested { order_id, lines })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_orders_for_five_units_reserve_exactly_five() {
    let fixture = start().await;
    let lamp = fixture.offering("Desk lamp", Some(5)).await;
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();

    let mut publishing = tokio::task::JoinSet::new();
    for &order_id in &orders {
        let bootstrap = fixture.broker.bootstrap_servers().to_owned();
        let event = Envelope::new(order_created(order_id, vec![line(&lamp, 1)]), order_id);
        publishing.spawn(async move { publish(&bootstrap, &event).await });
    }
    publishing.join_all().await;

    let answers_about_these = || async {
        fixture
            .catalog_events()
            .await
            .into_iter()
            .filter(|event| event.order_id().is_some_and(|id| orders.contains(&id)))
            .collect::<Vec<_>>()
    };
    eventually(
        Duration::from_secs(60),
        "all 20 orders answered",
        || async { answers_about_these().await.len() >= 20 },
    )
    .await;
    let answers = answers_about_these().await;

    let reserved = answers
        .iter()
        .filter(|event| matches!(event, CatalogEvent::StockReserved(_)))
        .count();
    let rejected: Vec<_> = answers
        .iter()
        .filter_map(|event| match event {
            CatalogEvent::StockRejected(rejected) => Some(rejected),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 20, "one answer per order");
    assert_eq!(reserved, 5);
    assert_eq!(rejected.len(), 15);
    for rejection in rejected {
        assert_eq!(rejection.short_offering_ids, vec![lamp.id]);
        assert_eq!(rejection.lines, vec![line(&lamp, 1)]);
    }
    assert_eq!(fixture.stock(lamp.id).await, Some(0));
    assert_eq!(
        fixture.changes(lamp.id).await,
        vec![Some(5), Some(4), Some(3), Some(2), Some(1), Some(0)],
        "created, then one change per unit reserved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_racing_transactions_never_take_stock_below_zero() {
    let fixture = start().await;
    let lamp = fixture.offering("Desk lamp", Some(5)).await;
    let pool = PgPool::connect_with(fixture.pool.connect_options().as_ref().clone())
        .await
        .expect("second pool");

    let mut racing = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let pool = pool.clone();
        let order = OrderCreated {
            order_id: Uuid::new_v4(),
            customer_id: Uuid::new_v4(),
            lines: vec![line(&lamp, 1)],
        };
        racing.spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            let outcome = catalog::stock::reserve(&mut tx, &order, order.order_id)
                .await
                .expect("reserve");
            tx.commit().await.expect("commit");
            outcome
        });
    }
    let outcomes = racing.join_all().await;

    let reserved = outcomes
        .iter()
        .filter(|outcome| {
            matches!(
                outcome,
                catalog::stock::ReserveOutcome::Decided(CatalogEvent::StockReserved(_))
            )
        })
        .count();
    assert_eq!(reserved, 5);
    assert_eq!(fixture.stock(lamp.id).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_with_one_short_line_is_rejected_whole_and_holds_nothing() {
    let fixture = start().await;
    let mug = fixture.offering("Mug", Some(10)).await;
    let poster = fixture.offering("Poster", Some(1)).await;
    let ebook = fixture.offering("E-book", None).await;
    let order_id = Uuid::new_v4();
    let lines = vec![line(&mug, 2), line(&poster, 2), line(&ebook, 3)];

    fixture
        .publish(order_created(order_id, lines.clone()))
        .await;
    let answers = fixture.answers(order_id, 1).await;

    match &answers[..] {
        [CatalogEvent::StockRejected(rejected)] => {
            assert_eq!(rejected.lines, lines);
            assert_eq!(rejected.short_offering_ids, vec![poster.id]);
        }
        other => panic!("expected one stock_rejected, got {other:?}"),
    }
    // A release for a rejected order gives nothing back. It is handled
    // before the re-sent order (same key, same partition), whose answer
    // shows the release is done.
    fixture
        .publish(release_requested(order_id, lines.clone()))
        .await;
    fixture.publish(order_created(order_id, lines)).await;
    fixture.answers(order_id, 2).await;

    assert_eq!(fixture.stock(mug.id).await, Some(10));
    assert_eq!(fixture.stock(poster.id).await, Some(1));
    assert_eq!(fixture.stock(ebook.id).await, None);
    assert!(fixture.releases(order_id).await.is_empty());
    assert_eq!(
        fixture.changes(mug.id).await,
        vec![Some(10)],
        "only created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_and_unknown_offerings_reject_the_order() {
    let fixture = start().await;
    let mug = fixture.offering("Mug", Some(10)).await;
    let retired = fixture.offering("Retired cap", None).await;
    let mut tx = fixture.pool.begin().await.expect("begin");
    store::patch_offering(
        &mut tx,
        retired.id,
        &catalog::domain::OfferingPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("deactivate");
    tx.commit().await.expect("commit");
    let unknown = Uuid::new_v4();
    let order_id = Uuid::new_v4();

    fixture
        .publish(order_created(
            order_id,
            vec![
                line(&mug, 1),
                StockLine {
                    offering_id: unknown,
                    quantity: 1,
                },
                line(&retired, 1),
            ],
        ))
        .await;

    match &fixture.answers(order_id, 1).await[..] {
        [CatalogEvent::StockRejected(rejected)] => {
            assert_eq!(rejected.short_offering_ids, vec![unknown, retired.id]);
        }
        other => panic!("expected one stock_rejected, got {other:?}"),
    }
    assert_eq!(fixture.stock(mug.id).await, Some(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_releases_and_a_cancel_give_back_exactly_what_was_reserved_once() {
    let fixture = start().await;
    // Three businesses, one offering each.
    let kettle = fixture.offering("Kettle", Some(10)).await;
    let teapot = fixture.offering("Teapot", Some(8)).await;
    let voucher = fixture.offering("Tea voucher", None).await;
    let order_id = Uuid::new_v4();
    let all_lines = vec![line(&kettle, 3), line(&teapot, 2), line(&voucher, 4)];

    fixture
        .publish(order_created(order_id, all_lines.clone()))
        .await;
    assert!(matches!(
        &fixture.answers(order_id, 1).await[..],
        [CatalogEvent::StockReserved(reserved)] if reserved.lines == all_lines
    ));
    assert_eq!(fixture.stock(kettle.id).await, Some(7));
    assert_eq!(fixture.stock(teapot.id).await, Some(6));

    // The kettle's business declines, then the teapot's (asking for more
    // than was reserved), then the customer cancels the rest.
    let part_one = release_requested(order_id, vec![line(&kettle, 3)]);
    let part_two = release_requested(order_id, vec![line(&teapot, 5)]);
    let cancel = release_requested(order_id, all_lines.clone());
    for command in [&part_one, &part_two, &cancel] {
        fixture.publish(command.clone()).await;
    }
    eventually(Duration::from_secs(30), "three releases", || async {
        fixture.releases(order_id).await.len() >= 3
    })
    .await;
    let releases = fixture.releases(order_id).await;
    assert_eq!(
        releases,
        vec![
            vec![line(&kettle, 3)],
            vec![line(&teapot, 2)],
            vec![line(&voucher, 4)],
        ]
    );
    assert_eq!(fixture.stock(kettle.id).await, Some(10));
    assert_eq!(fixture.stock(teapot.id).await, Some(8));
    assert_eq!(fixture.stock(voucher.id).await, None);

    // The same commands re-sent (new event ids), then the order re-sent as
    // a marker that they have all been handled.
    for command in [part_one, part_two, cancel] {
        fixture.publish(command).await;
    }
    fixture
        .publish(order_created(order_id, all_lines.clone()))
        .await;
    fixture.answers(order_id, 2).await;

    assert_eq!(
        fixture.releases(order_id).await.len(),
        3,
        "nothing more released"
    );
    assert_eq!(fixture.stock(kettle.id).await, Some(10));
    assert_eq!(fixture.stock(teapot.id).await, Some(8));
    let mut released_in_total: HashMap<Uuid, u32> = HashMap::new();
    for line in fixture.releases(order_id).await.into_iter().flatten() {
        *released_in_total.entry(line.offering_id).or_default() += line.quantity;
    }
    let reserved: HashMap<Uuid, u32> = all_lines
        .iter()
        .map(|line| (line.offering_id, line.quantity))
        .collect();
    assert_eq!(released_in_total, reserved);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_created_sent_again_answers_the_same_and_changes_nothing() {
    let fixture = start().await;
    let mug = fixture.offering("Mug", Some(4)).await;
    let order_id = Uuid::new_v4();
    let lines = vec![line(&mug, 3)];

    fixture
        .publish(order_created(order_id, lines.clone()))
        .await;
    fixture.answers(order_id, 1).await;
    let resent = Envelope::new(order_created(order_id, lines.clone()), order_id);
    publish(fixture.broker.bootstrap_servers(), &resent).await;
    // The very same event delivered twice is dropped by the inbox; one more
    // re-send after it shows when both have been handled.
    publish(fixture.broker.bootstrap_servers(), &resent).await;
    fixture
        .publish(order_created(order_id, lines.clone()))
        .await;
    let answers = fixture.answers(order_id, 3).await;

    assert_eq!(answers.len(), 3, "{answers:?}");
    assert!(answers.iter().all(|answer| *answer == answers[0]));
    assert!(matches!(&answers[0], CatalogEvent::StockReserved(r) if r.lines == lines));
    assert_eq!(fixture.stock(mug.id).await, Some(1));
    assert_eq!(fixture.changes(mug.id).await, vec![Some(4), Some(1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_announces_its_offerings_in_line_order_then_answers() {
    let fixture = start().await;
    // Ids grow with creation, so the lines below are not in id order.
    let (mug, tea, soap) = (
        fixture.offering("Mug", Some(4)).await,
        fixture.offering("Tea", None).await,
        fixture.offering("Soap", Some(9)).await,
    );
    let order = OrderCreated {
        order_id: Uuid::new_v4(),
        customer_id: Uuid::new_v4(),
        lines: vec![line(&soap, 2), line(&tea, 1), line(&mug, 3), line(&soap, 1)],
    };
    let mut tx = fixture.pool.begin().await.expect("begin");
    let before: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM messaging_outbox")
        .fetch_one(&mut *tx)
        .await
        .expect("outbox position");
    catalog::stock::reserve(&mut tx, &order, order.order_id)
        .await
        .expect("reserve");
    let enqueued: Vec<(String, String)> = sqlx::query_as(
        "SELECT event_type, partition_key FROM messaging_outbox WHERE id > $1 ORDER BY id",
    )
    .bind(before)
    .fetch_all(&mut *tx)
    .await
    .expect("enqueued events");
    tx.commit().await.expect("commit");

    let expected = [
        ("offering_changed", soap.id.to_string()),
        ("offering_changed", mug.id.to_string()),
        ("stock_reserved", order.order_id.to_string()),
    ]
    .map(|(event_type, key)| (event_type.to_owned(), key));
    assert_eq!(enqueued, expected);
    assert_eq!(fixture.stock(soap.id).await, Some(6));
    assert_eq!(fixture.stock(tea.id).await, None);
    assert_eq!(fixture.stock(mug.id).await, Some(1));
}
