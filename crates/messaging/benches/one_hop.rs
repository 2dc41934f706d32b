//! One hop of the event chain, measured: a transaction commits an event to
//! the outbox in one process (the relay publishes it), and a consumer in
//! another process handles it in its own transaction.
//!
//! `cargo bench -p messaging --bench one_hop` starts a private PostgreSQL
//! cluster with fsync on (as the local stack runs it) and the embedded
//! broker (or uses the one `KAFKA_BOOTSTRAP` names), re-runs itself as the consumer process, and reports the latency
//! from commit to handling (both read from the database clock) and the rate
//! of events handled. Before that it measures the ceiling the burst is
//! held against: the same writers' fsync'd one-row commits on the same
//! server, without `NOTIFY` and with it (which PostgreSQL serialises), and
//! it prints the burst's rate as a share of the first. Options: `--paced N` (events sent one at a time,
//! default 2000), `--burst N` (events sent by concurrent writers, default
//! 20000), `--writers N` (default 8); `HEYBLUE_KAFKA_FETCH_WAIT_MS` sets the
//! consumer's `fetch.wait.max.ms` as in the services.
//!
//! Each phase also prints the whole machine's CPU (`/proc/stat`: every
//! process, PostgreSQL and the broker included) per event handled: what a
//! hop of the chain costs when nothing else runs.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use messaging::embedded::EmbeddedBroker;
use messaging::{
    ConsumerConfig, ConsumerRunner, Handler, HandlerError, MessagingMetrics, Relay, RelayConfig,
};
use pg_cluster::{ClusterOptions, PgCluster};
use shared_events::connection::{ConnectionEvent, PointsAwarded};
use shared_events::{Envelope, Topic};
use sqlx::{PgConnection, PgPool};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PRODUCER_SCHEMA: &str = "bench_producer";
const CONSUMER_SCHEMA: &str = "bench_consumer";
const PARTITIONS: i32 = 6;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(i) = args.iter().position(|a| a == "--consumer") {
        let url = args.get(i + 1).context("--consumer needs a database URL")?;
        let bootstrap = args
            .get(i + 2)
            .context("--consumer needs a bootstrap address")?;
        return runtime.block_on(consume(url, bootstrap));
    }
    let option = |name: &str, default: usize| -> usize {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    runtime.block_on(produce(
        option("--paced", 2000),
        option("--burst", 20000),
        option("--writers", 8),
    ))
}

/// The consumer process: handles awards until its stdin closes.
async fn consume(url: &str, bootstrap: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(url).await?;
    messaging::schema::install(&pool).await?;
    let mut config = ConsumerConfig::new(bootstrap, "one-hop-bench");
    if let Ok(wait) = std::env::var("HEYBLUE_KAFKA_FETCH_WAIT_MS") {
        config.fetch_wait_max_ms = wait.parse()?;
    }
    let runner = ConsumerRunner::new(config, pool, MessagingMetrics::unregistered()).on(Recorder);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut buffer = [0u8; 64];
        while let Ok(n) = tokio::io::stdin().read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
        stop.cancel();
    });
    runner.run(shutdown).await
}

struct Recorder;

#[async_trait]
impl Handler<ConnectionEvent> for Recorder {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Envelope<ConnectionEvent>,
    ) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO received (event_id, handled_at) VALUES ($1, clock_timestamp())")
            .bind(event.event_id)
            .execute(conn)
            .await?;
        Ok(())
    }
}

async fn produce(paced: usize, burst: usize, writers: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cluster = tokio::task::block_in_place(|| {
        PgCluster::start_with_watchdog(dir.path(), ClusterOptions::local_stack())
    })?;
    let db = pg_cluster::provision(
        &cluster.admin_url(),
        "one_hop",
        &[PRODUCER_SCHEMA, CONSUMER_SCHEMA],
    )
    .await?;
    let admin = PgPool::connect(&db.admin_url()).await?;
    let producer = PgPool::connect(&db.url(PRODUCER_SCHEMA)).await?;
    messaging::schema::install(&producer).await?;
    sqlx::query("CREATE TABLE sent (event_id UUID PRIMARY KEY, sent_at TIMESTAMPTZ NOT NULL)")
        .execute(&producer)
        .await?;
    let consumer_pool = PgPool::connect(&db.url(CONSUMER_SCHEMA)).await?;
    sqlx::query(
        "CREATE TABLE received (event_id UUID PRIMARY KEY, handled_at TIMESTAMPTZ NOT NULL)",
    )
    .execute(&consumer_pool)
    .await?;
    consumer_pool.close().await;

    // Kept until the end: dropping it stops the embedded broker.
    let mut embedded = None;
    let (bootstrap, broker_shown) = match std::env::var("KAFKA_BOOTSTRAP") {
        Ok(bootstrap) if !bootstrap.is_empty() => {
            messaging::kafka::ensure_topics(&bootstrap, &[Topic::Connection], PARTITIONS, 1)
                .await?;
            let shown = format!("the broker at {bootstrap}");
            (bootstrap, shown)
        }
        _ => {
            let broker = embedded.insert(EmbeddedBroker::start(1)?);
            broker.create_topics(&[Topic::Connection], PARTITIONS)?;
            (
                broker.bootstrap_servers().to_owned(),
                "embedded broker".to_owned(),
            )
        }
    };
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--consumer", &db.url(CONSUMER_SCHEMA), &bootstrap])
        .stdin(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("failed to start the consumer process")?;

    let relay = Relay::new(
        producer.clone(),
        RelayConfig::new(&bootstrap),
        MessagingMetrics::unregistered(),
    )?;
    let stop_relay = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(stop_relay.clone()));

    println!("one hop: commit (this process, outbox + relay) -> handled (consumer process)");
    println!(
        "postgres fsync on, {PARTITIONS} partitions, {broker_shown}, fetch.wait.max.ms {}",
        std::env::var("HEYBLUE_KAFKA_FETCH_WAIT_MS")
            .unwrap_or_else(|_| messaging::consumer::DEFAULT_FETCH_WAIT_MAX_MS.to_string())
    );
    let ceiling = commit_ceiling(&producer, writers, false).await?;
    let with_notify = commit_ceiling(&producer, writers, true).await?;
    println!(
        "ceiling: {writers} writers' one-row commits: {ceiling:.0}/s without NOTIFY, {with_notify:.0}/s with NOTIFY in each"
    );

    // Warm-up: the consumer group's first join takes a few seconds.
    send(&producer, 1).await?;
    wait_for(&admin, 1, Duration::from_secs(60)).await?;
    sqlx::query(&format!(
        "TRUNCATE {PRODUCER_SCHEMA}.sent, {CONSUMER_SCHEMA}.received"
    ))
    .execute(&admin)
    .await?;

    // Paced: one event at a time, ~500/s, nothing queued behind it.
    let started = Instant::now();
    let cpu_before = machine_cpu_seconds()?;
    for _ in 0..paced {
        send(&producer, 1).await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    wait_for(&admin, paced, Duration::from_secs(120)).await?;
    report(
        &admin,
        &format!("paced, {paced} events one per transaction"),
        started.elapsed(),
    )
    .await?;
    report_cpu(cpu_before, paced)?;
    sqlx::query(&format!(
        "TRUNCATE {PRODUCER_SCHEMA}.sent, {CONSUMER_SCHEMA}.received"
    ))
    .execute(&admin)
    .await?;

    // Burst: concurrent writers, one event per transaction, as fast as they can.
    let started = Instant::now();
    let cpu_before = machine_cpu_seconds()?;
    let per_writer = burst / writers.max(1);
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let producer = producer.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_writer {
                send(&producer, 1).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let committed = started.elapsed();
    let total = per_writer * writers;
    wait_for(&admin, total, Duration::from_secs(600)).await?;
    let elapsed = started.elapsed();
    println!(
        "burst: {writers} writers committed {total} events in {:.2} s ({:.0}/s)",
        committed.as_secs_f64(),
        total as f64 / committed.as_secs_f64()
    );
    let handled_rate = report(&admin, &format!("burst, {total} events"), elapsed).await?;
    report_cpu(cpu_before, total)?;
    println!(
        "burst handled at {:.0}% of the rate the writers committed it, {:.0}% of the one-row commit ceiling without NOTIFY, {:.0}% of the ceiling with NOTIFY",
        100.0 * handled_rate / (total as f64 / committed.as_secs_f64()),
        100.0 * handled_rate / ceiling,
        100.0 * handled_rate / with_notify
    );

    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    stop_relay.cancel();
    let _ = relay_task.await;
    producer.close().await;
    admin.close().await;
    drop(cluster);
    drop(embedded);
    Ok(())
}

async fn send(producer: &PgPool, events: usize) -> anyhow::Result<()> {
    let mut tx = producer.begin().await?;
    for _ in 0..events {
        let user = Uuid::new_v4();
        let event = Envelope::new(
            ConnectionEvent::PointsAwarded(PointsAwarded {
                award_id: Uuid::new_v4(),
                user_id: user,
                points: 10,
                reason: "benchmark".to_owned(),
                connection_id: Uuid::new_v4(),
            }),
            Uuid::new_v4(),
        );
        messaging::outbox::enqueue(&mut tx, &event).await?;
        sqlx::query("INSERT INTO sent (event_id, sent_at) VALUES ($1, clock_timestamp())")
            .bind(event.event_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Waits until `count` of the events this run sent were handled (a broker
/// used before may also hand over events of an earlier run).
async fn wait_for(admin: &PgPool, count: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let received: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {PRODUCER_SCHEMA}.sent JOIN {CONSUMER_SCHEMA}.received USING (event_id)"
        ))
        .fetch_one(admin)
        .await?;
        if received as usize >= count {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {received} of {count} events arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `writers` concurrent connections committing one-row inserts for two
/// seconds, each with `pg_notify` when `notify`; commits per second.
async fn commit_ceiling(pool: &PgPool, writers: usize, notify: bool) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE IF NOT EXISTS ceiling (id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now())")
        .execute(pool)
        .await?;
    let statement = if notify {
        "WITH row AS (INSERT INTO ceiling DEFAULT VALUES RETURNING id) SELECT pg_notify('ceiling', '') FROM row"
    } else {
        "INSERT INTO ceiling DEFAULT VALUES"
    };
    let run_for = Duration::from_secs(2);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = 0u64;
            let mut conn = pool.acquire().await?;
            while started.elapsed() < run_for {
                // Autocommit: one statement, one transaction, one fsync.
                sqlx::query(statement).execute(&mut *conn).await?;
                commits += 1;
            }
            anyhow::Ok(commits)
        }));
    }
    let mut commits = 0;
    for task in tasks {
        commits += task.await??;
    }
    sqlx::query("TRUNCATE ceiling").execute(pool).await?;
    Ok(commits as f64 / started.elapsed().as_secs_f64())
}

/// Prints the latency and rate of what was handled; returns the rate.
async fn report(admin: &PgPool, label: &str, elapsed: Duration) -> anyhow::Result<f64> {
    let (count, p50, p90, p99, max): (i64, f64, f64, f64, f64) = sqlx::query_as(&format!(
        "SELECT count(*),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                max(ms)
         FROM (SELECT EXTRACT(EPOCH FROM r.handled_at - s.sent_at)::float8 * 1000 AS ms
               FROM {PRODUCER_SCHEMA}.sent s JOIN {CONSUMER_SCHEMA}.received r USING (event_id)) latencies"
    ))
    .fetch_one(admin)
    .await?;
    let (first, last): (f64, f64) = sqlx::query_as(&format!(
        "SELECT EXTRACT(EPOCH FROM min(s.sent_at))::float8, EXTRACT(EPOCH FROM max(r.handled_at))::float8
         FROM {PRODUCER_SCHEMA}.sent s JOIN {CONSUMER_SCHEMA}.received r USING (event_id)"
    ))
    .fetch_one(admin)
    .await?;
    let rate = count as f64 / (last - first).max(1e-6);
    println!(
        "{label}: {count} handled; commit->handled p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; \
         {rate:.0} events/s handled (first commit to last handled), {:.1} s wall",
        elapsed.as_secs_f64()
    );
    Ok(rate)
}

/// CPU seconds every process of the machine has used since boot (busy
/// time of all cores in `/proc/stat`).
fn machine_cpu_seconds() -> anyhow::Result<f64> {
    use procfs::CurrentSI;
    let total = procfs::KernelStats::current()?.total;
    let busy = total.user
        + total.nice
        + total.system
        + total.irq.unwrap_or_default()
        + total.softirq.unwrap_or_default();
    Ok(busy as f64 / procfs::ticks_per_second() as f64)
}

/// Prints the machine's CPU per event handled since `before`.
fn report_cpu(before: f64, events: usize) -> anyhow::Result<()> {
    let used = machine_cpu_seconds()? - before;
    println!(
        "  machine CPU: {used:.2} s, {:.3} ms an event (writer, relay, broker, consumer and PostgreSQL)",
        1000.0 * used / events.max(1) as f64
    );
    Ok(())
}
