//! What the launcher is told: command-line arguments and environment, read
//! once at start-up into [`Config`]. The services and their ports come from
//! the roster (crate `fleet`).
//!
//! Everything is read through a lookup function rather than `std::env`
//! directly, so the rules (defaults, the port offset, which URL wins) are
//! testable without touching the process environment.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use fleet::Service;
use http_service::telemetry::colour_wanted;
use secrecy::{ExposeSecret, SecretString};

/// The documented development secret of the local stack. Anything that
/// accepts it must never face the internet; deployments set their own.
pub const DEV_JWT_SECRET: &str = "heyblue-local-dev-secret";

/// Where the local stack keeps its data when nothing else is said: inside the
/// project (ignored by git), so separate checkouts never share a cluster.
pub const DEFAULT_DATA_DIR: &str = "./.local";

/// Where the private cluster goes instead when the launcher runs as root and
/// the `postgres` OS user cannot reach the default data directory (a checkout
/// under `/root`): one directory per checkout below this one.
pub const ROOT_CLUSTER_BASE: &str = "/var/lib/heyblue";

/// How far apart the ports of one service's replicas are: the second
/// replica of order (8086) listens on 8186, a third on 8286.
pub const REPLICA_PORT_STEP: u16 = 100;

/// The most replicas a service may run: every topic has this many
/// partitions, and a consumer group gives each partition to one member, so
/// a further replica would only wait.
pub const MAX_REPLICAS: u16 = 6;

/// `base_port + offset`, or an error naming the variable when that leaves
/// the port range.
pub fn offset_port(base_port: u16, offset: u16) -> anyhow::Result<u16> {
    base_port
        .checked_add(offset)
        .with_context(|| format!("HEYBLUE_PORT_OFFSET: {offset} moves port {base_port} past 65535"))
}

/// The launcher's settings.
#[derive(Debug)]
pub struct Config {
    /// Holds `postgres/`, the private cluster kept across runs.
    pub data_dir: PathBuf,
    /// Whether `data_dir` is [`DEFAULT_DATA_DIR`] rather than asked for.
    pub data_dir_is_default: bool,
    /// An admin URL of an existing server to use instead of a private cluster.
    pub database_url: Option<SecretString>,
    /// `bootstrap.servers` of a running Kafka-protocol broker to use instead
    /// of the embedded one.
    pub kafka_bootstrap: Option<String>,
    pub jwt_secret: SecretString,
    /// Added to every service's port, so a second fleet can run beside one.
    pub port_offset: u16,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Passed to every service; `info` unless set.
    pub rust_log: String,
    /// Passed to every service when set (`json` or text).
    pub log_format: Option<String>,
    /// Colours in what goes to stdout (the services' logs) and stderr.
    pub colour: Colour,
    /// Where the services send email: an SMTP server, else `.eml` files.
    pub mail: Mail,
    /// How many processes run each service named in `HEYBLUE_REPLICAS`;
    /// every other service runs once.
    pub replicas: Vec<(&'static str, u16)>,
}

/// One process of the fleet: a service's first replica (named like the
/// service, on its port) or a further one (`order-2`, on the port
/// [`REPLICA_PORT_STEP`] above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub service: Service,
    /// 1 for the first replica.
    pub replica: u16,
    pub name: String,
    pub port: u16,
}

/// Where emails go in this run.
#[derive(Debug)]
pub enum Mail {
    /// `HEYBLUE_SMTP_URL`, passed through to the services.
    Smtp(SecretString),
    /// `.eml` files in `<data dir>/mail` (`HEYBLUE_MAIL_DIR` for the services).
    Files(PathBuf),
}

impl Mail {
    /// What the banner says: the SMTP server without credentials, or the
    /// directory the files are written to.
    pub fn describe(&self) -> String {
        match self {
            Mail::Smtp(url) => match reqwest::Url::parse(url.expose_secret()) {
                Ok(url) => format!(
                    "SMTP server {}{}",
                    url.host_str().unwrap_or_default(),
                    url.port()
                        .map(|port| format!(":{port}"))
                        .unwrap_or_default()
                ),
                Err(_) => "SMTP server from HEYBLUE_SMTP_URL".to_owned(),
            },
            Mail::Files(dir) => format!(".eml files in {}", dir.display()),
        }
    }
}

/// Whether the launcher's output streams get ANSI colours, decided once from
/// `LOG_COLOR`, `NO_COLOR` and whether each stream is a terminal (see
/// [`http_service::telemetry::colour_wanted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    pub stdout: bool,
    pub stderr: bool,
}

/// What a run of the launcher should do.
#[derive(Debug)]
pub enum Command {
    Run(Box<Config>),
    Help,
}

/// How to call the launcher, for `--help` and argument errors.
pub const USAGE: &str = "\
usage: heyblue-local [--data-dir <dir>]

Starts the Hey, Blue! fleet: a private PostgreSQL cluster (or DATABASE_URL),
an embedded Kafka-protocol broker (or KAFKA_BOOTSTRAP), the webshop and the eight services behind
it, seeds demo data and prints the URLs and demo tokens. Ctrl-C stops
everything.

options:
  --data-dir <dir>   where the private PostgreSQL cluster is kept
                     (env HEYBLUE_DATA_DIR, default ./.local)
  -h, --help         show this text

environment:
  DATABASE_URL         admin URL of an existing server; no private cluster
  KAFKA_BOOTSTRAP      host:port of a running Kafka-protocol broker; no embedded
                       broker (the fleet's topics are created there if missing)
  HEYBLUE_JWT_SECRET   HS256 secret (default heyblue-local-dev-secret)
  HEYBLUE_PORT_OFFSET  added to every service port (default 0)
  HEYBLUE_BIN_DIR      where the service binaries are (default: beside this one)
  HEYBLUE_SMTP_URL     SMTP server for the services' email (e.g. smtp://127.0.0.1:1025);
                       unset, emails are .eml files in <data dir>/mail
  HEYBLUE_REPLICAS     processes per service, e.g. order=2,dispatcher=2 (at most 6);
                       replica k listens 100*(k-1) above the service's port
  RUST_LOG, LOG_FORMAT passed to every service
  LOG_COLOR            auto (colours on a terminal), always or never; NO_COLOR
                       turns auto off";

impl Command {
    /// Reads the arguments (without the program name) and the environment
    /// through `env`. `exe_dir` is the default binary directory.
    ///
    /// `terminals` says whether stdout and stderr are terminals.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
        exe_dir: &Path,
        terminals: Colour,
    ) -> anyhow::Result<Self> {
        let mut data_dir_arg = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-h" | "--help" => return Ok(Self::Help),
                "--data-dir" => {
                    let dir = args.next().context("--data-dir needs a directory")?;
                    data_dir_arg = Some(PathBuf::from(dir));
                }
                other => match other.strip_prefix("--data-dir=") {
                    Some(dir) => data_dir_arg = Some(PathBuf::from(dir)),
                    None => bail!("unknown argument {other:?}\n\n{USAGE}"),
                },
            }
        }

        let non_empty = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let chosen_data_dir =
            data_dir_arg.or_else(|| non_empty("HEYBLUE_DATA_DIR").map(PathBuf::from));
        let data_dir_is_default = chosen_data_dir.is_none();
        let data_dir = chosen_data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let port_offset = match non_empty("HEYBLUE_PORT_OFFSET") {
            None => 0,
            Some(value) => value.trim().parse().with_context(|| {
                format!("HEYBLUE_PORT_OFFSET: invalid value {value:?}: expected 0..=65535")
            })?,
        };
        for service in fleet::ALL {
            offset_port(service.port, port_offset)?;
        }
        let replicas = match non_empty("HEYBLUE_REPLICAS") {
            None => Vec::new(),
            Some(value) => parse_replicas(&value, port_offset)?,
        };

        let log_color = env("LOG_COLOR");
        let no_color = env("NO_COLOR");
        let wanted =
            |is_terminal| colour_wanted(log_color.as_deref(), no_color.as_deref(), is_terminal);
        let colour = Colour {
            stdout: wanted(terminals.stdout),
            stderr: wanted(terminals.stderr),
        };

        let mail = match non_empty("HEYBLUE_SMTP_URL") {
            Some(url) => Mail::Smtp(SecretString::from(url)),
            // Absolute, so that it means the same to every service.
            None => Mail::Files(
                std::path::absolute(data_dir.join("mail"))
                    .context("failed to resolve the mail directory")?,
            ),
        };

        Ok(Self::Run(Box::new(Config {
            mail,
            data_dir,
            data_dir_is_default,
            database_url: non_empty("DATABASE_URL").map(SecretString::from),
            kafka_bootstrap: non_empty("KAFKA_BOOTSTRAP"),
            jwt_secret: SecretString::from(
                non_empty("HEYBLUE_JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            ),
            port_offset,
            bin_dir: non_empty("HEYBLUE_BIN_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| exe_dir.to_owned()),
            rust_log: non_empty("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
            log_format: non_empty("LOG_FORMAT"),
            colour,
            replicas,
        })))
    }
}

/// `HEYBLUE_REPLICAS`: comma-separated `<service>=<count>`, each service of
/// the roster at most once, each count 1..=[`MAX_REPLICAS`] and every
/// replica's port within the port range.
fn parse_replicas(value: &str, port_offset: u16) -> anyhow::Result<Vec<(&'static str, u16)>> {
    let mut replicas: Vec<(&'static str, u16)> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, count) = entry.split_once('=').with_context(|| {
            format!("HEYBLUE_REPLICAS: {entry:?} is not <service>=<count>, e.g. order=2")
        })?;
        let service = fleet::service(name.trim()).with_context(|| {
            format!(
                "HEYBLUE_REPLICAS: no service {:?}; the services are {}",
                name.trim(),
                fleet::ALL
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let count: u16 = count
            .trim()
            .parse()
            .ok()
            .filter(|count| (1..=MAX_REPLICAS).contains(count))
            .with_context(|| {
                format!(
                    "HEYBLUE_REPLICAS: {}: {count:?} replicas; expected 1..={MAX_REPLICAS} (a topic's partitions)",
                    service.name
                )
            })?;
        if replicas.iter().any(|(named, _)| *named == service.name) {
            bail!("HEYBLUE_REPLICAS: {} is named twice", service.name);
        }
        let base = offset_port(service.port, port_offset)?;
        u16::try_from(u32::from(base) + u32::from(REPLICA_PORT_STEP) * u32::from(count - 1))
            .ok()
            .with_context(|| {
                format!(
                    "HEYBLUE_REPLICAS: {count} replicas of {} would listen past port 65535",
                    service.name
                )
            })?;
        replicas.push((service.name, count));
    }
    Ok(replicas)
}

impl Config {
    /// The port `service` listens on in this run.
    pub fn port(&self, service: &Service) -> u16 {
        // Checked for every service when the config was read.
        service.port.saturating_add(self.port_offset)
    }

    /// How many processes run `service`.
    pub fn replicas(&self, service: &Service) -> u16 {
        self.replicas
            .iter()
            .find(|(name, _)| *name == service.name)
            .map_or(1, |(_, count)| *count)
    }

    /// Every process of the fleet, in the roster's order, replicas of a
    /// service together.
    pub fn instances(&self) -> Vec<Instance> {
        fleet::ALL
            .iter()
            .flat_map(|service| {
                (1..=self.replicas(service)).map(move |replica| Instance {
                    service: *service,
                    replica,
                    name: match replica {
                        1 => service.name.to_owned(),
                        _ => format!("{}-{replica}", service.name),
                    },
                    // Checked when the config was read.
                    port: self
                        .port(service)
                        .saturating_add(REPLICA_PORT_STEP * (replica - 1)),
                })
            })
            .collect()
    }

    /// The width of the longest process name, so prefixed log lines line up.
    pub fn name_width(&self) -> usize {
        self.instances()
            .iter()
            .map(|instance| instance.name.len())
            .max()
            .unwrap_or(0)
    }

    /// The directory of the private PostgreSQL cluster.
    pub fn postgres_dir(&self) -> PathBuf {
        self.data_dir.join("postgres")
    }
}

/// The cluster's directory below [`ROOT_CLUSTER_BASE`] for the data directory
/// at `data_dir` (absolute): `<checkout>-<hash of the path>/postgres`, so each
/// checkout keeps its own cluster there, the same one on every run.
pub fn root_cluster_dir(data_dir: &Path) -> PathBuf {
    let checkout = data_dir
        .parent()
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".to_owned());
    Path::new(ROOT_CLUSTER_BASE)
        .join(format!("{checkout}-{:08x}", fnv1a(data_dir)))
        .join("postgres")
}

/// 32-bit FNV-1a of a path's bytes: short, and unlike std's hasher the same
/// in every Rust release, so the directory name never changes under a user.
fn fnv1a(path: &Path) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str()
        .as_bytes()
        .iter()
        .fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
        })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Command> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Command::parse(
            args.iter().map(|a| (*a).to_owned()),
            |name| env.get(name).cloned(),
            Path::new("/opt/heyblue/bin"),
            Colour {
                stdout: true,
                stderr: false,
            },
        )
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env).expect("valid arguments") {
            Command::Run(config) => *config,
            Command::Help => panic!("expected a run"),
        }
    }

    #[test]
    fn defaults_keep_data_in_the_project_and_use_the_dev_secret() {
        let config = config(&[], &[]);
        assert_eq!(config.data_dir, PathBuf::from("./.local"));
        assert!(config.data_dir_is_default);
        assert_eq!(config.postgres_dir(), PathBuf::from("./.local/postgres"));
        assert_eq!(config.jwt_secret.expose_secret(), DEV_JWT_SECRET);
        assert_eq!(config.port_offset, 0);
        assert_eq!(config.bin_dir, PathBuf::from("/opt/heyblue/bin"));
        assert!(config.database_url.is_none());
        assert!(config.kafka_bootstrap.is_none());
        assert_eq!(config.rust_log, "info");
    }

    #[test]
    fn the_data_dir_argument_wins_over_the_environment() {
        let env = [("HEYBLUE_DATA_DIR", "/from/env")];
        assert_eq!(config(&[], &env).data_dir, PathBuf::from("/from/env"));
        assert!(!config(&[], &env).data_dir_is_default);
        assert_eq!(
            config(&["--data-dir", "/from/arg"], &env).data_dir,
            PathBuf::from("/from/arg")
        );
        assert_eq!(
            config(&["--data-dir=/eq"], &env).data_dir,
            PathBuf::from("/eq")
        );
    }

    #[test]
    fn emails_are_files_under_the_data_dir_unless_an_smtp_server_is_named() {
        match config(&[], &[("HEYBLUE_DATA_DIR", "/srv/heyblue")]).mail {
            Mail::Files(dir) => assert_eq!(dir, PathBuf::from("/srv/heyblue/mail")),
            Mail::Smtp(_) => panic!("no SMTP server was named"),
        }
        match config(&[], &[]).mail {
            Mail::Files(dir) => {
                assert!(dir.is_absolute(), "{}", dir.display());
                assert!(dir.ends_with(".local/mail"), "{}", dir.display());
            }
            Mail::Smtp(_) => panic!("no SMTP server was named"),
        }
        let smtp = config(
            &[],
            &[("HEYBLUE_SMTP_URL", "smtp://user:pw@127.0.0.1:1025")],
        )
        .mail;
        match &smtp {
            Mail::Smtp(url) => assert_eq!(url.expose_secret(), "smtp://user:pw@127.0.0.1:1025"),
            Mail::Files(_) => panic!("the SMTP server was named"),
        }
        assert_eq!(smtp.describe(), "SMTP server 127.0.0.1:1025");
    }

    #[test]
    fn the_port_offset_moves_every_service() {
        let config = config(&[], &[("HEYBLUE_PORT_OFFSET", "100")]);
        let ports: Vec<u16> = fleet::ALL.iter().map(|s| config.port(s)).collect();
        assert_eq!(
            ports,
            [8180, 8181, 8182, 8183, 8184, 8185, 8186, 8187, 8188]
        );
    }

    #[test]
    fn a_port_offset_past_the_port_range_is_refused_by_name() {
        let error = parse(&[], &[("HEYBLUE_PORT_OFFSET", "60000")]).expect_err("too large");
        assert!(error.to_string().contains("HEYBLUE_PORT_OFFSET"), "{error}");
        let error = parse(&[], &[("HEYBLUE_PORT_OFFSET", "-1")]).expect_err("negative");
        assert!(error.to_string().contains("HEYBLUE_PORT_OFFSET"), "{error}");
        assert_eq!(offset_port(8088, 57447).expect("fits"), 65535);
        assert!(offset_port(8088, 57448).is_err());
    }

    #[test]
    fn environment_overrides_are_taken() {
        let config = config(
            &[],
            &[
                ("DATABASE_URL", "postgres://admin@db:5432/postgres"),
                ("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
                ("HEYBLUE_JWT_SECRET", "s3cret"),
                ("HEYBLUE_BIN_DIR", "/tmp/bins"),
                ("LOG_FORMAT", "json"),
            ],
        );
        assert_eq!(
            config.database_url.as_ref().map(|u| u.expose_secret()),
            Some("postgres://admin@db:5432/postgres")
        );
        assert_eq!(config.kafka_bootstrap.as_deref(), Some("127.0.0.1:9092"));
        assert_eq!(config.jwt_secret.expose_secret(), "s3cret");
        assert_eq!(config.bin_dir, PathBuf::from("/tmp/bins"));
        assert_eq!(config.log_format.as_deref(), Some("json"));
    }

    #[test]
    fn colours_follow_each_stream_unless_told() {
        let colour = |env: &[(&str, &str)]| config(&[], env).colour;
        // Only stdout is a terminal in these tests.
        assert_eq!(
            colour(&[]),
            Colour {
                stdout: true,
                stderr: false
            }
        );
        assert!(!colour(&[("NO_COLOR", "1")]).stdout);
        assert!(colour(&[("LOG_COLOR", "always")]).stderr);
    }

    #[test]
    fn a_checkout_keeps_its_own_cluster_under_var_lib_when_root() {
        let dir = root_cluster_dir(Path::new("/root/project/.local"));
        assert_eq!(dir, root_cluster_dir(Path::new("/root/project/.local")));
        assert!(dir.starts_with(ROOT_CLUSTER_BASE), "{}", dir.display());
        let name = dir
            .parent()
            .and_then(Path::file_name)
            .expect("a directory per checkout")
            .to_string_lossy();
        assert!(name.starts_with("project-"), "{name}");
        assert_eq!(name.len(), "project-".len() + 8);
        assert_ne!(
            dir,
            root_cluster_dir(Path::new("/root/other/project/.local"))
        );
        assert!(dir.ends_with("postgres"));
    }

    #[test]
    fn replicas_get_their_own_names_and_ports_above_the_first() {
        let config = config(
            &[],
            &[
                ("HEYBLUE_REPLICAS", "order=2, dispatcher=3"),
                ("HEYBLUE_PORT_OFFSET", "1000"),
            ],
        );
        let processes: Vec<(String, u16)> = config
            .instances()
            .into_iter()
            .map(|instance| (instance.name, instance.port))
            .collect();
        let listed = |name: &str| processes.iter().find(|(n, _)| n == name).map(|(_, p)| *p);
        assert_eq!(processes.len(), fleet::ALL.len() + 1 + 2);
        assert_eq!(listed("order"), Some(9086));
        assert_eq!(listed("order-2"), Some(9186));
        assert_eq!(listed("dispatcher-2"), Some(9187));
        assert_eq!(listed("dispatcher-3"), Some(9287));
        assert_eq!(listed("catalog-2"), None);
        assert_eq!(config.replicas(&fleet::CATALOG), 1);
        assert_eq!(config.name_width(), "payment-gateway".len());
        let defaults = self::config(&[], &[]);
        assert_eq!(defaults.instances().len(), fleet::ALL.len());
    }

    #[test]
    fn replicas_that_cannot_run_are_refused_by_name() {
        let refused = |value: &str| {
            parse(
                &[],
                &[
                    ("HEYBLUE_REPLICAS", value),
                    ("HEYBLUE_PORT_OFFSET", "57000"),
                ],
            )
            .expect_err(value)
            .to_string()
        };
        assert!(refused("orders=2").contains("no service \"orders\""));
        assert!(refused("order").contains("<service>=<count>"));
        assert!(refused("order=0").contains("expected 1..=6"));
        assert!(refused("order=7").contains("expected 1..=6"));
        assert!(refused("order=two").contains("expected 1..=6"));
        assert!(refused("order=2,order=3").contains("named twice"));
        // 8086 + 57000 + 500 is past the port range; + 400 is not.
        assert!(refused("order=6").contains("past port 65535"));
        assert!(parse(
            &[],
            &[
                ("HEYBLUE_REPLICAS", "order=5"),
                ("HEYBLUE_PORT_OFFSET", "57000")
            ]
        )
        .is_ok());
    }

    #[test]
    fn unknown_arguments_and_help() {
        assert!(parse(&["--verbose"], &[]).is_err());
        assert!(parse(&["--data-dir"], &[]).is_err());
        assert!(matches!(parse(&["--help"], &[]), Ok(Command::Help)));
    }
}
