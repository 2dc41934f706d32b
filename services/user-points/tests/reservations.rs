//! Checkout's reservations as checkout and the order see them: reserving and
//! cancelling, expiry without anyone calling, binding by `order_submitted`,
//! and the order's spend, release and refund commands.

mod support;

use std::time::Duration;

use http_service::auth::Role;
use serde_json::{json, Value};
use shared_events::checkout::{CheckoutEvent, OrderSubmitted};
use shared_events::order::{
    OrderEvent, PointsRefundRequested, PointsReleaseRequested, PointsSpendRequested,
};
use shared_events::points::PointsEvent;
use shared_events::{Address, Envelope, Topic};
use support::Points;
use test_harness::events::publish;
use test_harness::{eventually, Answer};
use uuid::Uuid;

fn reservation(user: Uuid, order: Uuid, points: i64, ttl_seconds: i64) -> Value {
    json!({"user_id": user, "order_id": order, "checkout_id": Uuid::new_v4(), "points": points, "ttl_seconds": ttl_seconds})
}

impl Points {
    async fn reserve(&self, body: &Value) -> Answer {
        self.api
            .post("/v1/points/reservations")
            .as_user(Uuid::new_v4(), Role::Service)
            .json(body)
            .send()
            .await
    }

    async fn cancel(&self, reservation_id: &str) -> Answer {
        self.api
            .delete(&format!("/v1/points/reservations/{reservation_id}"))
            .as_user(Uuid::new_v4(), Role::Service)
            .send()
            .await
    }

    async fn submit(&self, user: Uuid, order: Uuid, reservation_id: Option<Uuid>, points: i64) {
        let submitted = OrderSubmitted {
            order_id: order,
            checkout_id: Uuid::new_v4(),
            customer_id: user,
            customer_email: None,
            reservation_id,
            currency: "USD".to_owned(),
            lines: Vec::new(),
            subtotal_minor: 1000,
            discount_minor: points,
            total_minor: 1000 - points,
            points_applied: points,
            shipping_address: Address {
                name: "Ada Lovelace".to_owned(),
                line1: "1 Main St".to_owned(),
                line2: None,
                city: "Springfield".to_owned(),
                postal_code: "12345".to_owned(),
                country: "US".to_owned(),
            },
            payment: None,
        };
        publish(
            self.bootstrap(),
            &Envelope::new(CheckoutEvent::OrderSubmitted(submitted), order),
        )
        .await;
    }

    async fn command(&self, command: OrderEvent) {
        let order = command.order_id();
        publish(self.bootstrap(), &Envelope::new(command, order)).await;
    }

    /// The order's command to spend `points` of reservation `held`.
    async fn spend(&self, user: Uuid, order: Uuid, held: Uuid, points: i64) {
        self.command(OrderEvent::PointsSpendRequested(PointsSpendRequested {
            order_id: order,
            customer_id: user,
            reservation_id: held,
            points,
        }))
        .await;
    }
}

fn id_of(answer: &Answer) -> Uuid {
    answer.body["reservation_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a reservation id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_refuse_wrong_callers_and_bad_input_and_the_refusals_change_nothing() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let valid = reservation(user, Uuid::new_v4(), 10, 600);

    let api = &points.api;
    api.post("/v1/points/reservations")
        .json(&valid)
        .send()
        .await
        .expect_problem(401, "unauthorized");
    for role in [Role::Civilian, Role::Admin, Role::Officer] {
        api.post("/v1/points/reservations")
            .as_user(user, role)
            .json(&valid)
            .send()
            .await
            .expect_problem(403, "forbidden");
    }
    api.post("/v1/points/reservations")
        .as_user(user, Role::Service)
        .raw_json("{\"user_id\": ")
        .send()
        .await
        .expect_problem(400, "malformed_json");
    let order = Uuid::new_v4();
    for body in [
        reservation(user, order, 0, 600),
        reservation(user, order, -5, 600),
        reservation(user, order, 10, 0),
        reservation(user, order, 10, 86_401),
        json!({"user_id": user, "order_id": order, "checkout_id": Uuid::new_v4(), "points": 1e13, "ttl_seconds": 60}),
        json!({"user_id": "someone", "order_id": order, "checkout_id": Uuid::new_v4(), "points": 10, "ttl_seconds": 60}),
        json!({"user_id": user, "order_id": order, "points": 10, "ttl_seconds": 60}),
        json!({"user_id": user, "order_id": order, "checkout_id": Uuid::new_v4(), "points": "10", "ttl_seconds": 60}),
    ] {
        points
            .reserve(&body)
            .await
            .expect_problem(422, "invalid_body");
    }
    points
        .reserve(&reservation(user, order, 101, 600))
        .await
        .expect_problem(409, "insufficient_points");
    points
        .reserve(&reservation(Uuid::new_v4(), order, 1, 600))
        .await
        .expect_problem(409, "insufficient_points");

    let unknown = Uuid::new_v4();
    api.delete(&format!("/v1/points/reservations/{unknown}"))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    api.delete(&format!("/v1/points/reservations/{unknown}"))
        .as_user(user, Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    points
        .cancel(&unknown.to_string())
        .await
        .expect_problem(404, "not_found");
    points
        .cancel("not-a-uuid")
        .await
        .expect_problem(404, "not_found");

    api.get(&format!("/v1/points/balances/{user}"))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    api.get(&format!("/v1/points/balances/{user}"))
        .as_user(user, Role::Civilian)
        .send()
        .await
        .expect_problem(403, "forbidden");
    api.get("/v1/points/balances/not-a-uuid")
        .as_user(user, Role::Service)
        .send()
        .await
        .expect_problem(404, "not_found");

    assert_eq!(points.points(user).await, (100, 0, 0));
    assert_eq!(
        points.ledger(user, Role::Civilian).await,
        [("awarded".to_owned(), 100)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reservations_against_a_balance_for_ten_hold_exactly_ten() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;

    let answers = futures::future::join_all((0..50).map(|_| {
        let body = reservation(user, Uuid::new_v4(), 10, 600);
        let points = &points;
        async move { points.reserve(&body).await }
    }))
    .await;

    let created = answers.iter().filter(|a| a.status == 201).count();
    let refused = answers
        .iter()
        .filter(|a| a.status == 409 && a.code() == "insufficient_points")
        .count();
    assert_eq!((created, refused), (10, 40));
    let balance = points.balance(user).await;
    assert_eq!(
        balance,
        json!({"user_id": user, "available": 0, "reserved": 100, "lifetime_earned": 100, "lifetime_spent": 0})
    );
    let reserved = points
        .ledger(user, Role::Civilian)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "reserved")
        .count();
    assert_eq!(reserved, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserving_twice_for_one_order_returns_the_first_and_cancelling_releases_it() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let order = Uuid::new_v4();

    let first = points
        .reserve(&reservation(user, order, 30, 600))
        .await
        .expect_status(201);
    let again = points
        .reserve(&reservation(user, order, 30, 600))
        .await
        .expect_status(201);
    assert_eq!(first.body, again.body);
    assert_eq!(points.points(user).await, (70, 30, 0));

    let id = id_of(&first);
    points.cancel(&id.to_string()).await.expect_status(204);
    assert_eq!(points.points(user).await, (100, 0, 0));
    points.cancel(&id.to_string()).await.expect_status(204);
    assert_eq!(points.points(user).await, (100, 0, 0));
    assert_eq!(
        points.ledger(user, Role::Civilian).await,
        [
            ("awarded".to_owned(), 100),
            ("reserved".to_owned(), 30),
            ("released".to_owned(), 30)
        ]
    );
    let events = points.events_of(user, 3).await;
    assert!(
        matches!(events.as_slice(), [
            PointsEvent::PointsCredited(_),
            PointsEvent::PointsReserved(r),
            PointsEvent::PointsReleased(l),
        ] if r.reservation_id == id && r.points == 30 && l.reservation_id == id && l.order_id == order),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reservations_for_one_order_hold_its_points_once() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let body = reservation(user, Uuid::new_v4(), 30, 600);

    let answers = futures::future::join_all((0..10).map(|_| points.reserve(&body))).await;

    let first = &answers[0];
    for answer in &answers {
        assert_eq!(answer.status, 201, "{:?}", answer.body);
        assert_eq!(answer.body, first.body);
    }
    assert_eq!(points.points(user).await, (70, 30, 0));
    assert_eq!(
        points.ledger(user, Role::Civilian).await,
        [("awarded".to_owned(), 100), ("reserved".to_owned(), 30)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_fewer_points_than_were_held_gives_the_rest_back_and_announces_both_in_order() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let order = Uuid::new_v4();
    let held = id_of(
        &points
            .reserve(&reservation(user, order, 30, 600))
            .await
            .expect_status(201),
    );
    points.submit(user, order, Some(held), 30).await;
    points.spend(user, order, held, 20).await;

    points
        .wait_for(user, (80, 0, 20), "20 spent and 10 given back")
        .await;
    let events = points.events_of(user, 4).await;
    assert!(
        matches!(events.as_slice(), [
            PointsEvent::PointsCredited(_),
            PointsEvent::PointsReserved(_),
            PointsEvent::PointsSpent(s),
            PointsEvent::PointsReleased(r),
        ] if s.reservation_id == held && s.points == 20 && r.reservation_id == held && r.points == 10),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_checkouts_reservation_expires_by_itself_and_a_bound_one_never() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let (unfinished, submitted) = (Uuid::new_v4(), Uuid::new_v4());
    points
        .reserve(&reservation(user, unfinished, 30, 60))
        .await
        .expect_status(201);
    let bound = points
        .reserve(&reservation(user, submitted, 20, 60))
        .await
        .expect_status(201);
    let bound_id = id_of(&bound);
    points.submit(user, submitted, Some(bound_id), 20).await;
    eventually(
        Duration::from_secs(20),
        "the reservation is bound",
        || async { points.cancel(&bound_id.to_string()).await.code() == "reservation_bound" },
    )
    .await;

    // Not yet due: nothing moves.
    points.clock.advance(Duration::from_secs(59));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(points.points(user).await, (50, 50, 0));

    points.clock.advance(Duration::from_secs(2 * 3600));
    points
        .wait_for(
            user,
            (80, 20, 0),
            "the unfinished checkout's points are back",
        )
        .await;
    // Sweeps keep running; the bound reservation stays held.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(points.points(user).await, (80, 20, 0));
    points
        .cancel(&bound_id.to_string())
        .await
        .expect_problem(409, "reservation_bound");
    let metrics = points.api.metrics().await;
    assert!(
        metrics.contains("points_reservations_expired_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_order_submitted_after_expiry_holds_the_points_again_as_far_as_the_balance_goes() {
    let points = support::start().await;
    let (user, short) = (Uuid::new_v4(), Uuid::new_v4());
    points.award(user, 100).await;
    points.award(short, 50).await;
    let (order, short_order) = (Uuid::new_v4(), Uuid::new_v4());
    let held = id_of(
        &points
            .reserve(&reservation(user, order, 40, 60))
            .await
            .expect_status(201),
    );
    let short_held = id_of(
        &points
            .reserve(&reservation(short, short_order, 50, 60))
            .await
            .expect_status(201),
    );
    points.clock.advance(Duration::from_secs(61));
    points
        .wait_for(user, (100, 0, 0), "the reservation expired")
        .await;
    points
        .wait_for(short, (50, 0, 0), "the other expired")
        .await;
    // Meanwhile the second user reserves most of the points for another order.
    points
        .reserve(&reservation(short, Uuid::new_v4(), 30, 600))
        .await
        .expect_status(201);

    points.submit(user, order, Some(held), 40).await;
    points
        .submit(short, short_order, Some(short_held), 50)
        .await;
    points
        .wait_for(user, (60, 40, 0), "the points are held again")
        .await;
    points
        .wait_for(short, (0, 50, 0), "what was available is held again")
        .await;
    points
        .cancel(&held.to_string())
        .await
        .expect_problem(409, "reservation_bound");
    let metrics = points.api.metrics().await;
    assert!(
        metrics.contains("points_shortfall_points_total{stage=\"reheld\"} 30"),
        "{metrics}"
    );

    // An order paid without points has nothing to bind.
    points.submit(user, Uuid::new_v4(), None, 0).await;
    points.spend(user, order, held, 40).await;
    points
        .wait_for(user, (60, 0, 40), "the re-held points are spent")
        .await;
    assert_eq!(
        points.ledger(user, Role::Civilian).await,
        [
            ("awarded".to_owned(), 100),
            ("reserved".to_owned(), 40),
            ("released".to_owned(), 40),
            ("reserved".to_owned(), 40),
            ("spent".to_owned(), 40)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_release_and_refund_apply_once_even_when_the_order_sends_them_again() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let (paid, dropped) = (Uuid::new_v4(), Uuid::new_v4());
    let spent = id_of(&points.reserve(&reservation(user, paid, 30, 60)).await);
    let released = id_of(&points.reserve(&reservation(user, dropped, 20, 60)).await);

    // The spend overtakes `order_submitted` (another topic) and binds by itself.
    for _ in 0..2 {
        points.spend(user, paid, spent, 30).await;
        points
            .command(OrderEvent::PointsReleaseRequested(PointsReleaseRequested {
                order_id: dropped,
                customer_id: user,
                reservation_id: released,
                points: 20,
            }))
            .await;
    }
    points
        .wait_for(user, (70, 0, 30), "spent once, released once")
        .await;
    points.submit(user, paid, Some(spent), 30).await;
    points.submit(user, dropped, Some(released), 20).await;

    let refund_id = Uuid::new_v4();
    let refund = |refund_id: Uuid, points: i64| {
        OrderEvent::PointsRefundRequested(PointsRefundRequested {
            order_id: paid,
            customer_id: user,
            refund_id,
            business_id: Uuid::new_v4(),
            points,
        })
    };
    points.command(refund(refund_id, 10)).await;
    points.command(refund(refund_id, 10)).await;
    points.wait_for(user, (80, 0, 20), "refunded once").await;
    // More than is left spent: only what is left comes back.
    points.command(refund(Uuid::new_v4(), 50)).await;
    points
        .wait_for(user, (100, 0, 0), "refunded what was left")
        .await;
    // Expiry has nothing to do with bound reservations.
    points.clock.advance(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(points.points(user).await, (100, 0, 0));

    assert_eq!(
        points.ledger(user, Role::Civilian).await,
        [
            ("awarded".to_owned(), 100),
            ("reserved".to_owned(), 30),
            ("reserved".to_owned(), 20),
            ("spent".to_owned(), 30),
            ("released".to_owned(), 20),
            ("refunded".to_owned(), 10),
            ("refunded".to_owned(), 20)
        ]
    );
    let events = points.events_of(user, 7).await;
    let count = |event_type: &str| {
        events
            .iter()
            .filter(|e| shared_events::EventFamily::event_type(*e) == event_type)
            .count()
    };
    assert_eq!(
        (
            count("points_spent"),
            count("points_released"),
            count("points_refunded")
        ),
        (1, 1, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_for_an_unknown_reservation_is_dead_lettered_and_changes_nothing() {
    let points = support::start().await;
    let user = Uuid::new_v4();
    points.award(user, 100).await;
    let unknown = Uuid::new_v4();
    points.spend(user, Uuid::new_v4(), unknown, 10).await;
    eventually(
        Duration::from_secs(20),
        "the command is dead-lettered",
        || async {
            messaging::inspect::read_topic(
                points.bootstrap(),
                Topic::Order.dlq_name(),
                Duration::from_millis(300),
            )
            .await
            .is_ok_and(|messages| !messages.is_empty())
        },
    )
    .await;
    assert_eq!(points.points(user).await, (100, 0, 0));
}
