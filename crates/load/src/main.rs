//! `heyblue-load`: many webshop buyers at once against the whole fleet,
//! started by `heyblue-local` from the same target directory, measured
//! beside this machine's limits (the commit ceiling of the fleet's
//! PostgreSQL, the broker's produce rate). See `BENCHMARKS.md`.
//!
//! - [`fleet`]: start the launcher, read its banner, time the start
//! - [`shop`]: businesses, offerings and buyers of the load's own
//! - [`journey`]: one buyer's order, cart to `processing`
//! - [`load`]: open and closed loops, progress, what a run cost
//! - [`limits`], [`database`], [`processes`]: what is measured beside it
//! - [`plan`]: the order of the whole benchmark
//! - [`report`], [`chart`]: the figures as Markdown and the sweep as SVG

mod chart;
mod database;
mod fleet;
mod journey;
mod limits;
mod load;
mod plan;
mod processes;
mod report;
mod shop;
mod stats;

use std::path::PathBuf;

use clap::Parser;

/// Orders per second and latency of the whole Hey, Blue! fleet on this
/// machine, against its commit ceiling and broker. Build first with
/// `cargo build --release --workspace --bins`.
#[derive(Debug, Parser)]
#[command(name = "heyblue-load")]
pub struct Args {
    /// Offered rates of the open-loop sweep, orders/s (`--rates` alone: no sweep).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 0..,
        default_value = "25,50,100,150,200,250,300"
    )]
    rates: Vec<f64>,
    /// Seconds each sweep step offers load.
    #[arg(long, default_value_t = 20)]
    step_secs: u64,
    /// The sustained open-loop run's rate, orders/s (0: none).
    #[arg(long, default_value_t = 150.0)]
    sustain: f64,
    /// Seconds of the sustained run.
    #[arg(long, default_value_t = 60)]
    sustain_secs: u64,
    /// A closed-loop run with this many buyers at once (0: none).
    #[arg(long, default_value_t = 0)]
    closed: usize,
    /// Seconds of the closed-loop run.
    #[arg(long, default_value_t = 30)]
    closed_secs: u64,
    /// Replicas for the launcher, as HEYBLUE_REPLICAS (e.g. `order=2`).
    #[arg(long)]
    replicas: Option<String>,
    /// Distinct buyers, each with a token and points of its own.
    #[arg(long, default_value_t = 1500)]
    users: usize,
    /// Cart lines per order, each a different offering.
    #[arg(long, default_value_t = 1)]
    lines: usize,
    /// Points redeemed per order; the sandbox card pays the rest.
    #[arg(long, default_value_t = 100)]
    points: i64,
    /// How long after the checkout's answer a journey first asks for its
    /// order, in ms; each further wait is half as long again, up to 1 s
    /// (latency is dated by the order's history, not by the poll).
    #[arg(long, default_value_t = 20)]
    poll_ms: u64,
    /// Orders placed without polling to count the database's commits per order (0: none).
    #[arg(long, default_value_t = 300)]
    census_orders: usize,
    /// pgbench's clients for the commit ceiling.
    #[arg(long, default_value_t = 16)]
    db_clients: u32,
    /// Seconds of each pgbench run.
    #[arg(long, default_value_t = 10)]
    pgbench_secs: u64,
    /// Messages of the broker's produce burst.
    #[arg(long, default_value_t = 100_000)]
    produce_messages: usize,
    /// Skip pgbench and the broker burst.
    #[arg(long)]
    skip_limits: bool,
    /// RUST_LOG of every service.
    #[arg(long, default_value = "info")]
    rust_log: String,
    /// Where the Markdown report goes.
    #[arg(long, default_value = "target/heyblue-load/report.md")]
    out: PathBuf,
    /// Where the sweep's chart goes (SVG).
    #[arg(long, default_value = "target/heyblue-load/sweep.svg")]
    chart: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    plan::benchmark(Args::parse()).await
}
