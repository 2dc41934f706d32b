//! Running schemathesis (installed by `scripts/ensure-schemathesis` into
//! the checkout's virtual environment) against one service's
//! `/openapi.json` as one caller, and reading what it found.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use tokio::process::Command;

/// The checks every run makes: no 5xx, every status, media type and body
/// as the operation's own document says, and ours (`tests/fuzz/hooks.py`):
/// a refused request changes nothing.
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,refused_requests_change_nothing";

/// How hard each run tries.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// `--max-examples`: cases per operation in the fuzzing phase (the
    /// examples and coverage phases add their own, bounded by the schema).
    pub examples_per_operation: u32,
    /// The longest a run may take: it is stopped, and fails, after this.
    /// (Not `--max-time`, which makes schemathesis go on fuzzing until the
    /// time is spent.)
    pub time: Duration,
}

/// One run's caller and what to look at.
pub struct Run<'a> {
    /// The service's base URL.
    pub url: &'a str,
    /// The bearer token of the caller; `None` sends none.
    pub token: Option<&'a str>,
    /// `schemathesis.toml` text: the fixed path parameters of the world.
    pub config: String,
    /// `[url, token]` pairs the refused-request check reads (JSON).
    pub fingerprint: String,
    pub budget: Budget,
    pub seed: u64,
}

/// What one run found.
#[derive(Debug)]
pub struct Outcome {
    pub passed: bool,
    /// Test cases sent, as schemathesis counts them.
    pub cases: u64,
    /// The operations a failure names (`GET /v1/cart`), each once.
    pub failing_operations: Vec<String>,
    /// Everything it printed.
    pub output: String,
    pub took: Duration,
}

/// The installed schemathesis and this test's hooks.
pub struct Schemathesis {
    command: PathBuf,
    hooks: PathBuf,
    scratch: TempDir,
}

impl Schemathesis {
    /// Installs schemathesis (once per checkout) through
    /// `scripts/ensure-schemathesis`.
    pub fn install() -> Schemathesis {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root")
            .to_path_buf();
        let output = std::process::Command::new(root.join("scripts/ensure-schemathesis"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/ensure-schemathesis");
        assert!(
            output.status.success(),
            "scripts/ensure-schemathesis failed: {}",
            output.status
        );
        let command = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        Schemathesis {
            command,
            hooks: root.join("tests/fuzz/hooks.py"),
            scratch: tempfile::tempdir().expect("a scratch directory"),
        }
    }

    pub async fn run(&self, run: Run<'_>) -> Outcome {
        let config = self
            .scratch
            .path()
            .join(format!("schemathesis-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&config, &run.config).expect("write schemathesis.toml");
        let mut command = Command::new(&self.command);
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--no-color")
            .arg("run")
            .arg(format!("{}/openapi.json", run.url))
            .args(["--checks", CHECKS])
            .args(["--phases", "examples,coverage,fuzzing"])
            .args([
                "--max-examples",
                &run.budget.examples_per_operation.to_string(),
            ])
            .args(["--seed", &run.seed.to_string()])
            .args(["--workers", "1"])
            .args(["--generation-database", "none"])
            .args(["--request-timeout", "35"])
            .args(["--output-truncate", "true"])
            .env("SCHEMATHESIS_HOOKS", &self.hooks)
            .env("HEYBLUE_FUZZ_FINGERPRINT", &run.fingerprint)
            .current_dir(self.scratch.path())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(token) = run.token {
            command.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        let started = Instant::now();
        let Ok(output) = tokio::time::timeout(run.budget.time, command.output()).await else {
            return Outcome {
                passed: false,
                cases: 0,
                failing_operations: Vec::new(),
                output: format!("stopped after {:?}, its time budget", run.budget.time),
                took: started.elapsed(),
            };
        };
        let output = output.expect("run schemathesis");
        let took = started.elapsed();
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Outcome {
            passed: output.status.success(),
            cases: cases_in(&text),
            failing_operations: failing_operations(&text),
            output: text,
            took,
        }
    }
}

/// The total of schemathesis's summary line, e.g.
/// `Test cases:\n  1234 generated, 1234 passed`.
fn cases_in(output: &str) -> u64 {
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "Test cases:" {
            return lines
                .next()
                .and_then(|line| line.split_whitespace().next())
                .and_then(|count| count.parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

/// The operations named in the failure section's headings
/// (`___ GET /v1/cart ___`).
fn failing_operations(output: &str) -> Vec<String> {
    let mut operations: Vec<String> = Vec::new();
    for line in output.lines() {
        let line = line.trim();
        if !(line.starts_with('_') && line.ends_with('_')) {
            continue;
        }
        let heading = line.trim_matches('_').trim();
        let is_operation = heading.split_once(' ').is_some_and(|(method, path)| {
            method.chars().all(|c| c.is_ascii_uppercase()) && path.starts_with('/')
        });
        if is_operation && !operations.iter().any(|known| known == heading) {
            operations.push(heading.to_owned());
        }
    }
    operations
}
