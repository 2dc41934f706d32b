//! Many buyers at once: an open loop that starts journeys at a target rate
//! whatever the fleet answers (a slow fleet is met with more journeys in
//! flight, as real shoppers would do), or a closed loop of a fixed number
//! of buyers, each starting again once its last order is `processing`.
//!
//! While a run goes, a progress line every second; around it, what it
//! cost: CPU per process, the database's commits, busy connections.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::database::{Counters, Database};
use crate::journey::{buy, JourneyOptions};
use crate::processes::{CpuSnapshot, Watched};
use crate::shop::{Shop, Users};
use crate::stats::{Recorder, Tally};

/// How long the journeys begun in a run may take to finish after it.
const DRAIN: Duration = Duration::from_secs(60);
/// How often busy database connections are counted.
const ACTIVITY_EVERY: Duration = Duration::from_millis(250);

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// A journey starts every `1 / rate` seconds.
    Open { rate: f64 },
    /// This many buyers, each ordering again as soon as its order is done.
    Closed { concurrency: usize },
}

impl Load {
    pub fn label(&self) -> String {
        match self {
            Load::Open { rate } => format!("open loop {rate}/s"),
            Load::Closed { concurrency } => format!("closed loop {concurrency} buyers"),
        }
    }
}

/// When the `n`th journey of an open loop at `rate` per second is due,
/// counted from the run's start.
pub fn due(n: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(n as f64 / rate)
}

/// What the run shares with its journeys.
#[derive(Clone)]
pub struct Bench {
    pub shop: Arc<Shop>,
    pub users: Arc<Users>,
    pub journey: JourneyOptions,
    pub database: Database,
    pub watched: Vec<Watched>,
}

/// One run's figures.
#[derive(Debug, Clone)]
pub struct Run {
    pub load: Load,
    /// How long load was offered.
    pub seconds: f64,
    pub tally: TallyFigures,
    /// CPU seconds each process used from the start until the last
    /// journey finished.
    pub cpu: BTreeMap<String, f64>,
    pub database: Counters,
    /// Connections to the fleet's database busy at once, sampled.
    pub busy_connections_mean: f64,
    pub busy_connections_peak: i64,
}

/// What a run's [`Tally`] says, read once.
#[derive(Debug, Clone)]
pub struct TallyFigures {
    pub started: u64,
    /// Checkouts answered `201`, in the window and after it.
    pub checkouts: u64,
    pub checkouts_in_window: u64,
    pub completed_in_window: u64,
    pub completed: u64,
    pub cart: crate::stats::Summary,
    pub quote: crate::stats::Summary,
    pub checkout: crate::stats::Summary,
    pub to_processing: crate::stats::Summary,
    pub hops: Vec<crate::stats::Summary>,
    pub errors: BTreeMap<String, u64>,
    pub polls: u64,
    pub polls_refused: u64,
}

impl From<&Tally> for TallyFigures {
    fn from(tally: &Tally) -> Self {
        TallyFigures {
            started: tally.started,
            checkouts: tally.checkouts,
            checkouts_in_window: tally.checkouts_in_window,
            completed_in_window: tally.completed_in_window,
            completed: tally.completed,
            cart: tally.cart.summary(),
            quote: tally.quote.summary(),
            checkout: tally.checkout.summary(),
            to_processing: tally.to_processing.summary(),
            hops: tally.hops.iter().map(|hop| hop.summary()).collect(),
            errors: tally.errors.clone(),
            polls: tally.polls,
            polls_refused: tally.polls_refused,
        }
    }
}

impl Run {
    pub fn checkouts_per_second(&self) -> f64 {
        self.tally.checkouts_in_window as f64 / self.seconds
    }

    pub fn completed_per_second(&self) -> f64 {
        self.tally.completed_in_window as f64 / self.seconds
    }

    pub fn errors(&self) -> u64 {
        self.tally.errors.values().sum()
    }
}

/// Offers `load` for `duration`, waits for the journeys it began, and
/// measures what it cost.
pub async fn run(bench: &Bench, load: Load, duration: Duration) -> anyhow::Result<Run> {
    let recorder = Arc::new(Recorder::default());
    let cpu_before = CpuSnapshot::take(&bench.watched);
    let db_before = bench.database.counters().await?;
    let (stop_sampling, sampling_stopped) = tokio::sync::oneshot::channel();
    let activity = tokio::spawn(sample_activity(bench.database.clone(), sampling_stopped));
    let progress = tokio::spawn(show_progress(load, recorder.clone()));

    let start = Instant::now();
    let end = start + duration;
    let window_end = OffsetDateTime::now_utc() + duration;
    let mut journeys = JoinSet::new();
    match load {
        Load::Open { rate } => {
            for n in 0.. {
                let at = start + due(n, rate);
                if at >= end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                let Some(user) = bench.users.take() else {
                    recorder.error("load: every buyer is busy");
                    continue;
                };
                let bench = bench.clone();
                let recorder = recorder.clone();
                journeys.spawn(async move {
                    buy(&bench.shop, &user, &bench.journey, &recorder, window_end).await;
                    bench.users.give_back(user);
                });
            }
        }
        Load::Closed { concurrency } => {
            for _ in 0..concurrency {
                let bench = bench.clone();
                let recorder = recorder.clone();
                journeys.spawn(async move {
                    while Instant::now() < end {
                        let Some(user) = bench.users.take() else {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            continue;
                        };
                        buy(&bench.shop, &user, &bench.journey, &recorder, window_end).await;
                        bench.users.give_back(user);
                    }
                });
            }
        }
    }
    let drained = tokio::time::timeout(DRAIN, async {
        while journeys.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        recorder.error(format!(
            "load: journeys unfinished {} s after the run",
            DRAIN.as_secs()
        ));
        journeys.abort_all();
    }
    progress.abort();
    let _ = stop_sampling.send(());
    let (mean, peak) = activity.await.unwrap_or_default();
    let cpu = CpuSnapshot::take(&bench.watched).since(&cpu_before);
    let database = bench.database.counters().await?.since(&db_before);
    let tally = recorder.snapshot();
    let run = Run {
        load,
        seconds: duration.as_secs_f64(),
        tally: TallyFigures::from(&tally),
        cpu,
        database,
        busy_connections_mean: mean,
        busy_connections_peak: peak,
    };
    eprintln!("{}", summary_line(&run));
    Ok(run)
}

/// Counts busy connections until told to stop: their mean and peak.
async fn sample_activity(
    database: Database,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (f64, i64) {
    let (mut total, mut samples, mut peak) = (0i64, 0i64, 0i64);
    loop {
        if let Ok(busy) = database.busy_connections().await {
            total += busy;
            samples += 1;
            peak = peak.max(busy);
        }
        tokio::select! {
            _ = &mut stop => break,
            () = tokio::time::sleep(ACTIVITY_EVERY) => {}
        }
    }
    (total as f64 / samples.max(1) as f64, peak)
}

/// A line a second: what was offered, what came back, and latency so far.
async fn show_progress(load: Load, recorder: Arc<Recorder>) {
    let began = Instant::now();
    let mut last = Tally::default();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = recorder.snapshot();
        let checkout = now.checkout.summary();
        let processing = now.to_processing.summary();
        eprintln!(
            "{:>24} {:>4.0}s  started {:>4}/s  checkouts {:>4}/s  processing {:>4}/s  errors {:>3}  checkout p50 {:>6.1} ms p99 {:>6.1} ms  to processing p50 {:>6.1} ms p99 {:>6.1} ms",
            load.label(),
            began.elapsed().as_secs_f64(),
            now.started - last.started,
            now.checkouts - last.checkouts,
            now.completed - last.completed,
            now.error_count(),
            checkout.p50,
            checkout.p99,
            processing.p50,
            processing.p99,
        );
        last = now;
    }
}

fn summary_line(run: &Run) -> String {
    format!(
        "{}: {:.1} checkouts/s, {:.1} orders/s to processing, {} errors; checkout p50 {:.1} p99 {:.1} ms; to processing p50 {:.1} p99 {:.1} ms",
        run.load.label(),
        run.checkouts_per_second(),
        run.completed_per_second(),
        run.errors(),
        run.tally.checkout.p50,
        run.tally.checkout.p99,
        run.tally.to_processing.p50,
        run.tally.to_processing.p99,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_is_due_evenly_and_fits_its_rate_into_a_second() {
        assert_eq!(due(0, 150.0), Duration::ZERO);
        assert_eq!(due(150, 150.0), Duration::from_secs(1));
        assert_eq!(due(3, 2.0), Duration::from_millis(1500));
        let in_a_second = (0..)
            .take_while(|n| due(*n, 25.0) < Duration::from_secs(1))
            .count();
        assert_eq!(in_a_second, 25);
    }
}
