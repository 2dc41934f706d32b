//! The queue against a real PostgreSQL: jobs run after their commit and
//! never after a rollback, fail and retry as their handler says, are shared
//! by replicas without running twice, survive a worker that dies, and
//! periodic tasks run once per interval across replicas.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use job_queue::{
    JobConfig, JobContext, JobError, JobMetrics, JobRunner, ManualClock, Periodic, Pruned,
    Retention, StartError,
};
use sqlx::PgPool;
use support::*;
use time::macros::datetime;
use time::OffsetDateTime;

fn runner(pool: &PgPool, config: JobConfig, handler: Recorder) -> JobRunner {
    JobRunner::new(pool.clone(), config, JobMetrics::unregistered()).on(handler)
}

#[tokio::test]
async fn a_job_enqueued_in_a_rolled_back_transaction_never_runs() {
    let (pool, _) = database().await;
    let (handler, mut seen) = Recorder::new("email", "a", Act::Succeed);
    let running = start(runner(&pool, config(), handler));

    let mut tx = pool.begin().await.unwrap();
    job_queue::enqueue(&mut tx, job("email", 1)).await.unwrap();
    tx.rollback().await.unwrap();
    commit_job(&pool, job("email", 2)).await;

    let run = next_seen(&mut seen, Duration::from_secs(5), "the committed job").await;
    assert_eq!(run.n, 2, "only the committed job runs");
    nothing_seen(
        &mut seen,
        Duration::from_millis(300),
        "the other job was rolled back",
    )
    .await;
    let rolled_back: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_queue WHERE payload->>'n' = '1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(rolled_back, 0, "the rolled-back job was never written");
    running.stop().await.unwrap();
}

// Threads as a service runs with, so the handler starts while the loop goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_job_starts_within_milliseconds() {
    let (pool, _) = database().await;
    let (handler, mut seen) = Recorder::new("webhook", "a", Act::Succeed);
    // The fallback poll is 30 s: a job that starts sooner was woken by its commit.
    let running = start(runner(&pool, config(), handler));
    // Let the runner connect its listener before the first commit.
    commit_job(&pool, job("webhook", 0)).await;
    next_seen(&mut seen, Duration::from_secs(5), "the warm-up job").await;

    let mut latencies = Vec::new();
    let mut commits = Vec::new();
    for n in 1..=300 {
        let mut tx = pool.begin().await.unwrap();
        job_queue::enqueue(&mut tx, job("webhook", n))
            .await
            .unwrap();
        let committing = Instant::now();
        tx.commit().await.unwrap();
        commits.push(committing.elapsed());
        let run = next_seen(&mut seen, Duration::from_secs(5), "a committed job").await;
        assert_eq!(run.n, n);
        latencies.push(run.at.duration_since(committing));
    }
    let (p50, p99, max) = percentiles(&mut latencies);
    println!(
        "commit issued -> handler start over {} jobs: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        latencies.len()
    );
    let (p50, p99, max) = percentiles(&mut commits);
    println!("of which the commit itself: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    assert!(
        percentiles(&mut latencies).1 < Duration::from_secs(1),
        "jobs must start on their commit, not on the fallback poll"
    );
    running.stop().await.unwrap();
}

/// p50, p99 and max.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50), at(0.99), samples[samples.len() - 1])
}

#[tokio::test]
async fn a_failing_job_is_retried_with_growing_backoff_then_marked_failed_and_reported() {
    let (pool, _) = database().await;
    let registry = prometheus::Registry::new();
    let metrics = JobMetrics::register(&registry).unwrap();
    let (handler, mut seen) = Recorder::new("smtp", "a", Act::FailTransient);
    let running = start(JobRunner::new(pool.clone(), config(), metrics).on(handler));

    let id = commit_job(&pool, job("smtp", 7)).await.unwrap();
    let mut runs = Vec::new();
    for attempt in 1..=4 {
        let run = next_seen(&mut seen, Duration::from_secs(5), "the next attempt").await;
        assert_eq!(run.attempt, attempt);
        runs.push(run.at);
    }
    nothing_seen(&mut seen, Duration::from_millis(1000), "max_attempts is 4").await;

    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1] - w[0]).collect();
    println!("gaps between attempts: {gaps:?}");
    // Base 100 ms, doubling, with half of each wait random.
    for (gap, least) in gaps.iter().zip([50, 100, 200]) {
        assert!(
            *gap >= Duration::from_millis(least),
            "gap {gap:?} under {least} ms"
        );
    }
    assert!(gaps[2] > gaps[0], "the waits grow: {gaps:?}");

    let (state, attempts, last_error) = stored(&pool, id).await.expect("a failed job is kept");
    assert_eq!((state.as_str(), attempts), ("failed", 4));
    assert!(last_error.unwrap().contains("provider timed out on job 7"));
    assert_eq!(
        metric(&registry, "job_queue_retried_total", ("kind", "smtp")),
        Some(3.0)
    );
    assert_eq!(
        metric(&registry, "job_queue_failed_total", ("kind", "smtp")),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, "job_queue_completed_total", ("kind", "smtp")),
        None
    );
    eventually(
        Duration::from_secs(3),
        "/metrics shows the failed job",
        || async { exposition(&registry).contains("job_queue_failed_jobs{kind=\"smtp\"} 1") },
    )
    .await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_permanent_error_fails_the_job_at_once() {
    let (pool, _) = database().await;
    let registry = prometheus::Registry::new();
    let metrics = JobMetrics::register(&registry).unwrap();
    let (handler, mut seen) = Recorder::new("capture", "a", Act::FailPermanent);
    let running = start(JobRunner::new(pool.clone(), config(), metrics).on(handler));

    let id = commit_job(&pool, job("capture", 3)).await.unwrap();
    let run = next_seen(&mut seen, Duration::from_secs(5), "the attempt").await;
    assert_eq!(run.attempt, 1);
    nothing_seen(
        &mut seen,
        Duration::from_millis(500),
        "a permanent error is not retried",
    )
    .await;

    let (state, attempts, last_error) = stored(&pool, id).await.expect("a failed job is kept");
    assert_eq!((state.as_str(), attempts), ("failed", 1));
    assert!(last_error.unwrap().contains("refused job 3 for good"));
    assert_eq!(
        metric(&registry, "job_queue_failed_total", ("kind", "capture")),
        Some(1.0)
    );
    assert_eq!(
        metric(&registry, "job_queue_retried_total", ("kind", "capture")),
        None
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn two_runners_on_separate_pools_run_every_job_exactly_once() {
    let (pool, url) = database().await;
    let other_pool = PgPool::connect(&url).await.unwrap();
    let (a, mut seen) = Recorder::new("dispatch", "a", Act::SucceedAfter(Duration::from_millis(2)));
    let b = a.twin("b");
    let overlaps = Arc::clone(&a.overlaps);
    let first = start(runner(&pool, config(), a));
    let second = start(runner(&other_pool, config(), b));

    const JOBS: u32 = 400;
    for batch in 0..JOBS / 10 {
        let mut tx = pool.begin().await.unwrap();
        for n in batch * 10..batch * 10 + 10 {
            job_queue::enqueue(&mut tx, job("dispatch", n))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let mut runs: HashMap<u32, u32> = HashMap::new();
    let mut by_runner: HashMap<&str, u32> = HashMap::new();
    for _ in 0..JOBS {
        let run = next_seen(&mut seen, Duration::from_secs(10), "the remaining jobs").await;
        *runs.entry(run.n).or_default() += 1;
        *by_runner.entry(run.runner).or_default() += 1;
    }
    nothing_seen(&mut seen, Duration::from_millis(500), "every job ran").await;
    println!("jobs run by each runner: {by_runner:?}");

    assert_eq!(runs.len(), JOBS as usize, "every job ran");
    assert!(runs.values().all(|&count| count == 1), "no job ran twice");
    assert!(
        overlaps.lock().unwrap().is_empty(),
        "no job ran on both at once"
    );
    assert_eq!(
        by_runner.len(),
        2,
        "both runners took a share: {by_runner:?}"
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM job_queue")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "every job is done and has left the queue");
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_whose_runner_dies_mid_job_runs_again_on_another_runner_after_its_lease() {
    let (pool, url) = database().await;
    let (dying, mut seen_dying) = Recorder::new("refund", "dying", Act::HangOnFirstAttempt);
    let dying = start(runner(&pool, config(), dying));
    let id = commit_job(&pool, job("refund", 1)).await.unwrap();
    let first = next_seen(&mut seen_dying, Duration::from_secs(5), "the first attempt").await;
    dying.kill().await;

    let other_pool = PgPool::connect(&url).await.unwrap();
    let (survivor, mut seen) = Recorder::new("refund", "survivor", Act::HangOnFirstAttempt);
    let survivor = start(runner(&other_pool, config(), survivor));
    let second = next_seen(&mut seen, Duration::from_secs(5), "the job again").await;
    assert_eq!((second.job_id, second.attempt), (id, 2));
    // The lease is 1 s from the claim; the claim came just before the first run.
    let after = second.at - first.at;
    assert!(
        after >= Duration::from_millis(900),
        "ran again after {after:?}, before the lease expired"
    );
    println!("job ran again {after:?} after its worker died (lease 1 s)");

    eventually(Duration::from_secs(3), "the job is done", || async {
        stored(&pool, id).await.is_none()
    })
    .await;
    survivor.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_running_longer_than_its_lease_keeps_it_and_runs_once() {
    let (pool, url) = database().await;
    let other_pool = PgPool::connect(&url).await.unwrap();
    let config = JobConfig {
        lease: Duration::from_millis(600),
        ..config()
    };
    let (a, mut seen) = Recorder::new(
        "export",
        "a",
        Act::SucceedAfter(Duration::from_millis(2000)),
    );
    let b = a.twin("b");
    let first = start(runner(&pool, config.clone(), a));
    let second = start(runner(&other_pool, config, b));

    let id = commit_job(&pool, job("export", 1)).await.unwrap();
    let run = next_seen(&mut seen, Duration::from_secs(5), "the job").await;
    assert_eq!(run.attempt, 1);
    eventually(Duration::from_secs(5), "the job is done", || async {
        stored(&pool, id).await.is_none()
    })
    .await;
    nothing_seen(
        &mut seen,
        Duration::from_millis(300),
        "the lease was renewed",
    )
    .await;
    first.stop().await.unwrap();
    second.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_enqueued_while_no_runner_runs_is_run_by_a_runner_started_later() {
    let (pool, _) = database().await;
    let id = commit_job(&pool, job("expire", 5)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (handler, mut seen) = Recorder::new("expire", "late", Act::Succeed);
    let running = start(runner(&pool, config(), handler));
    let run = next_seen(&mut seen, Duration::from_secs(5), "the waiting job").await;
    assert_eq!(run.job_id, id);
    running.stop().await.unwrap();
}

#[tokio::test]
async fn enqueueing_twice_with_one_dedupe_key_makes_one_job() {
    let (pool, _) = database().await;
    let first = commit_job(&pool, job("webhook", 1).dedupe_key("order-42/business-7")).await;
    let again = commit_job(&pool, job("webhook", 2).dedupe_key("order-42/business-7")).await;
    let other_kind = commit_job(&pool, job("email", 3).dedupe_key("order-42/business-7")).await;
    assert!(first.is_some());
    assert_eq!(again, None, "the second enqueue adds nothing");
    assert!(other_kind.is_some(), "keys are per kind");

    let (handler, mut seen) = Recorder::new("webhook", "a", Act::Succeed);
    let running = start(runner(&pool, config(), handler));
    let run = next_seen(&mut seen, Duration::from_secs(5), "the job").await;
    assert_eq!(run.n, 1);
    nothing_seen(
        &mut seen,
        Duration::from_millis(300),
        "there is one webhook job",
    )
    .await;

    // Done, the job has left the queue; its key still refuses the same job,
    // as a redelivered event would enqueue it.
    eventually(Duration::from_secs(3), "the job is done", || async {
        stored(&pool, first.unwrap()).await.is_none()
    })
    .await;
    let after_done = commit_job(&pool, job("webhook", 4).dedupe_key("order-42/business-7")).await;
    assert_eq!(after_done, None, "the key outlives its done job");
    nothing_seen(&mut seen, Duration::from_millis(300), "the key was taken").await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_enqueue_of_a_key_waits_for_the_first_and_adds_a_job_only_if_it_rolled_back() {
    let (pool, _) = database().await;
    for (first_commits, second_adds) in [(true, false), (false, true)] {
        let key = format!("capture/{first_commits}");
        let mut first = pool.begin().await.unwrap();
        let id = job_queue::enqueue(&mut first, job("capture", 1).dedupe_key(key.clone()))
            .await
            .unwrap();
        assert!(id.is_some());
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { commit_job(&pool, job("capture", 2).dedupe_key(key)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second enqueue waits for the first's transaction"
        );
        if first_commits {
            first.commit().await.unwrap();
        } else {
            first.rollback().await.unwrap();
        }
        let second = second.await.unwrap();
        assert_eq!(
            second.is_some(),
            second_adds,
            "first committed: {first_commits}"
        );
    }
    let jobs: Vec<i64> =
        sqlx::query_scalar("SELECT (payload->>'n')::bigint FROM job_queue ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(jobs, vec![1, 2], "one job for each key");
}

#[tokio::test]
async fn a_job_for_later_starts_at_its_time_without_waiting_for_the_poll() {
    let (pool, _) = database().await;
    let (handler, mut seen) = Recorder::new("deadline", "a", Act::Succeed);
    let running = start(runner(&pool, config(), handler));
    commit_job(&pool, job("deadline", 0)).await;
    next_seen(&mut seen, Duration::from_secs(5), "the warm-up job").await;

    let enqueued = Instant::now();
    let due = OffsetDateTime::now_utc() + Duration::from_millis(500);
    commit_job(&pool, job("deadline", 1).run_at(due)).await;
    let run = next_seen(&mut seen, Duration::from_secs(5), "the job for later").await;
    let after = run.at - enqueued;
    assert!(
        after >= Duration::from_millis(450),
        "started early, after {after:?}"
    );
    assert!(
        after < Duration::from_millis(1500),
        "started late, after {after:?}"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_for_later_waits_for_the_runners_clock() {
    let (pool, _) = database().await;
    let clock = Arc::new(ManualClock::new(datetime!(2030-01-01 12:00 UTC)));
    let (handler, mut seen) = Recorder::new("confirm_deadline", "a", Act::Succeed);
    let running = start(runner(&pool, config(), handler).with_clock(clock.clone()));

    let due = datetime!(2030-01-01 12:10 UTC);
    commit_job(&pool, job("confirm_deadline", 1).run_at(due)).await;
    nothing_seen(
        &mut seen,
        Duration::from_millis(300),
        "the job is due in ten minutes",
    )
    .await;
    clock.advance(Duration::from_secs(9 * 60));
    running.nudge.nudge();
    nothing_seen(
        &mut seen,
        Duration::from_millis(300),
        "the job is due in a minute",
    )
    .await;
    clock.advance(Duration::from_secs(60));
    running.nudge.nudge();
    next_seen(&mut seen, Duration::from_secs(2), "the job at its time").await;
    running.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_a_running_job_finish() {
    let (pool, _) = database().await;
    let (handler, mut seen) =
        Recorder::new("email", "a", Act::SucceedAfter(Duration::from_millis(500)));
    let running = start(runner(&pool, config(), handler));
    let id = commit_job(&pool, job("email", 1)).await.unwrap();
    next_seen(&mut seen, Duration::from_secs(5), "the job").await;

    running.stop().await.unwrap();
    assert_eq!(
        stored(&pool, id).await,
        None,
        "done, and gone from the queue"
    );
}

#[tokio::test]
async fn two_handlers_for_one_kind_are_refused_at_start() {
    let (pool, _) = database().await;
    let (first, _seen) = Recorder::new("email", "a", Act::Succeed);
    let second = first.twin("b");
    let result = runner(&pool, config(), first)
        .on(second)
        .run(tokio_util::sync::CancellationToken::new())
        .await;
    let error = result.expect_err("a second handler for a kind is refused");
    assert!(
        matches!(
            error.downcast_ref(),
            Some(StartError::DuplicateKind("email"))
        ),
        "{error:#}"
    );
}

/// Records the clock's time of each tick and the runner it ran on.
struct Ticker {
    runner: &'static str,
    ticks: Arc<Mutex<Vec<(&'static str, OffsetDateTime)>>>,
}

#[async_trait]
impl Periodic for Ticker {
    fn name(&self) -> &'static str {
        "expire_reservations"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn tick(&self, _ctx: &JobContext, now: OffsetDateTime) -> anyhow::Result<()> {
        self.ticks.lock().unwrap().push((self.runner, now));
        Ok(())
    }
}

#[tokio::test]
async fn a_periodic_task_runs_once_per_interval_across_two_runners() {
    let (pool, url) = database().await;
    let other_pool = PgPool::connect(&url).await.unwrap();
    let start_at = datetime!(2030-01-01 12:00 UTC);
    let clock = Arc::new(ManualClock::new(start_at));
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let replica = |pool: &PgPool, runner: &'static str| {
        start(
            JobRunner::new(pool.clone(), config(), JobMetrics::unregistered())
                .every(Ticker {
                    runner,
                    ticks: Arc::clone(&ticks),
                })
                .with_clock(clock.clone()),
        )
    };
    let a = replica(&pool, "a");
    let b = replica(&other_pool, "b");
    let count = || ticks.lock().unwrap().len();
    let nudge_both = || {
        a.nudge.nudge();
        b.nudge.nudge();
    };

    eventually(Duration::from_secs(5), "the first tick", || async {
        count() == 1
    })
    .await;
    for interval in 1..=4 {
        clock.advance(Duration::from_secs(30));
        nudge_both();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(), interval, "half an interval later, no tick");
        clock.advance(Duration::from_secs(30));
        nudge_both();
        eventually(Duration::from_secs(5), "the next tick", || async {
            count() == interval + 1
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            count(),
            interval + 1,
            "one tick per interval, not one per runner"
        );
    }

    let ticks = ticks.lock().unwrap().clone();
    let times: Vec<OffsetDateTime> = ticks.iter().map(|(_, at)| *at).collect();
    let expected: Vec<OffsetDateTime> = (0..5)
        .map(|i| start_at + Duration::from_secs(60 * i))
        .collect();
    assert_eq!(times, expected);
    println!(
        "ticks ran on: {:?}",
        ticks.iter().map(|(r, _)| *r).collect::<Vec<_>>()
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn pruning_deletes_failed_jobs_and_dedupe_keys_past_their_retention_only() {
    let (pool, _) = database().await;
    let now = OffsetDateTime::now_utc();
    let day = Duration::from_secs(24 * 3600);
    let mut ids = Vec::new();
    // (state, days since enqueued and finished); a job that is done has left
    // the queue, and only its key is left.
    for (n, (state, age)) in [
        ("done", 15),
        ("done", 3),
        ("failed", 15),
        ("failed", 40),
        ("pending", 20),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("{state}/{age}");
        let id = commit_job(&pool, job("email", n as u32).dedupe_key(key.clone()))
            .await
            .unwrap();
        sqlx::query("UPDATE job_queue_keys SET created_at = $2 WHERE dedupe_key = $1")
            .bind(&key)
            .bind(now - day * age)
            .execute(&pool)
            .await
            .unwrap();
        match state {
            "done" => {
                sqlx::query("DELETE FROM job_queue WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            "failed" => {
                sqlx::query(
                    "UPDATE job_queue SET state = 'failed', finished_at = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(now - day * age)
                .execute(&pool)
                .await
                .unwrap();
            }
            _ => {}
        }
        ids.push(id);
    }

    let pruned = job_queue::prune(&pool, now, Retention::default())
        .await
        .unwrap();
    assert_eq!(
        pruned,
        Pruned {
            failed_jobs: 1,
            keys: 1
        }
    );
    let jobs: Vec<i64> = sqlx::query_scalar("SELECT id FROM job_queue ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(jobs, vec![ids[2], ids[4]], "very old failed jobs go");
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT dedupe_key FROM job_queue_keys ORDER BY dedupe_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        keys,
        vec!["done/3", "failed/15", "failed/40", "pending/20"],
        "an old key goes once no job holds it; the keys of a kept failed job and a waiting one stay"
    );

    // The key of the failed job pruned above goes at the next prune.
    let again = job_queue::prune(&pool, now, Retention::default())
        .await
        .unwrap();
    assert_eq!(
        again,
        Pruned {
            failed_jobs: 0,
            keys: 1
        }
    );
    let refused = commit_job(&pool, job("email", 9).dedupe_key("done/3")).await;
    assert_eq!(refused, None, "a key within its retention still refuses");
    let accepted = commit_job(&pool, job("email", 9).dedupe_key("done/15")).await;
    assert!(accepted.is_some(), "a pruned key is free again");
}

#[tokio::test]
async fn a_job_still_running_after_the_shutdown_grace_is_handed_back_to_another_runner() {
    let (pool, url) = database().await;
    let config = JobConfig {
        shutdown_grace: Duration::from_millis(300),
        lease: Duration::from_secs(60),
        ..config()
    };
    let (slow, mut seen_slow) =
        Recorder::new("export", "slow", Act::SucceedAfter(Duration::from_secs(30)));
    let stopping = start(runner(&pool, config.clone(), slow));
    let id = commit_job(&pool, job("export", 1)).await.unwrap();
    next_seen(&mut seen_slow, Duration::from_secs(5), "the job").await;

    let other_pool = PgPool::connect(&url).await.unwrap();
    let (other, mut seen) = Recorder::new("export", "other", Act::Succeed);
    let other = start(runner(&other_pool, config, other));
    let stopped_at = Instant::now();
    stopping.stop().await.unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(3),
        "shutdown is bounded by its grace"
    );

    // Long before the 60 s lease: the job was handed back, not abandoned.
    let run = next_seen(
        &mut seen,
        Duration::from_secs(3),
        "the job on the other runner",
    )
    .await;
    assert_eq!(
        (run.job_id, run.attempt),
        (id, 1),
        "the interrupted attempt is not counted"
    );
    eventually(Duration::from_secs(3), "the job is done", || async {
        stored(&pool, id).await.is_none()
    })
    .await;
    other.stop().await.unwrap();
}

/// How [`RecordsAndEnds`] ends its jobs.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// Records its effect, then `job_queue::finish`, then commits.
    InItsTransaction,
    /// Records its effect and ends the job in one statement.
    InItsStatement,
    /// As `InItsTransaction`, but the first attempt's commit is lost: it
    /// rolls back and fails.
    FirstCommitLost,
    /// Another worker claims the job again before this attempt ends it.
    AfterAnotherClaim,
}

/// A handler that records each attempt's effect in `effects` and ends its
/// job in the same commit, reporting what the end said.
struct RecordsAndEnds {
    ending: Ending,
    ended: tokio::sync::mpsc::UnboundedSender<(u32, bool)>,
}

#[async_trait]
impl job_queue::JobHandler for RecordsAndEnds {
    fn kind(&self) -> &'static str {
        "receipt"
    }

    async fn run(&self, ctx: &JobContext, job: &job_queue::Job) -> Result<(), JobError> {
        let (job_id, attempt) = job.done_arguments();
        if let Ending::InItsStatement = self.ending {
            let ended: bool = sqlx::query_scalar(
                "WITH effect AS (INSERT INTO effects (job_id, attempt) VALUES ($1, $2))
                 SELECT job_queue_done($1, $2)",
            )
            .bind(job_id)
            .bind(attempt)
            .fetch_one(&ctx.pool)
            .await?;
            job.ended_by_handler(ended);
            let _ = self.ended.send((job.attempt, ended));
            return Ok(());
        }
        if let Ending::AfterAnotherClaim = self.ending {
            sqlx::query("UPDATE job_queue SET attempts = attempts + 1 WHERE id = $1")
                .bind(job_id)
                .execute(&ctx.pool)
                .await?;
        }
        let mut tx = ctx.pool.begin().await?;
        sqlx::query("INSERT INTO effects (job_id, attempt) VALUES ($1, $2)")
            .bind(job_id)
            .bind(attempt)
            .execute(&mut *tx)
            .await?;
        let ended = job_queue::finish(&mut tx, job).await?;
        let _ = self.ended.send((job.attempt, ended));
        if let (Ending::FirstCommitLost, 1) = (self.ending, job.attempt) {
            tx.rollback().await?;
            return Err(JobError::transient(anyhow::anyhow!("the commit was lost")));
        }
        tx.commit().await?;
        Ok(())
    }
}

/// A runner of [`RecordsAndEnds`] with its metrics, the effects table made.
async fn ending_runner(
    pool: &PgPool,
    ending: Ending,
) -> (
    Running,
    prometheus::Registry,
    tokio::sync::mpsc::UnboundedReceiver<(u32, bool)>,
) {
    sqlx::query("CREATE TABLE effects (job_id BIGINT NOT NULL, attempt INT NOT NULL)")
        .execute(pool)
        .await
        .unwrap();
    let registry = prometheus::Registry::new();
    let metrics = JobMetrics::register(&registry).unwrap();
    let (ended, receiver) = tokio::sync::mpsc::unbounded_channel();
    let handler = RecordsAndEnds { ending, ended };
    let running = start(JobRunner::new(pool.clone(), config(), metrics).on(handler));
    (running, registry, receiver)
}

/// The attempts whose effect committed, in order.
async fn effects(pool: &PgPool, job_id: i64) -> Vec<i32> {
    sqlx::query_scalar("SELECT attempt FROM effects WHERE job_id = $1 ORDER BY attempt")
        .bind(job_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn next_end(
    ended: &mut tokio::sync::mpsc::UnboundedReceiver<(u32, bool)>,
    what: &str,
) -> (u32, bool) {
    tokio::time::timeout(Duration::from_secs(5), ended.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .expect("handler gone")
}

/// Waits until `/metrics` counts one completed receipt job.
async fn counted_completed_once(registry: &prometheus::Registry) {
    eventually(
        Duration::from_secs(3),
        "the job is counted completed",
        || async {
            metric(registry, "job_queue_completed_total", ("kind", "receipt")) == Some(1.0)
        },
    )
    .await;
}

#[tokio::test]
async fn a_job_its_handler_ends_in_its_own_commit_runs_once_and_counts_as_completed() {
    for ending in [Ending::InItsTransaction, Ending::InItsStatement] {
        let (pool, _) = database().await;
        let (running, registry, mut ended) = ending_runner(&pool, ending).await;

        let id = commit_job(&pool, job("receipt", 1)).await.unwrap();
        assert_eq!(
            next_end(&mut ended, "the job's end").await,
            (1, true),
            "{ending:?}: the first attempt owns the job and ends it"
        );
        counted_completed_once(&registry).await;
        assert_eq!(
            stored(&pool, id).await,
            None,
            "{ending:?}: the job left the queue"
        );
        assert_eq!(
            effects(&pool, id).await,
            [1],
            "{ending:?}: its effect is recorded once"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(300), ended.recv())
                .await
                .is_err(),
            "{ending:?}: a job that ended does not run again"
        );
        assert_eq!(
            metric(&registry, "job_queue_retried_total", ("kind", "receipt")),
            None
        );
        running.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_job_whose_end_was_rolled_back_with_its_handlers_work_runs_again() {
    let (pool, _) = database().await;
    let (running, registry, mut ended) = ending_runner(&pool, Ending::FirstCommitLost).await;

    let id = commit_job(&pool, job("receipt", 1)).await.unwrap();
    assert_eq!(next_end(&mut ended, "the first end").await, (1, true));
    assert_eq!(
        next_end(&mut ended, "the retry's end").await,
        (2, true),
        "the end rolled back with the work, so the job was retried"
    );
    counted_completed_once(&registry).await;
    assert_eq!(
        metric(&registry, "job_queue_retried_total", ("kind", "receipt")),
        Some(1.0)
    );
    assert_eq!(stored(&pool, id).await, None);
    assert_eq!(
        effects(&pool, id).await,
        [2],
        "only the retry's effect committed"
    );
    running.stop().await.unwrap();
}

#[tokio::test]
async fn an_attempt_that_lost_its_job_to_another_claim_cannot_end_it() {
    let (pool, _) = database().await;
    let (running, registry, mut ended) = ending_runner(&pool, Ending::AfterAnotherClaim).await;

    let id = commit_job(&pool, job("receipt", 1)).await.unwrap();
    assert_eq!(
        next_end(&mut ended, "the end").await,
        (1, false),
        "the job belongs to the later claim"
    );
    let (state, attempts, _) = stored(&pool, id).await.expect("the job stays");
    assert_eq!(
        (state.as_str(), attempts),
        ("running", 2),
        "left to the attempt that owns it"
    );
    assert_eq!(
        metric(&registry, "job_queue_completed_total", ("kind", "receipt")),
        None,
        "an attempt that did not end the job does not count it completed"
    );
    running.stop().await.unwrap();
}
