//! The fleet under load: `heyblue-local` from the same target directory, in
//! a throw-away data directory and on a port offset of its own, read from
//! its output as `tests/fixture` reads it — the banner (URLs, secret,
//! broker, the database's admin URL, demo tokens) and every process's pid
//! as the launcher (re)starts it — and timed from launch to ready.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use uuid::Uuid;

/// How far apart the ports of one service's replicas are (the launcher's
/// `REPLICA_PORT_STEP`).
const REPLICA_PORT_STEP: u16 = 100;
/// The most replicas of a service the launcher runs.
const MAX_REPLICAS: u16 = 6;
/// The launcher's last banner line.
const READY_LINE: &str = "heyblue fleet ready";
/// How long a first start may take, initdb included, on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// How the fleet is started.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// `HEYBLUE_REPLICAS`, e.g. `order=2`.
    pub replicas: Option<String>,
    /// `RUST_LOG` of every service.
    pub rust_log: String,
    /// `HEYBLUE_SMTP_URL`: the mail server the services send email to.
    pub smtp_url: String,
}

/// How long each stage of the start took, from the launcher's spawn.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartTimes {
    /// PostgreSQL initialised (a fresh data directory), started and provisioned.
    pub database: Duration,
    /// From the services' spawn until every `/readyz` answered 200.
    pub services: Duration,
    /// Launch until every service was ready.
    pub ready: Duration,
    /// Launch until the banner's last line (demo shop seeded).
    pub banner: Duration,
}

/// A running launcher and what its banner said.
pub struct Fleet {
    launcher: Child,
    pub jwt_secret: String,
    pub kafka_bootstrap: String,
    /// The database's admin URL (the private cluster trusts local connections).
    pub admin_url: String,
    /// The demo admin's token.
    pub admin_token: String,
    /// Every process's URL, by name (`order`, `order-2`).
    pub urls: HashMap<String, String>,
    pids: Arc<Mutex<HashMap<String, u32>>>,
    /// Lines the services logged at ERROR level since the banner.
    errors_logged: ErrorLog,
    pub started: StartTimes,
    data: TempDir,
}

impl Fleet {
    /// Starts `heyblue-local` from `bin_dir` and waits for its banner.
    pub async fn start(bin_dir: &Path, options: &LaunchOptions) -> anyhow::Result<Fleet> {
        let launcher_path = bin_dir.join("heyblue-local");
        if !launcher_path.exists() {
            bail!(
                "{} is missing: build the fleet first with `cargo build --release --workspace --bins`",
                launcher_path.display()
            );
        }
        // The postgres OS user runs the cluster and must reach the directory.
        let data = pg_cluster::server_temp_dir("heyblue-load-")?;
        let offset = free_port_offset()?;
        let mut command = Command::new(&launcher_path);
        command
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("DATABASE_URL")
            .env("HEYBLUE_PORT_OFFSET", offset.to_string())
            .env("HEYBLUE_JWT_SECRET", Uuid::new_v4().simple().to_string())
            .env("RUST_LOG", &options.rust_log)
            .env("LOG_COLOR", "never")
            .env("HEYBLUE_SMTP_URL", &options.smtp_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match &options.replicas {
            Some(replicas) => command.env("HEYBLUE_REPLICAS", replicas),
            None => command.env_remove("HEYBLUE_REPLICAS"),
        };
        let launched = Instant::now();
        let mut launcher = command.spawn().context("failed to start heyblue-local")?;
        let stderr = launcher.stderr.take().context("launcher stderr")?;
        let stdout = launcher.stdout.take().context("launcher stdout")?;

        let milestones = Milestones::default();
        let errors_logged = ErrorLog::default();
        tokio::spawn(read_stderr(
            stderr,
            milestones.clone(),
            launched,
            errors_logged.clone(),
        ));
        let readiness = tokio::spawn(wait_for_services(
            ports(offset, options.replicas.as_deref()),
            milestones.clone(),
        ));
        let banner =
            tokio::time::timeout(START_TIMEOUT, read_banner(stdout, errors_logged.clone()))
                .await
                .context("the fleet did not print its banner in time")??;
        let banner_at = launched.elapsed();
        let services_ready = readiness.await.context("the readiness probe")??;

        let spawned = milestones.get("spawned").unwrap_or_default();
        let started = StartTimes {
            database: milestones.get("database").unwrap_or_default(),
            services: services_ready
                .duration_since(launched)
                .saturating_sub(spawned),
            ready: services_ready.duration_since(launched),
            banner: banner_at,
        };
        Ok(Fleet {
            launcher,
            jwt_secret: banner.field("HEYBLUE_JWT_SECRET")?,
            kafka_bootstrap: banner.field("KAFKA_BOOTSTRAP")?,
            admin_url: banner.admin_url.context("the banner names no database")?,
            admin_token: banner
                .admin_token
                .context("the banner has no admin token")?,
            urls: banner.urls,
            pids: banner.pids,
            errors_logged,
            started,
            data,
        })
    }

    /// The URL of `service`'s first replica.
    pub fn url(&self, service: &fleet::Service) -> anyhow::Result<&str> {
        self.urls
            .get(service.name)
            .map(String::as_str)
            .with_context(|| format!("the banner lists no {}", service.name))
    }

    /// Every process of the fleet with its latest pid, in name order.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut processes: Vec<(String, u32)> = self
            .pids
            .lock()
            .map(|pids| pids.iter().map(|(n, p)| (n.clone(), *p)).collect())
            .unwrap_or_default();
        processes.sort();
        processes
    }

    /// The launcher's pid: it also runs the embedded broker.
    pub fn launcher_pid(&self) -> Option<u32> {
        self.launcher.id()
    }

    /// The PostgreSQL server's pid, from its `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let file = self.data.path().join("postgres/data/postmaster.pid");
        std::fs::read_to_string(file)
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// How many lines the services logged at ERROR level since the
    /// banner, and the first of them.
    pub fn errors_logged(&self) -> (u64, Vec<String>) {
        self.errors_logged.read()
    }

    /// SIGTERM, as Ctrl-C would, and wait for the launcher to stop everything.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.launcher.id() {
            let pid = Pid::from_raw(i32::try_from(pid).context("a pid fits an i32")?);
            // A launcher that already exited is no error.
            let _ = kill(pid, Signal::SIGTERM);
        }
        tokio::time::timeout(Duration::from_secs(60), self.launcher.wait())
            .await
            .context("the launcher did not stop in time")?
            .context("the launcher's exit status")?;
        Ok(())
    }
}

/// What the banner said.
#[derive(Default)]
struct Banner {
    fields: HashMap<String, String>,
    admin_url: Option<String>,
    admin_token: Option<String>,
    urls: HashMap<String, String>,
    pids: Arc<Mutex<HashMap<String, u32>>>,
}

impl Banner {
    fn field(&self, key: &str) -> anyhow::Result<String> {
        self.fields
            .get(key)
            .cloned()
            .with_context(|| format!("the banner has no {key}= line"))
    }

    fn read(&mut self, line: &str) {
        if let Some((name, pid)) = started_pid(line) {
            if let Ok(mut pids) = self.pids.lock() {
                pids.insert(name, pid);
            }
        }
        if let Some((key, value)) = line.split_once('=') {
            if key == "HEYBLUE_JWT_SECRET" || key == "KAFKA_BOOTSTRAP" {
                self.fields.insert(key.to_owned(), value.trim().to_owned());
            }
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["postgres", url, ..] if url.starts_with("postgres://") => {
                self.admin_url = Some((*url).to_owned());
            }
            [name, url] if url.starts_with("http://") && is_process(name) => {
                self.urls.insert((*name).to_owned(), (*url).to_owned());
            }
            ["admin", _, token] => {
                if let Some(token) = token.strip_prefix("token=") {
                    self.admin_token = Some(token.to_owned());
                }
            }
            _ => {}
        }
    }
}

/// Reads stdout up to the ready line, then keeps reading it (restarted
/// services announce their new pid, and a full pipe would block the fleet).
async fn read_banner(stdout: ChildStdout, errors: ErrorLog) -> anyhow::Result<Banner> {
    let mut lines = BufReader::new(stdout).lines();
    let mut banner = Banner::default();
    loop {
        let line = lines
            .next_line()
            .await
            .context("failed to read the launcher's output")?
            .context("the launcher exited before the fleet was ready")?;
        if line.trim() == READY_LINE {
            break;
        }
        banner.read(&line);
    }
    let pids = banner.pids.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some((name, pid)) = started_pid(&line) {
                if let Ok(mut pids) = pids.lock() {
                    pids.insert(name, pid);
                }
            }
            errors.note(&line);
        }
    });
    Ok(banner)
}

/// The lines the fleet logs at ERROR level: counted, and the first
/// [`ErrorLog::KEPT`] kept for the report.
#[derive(Clone, Default)]
struct ErrorLog(Arc<Mutex<(u64, Vec<String>)>>);

impl ErrorLog {
    const KEPT: usize = 200;

    fn note(&self, line: &str) {
        if !line.contains(" ERROR ") {
            return;
        }
        if let Ok(mut log) = self.0.lock() {
            log.0 += 1;
            if log.1.len() < Self::KEPT {
                log.1.push(line.to_owned());
            }
        }
    }

    fn read(&self) -> (u64, Vec<String>) {
        self.0.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

/// When the launcher said it reached each stage, from its spawn.
#[derive(Clone, Default)]
struct Milestones(Arc<Mutex<HashMap<&'static str, Duration>>>);

impl Milestones {
    fn set(&self, name: &'static str, at: Duration) {
        if let Ok(mut marks) = self.0.lock() {
            marks.entry(name).or_insert(at);
        }
    }

    fn get(&self, name: &str) -> Option<Duration> {
        self.0.lock().ok()?.get(name).copied()
    }
}

/// The launcher's own lines go to stderr: shown as they come (they say
/// what failed when the fleet does not start), and timed.
async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    milestones: Milestones,
    launched: Instant,
    errors: ErrorLog,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.starts_with("local-stack | embedded broker on") {
            milestones.set("database", launched.elapsed());
        }
        if line.starts_with("local-stack | waiting for") {
            milestones.set("spawned", launched.elapsed());
        }
        if line.starts_with("local-stack |") {
            eprintln!("{line}");
        } else {
            errors.note(&line);
        }
    }
}

/// Polls every process's `/readyz` every 20 ms until all answer 200: the
/// instant the whole fleet was ready, which the banner only follows after
/// seeding.
async fn wait_for_services(ports: Vec<u16>, milestones: Milestones) -> anyhow::Result<Instant> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()?;
    let deadline = Instant::now() + START_TIMEOUT;
    while milestones.get("spawned").is_none() {
        if Instant::now() > deadline {
            bail!("the launcher never started the services");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut pending = ports;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!("ports {pending:?} never answered /readyz with 200");
        }
        let checks = pending.iter().map(|port| {
            let client = client.clone();
            let port = *port;
            async move {
                let ready = client
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
                (port, ready)
            }
        });
        let results = futures::future::join_all(checks).await;
        pending = results
            .into_iter()
            .filter(|(_, ready)| !ready)
            .map(|(port, _)| port)
            .collect();
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(Instant::now())
}

/// Every process's port for a fleet on `offset` with `replicas`.
fn ports(offset: u16, replicas: Option<&str>) -> Vec<u16> {
    let count = |name: &str| -> u16 {
        replicas
            .unwrap_or_default()
            .split(',')
            .filter_map(|entry| entry.trim().split_once('='))
            .find(|(service, _)| service.trim() == name)
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(1)
    };
    fleet::ALL
        .iter()
        .flat_map(|service| {
            (0..count(service.name))
                .map(move |replica| service.port + offset + replica * REPLICA_PORT_STEP)
        })
        .collect()
}

/// A port offset whose ports (and those of any replicas) are all free, so
/// a fleet a developer runs on the default ports is left alone.
fn free_port_offset() -> anyhow::Result<u16> {
    (0..50u16)
        .map(|i| 2000 + 97 * i + (std::process::id() % 89) as u16)
        .find(|offset| {
            fleet::ALL.iter().all(|service| {
                (0..MAX_REPLICAS).all(|replica| {
                    let port = service.port + offset + replica * REPLICA_PORT_STEP;
                    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                })
            })
        })
        .context("no free ports for the fleet")
}

/// Whether `name` is a process of the fleet: a service (`order`) or a
/// further replica of one (`order-2`).
fn is_process(name: &str) -> bool {
    let service = match name.rsplit_once('-') {
        Some((service, replica)) if replica.parse::<u16>().is_ok() => service,
        _ => name,
    };
    fleet::service(service).is_some()
}

/// `<service padded> | started, pid <pid>`.
fn started_pid(line: &str) -> Option<(String, u32)> {
    let (name, rest) = line.split_once(" | ")?;
    let pid = rest.strip_prefix("started, pid ")?.trim().parse().ok()?;
    Some((name.trim().to_owned(), pid))
}

/// The directory of the workspace's binaries: this program's own.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate this executable")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("this executable has no directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_gives_urls_the_database_the_admin_token_and_pids() {
        let mut banner = Banner::default();
        for line in [
            "order      | started, pid 4242",
            "  order      http://127.0.0.1:9086",
            "  order-2    http://127.0.0.1:9186",
            "  postgres   postgres://postgres@127.0.0.1:39111/heyblue (admin)",
            "  admin    user_id=00000000-0000-4000-8000-000000000009 token=eyJabc",
            "HEYBLUE_JWT_SECRET=s3cret",
            "KAFKA_BOOTSTRAP=127.0.0.1:40000",
        ] {
            banner.read(line);
        }
        assert_eq!(banner.urls["order-2"], "http://127.0.0.1:9186");
        assert_eq!(
            banner.admin_url.as_deref(),
            Some("postgres://postgres@127.0.0.1:39111/heyblue")
        );
        assert_eq!(banner.admin_token.as_deref(), Some("eyJabc"));
        assert_eq!(
            banner.field("KAFKA_BOOTSTRAP").expect("kafka"),
            "127.0.0.1:40000"
        );
        assert_eq!(banner.pids.lock().expect("pids")["order"], 4242);
    }

    #[test]
    fn replicas_add_ports_a_hundred_apart() {
        let ports = ports(1000, Some("order=2"));
        assert_eq!(ports.len(), fleet::ALL.len() + 1);
        assert!(ports.contains(&9086) && ports.contains(&9186));
    }
}
