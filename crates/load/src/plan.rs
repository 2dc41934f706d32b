//! The benchmark's order of things: start the fleet and time it, note its
//! idle memory, measure the machine's limits on the fleet's own servers,
//! open the shop and sign up the buyers, count what one order costs the
//! database, then the sweep, the sustained run and (if asked) a closed
//! loop; at the end the report and the chart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{stream, StreamExt};
use mail::testing::SmtpCatcher;
use time::OffsetDateTime;

use crate::database::{Database, Rows};
use crate::fleet::{bin_dir, Fleet, LaunchOptions};
use crate::journey::{buy, status, JourneyOptions};
use crate::load::{run, Bench, Load};
use crate::processes::Watched;
use crate::report::{Census, Results};
use crate::shop::{client, sign_up, Shop};
use crate::stats::Recorder;
use crate::{chart, limits, Args};

/// How long the census waits for its orders' last events to be handled.
const SETTLE: Duration = Duration::from_secs(5);
/// How long the idle fleet is watched for its own commits.
const IDLE_WINDOW: Duration = Duration::from_secs(5);
/// Buyers at once in the census.
const CENSUS_CONCURRENCY: usize = 8;
/// The least pause between runs.
const PAUSE: Duration = Duration::from_secs(2);
/// The most a run's backlog is waited for before the next run.
const SETTLE_MAX: Duration = Duration::from_secs(60);
/// How long the count of emails must stand still to be taken as final.
const EMAILS_QUIET: Duration = Duration::from_secs(2);

pub async fn benchmark(args: Args) -> anyhow::Result<()> {
    let mut results = Results {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: load_average(),
        replicas: args.replicas.clone(),
        ..Results::default()
    };

    // The fleet's emails go over SMTP, as a deployment's do, to a server
    // that counts them.
    let mail = SmtpCatcher::start_counting().await;
    eprintln!("heyblue-load | starting the fleet");
    let fleet = Fleet::start(
        &bin_dir()?,
        &LaunchOptions {
            replicas: args.replicas.clone(),
            rust_log: args.rust_log.clone(),
            smtp_url: mail.url(),
        },
    )
    .await?;
    results.started = fleet.started;
    eprintln!(
        "heyblue-load | fleet ready {:.2} s after launch, banner at {:.2} s",
        fleet.started.ready.as_secs_f64(),
        fleet.started.banner.as_secs_f64()
    );
    let outcome = measure(&args, &fleet, &mut results).await;
    results.emails = emails_settled(&mail).await;
    let (errors_logged, first_errors) = fleet.errors_logged();
    results.errors_logged = errors_logged;
    results.load_after = load_average();
    eprintln!("heyblue-load | stopping the fleet");
    fleet.stop().await?;
    outcome?;

    let report = results.markdown();
    println!("{report}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    if let Some(dir) = args.chart.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    write(&args.out, &report)?;
    if !first_errors.is_empty() {
        let path = args.out.with_extension("errors.log");
        write(&path, &(first_errors.join("\n") + "\n"))?;
    }
    let points = chart::points(&results.sweep);
    if points.len() >= 2 {
        let title = format!(
            "Hey, Blue! fleet on {} cores: orders against offered rate{}",
            results.cores,
            results
                .replicas
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        chart::draw(&points, &title, &args.chart)?;
        eprintln!("heyblue-load | chart written to {}", args.chart.display());
    }
    Ok(())
}

async fn measure(args: &Args, fleet: &Fleet, results: &mut Results) -> anyhow::Result<()> {
    let watched = watched(fleet);
    tokio::time::sleep(PAUSE).await;
    for process in &watched {
        if let Some(memory) = process.memory() {
            results
                .idle_rss
                .insert(process.name().to_owned(), memory.rss_mib);
        }
    }

    let database = Database::connect(&fleet.admin_url).await?;
    if !args.skip_limits {
        eprintln!(
            "heyblue-load | commit ceiling: pgbench, {} clients, {} s each",
            args.db_clients, args.pgbench_secs
        );
        results.ceiling =
            Some(limits::commit_ceiling(&database, args.db_clients, args.pgbench_secs).await?);
        eprintln!(
            "heyblue-load | broker produce rate: {} messages",
            args.produce_messages
        );
        results.produce =
            Some(limits::produce_rate(&fleet.kafka_bootstrap, args.produce_messages).await?);
    }

    eprintln!(
        "heyblue-load | opening the shop, signing up {} buyers",
        args.users
    );
    let http = client()?;
    let shop = Arc::new(Shop::open(fleet, http.clone()).await?);
    let users = Arc::new(sign_up(fleet, &http, args.users).await?);
    let journey = JourneyOptions {
        lines: args.lines,
        points: args.points,
        poll: Duration::from_millis(args.poll_ms),
        follow: true,
        give_up_after: Duration::from_secs(30),
    };
    let bench = Bench {
        shop,
        users,
        journey,
        database,
        watched: watched.clone(),
    };
    let idle = idle_rates(&bench.database).await?;
    if args.census_orders > 0 {
        results.census = Some(census(&bench, args.census_orders, idle).await?);
    }

    for rate in &args.rates {
        settle(&bench.database, idle).await?;
        let step = run(&bench, Load::Open { rate: *rate }, secs(args.step_secs)).await?;
        results.sweep.push(step);
    }
    if args.sustain > 0.0 {
        settle(&bench.database, idle).await?;
        results.sustained = Some(
            run(
                &bench,
                Load::Open { rate: args.sustain },
                secs(args.sustain_secs),
            )
            .await?,
        );
    }
    if args.closed > 0 {
        settle(&bench.database, idle).await?;
        results.closed = Some(
            run(
                &bench,
                Load::Closed {
                    concurrency: args.closed,
                },
                secs(args.closed_secs),
            )
            .await?,
        );
    }
    for process in &watched {
        if let Some(memory) = process.memory() {
            results
                .peak_rss
                .insert(process.name().to_owned(), memory.peak_mib);
        }
    }
    Ok(())
}

/// The emails the fleet sent, once notification has caught up: their
/// number no longer grows for [`EMAILS_QUIET`], or at most [`SETTLE_MAX`].
async fn emails_settled(mail: &SmtpCatcher) -> usize {
    let deadline = Instant::now() + SETTLE_MAX;
    let mut last = mail.accepted();
    while Instant::now() < deadline {
        tokio::time::sleep(EMAILS_QUIET).await;
        let now = mail.accepted();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

/// Every process worth watching: the services, the launcher (which runs
/// the embedded broker), PostgreSQL, and this load generator.
fn watched(fleet: &Fleet) -> Vec<Watched> {
    let mut watched: Vec<Watched> = fleet
        .processes()
        .into_iter()
        .map(|(name, pid)| Watched::Single { name, pid })
        .collect();
    if let Some(pid) = fleet.launcher_pid() {
        watched.push(Watched::Single {
            name: "heyblue-local (broker)".to_owned(),
            pid,
        });
    }
    if let Some(postmaster) = fleet.postmaster_pid() {
        watched.push(Watched::Postgres { postmaster });
    }
    watched.push(Watched::Single {
        name: "heyblue-load".to_owned(),
        pid: std::process::id(),
    });
    watched
}

/// What the idle fleet commits per second on its own (periodic tasks,
/// sweeps, polls), taken off what load is charged with.
#[derive(Debug, Clone, Copy)]
struct Idle {
    commits: f64,
    writes: f64,
    statements: Option<f64>,
}

async fn idle_rates(database: &Database) -> anyhow::Result<Idle> {
    let start = database.counters().await?;
    let began = Instant::now();
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle = database.counters().await?.since(&start);
    let seconds = began.elapsed().as_secs_f64();
    Ok(Idle {
        commits: idle.commits as f64 / seconds,
        writes: idle.write_transactions as f64 / seconds,
        statements: idle
            .statements
            .map(|statements| statements as f64 / seconds),
    })
}

/// Waits until the fleet writes hardly more than it does idle, so that one
/// run's backlog does not weigh on the next; at most [`SETTLE_MAX`].
async fn settle(database: &Database, idle: Idle) -> anyhow::Result<()> {
    let deadline = Instant::now() + SETTLE_MAX;
    tokio::time::sleep(PAUSE).await;
    let mut last = database.counters().await?;
    let mut at = Instant::now();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = database.counters().await?;
        let writes = now.since(&last).write_transactions as f64 / at.elapsed().as_secs_f64();
        (last, at) = (now, Instant::now());
        if writes <= idle.writes * 2.0 + 10.0 {
            return Ok(());
        }
    }
    eprintln!(
        "heyblue-load | the fleet was still busy {} s after the run",
        SETTLE_MAX.as_secs()
    );
    Ok(())
}

/// What one order costs the database: `orders` orders placed without
/// polling them, counted from before the first until the fleet settled,
/// less what the idle fleet commits in that time.
async fn census(bench: &Bench, orders: usize, idle: Idle) -> anyhow::Result<Census> {
    eprintln!("heyblue-load | counting the database's commits for {orders} orders");
    let database = &bench.database;

    let rows_before = database.rows_written().await?;
    let before = database.counters().await?;
    let began = Instant::now();
    let recorder = Recorder::default();
    let options = JourneyOptions {
        follow: false,
        ..bench.journey.clone()
    };
    let window_end = OffsetDateTime::now_utc() + Duration::from_secs(3600);
    let placed: Vec<_> = stream::iter(0..orders)
        .map(|_| async {
            let user = bench.users.take()?;
            let order = buy(&bench.shop, &user, &options, &recorder, window_end).await;
            Some((user, order?))
        })
        .buffer_unordered(CENSUS_CONCURRENCY)
        .filter_map(|placed| async move { placed })
        .collect()
        .await;
    tokio::time::sleep(SETTLE).await;
    let work = database.counters().await?.since(&before);
    let rows_after = database.rows_written().await?;
    let elapsed = began.elapsed().as_secs_f64();

    let mut processing = 0;
    for (user, order_id) in &placed {
        if status(&bench.shop, user, *order_id)
            .await
            .is_some_and(|status| crate::journey::is_processing_or_later(&status))
        {
            processing += 1;
        }
    }
    for (user, _) in placed.iter().cloned() {
        bench.users.give_back(user);
    }
    let count = placed.len().max(1) as f64;
    let errors = recorder.snapshot().errors;
    if !errors.is_empty() {
        eprintln!("heyblue-load | census errors: {errors:?}");
    }
    Ok(Census {
        orders: placed.len(),
        processing,
        commits_per_order: (work.commits as f64 - idle.commits * elapsed) / count,
        write_transactions_per_order: (work.write_transactions as f64 - idle.writes * elapsed)
            / count,
        statements_per_order: work
            .statements
            .zip(idle.statements)
            .map(|(statements, idle)| (statements as f64 - idle * elapsed) / count),
        rows_per_order: rows_per_order(&rows_before, &rows_after, count),
        idle_commits_per_second: idle.commits,
        idle_write_transactions_per_second: idle.writes,
    })
}

/// Rows each table had written per order between two readings; tables
/// that wrote nothing are left out.
fn rows_per_order(
    before: &BTreeMap<(String, String), Rows>,
    after: &BTreeMap<(String, String), Rows>,
    orders: f64,
) -> BTreeMap<(String, String), Rows> {
    after
        .iter()
        .map(|(table, rows)| {
            let earlier = before.get(table).copied().unwrap_or_default();
            (table.clone(), rows.per_order_since(&earlier, orders))
        })
        .filter(|(_, rows)| rows.total() > 0.0)
        .collect()
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// `/proc/loadavg`'s first three figures.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("failed to write {}", path.display()))?;
    eprintln!("heyblue-load | report written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_per_order_are_the_growth_of_each_table_shared_out() {
        let table = |name: &str| ("orders".to_owned(), name.to_owned());
        let rows = |inserted: f64, updated: f64| Rows {
            inserted,
            updated,
            deleted: 0.0,
        };
        let before = BTreeMap::from([
            (table("orders"), rows(100.0, 50.0)),
            (table("idle"), rows(7.0, 0.0)),
        ]);
        let after = BTreeMap::from([
            (table("orders"), rows(200.0, 350.0)),
            (table("idle"), rows(7.0, 0.0)),
            (table("history"), rows(300.0, 0.0)),
        ]);
        let per_order = rows_per_order(&before, &after, 100.0);
        assert_eq!(per_order[&table("orders")], rows(1.0, 3.0));
        assert_eq!(per_order[&table("history")], rows(3.0, 0.0));
        assert!(!per_order.contains_key(&table("idle")));
    }
}
