//! What the launcher is told: command-line arguments and environment, read
//! once at start-up into [`Config`], and the fleet's services and ports.
//!
//! Everything is read through a lookup function rather than `std::env`
//! directly, so the rules (defaults, the port offset, which URL wins) are
//! testable without touching the process environment.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use secrecy::SecretString;

/// The documented development secret of the local stack. Anything that
/// accepts it must never face the internet; deployments set their own.
pub const DEV_JWT_SECRET: &str = "heyblue-local-dev-secret";

/// Where the local stack keeps its data when nothing else is said: inside the
/// project (ignored by git), so separate checkouts never share a cluster.
pub const DEFAULT_DATA_DIR: &str = "./.local";

/// The database every service's schema lives in (DESIGN §1).
pub const DATABASE: &str = "heyblue";

/// One service of the fleet: its binary's name and its port from the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub base_port: u16,
}

/// The fleet, in port order (DESIGN §1). Binaries are named like services.
pub const SERVICES: [Service; 8] = [
    Service {
        name: "catalog",
        base_port: 8081,
    },
    Service {
        name: "cart",
        base_port: 8082,
    },
    Service {
        name: "checkout",
        base_port: 8083,
    },
    Service {
        name: "user-points",
        base_port: 8084,
    },
    Service {
        name: "payment-gateway",
        base_port: 8085,
    },
    Service {
        name: "order",
        base_port: 8086,
    },
    Service {
        name: "dispatcher",
        base_port: 8087,
    },
    Service {
        name: "notification",
        base_port: 8088,
    },
];

/// The width of the longest service name, so prefixed log lines line up.
pub fn name_width() -> usize {
    SERVICES.iter().map(|s| s.name.len()).max().unwrap_or(0)
}

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
    /// An admin URL of an existing server to use instead of a private cluster.
    pub database_url: Option<SecretString>,
    pub jwt_secret: SecretString,
    /// Added to every service's port, so a second fleet can run beside one.
    pub port_offset: u16,
    /// Where the service binaries are.
    pub bin_dir: PathBuf,
    /// Passed to every service; `info` unless set.
    pub rust_log: String,
    /// Passed to every service when set (`json` or text).
    pub log_format: Option<String>,
}

/// What a run of the launcher should do.
#[derive(Debug)]
pub enum Command {
    Run(Config),
    Help,
}

/// How to call the launcher, for `--help` and argument errors.
pub const USAGE: &str = "\
usage: heyblue-local [--data-dir <dir>]

Starts the Hey, Blue! fleet: a private PostgreSQL cluster (or DATABASE_URL),
an embedded Kafka-protocol broker and the eight services, seeds demo data and
prints the URLs and demo tokens. Ctrl-C stops everything.

options:
  --data-dir <dir>   where the private PostgreSQL cluster is kept
                     (env HEYBLUE_DATA_DIR, default ./.local)
  -h, --help         show this text

environment:
  DATABASE_URL         admin URL of an existing server; no private cluster
  HEYBLUE_JWT_SECRET   HS256 secret (default heyblue-local-dev-secret)
  HEYBLUE_PORT_OFFSET  added to every service port (default 0)
  HEYBLUE_BIN_DIR      where the service binaries are (default: beside this one)
  RUST_LOG, LOG_FORMAT passed to every service";

impl Command {
    /// Reads the arguments (without the program name) and the environment
    /// through `env`. `exe_dir` is the default binary directory.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
        exe_dir: &Path,
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
        let data_dir = data_dir_arg
            .or_else(|| non_empty("HEYBLUE_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let port_offset = match non_empty("HEYBLUE_PORT_OFFSET") {
            None => 0,
            Some(value) => value.trim().parse().with_context(|| {
                format!("HEYBLUE_PORT_OFFSET: invalid value {value:?}: expected 0..=65535")
            })?,
        };
        for service in SERVICES {
            offset_port(service.base_port, port_offset)?;
        }

        Ok(Self::Run(Config {
            data_dir,
            database_url: non_empty("DATABASE_URL").map(SecretString::from),
            jwt_secret: SecretString::from(
                non_empty("HEYBLUE_JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.to_owned()),
            ),
            port_offset,
            bin_dir: non_empty("HEYBLUE_BIN_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| exe_dir.to_owned()),
            rust_log: non_empty("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
            log_format: non_empty("LOG_FORMAT"),
        }))
    }
}

impl Config {
    /// The port `service` listens on in this run.
    pub fn port(&self, service: Service) -> u16 {
        // Checked for every service when the config was read.
        service.base_port.saturating_add(self.port_offset)
    }

    /// The directory of the private PostgreSQL cluster.
    pub fn postgres_dir(&self) -> PathBuf {
        self.data_dir.join("postgres")
    }
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
        )
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        match parse(args, env).expect("valid arguments") {
            Command::Run(config) => config,
            Command::Help => panic!("expected a run"),
        }
    }

    #[test]
    fn defaults_keep_data_in_the_project_and_use_the_dev_secret() {
        let config = config(&[], &[]);
        assert_eq!(config.data_dir, PathBuf::from("./.local"));
        assert_eq!(config.postgres_dir(), PathBuf::from("./.local/postgres"));
        assert_eq!(config.jwt_secret.expose_secret(), DEV_JWT_SECRET);
        assert_eq!(config.port_offset, 0);
        assert_eq!(config.bin_dir, PathBuf::from("/opt/heyblue/bin"));
        assert!(config.database_url.is_none());
        assert_eq!(config.rust_log, "info");
    }

    #[test]
    fn the_data_dir_argument_wins_over_the_environment() {
        let env = [("HEYBLUE_DATA_DIR", "/from/env")];
        assert_eq!(config(&[], &env).data_dir, PathBuf::from("/from/env"));
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
    fn the_port_offset_moves_every_service() {
        let config = config(&[], &[("HEYBLUE_PORT_OFFSET", "100")]);
        let ports: Vec<u16> = SERVICES.iter().map(|s| config.port(*s)).collect();
        assert_eq!(ports, [8181, 8182, 8183, 8184, 8185, 8186, 8187, 8188]);
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
                ("HEYBLUE_JWT_SECRET", "s3cret"),
                ("HEYBLUE_BIN_DIR", "/tmp/bins"),
                ("LOG_FORMAT", "json"),
            ],
        );
        assert_eq!(
            config.database_url.as_ref().map(|u| u.expose_secret()),
            Some("postgres://admin@db:5432/postgres")
        );
        assert_eq!(config.jwt_secret.expose_secret(), "s3cret");
        assert_eq!(config.bin_dir, PathBuf::from("/tmp/bins"));
        assert_eq!(config.log_format.as_deref(), Some("json"));
    }

    #[test]
    fn unknown_arguments_and_help() {
        assert!(parse(&["--verbose"], &[]).is_err());
        assert!(parse(&["--data-dir"], &[]).is_err());
        assert!(matches!(parse(&["--help"], &[]), Ok(Command::Help)));
    }
}
