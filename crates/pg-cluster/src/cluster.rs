//! Running a private PostgreSQL server from the machine's server binaries.
//!
//! The server refuses to run as root, so when this process is root every
//! server binary runs as the `postgres` OS user (see [`crate::server_user`])
//! and the cluster's directories are handed to that user. Clients (sqlx,
//! `pg_isready`) need no such care: they connect over TCP on 127.0.0.1.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::server_user::RunAs;

/// How long `pg_ctl` and our readiness probe wait for the server.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at finding a port nobody else grabbed between our probe and the bind.
const PORT_ATTEMPTS: usize = 3;
/// Lines of `postgres.log` quoted in a start-up error.
const LOG_TAIL_LINES: usize = 30;

/// Extra `postgres` command-line options for every cluster started here,
/// appended to the ones it is given (`-c name=value ...`).
pub const EXTRA_OPTIONS_ENV: &str = "HEYBLUE_POSTGRES_OPTIONS";

/// Settings of a cluster that differ between the local stack and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `fsync` of the server: on where the data should survive a crash of the
    /// machine (the local stack), off where it is thrown away anyway (tests),
    /// which makes commits several times cheaper.
    pub fsync: bool,
    /// `max_connections`: every service of the fleet and every test keeps a
    /// pool, so the default of 100 runs out quickly.
    pub max_connections: u32,
}

impl ClusterOptions {
    /// Durable settings for a cluster kept across runs of the local stack.
    pub const fn local_stack() -> Self {
        Self {
            fsync: true,
            max_connections: 300,
        }
    }

    /// Fast settings for a cluster that lives as long as a test process.
    pub const fn tests() -> Self {
        Self {
            fsync: false,
            ..Self::local_stack()
        }
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self::local_stack()
    }
}

/// A running PostgreSQL server listening on 127.0.0.1, owned by this process.
///
/// Dropping it (or [`PgCluster::stop`]) shuts the server down with
/// `pg_ctl stop -m fast`; the data directory stays for the next start unless
/// a watchdog removes it (see [`PgCluster::start_with_watchdog`]).
#[derive(Debug)]
pub struct PgCluster {
    server: ServerBinaries,
    data_dir: PathBuf,
    port: u16,
    running: bool,
    watchdog: Option<Child>,
    watchdog_mode: Watchdog,
}

impl PgCluster {
    /// Starts (initialising it first if needed) the cluster kept under
    /// `base_dir`, with the durable [`ClusterOptions::local_stack`] settings.
    pub fn start(base_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(base_dir, ClusterOptions::local_stack())
    }

    /// Starts the cluster kept under `base_dir` with the given settings.
    ///
    /// `base_dir` holds `data/` (reused when it was initialised before),
    /// `sock/` (the Unix socket) and `postgres.log`.
    pub fn start_with(base_dir: &Path, options: ClusterOptions) -> anyhow::Result<Self> {
        Self::launch(base_dir, options, Watchdog::None)
    }

    /// Like [`PgCluster::start_with`], and also leaves behind a detached
    /// watchdog that stops the server once this process has exited for
    /// whatever reason (even SIGKILL), keeping its data for the next start.
    /// Meant for a long-lived cluster owned by one launcher process.
    pub fn start_owned(base_dir: &Path, options: ClusterOptions) -> anyhow::Result<Self> {
        Self::launch(base_dir, options, Watchdog::Stop)
    }

    /// Like [`PgCluster::start_with`], and also leaves behind a detached
    /// watchdog that, once this process has exited for whatever reason (a
    /// panic, a signal, or a static that is never dropped), stops the server
    /// with `pg_ctl stop -m immediate` and deletes `base_dir`.
    ///
    /// Meant for throw-away clusters in a temporary directory: `base_dir` is
    /// removed even when this handle was stopped and dropped cleanly.
    pub fn start_with_watchdog(base_dir: &Path, options: ClusterOptions) -> anyhow::Result<Self> {
        Self::launch(base_dir, options, Watchdog::StopAndRemove)
    }

    /// The port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's URL to the `postgres` database. Authentication is
    /// `trust`, so it carries no password.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The directory holding `data/`, `sock/` and `postgres.log`.
    pub fn base_dir(&self) -> &Path {
        &self.server.base_dir
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        log_path(&self.server.base_dir)
    }

    /// Stops the server (`pg_ctl stop -m fast`) and waits until it is down.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn launch(
        base_dir: &Path,
        options: ClusterOptions,
        watchdog: Watchdog,
    ) -> anyhow::Result<Self> {
        let bindir = find_bindir()?;
        let run_as = RunAs::detect()?;

        fs::create_dir_all(base_dir)
            .with_context(|| format!("failed to create {}", base_dir.display()))?;
        let base_dir = base_dir
            .canonicalize()
            .with_context(|| format!("failed to resolve {}", base_dir.display()))?;
        let socket_dir = base_dir.join("sock");
        fs::create_dir_all(&socket_dir)
            .with_context(|| format!("failed to create {}", socket_dir.display()))?;
        run_as.hand_over(&base_dir)?;
        run_as.hand_over(&socket_dir)?;
        if !run_as.can_enter(&base_dir)? {
            bail!(
                "the postgres OS user, which runs the server, cannot enter {}: a directory above it is closed to other users (as /root is). Keep the cluster somewhere it can reach, such as under /var/lib or /tmp",
                base_dir.display()
            );
        }

        let server = ServerBinaries {
            bindir,
            run_as,
            base_dir,
        };
        let data_dir = server.base_dir.join("data");

        // Spawned before anything starts, so there is no moment in which a
        // server runs that nobody would stop.
        let watchdog_mode = watchdog;
        let watchdog = if watchdog_mode != Watchdog::None {
            Some(server.spawn_watchdog(&data_dir, watchdog_mode == Watchdog::StopAndRemove)?)
        } else {
            None
        };

        server.init_if_needed(&data_dir)?;
        server.stop_stale_server(&data_dir)?;
        let port = server.start(&data_dir, &socket_dir, options)?;

        let cluster = Self {
            server,
            data_dir,
            port,
            running: true,
            watchdog,
            watchdog_mode,
        };
        // From here on, Drop stops the server if waiting fails.
        cluster.wait_until_accepting()?;
        tracing::info!(
            port = cluster.port,
            data_dir = %cluster.data_dir.display(),
            fsync = options.fsync,
            "private PostgreSQL cluster is up"
        );
        Ok(cluster)
    }

    fn wait_until_accepting(&self) -> anyhow::Result<()> {
        let pg_isready = self.server.bindir.join("pg_isready");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let status = Command::new(&pg_isready)
                .args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
                .arg("-p")
                .arg(self.port.to_string())
                .stdin(Stdio::null())
                .status()
                .with_context(|| format!("failed to run {}", pg_isready.display()))?;
            if status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "PostgreSQL on port {} did not accept connections within {:?}\n{}",
                    self.port,
                    START_TIMEOUT,
                    log_tail(&self.server.base_dir)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        self.server
            .pg_ctl_stop(&self.data_dir, "fast")
            .with_context(|| {
                format!(
                    "failed to stop PostgreSQL in {}",
                    self.server.base_dir.display()
                )
            })?;
        // A server stopped cleanly leaves a stopping watchdog nothing to do,
        // and one left waiting would, a second after we exit, stop the
        // server of whoever starts this data directory next (the launcher
        // run again at once). A removing watchdog still has to remove.
        if self.watchdog_mode == Watchdog::Stop {
            if let Some(mut watchdog) = self.watchdog.take() {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
            }
        }
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            tracing::warn!(
                error = format!("{error:#}"),
                "fast shutdown failed, trying immediate"
            );
            if let Err(error) = self.server.pg_ctl_stop(&self.data_dir, "immediate") {
                tracing::error!(
                    error = format!("{error:#}"),
                    "PostgreSQL may still be running"
                );
            }
        }
        // The watchdog outlives us on purpose; dropping a `Child` neither
        // kills nor waits for it.
        self.watchdog.take();
    }
}

/// Restarts the server of the cluster kept under `base_dir`, whichever
/// process started it, as an operator would (`pg_ctl restart -m fast`, on
/// its port and socket as before): every connection is dropped, the server
/// is back when this returns.
pub fn restart(base_dir: &Path) -> anyhow::Result<()> {
    let base_dir = base_dir
        .canonicalize()
        .with_context(|| format!("failed to resolve {}", base_dir.display()))?;
    let server = ServerBinaries {
        bindir: find_bindir()?,
        run_as: RunAs::detect()?,
        base_dir,
    };
    let mut pg_ctl = server.command("pg_ctl");
    pg_ctl
        .arg("-D")
        .arg(server.base_dir.join("data"))
        .args(["restart", "-w", "-m", "fast"])
        .arg("-t")
        .arg(START_TIMEOUT.as_secs().to_string())
        .arg("-l")
        .arg(log_path(&server.base_dir));
    run(&mut pg_ctl).map(drop)
}

#[derive(Debug)]
struct ServerBinaries {
    bindir: PathBuf,
    run_as: RunAs,
    base_dir: PathBuf,
}

impl ServerBinaries {
    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut command = match self.run_as.prefix() {
            [] => Command::new(&program),
            [runner, args @ ..] => {
                let mut command = Command::new(runner);
                command.args(args).arg(&program);
                command
            }
        };
        // The server's user may not be allowed into our working directory.
        command.current_dir(&self.base_dir).stdin(Stdio::null());
        command
    }

    fn init_if_needed(&self, data_dir: &Path) -> anyhow::Result<()> {
        if data_dir.join("PG_VERSION").exists() {
            tracing::debug!(data_dir = %data_dir.display(), "reusing initialised cluster");
            return Ok(());
        }
        if data_dir.exists() {
            // `initdb` writes PG_VERSION early; without it this is the wreck
            // of an interrupted `initdb`, which refuses a non-empty directory.
            tracing::warn!(data_dir = %data_dir.display(), "removing half-initialised data directory");
            fs::remove_dir_all(data_dir)
                .with_context(|| format!("failed to remove {}", data_dir.display()))?;
        }
        let mut initdb = self.command("initdb");
        initdb
            .arg("-D")
            .arg(data_dir)
            // C collation: the same ordering on every machine.
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .arg("--locale=C");
        run(&mut initdb).with_context(|| format!("initdb of {} failed", data_dir.display()))?;
        Ok(())
    }

    /// Stops a server that a previous owner of `data_dir` left running
    /// (a local stack killed without a chance to clean up); it would keep
    /// the data directory locked.
    fn stop_stale_server(&self, data_dir: &Path) -> anyhow::Result<()> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(data_dir)
            .arg("status")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("failed to run pg_ctl status")?;
        // 0: running; 3: not running.
        if status.success() {
            tracing::warn!(data_dir = %data_dir.display(), "stopping a server left running by a previous run");
            self.pg_ctl_stop(data_dir, "fast")?;
        }
        Ok(())
    }

    /// Starts the server on a free port and returns that port.
    fn start(
        &self,
        data_dir: &Path,
        socket_dir: &Path,
        options: ClusterOptions,
    ) -> anyhow::Result<u16> {
        let log = log_path(&self.base_dir);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let mut server_options = format!(
                "-p {port} -k {socket} -c listen_addresses=127.0.0.1 -c fsync={fsync} -c max_connections={max}",
                socket = shell_quote(&socket_dir.to_string_lossy()),
                fsync = if options.fsync { "on" } else { "off" },
                max = options.max_connections,
            );
            // More server settings, for a developer profiling the fleet
            // (e.g. `-c shared_preload_libraries=pg_stat_statements`).
            if let Ok(extra) = std::env::var(EXTRA_OPTIONS_ENV) {
                server_options.push(' ');
                server_options.push_str(&extra);
            }
            let mut pg_ctl = self.command("pg_ctl");
            pg_ctl
                .arg("-D")
                .arg(data_dir)
                .arg("-l")
                .arg(&log)
                .arg("-w")
                .arg("-t")
                .arg(START_TIMEOUT.as_secs().to_string())
                .arg("-o")
                .arg(server_options)
                .arg("start");
            let Err(error) = run(&mut pg_ctl) else {
                return Ok(port);
            };
            let tail = log_tail(&self.base_dir);
            // Another process may take the port between our probe and the
            // server's bind; only that failure is worth another try.
            if attempt < PORT_ATTEMPTS && tail.contains("Address already in use") {
                tracing::debug!(port, "port was taken before the server bound it, retrying");
                continue;
            }
            return Err(error.context(format!(
                "failed to start PostgreSQL from {} on port {port}\n{tail}",
                data_dir.display()
            )));
        }
    }

    fn pg_ctl_stop(&self, data_dir: &Path, mode: &str) -> anyhow::Result<()> {
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(data_dir)
            .args(["stop", "-w", "-m", mode])
            .arg("-t")
            .arg(START_TIMEOUT.as_secs().to_string());
        run(&mut pg_ctl).map(drop)
    }

    /// A `sh` loop that waits for this process to end (or become a zombie
    /// whose parent never reaps it), then stops the server and removes
    /// `base_dir`. It runs in its own process group so that the Ctrl-C which
    /// kills a test run does not kill the watchdog too; the server itself is
    /// already detached that way by `pg_ctl`.
    fn spawn_watchdog(&self, data_dir: &Path, remove: bool) -> anyhow::Result<Child> {
        let pid = std::process::id();
        let mut stop: Vec<String> = self
            .run_as
            .prefix()
            .iter()
            .map(|word| (*word).to_owned())
            .collect();
        stop.push(shell_quote(&self.bindir.join("pg_ctl").to_string_lossy()));
        let script = format!(
            "while kill -0 {pid} 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' /proc/{pid}/status 2>/dev/null; do sleep 1; done; \
             {stop} -D {data} stop -m {mode} >/dev/null 2>&1{remove}",
            stop = stop.join(" "),
            data = shell_quote(&data_dir.to_string_lossy()),
            // Kept data deserves a clean stop; a throw-away cluster does not.
            mode = if remove { "immediate" } else { "fast" },
            remove = if remove {
                format!("; rm -rf {}", shell_quote(&self.base_dir.to_string_lossy()))
            } else {
                String::new()
            },
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("failed to spawn the PostgreSQL watchdog")
    }
}

/// What happens to the server when the owning process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watchdog {
    None,
    Stop,
    StopAndRemove,
}

/// The directory of `initdb`, `pg_ctl` and `postgres`: what `pg_config
/// --bindir` says, else the newest `/usr/lib/postgresql/<version>/bin`.
fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        if output.status.success() {
            let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
            if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
                return Ok(dir);
            }
        }
    }
    let root = Path::new("/usr/lib/postgresql");
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            bail!("PostgreSQL server binaries not found: no `pg_config` with initdb in its --bindir and no {} (on Debian: apt-get install postgresql)", root.display())
        }
        Err(error) => {
            return Err(error).with_context(|| format!("failed to list {}", root.display()))
        }
    };
    let newest = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let version: Vec<u32> = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by(|(a, _), (b, _)| a.cmp(b));
    match newest {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL server binaries not found in {}/<version>/bin (on Debian: apt-get install postgresql)",
            root.display()
        ),
    }
}

/// A port that was free a moment ago: bind :0, read it, let it go.
fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind("127.0.0.1:0").context("failed to bind 127.0.0.1:0 to find a port")?;
    Ok(listener.local_addr()?.port())
}

/// Runs a command to completion; a failure carries its exit status and output.
fn run(command: &mut Command) -> anyhow::Result<Output> {
    let output = command
        .output()
        .with_context(|| format!("failed to run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} exited with {}\nstdout: {}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}

fn log_path(base_dir: &Path) -> PathBuf {
    base_dir.join("postgres.log")
}

/// The last lines of `postgres.log`, for error messages.
fn log_tail(base_dir: &Path) -> String {
    let path = log_path(base_dir);
    match fs::read_to_string(&path) {
        Ok(log) => {
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            format!("last lines of {}:\n{}", path.display(), tail.join("\n"))
        }
        Err(error) => format!("({} unreadable: {error})", path.display()),
    }
}

/// Quotes `text` as one word for `sh`.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_keeps_a_path_one_word() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_server_binaries_are_found() {
        let bindir = find_bindir().expect("PostgreSQL server binaries");
        assert!(bindir.join("pg_ctl").exists());
    }
}
