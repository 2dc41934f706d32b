//! What this machine can do at most, measured on the fleet's own servers
//! in the same run: PostgreSQL's commit ceiling (`pgbench` against the
//! fleet's cluster, same settings, fsync on) and the broker's produce rate.
//!
//! `pgbench` gets a database of its own beside `heyblue`, dropped after.

use std::path::PathBuf;

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::database::Database;

/// The scratch database `pgbench` runs in.
const PGBENCH_DATABASE: &str = "heyblue_pgbench";
/// A topic no service consumes, for the broker's burst.
const PROBE_TOPIC: &str = "heyblue.load-probe.v1";

/// The commit ceiling of the fleet's PostgreSQL server.
#[derive(Debug, Clone, Copy)]
pub struct CommitCeiling {
    pub clients: u32,
    /// One single-row insert per transaction: the cost of a commit.
    pub insert_tps: f64,
    /// pgbench's TPC-B-like transaction (three updates, a select, an insert).
    pub tpcb_tps: f64,
}

/// Runs `pgbench` twice for `seconds` each at `clients` connections.
pub async fn commit_ceiling(
    database: &Database,
    clients: u32,
    seconds: u64,
) -> anyhow::Result<CommitCeiling> {
    let pgbench = pgbench_path()?;
    let (host, port) = database.host_and_port();
    let admin = database.admin();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {PGBENCH_DATABASE}"))
        .execute(admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {PGBENCH_DATABASE}"))
        .execute(admin)
        .await?;
    let base = || {
        let mut command = Command::new(&pgbench);
        command
            .args(["-h", &host, "-p", &port.to_string(), "-U", "postgres"])
            .kill_on_drop(true);
        command
    };
    // Scale 10: ten branch rows, so 16 clients' TPC-B updates do not all
    // queue behind one row.
    run(base().args(["-i", "-q", "-s", "10", PGBENCH_DATABASE])).await?;
    let script = tempfile::Builder::new()
        .prefix("heyblue-load-insert-")
        .suffix(".sql")
        .tempfile()?;
    std::fs::write(
        script.path(),
        "INSERT INTO one_row_commits (v) VALUES (1);\n",
    )?;
    let scratch = sqlx::PgPool::connect_with(database.options_for(PGBENCH_DATABASE)).await?;
    sqlx::query("CREATE TABLE one_row_commits (id bigserial PRIMARY KEY, v int)")
        .execute(&scratch)
        .await?;
    scratch.close().await;
    let threads = clients.min(2).to_string();
    let clients_text = clients.to_string();
    let seconds_text = seconds.to_string();
    let timed = [
        "-n",
        "-c",
        clients_text.as_str(),
        "-j",
        threads.as_str(),
        "-T",
        seconds_text.as_str(),
    ];
    let insert = run(base()
        .args(timed)
        .arg("-f")
        .arg(script.path())
        .arg(PGBENCH_DATABASE))
    .await?;
    let tpcb = run(base().args(timed).arg(PGBENCH_DATABASE)).await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {PGBENCH_DATABASE} WITH (FORCE)"
    ))
    .execute(admin)
    .await?;
    Ok(CommitCeiling {
        clients,
        insert_tps: tps(&insert)?,
        tpcb_tps: tps(&tpcb)?,
    })
}

/// `pgbench`'s standard output, or why it failed.
async fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.output().await.context("failed to run pgbench")?;
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `tps = N (without initial connection time)` of pgbench's report.
pub fn tps(report: &str) -> anyhow::Result<f64> {
    report
        .lines()
        .find_map(|line| {
            let rest = line.trim().strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .with_context(|| format!("no tps line in pgbench's report: {report}"))
}

/// `pgbench` from `PATH`, else from the PostgreSQL the cluster runs on.
fn pgbench_path() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|candidate| candidate.is_file());
    if let Some(found) = on_path {
        return Ok(found);
    }
    let output = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
        .context("pgbench is not on PATH and pg_config is missing")?;
    let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()).join("pgbench");
    if bin.is_file() {
        Ok(bin)
    } else {
        bail!("pgbench not found on PATH nor in {}", bin.display())
    }
}

/// The broker's produce rate with the relay's own producer settings.
#[derive(Debug, Clone, Copy)]
pub struct ProduceRate {
    pub messages: usize,
    pub payload_bytes: usize,
    pub per_second: f64,
}

/// A burst of `messages` messages of about an event's size.
pub async fn produce_rate(bootstrap: &str, messages: usize) -> anyhow::Result<ProduceRate> {
    let measured = messaging::produce_rate::measure(bootstrap, PROBE_TOPIC, messages, 700)
        .await
        .context("the broker's produce burst failed")?;
    Ok(ProduceRate {
        messages: measured.messages,
        payload_bytes: measured.payload_bytes,
        per_second: measured.per_second(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_read_from_pgbenchs_report() {
        let report = "\
transaction type: <builtin: TPC-B (sort of)>
number of clients: 16
latency average = 7.012 ms
initial connection time = 12.345 ms
tps = 2281.792413 (without initial connection time)
";
        assert!((tps(report).expect("a rate") - 2281.792413).abs() < 1e-6);
        assert!(tps("no rate here").is_err());
    }
}
