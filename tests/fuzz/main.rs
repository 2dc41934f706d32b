//! The fleet fuzzed from its own documents: schemathesis (pinned, installed
//! by `scripts/ensure-schemathesis` into `.local/venv`) calls every
//! operation of every service's `/openapi.json` as every caller — no token,
//! civilian, charity, officer, the business that owns the world's
//! resources, another business, admin and service — and fails on any 5xx,
//! any status, media type or body the operation's document does not
//! promise, and any refused request that changed data (`hooks.py`).
//!
//! The world it works on (`world.rs`) gives the path parameters real ids:
//! the demo shop's business and offering, an order paid and in the
//! business's queue, its checkout, authorization and notification, a points
//! reservation.
//!
//! Proof that it can fail: a second fleet with one route broken on purpose
//! (`HEYBLUE_FAULT_PANIC_ROUTE`, honoured by debug builds only) must make
//! the run fail and name that operation.
//!
//! `HEYBLUE_FUZZ_EXAMPLES` (cases per operation in the fuzzing phase,
//! default 8) and `HEYBLUE_FUZZ_SECONDS` (the most one service and caller
//! may take, default 120) set the budget; `HEYBLUE_FUZZ_SERVICES` (comma-separated)
//! fuzzes only those services.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

use fixture::Fleet;
use schemathesis::{Budget, Outcome, Run, Schemathesis};
use world::World;

#[path = "../fixture/mod.rs"]
mod fixture;
mod schemathesis;
mod world;

/// The services fuzzed, in this order: the ones whose data the others'
/// requests set off events about come first. The webshop documents no
/// operation (its `/v1` is the services' own).
const SERVICES: [&str; 8] = [
    "catalog",
    "cart",
    "user-points",
    "notification",
    "payment-gateway",
    "checkout",
    "order",
    "dispatcher",
];

/// The route the planted fault breaks, and the operation the run must name.
const PLANTED_ROUTE: &str = "GET /v1/offerings/{id}";

fn budget() -> Budget {
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    Budget {
        examples_per_operation: u32::try_from(number("HEYBLUE_FUZZ_EXAMPLES", 8)).unwrap_or(8),
        time: Duration::from_secs(number("HEYBLUE_FUZZ_SECONDS", 120)),
    }
}

fn services() -> Vec<&'static str> {
    match std::env::var("HEYBLUE_FUZZ_SERVICES") {
        Ok(chosen) => SERVICES
            .into_iter()
            .filter(|service| chosen.split(',').any(|name| name.trim() == *service))
            .collect(),
        Err(_) => SERVICES.to_vec(),
    }
}

/// Every operation of every service, as every caller.
async fn every_operation_of_every_service_holds_to_its_document_for_every_caller(
) -> Result<(), Failed> {
    let fuzzer = Schemathesis::install();
    let fleet = Fleet::start().await;
    let world = World::set_up(&fleet).await;
    let budget = budget();
    let started = Instant::now();
    let mut table = Vec::new();
    let mut failures = Vec::new();
    for service in services() {
        for (seed, caller) in (1u64..).zip(&world.callers) {
            let outcome = fuzzer
                .run(Run {
                    url: &fleet.urls[service],
                    token: caller.token.as_deref(),
                    config: world.config(service),
                    fingerprint: world.fingerprint(&fleet, service),
                    budget,
                    seed,
                })
                .await;
            eprintln!(
                "fuzz: {service:<16} as {:<15} {:>5} cases in {:>5.1} s: {}",
                caller.name,
                outcome.cases,
                outcome.took.as_secs_f64(),
                verdict(&outcome)
            );
            table.push((service, caller.name, outcome.cases));
            if !outcome.passed {
                failures.push(format!(
                    "{service} as {}: {}\n{}",
                    caller.name,
                    verdict(&outcome),
                    outcome.output
                ));
            }
        }
    }
    let total: u64 = table.iter().map(|(_, _, cases)| cases).sum();
    eprintln!(
        "fuzz: {total} cases against {} services as {} callers in {:.0} s",
        services().len(),
        world.callers.len(),
        started.elapsed().as_secs_f64()
    );
    let stopped = fleet.stop().await;
    if !failures.is_empty() {
        return Err(format!(
            "the fuzzer found {} failing runs:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        )
        .into());
    }
    if !stopped.success() {
        return Err(format!("the launcher did not stop cleanly: {stopped}").into());
    }
    Ok(())
}

/// A route that panics makes the run fail, naming that operation.
async fn a_planted_panic_fails_the_fuzzing_run() -> Result<(), Failed> {
    let fuzzer = Schemathesis::install();
    let fleet = Fleet::start_with(&[("HEYBLUE_FAULT_PANIC_ROUTE", PLANTED_ROUTE)]).await;
    let outcome = fuzzer
        .run(Run {
            url: &fleet.urls["catalog"],
            token: None,
            // The route panics whatever its id: no world needed.
            config: String::new(),
            fingerprint: "[]".to_owned(),
            budget: Budget {
                examples_per_operation: 5,
                time: Duration::from_secs(120),
            },
            seed: 1,
        })
        .await;
    eprintln!(
        "fuzz: catalog with {PLANTED_ROUTE} broken: {} cases in {:.1} s: {}",
        outcome.cases,
        outcome.took.as_secs_f64(),
        verdict(&outcome)
    );
    let stopped = fleet.stop().await;
    if outcome.passed {
        return Err(format!(
            "the run passed although {PLANTED_ROUTE} panics:\n{}",
            outcome.output
        )
        .into());
    }
    if outcome.failing_operations != [PLANTED_ROUTE] {
        return Err(format!(
            "the run should fail on {PLANTED_ROUTE} alone, it names {:?}:\n{}",
            outcome.failing_operations, outcome.output
        )
        .into());
    }
    if !outcome.output.contains("Server error") {
        return Err(format!("the failure is not a server error:\n{}", outcome.output).into());
    }
    if !stopped.success() {
        return Err(format!("the launcher did not stop cleanly: {stopped}").into());
    }
    Ok(())
}

fn verdict(outcome: &Outcome) -> String {
    if outcome.passed {
        "passed".to_owned()
    } else if outcome.failing_operations.is_empty() {
        "FAILED".to_owned()
    } else {
        format!("FAILED on {}", outcome.failing_operations.join(", "))
    }
}

type Test = fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Failed>>>>;

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    // Each test runs a fleet of its own; two at once would share two cores.
    args.test_threads = Some(1);
    let run = |test: Test| {
        move || {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(test())
        }
    };
    let trials = vec![
        Trial::test(
            "a_planted_panic_fails_the_fuzzing_run",
            run(|| Box::pin(a_planted_panic_fails_the_fuzzing_run())),
        ),
        Trial::test(
            "every_operation_of_every_service_holds_to_its_document_for_every_caller",
            run(|| {
                Box::pin(every_operation_of_every_service_holds_to_its_document_for_every_caller())
            }),
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
