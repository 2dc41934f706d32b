//! The fleet as a user and an operator meet it: started by the launcher that
//! `scripts/run` starts, every service a process of its own, the embedded
//! broker reachable from outside, and the first slice end to end.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use http_service::auth::{mint_hs256, Claims, Role};
use messaging::inspect::{publish_raw, read_topic};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use reqwest::StatusCode;
use serde_json::Value;
use shared_events::connection::{ConnectionEvent, PointsAwarded};
use shared_events::{Envelope, EventFamily, Topic};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

/// The directory of the workspace's binaries: next to this test's `deps/`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("HEYBLUE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf();
    assert!(
        dir.join("heyblue-local").exists(),
        "{} has no heyblue-local: run the tests with scripts/test, which builds the binaries first",
        dir.display()
    );
    dir
}

/// A port offset whose ports are all free, so a fleet a developer runs on
/// the default ports is left alone.
fn free_port_offset() -> u16 {
    (0..50u16)
        .map(|i| 1000 + 97 * i + (std::process::id() % 89) as u16)
        .find(|offset| {
            fleet::ALL.iter().all(|service| {
                std::net::TcpListener::bind(("127.0.0.1", service.port + offset)).is_ok()
            })
        })
        .expect("no free ports for a second fleet")
}

/// Sends `signal` to `pid`, as `kill` would, without needing that program.
fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits an i32"));
    kill(pid, signal).unwrap_or_else(|error| panic!("failed to send {signal} to {pid}: {error}"));
}

struct Fleet {
    launcher: Child,
    banner: HashMap<String, String>,
    urls: HashMap<String, String>,
    /// Each service's latest pid, as the launcher announces it.
    pids: std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>,
    _data: tempfile::TempDir,
}

/// `<service padded> | started, pid <pid>`.
fn started_pid(line: &str) -> Option<(String, u32)> {
    let (name, rest) = line.split_once(" | ")?;
    let pid = rest.strip_prefix("started, pid ")?.trim().parse().ok()?;
    Some((name.trim().to_owned(), pid))
}

impl Fleet {
    /// Starts `heyblue-local` with a data directory of its own and waits for
    /// its "ready" line.
    async fn start() -> Fleet {
        // The postgres OS user runs the cluster and must reach the directory.
        let data = pg_cluster::server_temp_dir("heyblue-journey-").expect("data dir");
        let mut launcher = Command::new(bin_dir().join("heyblue-local"))
            .arg("--data-dir")
            .arg(data.path())
            .env_remove("DATABASE_URL")
            .env("HEYBLUE_PORT_OFFSET", free_port_offset().to_string())
            .env("HEYBLUE_JWT_SECRET", "journey-secret")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start heyblue-local");
        let stdout = launcher.stdout.take().expect("launcher stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = HashMap::new();
        let mut urls = HashMap::new();
        let pids = std::sync::Arc::new(std::sync::Mutex::new(HashMap::new()));
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .expect("the fleet did not become ready in time")
                .expect("read launcher output")
                .expect("the launcher exited before the fleet was ready");
            if line.trim() == "heyblue fleet ready" {
                break;
            }
            if let Some((name, pid)) = started_pid(&line) {
                pids.lock().expect("pids").insert(name, pid);
            }
            if let Some((key, value)) = line.split_once('=') {
                if key == "HEYBLUE_JWT_SECRET" || key == "KAFKA_BOOTSTRAP" {
                    banner.insert(key.to_owned(), value.to_owned());
                }
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [name, url] = words.as_slice() {
                if fleet::service(name).is_some() && url.starts_with("http://") {
                    urls.insert((*name).to_owned(), (*url).to_owned());
                }
            }
        }
        // Keep reading the launcher's output (restarted services announce
        // their new pid), so it never blocks on a full pipe either.
        let announced = pids.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some((name, pid)) = started_pid(&line) {
                    announced.lock().expect("pids").insert(name, pid);
                }
            }
        });
        Fleet {
            launcher,
            banner,
            urls,
            pids,
            _data: data,
        }
    }

    fn bootstrap(&self) -> &str {
        &self.banner["KAFKA_BOOTSTRAP"]
    }

    fn token(&self, user: Uuid, role: Role) -> String {
        mint_hs256(
            &self.banner["HEYBLUE_JWT_SECRET"],
            &Claims::new(user, role, Duration::from_secs(600)),
        )
    }

    fn pid(&self, service: &str) -> u32 {
        self.pids.lock().expect("pids")[service]
    }

    async fn wait_until_ready(&self, service: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            let ready = reqwest::get(format!("{}/readyz", self.urls[service]))
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK);
            if ready {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "{service} did not become ready again"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn balance(&self, user: Uuid) -> Value {
        let response = reqwest::Client::new()
            .get(format!("{}/v1/points/balance", self.urls["user-points"]))
            .bearer_auth(self.token(user, Role::Civilian))
            .send()
            .await
            .expect("balance request");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("balance body")
    }

    async fn publish_award(&self, award_id: Uuid, user: Uuid, points: i64) {
        let event = Envelope::new(
            ConnectionEvent::PointsAwarded(PointsAwarded {
                award_id,
                user_id: user,
                points,
                reason: "helped at the community day".to_owned(),
                connection_id: Uuid::new_v4(),
            }),
            Uuid::new_v4(),
        );
        publish_raw(
            self.bootstrap(),
            ConnectionEvent::TOPIC.name(),
            &event.partition_key(),
            &event.to_json().expect("serialize event"),
            &[("event_type", "points_awarded")],
        )
        .await
        .expect("publish points_awarded");
    }

    async fn wait_for_available(&self, user: Uuid, points: i64) -> Duration {
        let started = Instant::now();
        while self.balance(user).await["available"] != points {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the balance never reached {points}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    }

    /// SIGTERM, as Ctrl-C or an operator would, and the launcher's exit status.
    async fn stop(mut self) -> std::process::ExitStatus {
        signal(self.launcher.id().expect("launcher pid"), Signal::SIGTERM);
        tokio::time::timeout(Duration::from_secs(60), self.launcher.wait())
            .await
            .expect("the launcher did not stop in time")
            .expect("launcher exit status")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_award_published_to_the_fleets_broker_reaches_the_balance_once_even_across_a_crash() {
    let fleet = Fleet::start().await;
    assert_eq!(
        fleet.urls.len(),
        fleet::ALL.len(),
        "every service's URL is printed: {:?}",
        fleet.urls
    );
    for (name, url) in &fleet.urls {
        let ready = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("readyz request");
        assert_eq!(ready.status(), StatusCode::OK, "{name} is ready");
    }

    let user = Uuid::new_v4();
    let award = Uuid::new_v4();
    fleet.publish_award(award, user, 75).await;
    let took = fleet.wait_for_available(user, 75).await;
    println!(
        "award published -> visible in the balance: {} ms",
        took.as_millis()
    );

    // The same award again, then a second award for the same user as a
    // marker: one key, one partition, so once the marker is credited the
    // duplicate has been handled too.
    fleet.publish_award(award, user, 75).await;
    fleet.publish_award(Uuid::new_v4(), user, 5).await;
    fleet.wait_for_available(user, 80).await;
    let balance = fleet.balance(user).await;
    assert_eq!(
        balance["lifetime_earned"], 80,
        "the repeated award was not credited again"
    );

    let credited: Vec<Value> = read_topic(
        fleet.bootstrap(),
        Topic::Points.name(),
        Duration::from_secs(2),
    )
    .await
    .expect("read heyblue.points.v1")
    .iter()
    .filter_map(|m| serde_json::from_slice::<Value>(&m.payload).ok())
    .filter(|event| {
        event["event_type"] == "points_credited" && event["user_id"] == user.to_string()
    })
    .collect();
    assert_eq!(
        credited.len(),
        2,
        "one points_credited per award: {credited:?}"
    );
    assert_eq!(credited[0]["reference"], award.to_string());
    assert_eq!(credited[0]["points"], 75);
    assert_eq!(credited[0]["producer"], "user-points");

    // A service that crashes is restarted by the launcher and picks up
    // where it left off: an award published while it is down still arrives.
    let crashed = fleet.pid("user-points");
    signal(crashed, Signal::SIGKILL);
    fleet.publish_award(Uuid::new_v4(), user, 20).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while fleet.pid("user-points") == crashed {
        assert!(Instant::now() < deadline, "user-points was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fleet
        .wait_until_ready("user-points", Duration::from_secs(60))
        .await;
    fleet.wait_for_available(user, 100).await;
    assert_eq!(fleet.balance(user).await["lifetime_earned"], 100);

    let urls = fleet.urls.clone();
    let status = fleet.stop().await;
    assert!(status.success(), "the launcher stops cleanly: {status}");
    for (name, url) in urls {
        assert!(
            reqwest::get(format!("{url}/healthz")).await.is_err(),
            "{name} is still answering after the stop"
        );
    }
}
