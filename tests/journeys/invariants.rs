//! What must hold after every journey, checked from the public APIs and the
//! local third parties alone: points and money conserved, stock conserved,
//! one capture per order, one email per notification, no order left open
//! without a reason.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use test_harness::eventually;

use crate::world::{get, until, Person, World, SETTLE};

/// Where an order may rest at the end of a journey.
const RESTING: [&str; 2] = ["delivered", "cancelled"];

/// Every entry of the person's points ledger, all pages.
async fn ledger(world: &World, person: &Person) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut path = "/v1/points/ledger?limit=200".to_owned();
    loop {
        let page = get(&world.points, &path, &person.token).await;
        entries.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/points/ledger?limit=200&cursor={cursor}"),
            None => return entries,
        }
    }
}

/// Sums of the ledger's entries by kind.
fn sums(entries: &[Value]) -> HashMap<String, i64> {
    let mut sums = HashMap::new();
    for entry in entries {
        *sums
            .entry(entry["kind"].as_str().expect("kind").to_owned())
            .or_default() += entry["points"].as_i64().expect("points");
    }
    sums
}

/// Every point the person was given is available, reserved, spent or
/// donated, by the ledger's own arithmetic, and nothing is left reserved
/// once no checkout of theirs is in flight. Returns the ledger's sums.
pub async fn points_conserved(world: &World, person: &Person) -> HashMap<String, i64> {
    let entries = ledger(world, person).await;
    let sums = sums(&entries);
    let kind = |name: &str| sums.get(name).copied().unwrap_or_default();
    let balance = world.balance(person).await;
    let field = |name: &str| balance[name].as_i64().expect(name);
    let earned = kind("awarded") + kind("received");
    let spent = kind("spent") - kind("refunded");
    assert_eq!(field("lifetime_earned"), earned, "{balance} {sums:?}");
    assert_eq!(field("lifetime_spent"), spent, "{balance} {sums:?}");
    assert_eq!(
        field("available") + field("reserved"),
        earned - spent - kind("donated"),
        "{balance} {sums:?}"
    );
    assert_eq!(
        field("reserved"),
        kind("reserved") - kind("released") - kind("spent"),
        "{balance} {sums:?}"
    );
    assert_eq!(field("reserved"), 0, "nothing left reserved: {balance}");
    sums
}

/// The order settled: it rests (delivered or cancelled with a reason),
/// what the provider kept is what its live parts cost, captured at most
/// once, and its refunds of money and points are the ledger's and the
/// gateway's. Returns the order.
pub async fn order_settled(world: &World, person: &Person, order_id: &str) -> Value {
    let order = world.order(person, order_id).await;
    let status = order["status"].as_str().expect("status");
    assert!(RESTING.contains(&status), "the order rests: {order}");
    if status == "cancelled" {
        assert!(
            order["cancellation_reason"].is_string(),
            "a cancelled order says why: {order}"
        );
    }

    // What the parts still standing cost.
    let live = live_lines(&order);
    let owed: i64 = live
        .iter()
        .map(|line| line["amount_due_minor"].as_i64().expect("amount due"))
        .sum();
    let refunded_money: i64 = order["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|refund| refund["amount_minor"].as_i64().expect("amount"))
        .sum();

    match order["payment"]["authorization_id"].as_str() {
        None => assert_eq!(order["total_minor"], 0, "only points pay alone: {order}"),
        Some(authorization_id) => {
            // Refunds are carried out by jobs: wait for them to be answered.
            let payment = until(
                "the gateway settled the order's captures and refunds",
                || async {
                    let payment = world.payment(authorization_id).await;
                    let settled = |list: &str| {
                        payment[list]
                            .as_array()
                            .is_some_and(|entries| entries.iter().all(|e| e["status"] != "pending"))
                    };
                    // An order that never captured voids its authorization.
                    let tried = payment["captures"]
                        .as_array()
                        .is_some_and(|c| !c.is_empty());
                    let standing = !tried && payment["status"] == "authorized";
                    (settled("captures") && settled("refunds") && !standing).then_some(payment)
                },
            )
            .await;
            let succeeded = |list: &str| -> Vec<i64> {
                payment[list]
                    .as_array()
                    .expect(list)
                    .iter()
                    .filter(|entry| entry["status"] == "succeeded")
                    .map(|entry| entry["amount_minor"].as_i64().expect("amount"))
                    .collect()
            };
            let captures = succeeded("captures");
            let refunds: i64 = succeeded("refunds").iter().sum();
            assert!(captures.len() <= 1, "captured at most once: {payment}");
            let kept = captures.iter().sum::<i64>() - refunds;
            assert_eq!(
                kept, owed,
                "the provider keeps what the live parts cost: {payment} {order}"
            );
            assert_eq!(
                refunds, refunded_money,
                "the order's refunds are the gateway's: {payment} {order}"
            );
            let tried = payment["captures"]
                .as_array()
                .is_some_and(|c| !c.is_empty());
            if !tried {
                assert!(
                    ["voided", "declined"].contains(&payment["status"].as_str().unwrap_or("")),
                    "an uncaptured authorization is not left standing: {payment}"
                );
            }
        }
    }

    // Points: user-points carries out the order's spend, release and
    // refunds as it reads the order's commands, on its own time; wait until
    // nothing is held for the order and the refunds have reached the ledger.
    // What the ledger gave back for this order is the order's refunds.
    let refunded_points: i64 = order["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|refund| refund["points"].as_i64().expect("points"))
        .sum();
    let for_order = |entries: &[Value], kind: &str| -> i64 {
        entries
            .iter()
            .filter(|entry| entry["order_id"] == order_id && entry["kind"] == kind)
            .map(|entry| entry["points"].as_i64().expect("points"))
            .sum()
    };
    let entries = until("the ledger settled the order's points", || async {
        let entries = ledger(world, person).await;
        let sum = |kind: &str| for_order(&entries, kind);
        let held = sum("reserved") - sum("released") - sum("spent");
        (held == 0 && sum("refunded") >= refunded_points).then_some(entries)
    })
    .await;
    let for_order = |kind: &str| for_order(&entries, kind);
    assert_eq!(
        for_order("refunded"),
        refunded_points,
        "points refunded: {order}"
    );
    let applied = order["points_applied"].as_i64().expect("points applied");
    let kept_points = for_order("spent") - for_order("refunded");
    if status == "cancelled" && for_order("spent") == 0 {
        assert_eq!(for_order("released"), applied, "points released: {order}");
    } else {
        let live_points: i64 = live
            .iter()
            .map(|line| line["points_applied"].as_i64().expect("points applied"))
            .sum();
        assert_eq!(
            kept_points, live_points,
            "points kept are the live parts': {order}"
        );
    }
    order
}

/// The lines of the order's parts still standing: none of a cancelled
/// order, none of a declined or cancelled part.
fn live_lines(order: &Value) -> Vec<&Value> {
    if order["status"] == "cancelled" {
        return Vec::new();
    }
    let live: Vec<&str> = order["fulfillments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|part| !["declined", "cancelled"].contains(&part["status"].as_str().unwrap_or("")))
        .filter_map(|part| part["business_id"].as_str())
        .collect();
    order["lines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|line| live.contains(&line["business_id"].as_str().unwrap_or("")))
        .collect()
}

/// Limited stock is conserved: what is left is what there was, less what
/// the live parts of `orders` hold of it.
pub async fn stock_conserved(world: &World, offering: &str, initial: i64, orders: &[Value]) {
    let held: i64 = orders
        .iter()
        .flat_map(live_lines)
        .filter(|line| line["offering_id"] == offering)
        .map(|line| line["quantity"].as_i64().unwrap_or_default())
        .sum();
    until("the stock settles", || async {
        (world.stock(offering).await == Some(initial - held)).then_some(())
    })
    .await;
}

/// The person got an email for each notification in their inbox and for
/// nothing else, and no more arrive. A notification's email may be sent
/// again when the mail server's answer was lost (delivery is at least
/// once), but always under the notification's own `Message-ID`, which the
/// person's mail client shows as one message; so the test counts messages
/// by that id.
pub async fn one_email_per_notification(world: &World, person: &Person) {
    let emailed = || -> BTreeSet<String> {
        world
            .smtp
            .messages_to(&person.email)
            .iter()
            .filter_map(|mail| mail.header("Message-ID"))
            .map(|id| id.trim_matches(['<', '>']).to_owned())
            .collect()
    };
    let notified = || async {
        world
            .inbox(person)
            .await
            .iter()
            .map(|item| {
                format!(
                    "{}@notification.heyblue",
                    item["id"].as_str().unwrap_or("?")
                )
            })
            .collect::<BTreeSet<String>>()
    };
    let expected = notified().await;
    eventually(SETTLE, "an email for every notification", || async {
        emailed().is_superset(&expected)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(emailed(), notified().await, "one message per notification");
}
