//! The figures of a whole benchmark, written as Markdown tables:
//! what `BENCHMARKS.md` quotes.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::database::Rows;
use crate::fleet::StartTimes;
use crate::limits::{CommitCeiling, ProduceRate};
use crate::load::Run;
use crate::stats::{Summary, HOPS};

/// Everything one invocation measured.
#[derive(Debug, Default)]
pub struct Results {
    /// What was run: the command line.
    pub command: String,
    /// The machine: cores and load averages before and after.
    pub cores: usize,
    pub load_before: String,
    pub load_after: String,
    pub replicas: Option<String>,
    pub started: StartTimes,
    /// Resident memory of every process once the fleet was idle, in MiB.
    pub idle_rss: BTreeMap<String, f64>,
    /// Peak resident memory of every process at the end, in MiB.
    pub peak_rss: BTreeMap<String, f64>,
    pub ceiling: Option<CommitCeiling>,
    pub produce: Option<ProduceRate>,
    pub census: Option<Census>,
    pub sweep: Vec<Run>,
    pub sustained: Option<Run>,
    pub closed: Option<Run>,
    pub errors_logged: u64,
    /// Emails the fleet sent over SMTP during the whole benchmark.
    pub emails: usize,
}

/// What the fleet's database does for one order, counted without polling.
#[derive(Debug, Clone, Default)]
pub struct Census {
    pub orders: usize,
    /// Of them, at `processing` or later when counted.
    pub processing: usize,
    pub commits_per_order: f64,
    pub write_transactions_per_order: f64,
    /// Statements run per order, when `pg_stat_statements` counts them.
    pub statements_per_order: Option<f64>,
    /// Rows inserted, updated or deleted per order, by schema and table.
    pub rows_per_order: BTreeMap<(String, String), Rows>,
    /// The idle fleet's own commits per second, taken off the above.
    pub idle_commits_per_second: f64,
    pub idle_write_transactions_per_second: f64,
}

impl Results {
    /// The fleet's commits per order that wait for a WAL flush.
    fn write_commits_per_order(&self) -> Option<f64> {
        self.census
            .as_ref()
            .map(|census| census.write_transactions_per_order)
            .filter(|per_order| *per_order > 0.0)
    }

    /// Orders per second the commit ceiling allows.
    pub fn ceiling_orders_per_second(&self) -> Option<f64> {
        Some(self.ceiling?.insert_tps / self.write_commits_per_order()?)
    }

    /// Orders the checkouts of every run and the census placed.
    fn orders_placed(&self) -> u64 {
        let runs = self.sweep.iter().chain(&self.sustained).chain(&self.closed);
        runs.map(|run| run.tally.checkouts).sum::<u64>()
            + self
                .census
                .as_ref()
                .map_or(0, |census| census.orders as u64)
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.machine(&mut out);
        self.limits(&mut out);
        if let Some(run) = &self.sustained {
            self.headline(&mut out, run);
        }
        if !self.sweep.is_empty() {
            let _ = writeln!(out, "\n### Sweep (open loop)\n");
            runs_table(&mut out, &self.sweep);
            for run in self.sweep.iter().filter(|run| run.errors() > 0) {
                let errors: Vec<String> = run
                    .tally
                    .errors
                    .iter()
                    .map(|(kind, count)| format!("{kind} ×{count}"))
                    .collect();
                let _ = writeln!(out, "- {} errors: {}", run.load.label(), errors.join(", "));
            }
        }
        if let Some(census) = &self.census {
            rows_table(&mut out, census);
        }
        for run in self.sustained.iter().chain(&self.closed) {
            let _ = writeln!(out, "\n### {}, {:.0} s\n", run.load.label(), run.seconds);
            runs_table(&mut out, std::slice::from_ref(run));
            hops_table(&mut out, run);
            self.cpu_table(&mut out, run);
            errors_list(&mut out, run);
        }
        let _ = writeln!(
            out,
            "\nLines the services logged at ERROR level during the runs: {}.",
            self.errors_logged
        );
        let placed = self.orders_placed();
        if placed > 0 {
            let _ = writeln!(
                out,
                "\nEmails the fleet sent over SMTP: {} for {placed} orders placed, {:.2} an order (placed, paid and dispatched make three).",
                self.emails,
                self.emails as f64 / placed as f64
            );
        }
        out
    }

    fn machine(&self, out: &mut String) {
        let _ = writeln!(out, "### Run\n");
        let _ = writeln!(out, "- command: `{}`", self.command);
        let _ = writeln!(
            out,
            "- machine: {} cores; load average {} before, {} after",
            self.cores, self.load_before, self.load_after
        );
        if let Some(replicas) = &self.replicas {
            let _ = writeln!(out, "- replicas: `HEYBLUE_REPLICAS={replicas}`");
        }
        let s = self.started;
        let _ = writeln!(
            out,
            "- fleet start: every service ready {:.2} s after launch (PostgreSQL initdb + start + provisioning {:.2} s, services spawned to all `/readyz` 200 {:.2} s); banner after seeding {:.2} s",
            s.ready.as_secs_f64(),
            s.database.as_secs_f64(),
            s.services.as_secs_f64(),
            s.banner.as_secs_f64(),
        );
        let _ = writeln!(
            out,
            "\n| process | idle RSS MiB | peak RSS MiB |\n|---|---:|---:|"
        );
        for (name, idle) in &self.idle_rss {
            let peak = self.peak_rss.get(name).copied().unwrap_or_default();
            let _ = writeln!(out, "| {name} | {idle:.1} | {peak:.1} |");
        }
    }

    fn limits(&self, out: &mut String) {
        let _ = writeln!(out, "\n### Limits on this machine\n");
        if let Some(ceiling) = &self.ceiling {
            let _ = writeln!(
                out,
                "- commit ceiling (pgbench on the fleet's PostgreSQL, fsync on, {} clients): one-row inserts **{:.0} commits/s**; TPC-B-like {:.0} tps",
                ceiling.clients, ceiling.insert_tps, ceiling.tpcb_tps
            );
        }
        if let Some(produce) = &self.produce {
            let _ = writeln!(
                out,
                "- broker produce rate (the relay's idempotent producer, acks=all, {} messages of {} bytes): **{:.0} messages/s**",
                produce.messages, produce.payload_bytes, produce.per_second
            );
        }
        if let Some(census) = &self.census {
            let _ = writeln!(
                out,
                "- per order ({} orders, not polled, {} at `processing` or later when counted; the idle fleet's {:.1} commits/s and {:.1} writing transactions/s taken off): **{:.1} writing commits** (transaction ids), {:.1} commits of any kind (`pg_stat_database.xact_commit`)",
                census.orders,
                census.processing,
                census.idle_commits_per_second,
                census.idle_write_transactions_per_second,
                census.write_transactions_per_order,
                census.commits_per_order,
            );
            if let Some(statements) = census.statements_per_order {
                let _ = writeln!(
                    out,
                    "- per order, the same orders: **{statements:.0} statements** (`pg_stat_statements`, the idle fleet's taken off)"
                );
            }
        }
        if let Some(ceiling) = self.ceiling_orders_per_second() {
            let _ = writeln!(
                out,
                "- so the commit ceiling allows **{ceiling:.0} orders/s** (one-row commits/s ÷ writing commits per order)"
            );
        }
    }

    fn headline(&self, out: &mut String, run: &Run) {
        let _ = writeln!(
            out,
            "\n### Headline ({}, {:.0} s)\n",
            run.load.label(),
            run.seconds
        );
        let _ = writeln!(
            out,
            "- {:.1} checkouts/s, **{:.1} orders/s** reached `processing`, {} errors",
            run.checkouts_per_second(),
            run.completed_per_second(),
            run.errors()
        );
        let c = run.tally.checkout;
        let p = run.tally.to_processing;
        let _ = writeln!(
            out,
            "- checkout p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms; submit → processing p50 {:.1} ms, p99 {:.1} ms",
            c.p50, c.p95, c.p99, p.p50, p.p99
        );
        if let Some(ceiling) = self.ceiling_orders_per_second() {
            let _ = writeln!(
                out,
                "- ratio to the commit ceiling: {:.1} ÷ {:.0} = **{:.2}**",
                run.completed_per_second(),
                ceiling,
                run.completed_per_second() / ceiling
            );
        }
    }

    fn cpu_table(&self, out: &mut String, run: &Run) {
        let completed = run.tally.completed.max(1) as f64;
        let _ = writeln!(
            out,
            "\n| process | CPU s | ms CPU per order | share of one core |\n|---|---:|---:|---:|"
        );
        let mut rows: Vec<(&String, &f64)> = run.cpu.iter().collect();
        rows.sort_by(|a, b| b.1.total_cmp(a.1));
        let total: f64 = run.cpu.values().sum();
        for (name, seconds) in rows {
            let _ = writeln!(
                out,
                "| {name} | {seconds:.1} | {:.2} | {:.0} % |",
                seconds * 1000.0 / completed,
                seconds * 100.0 / run.seconds
            );
        }
        let _ = writeln!(
            out,
            "| **all** | {total:.1} | {:.2} | {:.0} % |",
            total * 1000.0 / completed,
            total * 100.0 / run.seconds
        );
        let _ = writeln!(
            out,
            "\nDatabase: {:.1} writing commits and {:.1} commits of any kind per order during the run (polling included); {:.1} connections busy on average, {} at most.",
            run.database.write_transactions as f64 / completed,
            run.database.commits as f64 / completed,
            run.busy_connections_mean,
            run.busy_connections_peak
        );
        if let Some(statements) = run.database.statements {
            let _ = writeln!(
                out,
                "Statements: {:.0} per order during the run (polling included; `pg_stat_statements`).",
                statements as f64 / completed
            );
        }
    }
}

fn ms(summary: &Summary) -> String {
    format!("{:.1} / {:.1}", summary.p50, summary.p99)
}

fn runs_table(out: &mut String, runs: &[Run]) {
    let _ = writeln!(
        out,
        "| load | journeys | checkouts/s | orders/s | errors | cart p50 / p99 ms | quote p50 / p99 ms | checkout p50 / p95 / p99 ms | submit → processing p50 / p99 ms | ms CPU per order | order looks per order |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in runs {
        let c = run.tally.checkout;
        // Both over every order that reached `processing`, those that
        // did after the window included.
        let completed = run.tally.completed.max(1) as f64;
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.1} / {:.1} / {:.1} | {} | {:.1} | {:.1} |",
            run.load.label(),
            run.tally.started,
            run.checkouts_per_second(),
            run.completed_per_second(),
            run.errors(),
            ms(&run.tally.cart),
            ms(&run.tally.quote),
            c.p50,
            c.p95,
            c.p99,
            ms(&run.tally.to_processing),
            run.cpu.values().sum::<f64>() * 1000.0 / completed,
            run.tally.polls as f64 / completed,
        );
    }
}

fn hops_table(out: &mut String, run: &Run) {
    let _ = writeln!(
        out,
        "\n| hop (dated by the order's history) | p50 ms | p99 ms |\n|---|---:|---:|"
    );
    for (name, summary) in HOPS.iter().zip(&run.tally.hops) {
        let _ = writeln!(out, "| {name} | {:.1} | {:.1} |", summary.p50, summary.p99);
    }
}

/// Rows written per order, a line per table, the busiest first, each
/// service's total in its first line's schema cell.
fn rows_table(out: &mut String, census: &Census) {
    let _ = writeln!(
        out,
        "\n### Rows written per order (census, by table)\n\n| schema (rows per order) | table | inserted | updated | deleted |\n|---|---|---:|---:|---:|"
    );
    let mut schemas: BTreeMap<&str, f64> = BTreeMap::new();
    for ((schema, _), rows) in &census.rows_per_order {
        *schemas.entry(schema).or_default() += rows.total();
    }
    let mut order: Vec<(&str, f64)> = schemas.into_iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (schema, total) in order {
        let mut tables: Vec<(&String, &Rows)> = census
            .rows_per_order
            .iter()
            .filter(|((s, _), rows)| s == schema && rows.total() >= 0.05)
            .map(|((_, table), rows)| (table, rows))
            .collect();
        tables.sort_by(|a, b| b.1.total().total_cmp(&a.1.total()));
        for (i, (table, rows)) in tables.into_iter().enumerate() {
            let label = if i == 0 {
                format!("{schema} ({total:.1})")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {label} | {table} | {:.1} | {:.1} | {:.1} |",
                rows.inserted, rows.updated, rows.deleted
            );
        }
    }
}

fn errors_list(out: &mut String, run: &Run) {
    if run.tally.polls_refused > 0 {
        let _ = writeln!(
            out,
            "\nLooks at an order refused `503 overloaded` (and made again): {}.",
            run.tally.polls_refused
        );
    }
    if run.tally.errors.is_empty() {
        let _ = writeln!(out, "\nNo errors.");
        return;
    }
    let _ = writeln!(out, "\nErrors by kind:\n");
    for (kind, count) in &run.tally.errors {
        let _ = writeln!(out, "- {kind}: {count}");
    }
}
