//! Each of checkout's peers down, slow past the timeout, or failing with
//! 500, with a fault proxy between checkout and the real peer: the customer
//! gets `503 dependency_unavailable` at once, and nothing stays held — no
//! points reserved, no authorization standing (eventually, once a peer
//! that was down is back).

mod support;

use std::time::Duration;

use serde_json::json;
use support::{paying, Fleet, PEER_TIMEOUT};
use test_harness::fault::{Fault, FaultProxy};
use uuid::Uuid;

/// The faults each peer is put through.
fn faults() -> [(&'static str, Fault); 3] {
    [
        ("down", Fault::Refuse),
        ("slow", Fault::Delay(PEER_TIMEOUT * 3)),
        ("failing", Fault::Fail500),
    ]
}

/// A customer with 1 000 points and a mug (12.00, 120 points) in the cart.
async fn customer(fleet: &Fleet, mug: Uuid) -> Uuid {
    let ada = Uuid::new_v4();
    fleet.award(ada, 1_000).await;
    fleet.put(ada, mug, 1).await;
    ada
}

/// Puts `proxy` through every fault while a customer checks out with
/// points and a card, and checks what they are left with.
async fn checkout_survives(fleet: &Fleet, proxy: &FaultProxy, peer: &str) {
    let mug = fleet.offering("Mug", 1_200, 120, Some(10)).await;
    for (name, fault) in faults() {
        let ada = customer(fleet, mug).await;
        proxy.set(fault);
        let answer = fleet
            .submit(ada, name, &paying("pm_card_visa", Some(50)))
            .await
            .expect_problem(503, "dependency_unavailable");
        assert!(
            !answer.text.contains("127.0.0.1"),
            "{peer} {name}: a 503 says nothing internal: {}",
            answer.text
        );
        proxy.set(Fault::Forward);
        assert_eq!(
            fleet.points_of(ada).await,
            (1_000, 0),
            "{peer} {name}: no points held"
        );
        assert_eq!(
            fleet.cart_of(ada).await.len(),
            1,
            "{peer} {name}: cart unchanged"
        );
        for (order_id, status) in fleet.checkouts_of(ada).await {
            assert_eq!(status, "failed", "{peer} {name}");
            assert!(
                fleet.authorizations_of(order_id).await.is_empty(),
                "{peer} {name}"
            );
        }
    }
    assert!(
        fleet.submitted().await.is_empty(),
        "{peer}: no order submitted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_down_slow_or_failing_is_a_503_that_holds_nothing() {
    let fleet = support::start().await;
    checkout_survives(&fleet, &fleet.catalog_proxy, "catalog").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_down_slow_or_failing_is_a_503_that_holds_nothing() {
    let fleet = support::start().await;
    checkout_survives(&fleet, &fleet.cart_proxy, "cart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_points_down_slow_or_failing_is_a_503_that_holds_nothing() {
    let fleet = support::start().await;
    checkout_survives(&fleet, &fleet.points_proxy, "user-points").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_gateway_down_slow_or_failing_is_a_503_that_releases_the_points_and_voids_the_order(
) {
    let fleet = support::start().await;
    let mug = fleet.offering("Mug", 1_200, 120, Some(10)).await;
    for (name, fault) in faults() {
        let ada = customer(&fleet, mug).await;
        fleet.gateway_proxy.set(fault);
        let started = std::time::Instant::now();
        fleet
            .submit(ada, name, &paying("pm_card_visa", Some(50)))
            .await
            .expect_problem(503, "dependency_unavailable");
        // The authorize call and the void that follows it each wait at
        // most the timeout; the points were released before the answer.
        assert!(
            started.elapsed() < PEER_TIMEOUT * 4,
            "{name}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            fleet.points_of(ada).await,
            (1_000, 0),
            "{name}: points released"
        );
        assert_eq!(fleet.cart_of(ada).await.len(), 1, "{name}: cart unchanged");
        let [(order_id, status)] = &fleet.checkouts_of(ada).await[..] else {
            panic!("{name}: one checkout");
        };
        assert_eq!(status, "failed", "{name}");
        let order_id = *order_id;

        // A slow gateway still gets the authorize call, late, after
        // checkout gave up on it: let it land before the gateway is back.
        if let Fault::Delay(delay) = fault {
            tokio::time::sleep(delay + PEER_TIMEOUT).await;
        }
        // Back up: the order's void, left as a job while the gateway could
        // not take it, reaches it; an authorization that landed late is
        // voided by it, or refused once the order is marked.
        fleet.gateway_proxy.set(Fault::Forward);
        test_harness::eventually(
            Duration::from_secs(60),
            "the order is voided at the gateway",
            || async {
                // The job's backoff runs on checkout's clock.
                fleet.clock.advance(Duration::from_secs(5));
                tokio::time::sleep(Duration::from_millis(100)).await;
                fleet.order_voided(order_id).await
                    && fleet
                        .authorizations_of(order_id)
                        .await
                        .iter()
                        .all(|authorization| authorization["status"] == json!("voided"))
            },
        )
        .await;
        if let Fault::Delay(_) = fault {
            // The late authorization did land, and stands voided.
            let late = fleet.authorizations_of(order_id).await;
            assert_eq!(late.len(), 1, "{name}: {late:?}");
        }
    }
    assert!(fleet.submitted().await.is_empty(), "no order submitted");
}
