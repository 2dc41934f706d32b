//! The service processes: spawning, prefixing their output, restarting them
//! when they die, and stopping them.
//!
//! Each child gets its own task. The task keeps a pipe to the child's stdin
//! open for as long as the child lives: the services run with
//! `HEYBLUE_EXIT_ON_STDIN_EOF=1`, so if this launcher dies in a way that
//! runs no clean-up at all (SIGKILL), the kernel closes the pipe and every
//! child shuts itself down. Children also get their own process group, so
//! the terminal's Ctrl-C reaches only the launcher, which then stops them in
//! order instead of all at once.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Colour;

/// How long children get to finish in-flight work after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// How children's output lines are prefixed: the service's name padded to
/// `width`, coloured on the streams that reach a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    pub width: usize,
    pub colour: Colour,
}

impl Labels {
    /// `name` padded, and wrapped in cyan when `coloured`.
    fn label(self, name: &str, coloured: bool) -> String {
        let padded = format!("{name:<width$}", width = self.width);
        if coloured {
            format!("\x1b[36m{padded}\x1b[0m")
        } else {
            padded
        }
    }
}

/// What to run for one service.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    pub name: String,
    pub program: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The restart delay after a child died: 1 s, doubling up to 30 s, and back to
/// 1 s once a child stayed up for a minute (it was healthy; this is a new
/// failure, not the same crash loop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);
    pub const RESET_AFTER: Duration = Duration::from_secs(60);

    pub fn new() -> Self {
        Self {
            next: Self::INITIAL,
        }
    }

    /// The delay before restarting a child that ran for `uptime`.
    pub fn delay_after(&mut self, uptime: Duration) -> Duration {
        if uptime >= Self::RESET_AFTER {
            self.next = Self::INITIAL;
        }
        let delay = self.next;
        self.next = (delay * 2).min(Self::MAX);
        delay
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The running fleet's processes.
pub struct Supervisor {
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl Supervisor {
    /// Starts every child in its own supervising task.
    ///
    /// Cancelling `shutdown` stops them with SIGTERM and, after
    /// [`STOP_GRACE`], SIGKILL; cancelling `force` sends SIGKILL at once
    /// (a second Ctrl-C).
    pub fn start(
        specs: Vec<ChildSpec>,
        labels: Labels,
        shutdown: CancellationToken,
        force: CancellationToken,
    ) -> Self {
        let mut tasks = JoinSet::new();
        for spec in specs {
            tasks.spawn(supervise(spec, labels, shutdown.clone(), force.clone()));
        }
        Self { tasks, shutdown }
    }

    /// Stops every child and returns once all of them have exited.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while let Some(result) = self.tasks.join_next().await {
            if let Err(error) = result {
                eprintln!("local-stack | a supervisor task failed: {error}");
            }
        }
    }
}

/// Runs one service until `shutdown`, restarting it whenever it exits.
async fn supervise(
    spec: ChildSpec,
    labels: Labels,
    shutdown: CancellationToken,
    force: CancellationToken,
) {
    let mut backoff = Backoff::new();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let started = Instant::now();
        let outcome = match spawn(&spec, labels) {
            Ok(child) => run_child(&spec, child, &shutdown, &force).await,
            Err(error) => ChildOutcome::Failed(format!("{error:#}")),
        };
        let reason = match outcome {
            ChildOutcome::Stopped => return,
            ChildOutcome::Exited(status) => format!("exited with {}", describe(status)),
            ChildOutcome::Failed(error) => format!("could not be run: {error}"),
        };
        let delay = backoff.delay_after(started.elapsed());
        eprintln!("{} {reason}; restarting in {}s", spec.name, delay.as_secs());
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

enum ChildOutcome {
    /// Stopped because we asked it to.
    Stopped,
    /// Exited on its own.
    Exited(ExitStatus),
    /// Could not be spawned or waited for.
    Failed(String),
}

fn spawn(spec: &ChildSpec, labels: Labels) -> anyhow::Result<Child> {
    let mut command = Command::new(&spec.program);
    command
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Only a safety net for a launcher that unwinds without stopping its
        // children; the normal path stops them with SIGTERM first.
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("failed to start {}", spec.program.display()))?;
    let stdout_label = labels.label(&spec.name, labels.colour.stdout);
    if let Some(pid) = child.id() {
        println!("{stdout_label} | started, pid {pid}");
    }
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, stdout_label, Stream::Stdout));
    }
    if let Some(stderr) = child.stderr.take() {
        let stderr_label = labels.label(&spec.name, labels.colour.stderr);
        tokio::spawn(forward_lines(stderr, stderr_label, Stream::Stderr));
    }
    Ok(child)
}

async fn run_child(
    spec: &ChildSpec,
    mut child: Child,
    shutdown: &CancellationToken,
    force: &CancellationToken,
) -> ChildOutcome {
    // Held, never written: its end of the pipe closing is the children's cue
    // that the launcher is gone.
    let stdin = child.stdin.take();
    tokio::select! {
        status = child.wait() => match status {
            Ok(status) => ChildOutcome::Exited(status),
            Err(error) => ChildOutcome::Failed(format!("failed to wait for {}: {error}", spec.name)),
        },
        () = shutdown.cancelled() => {
            stop_child(&spec.name, &mut child, stdin, force).await;
            ChildOutcome::Stopped
        }
    }
}

/// SIGTERM and EOF on stdin, then SIGKILL after the grace period (or at once
/// on `force`).
///
/// Stdin is closed too because a process reading it on a blocking thread
/// (tokio's `stdin()` does) cannot finish shutting its runtime down while
/// that read is pending; EOF lets the read return.
async fn stop_child(
    name: &str,
    child: &mut Child,
    stdin: Option<ChildStdin>,
    force: &CancellationToken,
) {
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        if let Err(error) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            eprintln!("{name}: failed to send SIGTERM: {error}");
        }
    }
    drop(stdin);
    let graceful = tokio::select! {
        result = tokio::time::timeout(STOP_GRACE, child.wait()) => result.ok(),
        () = force.cancelled() => None,
    };
    match graceful {
        Some(Ok(_)) => {}
        Some(Err(error)) => eprintln!("{name}: failed to wait for exit: {error}"),
        None => {
            eprintln!("{name} did not stop in time; killing it");
            if let Err(error) = child.kill().await {
                eprintln!("{name}: failed to kill: {error}");
            }
        }
    }
}

/// `status 1` or `signal 9`, for the restart message.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

/// Copies a child's output line by line, each line prefixed with
/// `<name padded> | `. Lines need not be UTF-8.
async fn forward_lines(reader: impl AsyncRead + Unpin, label: String, stream: Stream) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                match stream {
                    Stream::Stdout => emit(&mut std::io::stdout().lock(), &label, text),
                    Stream::Stderr => emit(&mut std::io::stderr().lock(), &label, text),
                }
            }
            Err(error) => {
                eprintln!("{label} | (output lost: {error})");
                return;
            }
        }
    }
}

/// Writes one prefixed line; a closed terminal is no reason to stop.
fn emit(out: &mut impl Write, label: &str, text: &str) {
    let _ = writeln!(out, "{label} | {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_up_to_thirty() {
        let mut backoff = Backoff::new();
        let quick = Duration::from_secs(2);
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.delay_after(quick).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn backoff_starts_over_after_a_minute_up() {
        let mut backoff = Backoff::new();
        for _ in 0..4 {
            backoff.delay_after(Duration::ZERO);
        }
        assert_eq!(backoff.delay_after(Duration::from_secs(59)).as_secs(), 16);
        assert_eq!(backoff.delay_after(Duration::from_secs(60)).as_secs(), 1);
        assert_eq!(backoff.delay_after(Duration::ZERO).as_secs(), 2);
    }

    #[test]
    fn exit_statuses_read_as_a_status_or_a_signal() {
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "status 1");
        assert_eq!(describe(ExitStatus::from_raw(9)), "signal 9");
    }

    #[test]
    fn output_lines_carry_the_padded_service_name() {
        let labels = Labels {
            width: 15,
            colour: Colour {
                stdout: false,
                stderr: true,
            },
        };
        let mut out = Vec::new();
        emit(&mut out, &labels.label("catalog", false), "listening");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "catalog         | listening\n"
        );
        assert_eq!(labels.label("cart", true), "\x1b[36mcart           \x1b[0m");
    }

    #[tokio::test]
    async fn a_child_is_stopped_with_sigterm_and_leaves_nothing_behind() {
        let spec = ChildSpec {
            name: "sleeper".to_owned(),
            program: PathBuf::from("sh"),
            env: Vec::new(),
        };
        let mut command = Command::new("sh");
        command
            .args(["-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"])
            .stdin(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("sh runs");
        let pid = child.id().expect("running");
        let stdin = child.stdin.take();
        // Give the shell time to install its trap.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        stop_child(&spec.name, &mut child, stdin, &CancellationToken::new()).await;
        assert!(started.elapsed() < STOP_GRACE);
        assert!(child.try_wait().expect("waitable").is_some());
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits"));
        assert!(kill(pid, None).is_err(), "process still exists");
    }
}
