//! tansu, a Kafka-protocol broker that runs as a process of its own, for
//! tests that prove the backbone against a broker the services reach only
//! over the network, and that can be killed and restarted.
//!
//! Its storage is an SQLite file in a directory of the broker's own
//! (`sqlite://tansu.db`, which tansu sets up itself), so a broker started
//! again on that file has its topics, messages, consumer groups and producer
//! state back; [`Tansu::restart`] can also start it on a new file, as a
//! broker that lost its disk would come back.
//!
//! `scripts/ensure-tansu` builds the binary once into a cache outside the
//! clone; [`Tansu::binary`] finds it there, or where `TANSU_BIN` says.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use tempfile::TempDir;

/// The version `scripts/ensure-tansu` builds.
const VERSION: &str = "0.6.0";
/// The storage file, relative to the broker's working directory (tansu
/// reads the path that way, even with a leading slash).
const STORAGE: &str = "tansu.db";

/// A running tansu broker on `127.0.0.1`. Dropping it kills the process.
#[derive(Debug)]
pub struct Tansu {
    binary: PathBuf,
    /// The working directory: the storage file and `tansu.log`.
    dir: TempDir,
    port: u16,
    bootstrap: String,
    /// `None` while the broker is down.
    process: Mutex<Option<Child>>,
}

impl Tansu {
    /// Where the binary is: `TANSU_BIN`, else the cache `scripts/ensure-tansu`
    /// builds into (`TANSU_CACHE`, by default `~/.cache/heyblue`).
    pub fn binary() -> anyhow::Result<PathBuf> {
        if let Some(path) = std::env::var_os("TANSU_BIN").filter(|path| !path.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let cache = match std::env::var_os("TANSU_CACHE").filter(|path| !path.is_empty()) {
            Some(cache) => PathBuf::from(cache),
            None => {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/heyblue")
            }
        };
        let binary = cache.join(format!("tansu-{VERSION}/bin/tansu"));
        if binary.exists() {
            Ok(binary)
        } else {
            Err(anyhow!(
                "no tansu binary at {} (run scripts/ensure-tansu, or set TANSU_BIN)",
                binary.display()
            ))
        }
    }

    /// Starts a broker with empty storage on a free port and waits until it
    /// answers a metadata request.
    pub async fn start() -> anyhow::Result<Tansu> {
        let binary = Tansu::binary()?;
        let dir = tempfile::Builder::new()
            .prefix("heyblue-tansu-")
            .tempdir()
            .context("failed to create tansu's directory")?;
        let port = free_port()?;
        let tansu = Tansu {
            binary,
            dir,
            port,
            bootstrap: format!("127.0.0.1:{port}"),
            process: Mutex::new(None),
        };
        tansu.launch().await?;
        Ok(tansu)
    }

    /// The `bootstrap.servers` value for clients.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Kills the broker with SIGKILL, as a crash would, and waits for it
    /// to be gone. Nothing is flushed or closed cleanly.
    pub fn kill(&self) {
        if let Some(mut child) = self.process.lock().expect("tansu process").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port, after [`Tansu::kill`] (a
    /// running one is killed first). With `keep_state` it opens the same
    /// storage file; without, it starts on a new, empty one, as a broker
    /// that lost its disk: no topics, no offsets, no producer ids.
    pub async fn restart(&self, keep_state: bool) -> anyhow::Result<()> {
        self.kill();
        if !keep_state {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let path = self.dir.path().join(format!("{STORAGE}{suffix}"));
                if path.exists() {
                    std::fs::remove_file(&path)
                        .with_context(|| format!("failed to remove {}", path.display()))?;
                }
            }
        }
        self.launch().await
    }

    async fn launch(&self) -> anyhow::Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.path().join("tansu.log"))
            .context("failed to open tansu.log")?;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &format!("sqlite://{STORAGE}")])
            .current_dir(self.dir.path())
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("failed to share tansu.log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("failed to start {}", self.binary.display()))?;
        watch_over(child.id())?;
        *self.process.lock().expect("tansu process") = Some(child);
        self.wait_until_answering(Duration::from_secs(30)).await
    }

    async fn wait_until_answering(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.process.lock().expect("tansu process").as_mut() {
                if let Some(status) = child.try_wait().context("failed to ask after tansu")? {
                    anyhow::bail!("tansu exited at start ({status}): see {}", self.log_path());
                }
            }
            let answer = tokio::time::timeout(
                Duration::from_secs(3),
                messaging::kafka::existing_topics(&self.bootstrap),
            )
            .await;
            if matches!(answer, Ok(Ok(_))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "tansu on {} did not answer within {timeout:?}: see {}",
                    self.bootstrap,
                    self.log_path()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_path(&self) -> String {
        self.dir.path().join("tansu.log").display().to_string()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on now. The broker binds it a moment later, and
/// binds it again after a restart, so clients keep their bootstrap address.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .context("failed to find a free port for tansu")?;
    Ok(listener.local_addr()?.port())
}

/// Leaves behind a detached shell that kills broker `pid` once this process
/// is gone (a test binary keeps its shared broker in a `static`, which is
/// never dropped), and ends by itself once the broker has.
fn watch_over(pid: u32) -> anyhow::Result<()> {
    let owner = std::process::id();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null && kill -0 {owner} 2>/dev/null \
           && ! grep -q '^State:[[:space:]]*Z' /proc/{owner}/status 2>/dev/null; do sleep 1; done; \
         kill -9 {pid} 2>/dev/null"
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("failed to spawn tansu's watchdog")?;
    Ok(())
}
