//! Two replicas of order and of dispatcher, each pair one consumer group on
//! one schema (the fleet of these journeys runs them so, see `main.rs`):
//! the group shares every topic's partitions between the two, a replica
//! that stops answering hands its share to the other, and one killed takes
//! its share back once the launcher has started it again. Orders placed
//! across each change are delivered, charged once, with one part and one
//! email per notification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use http_service::Role;

use crate::buying::place;
use crate::faults::finish;
use test_harness::Api;

use crate::world::{checkout_body, get, until, Person, World};

/// The two processes of each replicated service.
const REPLICATED: [[&str; 2]; 2] = [["order", "order-2"], ["dispatcher", "dispatcher-2"]];

/// Every topic's partitions that `process`'s consumer group gave it, from
/// its `/metrics`.
async fn assigned(world: &World, process: &str) -> BTreeMap<String, i64> {
    let text = reqwest::get(format!("{}/metrics", world.fleet.urls[process]))
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|error| panic!("{process} /metrics: {error}"))
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter_map(|line| line.strip_prefix("messaging_consumer_assigned_partitions{"))
        .filter_map(|line| {
            let (labels, value) = line.split_once("} ")?;
            let topic = labels
                .split(',')
                .find_map(|label| label.strip_prefix("topic=\""))?
                .trim_end_matches('"');
            Some((topic.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Waits until every one of `processes` holds a share of its group's
/// partitions and, together, they hold every partition of every topic
/// (each topic has 6).
async fn wait_for_split(world: &World, processes: &[&str]) {
    until(&format!("{processes:?} share the partitions"), || async {
        let mut shares = Vec::new();
        for process in processes {
            shares.push(assigned(world, process).await);
        }
        let mut topics: BTreeMap<&String, i64> = BTreeMap::new();
        for share in &shares {
            for (topic, held) in share {
                *topics.entry(topic).or_default() += held;
            }
        }
        let whole = !topics.is_empty() && topics.values().all(|held| *held == 6);
        let each = shares.iter().all(|share| share.values().sum::<i64>() > 0);
        (whole && each).then_some(())
    })
    .await;
}

/// One order through to delivery, with the invariants of a single order;
/// the customer and the order's id.
async fn an_order_is_delivered(world: &World, label: &str) -> (Person, String) {
    let shop = world.business(&format!("Replicas {label}")).await;
    let mug = world.offering(&shop, "Mug", 1_800, 900, Some(6)).await;
    let civilian = world.person(Role::Civilian, 300).await;
    world.add_to_cart(&civilian, &mug, 1).await;
    let order_id = place(world, &civilian, &checkout_body(300, Some("pm_card_visa"))).await;
    world
        .wait_for_status(&civilian, &order_id, "dispatched")
        .await;
    finish(world, (&shop, &mug, 6), &civilian, &order_id, 300).await;
    (civilian, order_id)
}

pub async fn two_replicas_share_partitions_and_one_hands_its_share_to_the_other(world: Arc<World>) {
    for processes in REPLICATED {
        wait_for_split(&world, &processes).await;
    }
    let (civilian, order_id) = an_order_is_delivered(&world, "both up").await;
    // Either replica answers for every order: they share one schema.
    let second = Api::new(world.fleet.urls["order-2"].clone());
    assert_eq!(
        get(&second, &format!("/v1/orders/{order_id}"), &civilian.token).await,
        world.order(&civilian, &order_id).await
    );

    // The second replicas hang (SIGSTOP): once their sessions lapse the
    // first ones hold everything, and orders go on.
    for [_, second] in REPLICATED {
        world.fleet.freeze(second);
    }
    let frozen = Instant::now();
    for [first, _] in REPLICATED {
        wait_for_split(&world, &[first]).await;
    }
    println!(
        "settled: replicas hung: the first replicas held every partition {:.1} s later",
        frozen.elapsed().as_secs_f64()
    );
    an_order_is_delivered(&world, "second hung").await;

    // Killed while hung, started again by the launcher: they take their
    // share back.
    for [_, second] in REPLICATED {
        world.fleet.crash(second).await;
    }
    for processes in REPLICATED {
        wait_for_split(&world, &processes).await;
    }
    an_order_is_delivered(&world, "second restarted").await;
}
