//! The launch sequence and the way down.
//!
//! Up: the service binaries are checked, the private PostgreSQL cluster
//! starts (or `DATABASE_URL` is used) and gets the `heyblue` database with a
//! schema and role per service, the embedded broker starts (or the one
//! `KAFKA_BOOTSTRAP` names is used) with every topic,
//! the services are spawned, each one's `/readyz` is awaited, demo data is
//! seeded and the banner printed.
//!
//! Down, whether after Ctrl-C/SIGTERM, a fleet that never became ready, or a
//! failed step: the services first (they still flush their outboxes to the
//! broker and their last transactions to the database), then the database
//! cluster if we started it, then the broker if we started it. Whatever was started is
//! stopped on every path.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use fleet::{Service, DATABASE};
use messaging::embedded::EmbeddedBroker;
use pg_cluster::{ClusterOptions, PgCluster, Provisioned};
use secrecy::ExposeSecret;
use shared_events::Topic;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::banner::Banner;
use crate::config::{root_cluster_dir, Config, Instance, Mail};
use crate::seed::{self, DEMO_TOKEN_TTL};
use crate::supervisor::{ChildSpec, Labels, Supervisor};

/// How long the whole fleet gets to answer `/readyz` with 200.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The embedded broker's only broker.
const EMBEDDED_BROKER_ID: i32 = 1;
/// Partitions of every topic: enough for several consumers per group.
const TOPIC_PARTITIONS: i32 = 6;

/// What the launcher has started so far, stopped in reverse by [`Stack::stop`].
#[derive(Default)]
struct Stack {
    cluster: Option<PgCluster>,
    broker: Option<EmbeddedBroker>,
    supervisor: Option<Supervisor>,
}

/// How a launch ended when nothing failed.
enum Outcome {
    /// Stopped by a signal.
    Stopped,
    /// These processes never answered `/readyz` with 200.
    NotReady(Vec<String>),
}

/// Runs the fleet until Ctrl-C or SIGTERM; the process's exit code.
pub async fn run(config: Config) -> ExitCode {
    let shutdown = CancellationToken::new();
    let force = CancellationToken::new();
    if let Err(error) = watch_signals(shutdown.clone(), force.clone()) {
        eprintln!("local-stack | error: {error:#}");
        return ExitCode::FAILURE;
    }

    let mut stack = Stack::default();
    let outcome = launch(&config, &mut stack, &shutdown, &force).await;
    if !shutdown.is_cancelled() {
        shutdown.cancel();
    }
    eprintln!("local-stack | stopping the fleet");
    let stopped = stack.stop().await;

    let mut code = ExitCode::SUCCESS;
    match outcome {
        Ok(Outcome::Stopped) => {}
        Ok(Outcome::NotReady(services)) => {
            eprintln!(
                "local-stack | error: not ready within {}s: {}",
                READY_TIMEOUT.as_secs(),
                services.join(", ")
            );
            code = ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("local-stack | error: {error:#}");
            code = ExitCode::FAILURE;
        }
    }
    if let Err(error) = stopped {
        eprintln!("local-stack | error: {error:#}");
        code = ExitCode::FAILURE;
    }
    eprintln!("local-stack | stopped");
    code
}

/// The first SIGINT or SIGTERM cancels `shutdown`; a second one cancels
/// `force`, which kills children without waiting for their grace period.
fn watch_signals(shutdown: CancellationToken, force: CancellationToken) -> anyhow::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt()).context("failed to listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("failed to listen for SIGTERM")?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if shutdown.is_cancelled() {
                eprintln!("local-stack | second signal: killing the services now");
                force.cancel();
                return;
            }
            shutdown.cancel();
        }
    });
    Ok(())
}

async fn launch(
    config: &Config,
    stack: &mut Stack,
    shutdown: &CancellationToken,
    force: &CancellationToken,
) -> anyhow::Result<Outcome> {
    check_binaries(&config.bin_dir)?;

    let admin_url = match &config.database_url {
        Some(url) => url.expose_secret().to_owned(),
        None => {
            let dir = cluster_dir(config)?;
            eprintln!("local-stack | starting PostgreSQL in {}", dir.display());
            let cluster = tokio::task::spawn_blocking(move || {
                PgCluster::start_owned(&dir, ClusterOptions::local_stack())
            })
            .await
            .context("the PostgreSQL start-up thread failed")??;
            let admin_url = cluster.admin_url();
            stack.cluster = Some(cluster);
            admin_url
        }
    };
    let Some(provisioned) = until_shutdown(shutdown, provision(&admin_url)).await else {
        return Ok(Outcome::Stopped);
    };
    let provisioned = provisioned?;
    // The private cluster trusts local connections, so its URL holds no
    // password; DATABASE_URL's might, and is not repeated.
    let database_shown = match stack.cluster {
        Some(_) => format!("{} (admin)", provisioned.admin_url()),
        None => format!("database {DATABASE} on DATABASE_URL's server"),
    };

    let bootstrap = match &config.kafka_bootstrap {
        Some(bootstrap) => {
            let Some(created) = until_shutdown(
                shutdown,
                messaging::kafka::ensure_topics(bootstrap, &Topic::ALL, TOPIC_PARTITIONS, 1),
            )
            .await
            else {
                return Ok(Outcome::Stopped);
            };
            created.with_context(|| format!("failed to create the topics on {bootstrap}"))?;
            eprintln!("local-stack | broker on {bootstrap} (KAFKA_BOOTSTRAP)");
            bootstrap.clone()
        }
        None => {
            let broker = EmbeddedBroker::start(1).context("failed to start the embedded broker")?;
            // Before any service starts: the mock has no CreateTopics API, so
            // the services' own `ensure_topics` only finds what is created here.
            broker
                .create_topics(&Topic::ALL, TOPIC_PARTITIONS)
                .context("failed to create the topics on the embedded broker")?;
            let bootstrap = broker.bootstrap_servers().to_owned();
            stack.broker = Some(broker);
            eprintln!("local-stack | embedded broker on {bootstrap}");
            bootstrap
        }
    };

    let instances = config.instances();
    let specs = instances
        .iter()
        .map(|instance| child_spec(config, instance, &provisioned, &bootstrap))
        .collect();
    stack.supervisor = Some(Supervisor::start(
        specs,
        Labels {
            width: config.name_width(),
            colour: config.colour,
        },
        shutdown.child_token(),
        force.clone(),
    ));

    let targets: Vec<(String, u16)> = instances
        .into_iter()
        .map(|instance| (instance.name, instance.port))
        .collect();
    let Some(not_ready) = until_shutdown(shutdown, wait_until_ready(&targets)).await else {
        return Ok(Outcome::Stopped);
    };
    let not_ready = not_ready?;
    if !not_ready.is_empty() {
        return Ok(Outcome::NotReady(not_ready));
    }

    let secret = config.jwt_secret.expose_secret();
    let seed_targets = seed::Targets {
        catalog: service_url(config, &fleet::CATALOG),
        user_points: service_url(config, &fleet::USER_POINTS),
    };
    let Some(seeded) = until_shutdown(shutdown, seed::seed(&seed_targets, secret)).await else {
        return Ok(Outcome::Stopped);
    };
    let seeded = seeded?;
    for warning in &seeded.warnings {
        eprintln!("local-stack | warning: {warning}");
    }
    for failure in &seeded.failures {
        eprintln!("local-stack | error: seeding: {failure}");
    }

    let tokens = seed::demo_tokens(secret, &seeded.businesses);
    let banner = Banner {
        services: targets,
        tokens: &tokens,
        token_days: DEMO_TOKEN_TTL.as_secs() / 86_400,
        jwt_secret: secret,
        kafka_bootstrap: &bootstrap,
        database: &database_shown,
        emails: &config.mail.describe(),
        seeded: &seeded,
    };
    print_lines(&banner.lines());

    broker_drills(stack.broker.as_ref(), shutdown).await?;
    Ok(Outcome::Stopped)
}

/// Until shutdown: SIGUSR1 takes the embedded broker down, as if it had
/// crashed, and SIGUSR2 brings it back, so an operator or a test can watch
/// the fleet ride out a broker outage. A broker the launcher did not start
/// is not its to take down: the signals then only say so.
async fn broker_drills(
    broker: Option<&EmbeddedBroker>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut down = signal(SignalKind::user_defined1()).context("failed to listen for SIGUSR1")?;
    let mut up = signal(SignalKind::user_defined2()).context("failed to listen for SIGUSR2")?;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            _ = down.recv() => match broker {
                Some(broker) => {
                    broker.broker_down(EMBEDDED_BROKER_ID)?;
                    eprintln!("local-stack | broker down (SIGUSR1); SIGUSR2 brings it back");
                }
                None => eprintln!("local-stack | SIGUSR1 ignored: the broker is not the launcher's"),
            },
            _ = up.recv() => match broker {
                Some(broker) => {
                    broker.broker_up(EMBEDDED_BROKER_ID)?;
                    eprintln!("local-stack | broker up again (SIGUSR2)");
                }
                None => eprintln!("local-stack | SIGUSR2 ignored: the broker is not the launcher's"),
            },
        }
    }
}

impl Stack {
    /// Stops, in order, the services, the database cluster and the broker.
    async fn stop(self) -> anyhow::Result<()> {
        if let Some(supervisor) = self.supervisor {
            supervisor.stop().await;
        }
        let mut result = Ok(());
        if let Some(cluster) = self.cluster {
            eprintln!("local-stack | stopping PostgreSQL");
            result = tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .context("the PostgreSQL shut-down thread failed")
                .and_then(|stopped| stopped);
        }
        drop(self.broker);
        result
    }
}

/// `future`'s output, or `None` once shutdown was asked for first.
async fn until_shutdown<T>(
    shutdown: &CancellationToken,
    future: impl Future<Output = T>,
) -> Option<T> {
    tokio::select! {
        output = future => Some(output),
        () = shutdown.cancelled() => None,
    }
}

/// Fails before anything starts when a service binary is missing.
fn check_binaries(bin_dir: &Path) -> anyhow::Result<()> {
    let missing: Vec<&str> = fleet::ALL
        .iter()
        .map(|service| service.binary())
        .filter(|binary| !bin_dir.join(binary).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "service binaries missing in {}: {} (build them with `cargo build --workspace --bins`, or set HEYBLUE_BIN_DIR)",
            bin_dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

async fn provision(admin_url: &str) -> anyhow::Result<Provisioned> {
    pg_cluster::provision(admin_url, DATABASE, &fleet::schemas())
        .await
        .with_context(|| format!("failed to provision database {DATABASE}"))
}

/// `http://127.0.0.1:<port>` of `service` in this run.
fn service_url(config: &Config, service: &Service) -> String {
    format!("http://127.0.0.1:{}", config.port(service))
}

/// Where the private cluster lives: `<data dir>/postgres`, except when we
/// are root, the `postgres` OS user that runs the server cannot enter that
/// (a checkout under `/root`), and the data directory is the default one.
/// Then the cluster moves below [`crate::config::ROOT_CLUSTER_BASE`], to a
/// directory of this checkout's own, rather than `/root` being opened up.
/// A data directory that was asked for is kept, and the cluster's start-up
/// says why it cannot be used.
fn cluster_dir(config: &Config) -> anyhow::Result<PathBuf> {
    let dir = config.postgres_dir();
    if !config.data_dir_is_default || pg_cluster::server_can_enter(&dir)? {
        return Ok(dir);
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("failed to create {}", config.data_dir.display()))?;
    let data_dir = config
        .data_dir
        .canonicalize()
        .with_context(|| format!("failed to resolve {}", config.data_dir.display()))?;
    let moved = root_cluster_dir(&data_dir);
    eprintln!(
        "local-stack | the postgres OS user cannot enter {}; keeping this checkout's cluster in {}",
        data_dir.join("postgres").display(),
        moved.display()
    );
    Ok(moved)
}

fn child_spec(
    config: &Config,
    instance: &Instance,
    provisioned: &Provisioned,
    bootstrap: &str,
) -> ChildSpec {
    let service = &instance.service;
    // Replicas of a service share its schema and so its consumer group,
    // outbox and job queue.
    let mut env = vec![
        ("PORT".to_owned(), instance.port.to_string()),
        ("DATABASE_URL".to_owned(), provisioned.url(service.schema)),
        ("KAFKA_BOOTSTRAP".to_owned(), bootstrap.to_owned()),
        (
            "HEYBLUE_JWT_SECRET".to_owned(),
            config.jwt_secret.expose_secret().to_owned(),
        ),
        ("RUST_LOG".to_owned(), config.rust_log.clone()),
        ("HEYBLUE_EXIT_ON_STDIN_EOF".to_owned(), "1".to_owned()),
        // The services' stdout is a pipe to us, so they cannot see whether
        // a terminal shows their logs in the end; we can.
        (
            "LOG_COLOR".to_owned(),
            if config.colour.stdout {
                "always"
            } else {
                "never"
            }
            .to_owned(),
        ),
    ];
    if let Some(format) = &config.log_format {
        env.push(("LOG_FORMAT".to_owned(), format.clone()));
    }
    env.push(mail_variable(&config.mail));
    // Where people's browsers reach the service's own pages (the sandbox's
    // 3-D Secure page, the dispatcher's action links), on its offset port.
    env.push((
        "HEYBLUE_PUBLIC_BASE_URL".to_owned(),
        format!("http://127.0.0.1:{}", instance.port),
    ));
    // The local stack's webshop lets anyone sign in as a demo user; a
    // deployment never turns this on.
    if service.name == fleet::WEBSHOP.name {
        env.push(("HEYBLUE_WEBSHOP_DEMO_SIGNIN".to_owned(), "true".to_owned()));
    }
    // Where every peer listens, since the port offset moves them off the
    // defaults that services would otherwise assume. Peers call a service's
    // first replica; further ones share its events and background work.
    for peer in fleet::ALL {
        env.push((
            peer.url_variable(),
            format!("http://127.0.0.1:{}", config.port(peer)),
        ));
    }
    ChildSpec {
        name: instance.name.clone(),
        program: config.bin_dir.join(service.binary()),
        env,
    }
}

/// What tells a service where its email goes: the SMTP server the launcher
/// was given, else the directory for `.eml` files.
fn mail_variable(mail: &Mail) -> (String, String) {
    match mail {
        Mail::Smtp(url) => (
            "HEYBLUE_SMTP_URL".to_owned(),
            url.expose_secret().to_owned(),
        ),
        Mail::Files(dir) => ("HEYBLUE_MAIL_DIR".to_owned(), dir.display().to_string()),
    }
}

/// Polls every service's `/readyz` until all answer 200 or [`READY_TIMEOUT`]
/// passes; the services still not ready.
async fn wait_until_ready(targets: &[(String, u16)]) -> anyhow::Result<Vec<String>> {
    eprintln!(
        "local-stack | waiting for {} services to become ready",
        targets.len()
    );
    let client = probe_client()?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pending: Vec<(String, u16)> = targets.to_vec();
    loop {
        let checks = pending
            .iter()
            .map(|(_, port)| is_ready(&client, *port))
            .collect::<Vec<_>>();
        let results = futures::future::join_all(checks).await;
        pending = pending
            .into_iter()
            .zip(results)
            .filter(|(_, ready)| !ready)
            .map(|(target, _)| target)
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return Ok(pending.into_iter().map(|(name, _)| name).collect());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn probe_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("failed to build the readiness HTTP client")
}

async fn is_ready(client: &reqwest::Client, port: u16) -> bool {
    client
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .is_ok_and(|response| response.status() == reqwest::StatusCode::OK)
}

/// Prints to stdout; a closed terminal is no reason to stop the fleet.
fn print_lines(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn services_get_the_smtp_server_when_there_is_one_else_the_mail_directory() {
        assert_eq!(
            mail_variable(&Mail::Smtp(SecretString::from("smtp://127.0.0.1:1025"))),
            (
                "HEYBLUE_SMTP_URL".to_owned(),
                "smtp://127.0.0.1:1025".to_owned()
            )
        );
        assert_eq!(
            mail_variable(&Mail::Files(PathBuf::from("/srv/heyblue/.local/mail"))),
            (
                "HEYBLUE_MAIL_DIR".to_owned(),
                "/srv/heyblue/.local/mail".to_owned()
            )
        );
    }
}
