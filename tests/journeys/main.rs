//! The journeys of the order capability on the whole fleet, as its users
//! meet it: the eight real binaries started by the launcher (the README's
//! run command's code path) with the embedded broker (or, with
//! `HEYBLUE_TEST_BROKER=tansu`, tansu as a process of its own, which the
//! broker fault journeys kill and restart) and a private
//! PostgreSQL (order and dispatcher each as two replicas), driven only
//! through the public REST APIs, as the webshop and
//! businesses would. Local third parties stand in for the outside world
//! only: an SMTP recorder receives every email, and a business's own
//! server takes its parts by webhook.
//!
//! One fleet serves every journey of a run. Each journey signs up its own
//! people and businesses, so journeys run side by side and again on the
//! same fleet without meeting, and each ends by checking the invariants
//! (`invariants.rs`) on what it touched. After the last journey, nothing
//! may have been dead-lettered anywhere in the fleet.
//!
//! This binary has its own harness (libtest-mimic) so that one fleet
//! serves all its tests; it takes the usual test arguments (a filter,
//! `--exact`, `--list`, `--test-threads`), and `JOURNEY_ROUNDS=2` plays
//! every journey twice on the same fleet.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Trial};
use mail::testing::SmtpCatcher;
use shared_events::Topic;

use business::WebhookBusiness;
use fixture::Fleet;
use world::World;

mod business;
mod buying;
mod compensation;
mod faults;
#[path = "../fixture/mod.rs"]
mod fixture;
mod invariants;
mod plugins;
mod refusals;
mod replicas;
mod world;

type JourneyFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// One journey: an async function of the shared world.
pub type Journey = fn(Arc<World>) -> JourneyFuture;

/// Turns `async fn name(world: Arc<World>)` into a [`Journey`] named `name`.
macro_rules! journeys {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|world| Box::pin($module::$name(world))) as Journey)),*]
    };
}

fn all() -> Vec<(&'static str, Journey)> {
    journeys![
        buying::a_civilian_pays_with_points_and_card_and_two_businesses_deliver_their_parts,
        buying::a_charity_pays_entirely_with_points_that_an_officer_donated,
        buying::three_d_secure_approved_on_the_gateway_page_completes_the_order,
        buying::a_checkout_submitted_again_with_its_key_places_one_order,
        refusals::a_declined_card_charges_nothing_and_leaves_cart_and_points_as_they_were,
        refusals::two_buyers_race_for_the_last_unit_and_exactly_one_gets_it,
        compensation::a_capture_that_fails_cancels_and_gives_back_stock_and_points,
        compensation::a_business_declining_its_part_refunds_exactly_that_part,
        compensation::a_customer_cancels_and_is_refused_once_a_part_is_confirmed,
        plugins::a_webhook_business_gets_its_part_once_and_answers_by_signed_webhook,
        plugins::an_email_business_acts_through_the_links_it_was_mailed,
    ]
}

/// Journeys with a fault in the middle: a service killed, the broker or
/// the database down.
fn faults() -> Vec<(&'static str, Journey)> {
    journeys![
        faults::an_order_survives_the_order_service_killed_mid_journey,
        faults::a_capture_survives_the_payment_gateway_killed_mid_journey,
        faults::parts_survive_the_dispatcher_killed_mid_journey,
        faults::a_checkout_survives_the_checkout_service_killed_and_is_retried,
        faults::an_order_rides_out_a_postgres_restart,
        faults::an_order_rides_out_the_broker_down_for_ten_seconds,
        replicas::two_replicas_share_partitions_and_one_hands_its_share_to_the_other,
    ]
}

/// Fault journeys only a broker of its own process can play (tansu, with
/// `HEYBLUE_TEST_BROKER=tansu`): coming back without its state.
fn broker_process_faults() -> Vec<(&'static str, Journey)> {
    journeys![faults::an_order_placed_while_the_broker_is_away_survives_its_return_without_state]
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Journeys wait on the fleet, not on this process: several at once.
    args.test_threads.get_or_insert(6);
    let rounds: usize = std::env::var("JOURNEY_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(1);
    let (journeys, mut faults) = (all(), faults());
    if test_harness::BrokerKind::from_env() == test_harness::BrokerKind::Tansu {
        faults.extend(broker_process_faults());
    }
    if args.list {
        let trials = journeys
            .iter()
            .chain(&faults)
            .map(|(name, _)| Trial::test(*name, || Ok(())))
            .collect();
        return libtest_mimic::run(&args, trials).exit_code();
    }

    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let world = runtime.block_on(async {
        let smtp = SmtpCatcher::start().await;
        let webhooks = WebhookBusiness::start().await;
        // Two replicas of order and dispatcher serve every journey.
        let fleet = Fleet::start_with(&[
            ("HEYBLUE_SMTP_URL", &smtp.url()),
            ("HEYBLUE_REPLICAS", "order=2,dispatcher=2"),
        ])
        .await;
        Arc::new(World::new(fleet, smtp, webhooks))
    });

    let mut failed = false;
    for round in 1..=rounds {
        if rounds > 1 {
            println!("\njourney round {round} of {rounds} on the same fleet");
        }
        let trials = |journeys: &[(&'static str, Journey)]| {
            journeys
                .iter()
                .map(|(name, journey)| {
                    let (journey, world, handle) =
                        (*journey, world.clone(), runtime.handle().clone());
                    Trial::test(*name, move || {
                        handle.block_on(journey(world));
                        Ok(())
                    })
                })
                .collect()
        };
        failed |= libtest_mimic::run(&args, trials(&journeys)).has_failed();
        // A fault would fail the requests of journeys beside it: one at a time.
        println!("\nfault journeys, one at a time");
        let one_at_a_time = Arguments {
            test_threads: Some(1),
            ..args.clone()
        };
        failed |= libtest_mimic::run(&one_at_a_time, trials(&faults)).has_failed();
    }

    let dead = runtime.block_on(dead_letters(&world));
    if !dead.is_empty() {
        eprintln!("dead letters after the journeys: {dead:?}");
        failed = true;
    }
    let Ok(world) = Arc::try_unwrap(world) else {
        panic!("a journey still holds the fleet");
    };
    let log = world.fleet.log();
    let secrets = secrets(&world);
    let status = runtime.block_on(world.fleet.stop());
    if !status.success() {
        eprintln!("the launcher did not stop cleanly: {status}");
        failed = true;
    }
    // Everything the fleet logged through every journey, its shutdown
    // included: no token, signing secret or password may be in it.
    let leaks = log.leaks(&secrets);
    for (secret, line) in leaks.iter().take(20) {
        eprintln!("a secret in the fleet's log: {secret:?} in {line}");
    }
    if !leaks.is_empty() {
        eprintln!("{} log lines give a secret away", leaks.len());
        failed = true;
    }
    if failed {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

/// What the fleet was given that must never be logged: the tokens'
/// signing secret, the database roles' passwords, the webhook businesses'
/// signing secrets (tokens themselves are found by their shape).
fn secrets(world: &World) -> Vec<String> {
    std::iter::once(fixture::JWT_SECRET.to_owned())
        .chain(fleet::schemas().into_iter().map(pg_cluster::role_password))
        .chain(world.webhooks.secrets())
        .collect()
}

/// Every message on the fleet's dead-letter topics: (topic, event type).
async fn dead_letters(world: &World) -> Vec<(String, Option<String>)> {
    let mut dead = Vec::new();
    for topic in Topic::ALL {
        let name = topic.dlq_name();
        let messages =
            messaging::inspect::read_topic(&world.bootstrap, name, Duration::from_millis(200))
                .await
                .unwrap_or_else(|error| panic!("read {name}: {error:#}"));
        dead.extend(
            messages
                .iter()
                .map(|message| (name.to_owned(), message.event_type())),
        );
    }
    dead
}
