//! The files that cannot read the roster agree with it: the deployment
//! (`deploy/postgres/init.sql`, `deploy/docker-compose.yml`,
//! `deploy/Dockerfile`) and the workspace's `services/` and `migrations/`
//! folders. Any difference — a port, a schema or role, a service or binary
//! missing or extra — fails the first test with one line per difference.
//!
//! The other tests feed the checks hand-edited copies of the real files, so
//! a check that stopped looking would fail them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

use fleet::{Service, ALL, DATABASE};
use serde::Deserialize;
use serde_yaml_ng::Value;
use shared_events::Topic;

const INIT_SQL: &str = "deploy/postgres/init.sql";
const COMPOSE: &str = "deploy/docker-compose.yml";
const DOCKERFILE: &str = "deploy/Dockerfile";
/// How far apart a service's replicas are published (the launcher's
/// `HEYBLUE_REPLICAS` uses the same step).
const REPLICA_PORT_STEP: u16 = 100;

/// The image every service of the fleet runs in the compose file; other
/// compose services (PostgreSQL, Kafka, the SMTP catcher) are not the fleet's.
const FLEET_IMAGE_PREFIX: &str = "heyblue:";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The three deployment files' text, so tests can hand the checks edited copies.
struct DeployFiles {
    init_sql: String,
    compose: String,
    dockerfile: String,
}

impl DeployFiles {
    fn read() -> Self {
        let read = |path: &str| {
            fs::read_to_string(repo_root().join(path))
                .unwrap_or_else(|error| panic!("failed to read {path}: {error}"))
        };
        Self {
            init_sql: read(INIT_SQL),
            compose: read(COMPOSE),
            dockerfile: read(DOCKERFILE),
        }
    }
}

/// Every difference between `roster` and the deployment files, one line each.
fn deploy_drift(roster: &[Service], files: &DeployFiles) -> Vec<String> {
    let mut drift = Drift::default();
    let passwords = check_init_sql(roster, &files.init_sql, &mut drift);
    check_compose(roster, &files.compose, &passwords, &mut drift);
    check_dockerfile(roster, &files.dockerfile, &mut drift);
    drift.lines.into_iter().collect()
}

/// Every difference between `roster` and the crates and migration folders
/// under `root`.
fn workspace_drift(roster: &[Service], root: &Path) -> Vec<String> {
    let mut drift = Drift::default();
    let expected = roster.iter().map(|s| s.name.to_owned()).collect();
    let packages = fs::read_dir(root.join("services"))
        .expect("list services/")
        .map(|entry| entry.expect("services/ entry").path().join("Cargo.toml"))
        .filter(|manifest| manifest.exists())
        .map(|manifest| package_name(&manifest))
        .collect();
    drift.compare(
        "services/*/Cargo.toml",
        "service crate",
        &expected,
        &packages,
    );
    let migrations = fs::read_dir(root.join("migrations"))
        .expect("list migrations/")
        .map(|entry| entry.expect("migrations/ entry"))
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    drift.compare("migrations/", "migrations folder", &expected, &migrations);
    drift.lines.into_iter().collect()
}

#[derive(Default)]
struct Drift {
    lines: BTreeSet<String>,
}

impl Drift {
    fn say(&mut self, file: &str, what: impl Display) {
        self.lines.insert(format!("{file}: {what}"));
    }

    /// Names what `found` lacks and what it has beyond `expected`.
    fn compare<T: Ord + Display>(
        &mut self,
        file: &str,
        what: &str,
        expected: &BTreeSet<T>,
        found: &BTreeSet<T>,
    ) {
        for missing in expected.difference(found) {
            self.say(file, format!("{what} {missing} is missing"));
        }
        for extra in found.difference(expected) {
            self.say(
                file,
                format!("{what} {extra} is not in the roster (crates/fleet)"),
            );
        }
    }
}

/// Checks the roles, schemas and grants; returns each role's password, which
/// the compose file's `DATABASE_URL`s must repeat.
fn check_init_sql(roster: &[Service], text: &str, drift: &mut Drift) -> BTreeMap<String, String> {
    let mut databases = BTreeSet::new();
    let mut passwords = BTreeMap::new();
    let mut connect = BTreeSet::new();
    let mut schemas = BTreeSet::new();
    let mut locked = BTreeSet::new();
    let mut search_paths = BTreeSet::new();
    for statement in sql_statements(text) {
        let words: Vec<&str> = statement.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["CREATE", "DATABASE", database] => {
                databases.insert((*database).to_owned());
            }
            ["CREATE", "ROLE", role, "WITH", "LOGIN", "PASSWORD", password] => {
                passwords.insert((*role).to_owned(), (*password).to_owned());
            }
            ["GRANT", "CONNECT", "ON", "DATABASE", database, "TO", role] => {
                if *database != DATABASE {
                    drift.say(
                        INIT_SQL,
                        format!("{role} may connect to {database}, not {DATABASE}"),
                    );
                }
                connect.insert((*role).to_owned());
            }
            ["CREATE", "SCHEMA", schema, "AUTHORIZATION", owner] => {
                if schema != owner {
                    drift.say(INIT_SQL, format!("schema {schema} is owned by {owner}"));
                }
                schemas.insert((*schema).to_owned());
            }
            ["REVOKE", "ALL", "ON", "SCHEMA", schema, "FROM", "PUBLIC"] => {
                locked.insert((*schema).to_owned());
            }
            ["ALTER", "ROLE", role, "IN", "DATABASE", _, "SET", "search_path", "=", path] => {
                if role != path {
                    drift.say(INIT_SQL, format!("role {role} searches schema {path}"));
                }
                search_paths.insert((*role).to_owned());
            }
            _ => {}
        }
    }
    let expected: BTreeSet<String> = roster.iter().map(|s| s.schema.to_owned()).collect();
    drift.compare(
        INIT_SQL,
        "database",
        &BTreeSet::from([DATABASE.to_owned()]),
        &databases,
    );
    let roles = passwords.keys().cloned().collect();
    drift.compare(INIT_SQL, "role (CREATE ROLE)", &expected, &roles);
    drift.compare(INIT_SQL, "role (GRANT CONNECT)", &expected, &connect);
    drift.compare(INIT_SQL, "schema (CREATE SCHEMA)", &expected, &schemas);
    drift.compare(INIT_SQL, "schema (REVOKE ALL)", &expected, &locked);
    drift.compare(INIT_SQL, "role (search_path)", &expected, &search_paths);
    passwords
}

/// The statements of an SQL script as words, with comments, quotes and the
/// closing semicolon gone: `CREATE ROLE "cart" WITH LOGIN PASSWORD 'pw';`
/// becomes `[CREATE, ROLE, cart, WITH, LOGIN, PASSWORD, pw]`.
fn sql_statements(text: &str) -> Vec<Vec<String>> {
    let without_comments: String = text
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|statement| {
            statement
                .split_whitespace()
                .map(|word| word.trim_matches(['"', '\'']).to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|words| !words.is_empty())
        .collect()
}

#[derive(Deserialize)]
struct ComposeFile {
    services: BTreeMap<String, ComposeService>,
}

#[derive(Deserialize)]
struct ComposeService {
    image: Option<String>,
    command: Option<Value>,
    #[serde(default)]
    environment: BTreeMap<String, Value>,
    #[serde(default)]
    ports: Vec<String>,
}

fn check_compose(
    roster: &[Service],
    text: &str,
    passwords: &BTreeMap<String, String>,
    drift: &mut Drift,
) {
    let mut document: Value = serde_yaml_ng::from_str(text).expect("compose file is YAML");
    // The services share their settings through `<<: *anchor`, and a
    // replica merges its service, which merges the shared settings:
    // `apply_merge` resolves one level at a time.
    while has_merge_key(&document) {
        document.apply_merge().expect("compose file's merge keys");
    }
    let compose: ComposeFile =
        serde_yaml_ng::from_value(document).expect("compose file has services");
    let fleet: BTreeMap<&String, &ComposeService> = compose
        .services
        .iter()
        .filter(|(_, service)| {
            service
                .image
                .as_deref()
                .is_some_and(|image| image.starts_with(FLEET_IMAGE_PREFIX))
        })
        .collect();

    // `order-2` is a further replica of `order`: checked against it below,
    // not a service of its own.
    let (replicas, fleet): (BTreeMap<_, _>, BTreeMap<_, _>) = fleet
        .into_iter()
        .partition(|(name, _)| replica_of(roster, name).is_some());
    let expected = roster.iter().map(|s| s.name.to_owned()).collect();
    let found = fleet.keys().map(|name| (*name).clone()).collect();
    drift.compare(COMPOSE, "service", &expected, &found);
    for (name, replica) in &replicas {
        if let Some((service, number)) = replica_of(roster, name) {
            check_replica(
                &service,
                number,
                name,
                replica,
                fleet.get(&service.name.to_owned()),
                drift,
            );
        }
    }
    check_topics_job(&compose, drift);

    for service in roster {
        let Some(deployed) = fleet.get(&service.name.to_owned()) else {
            continue;
        };
        let name = service.name;
        let command = match &deployed.command {
            Some(Value::Sequence(words)) => words.first().and_then(scalar),
            Some(value) => scalar(value),
            None => None,
        };
        if command.as_deref() != Some(service.binary()) {
            drift.say(
                COMPOSE,
                format!(
                    "{name} runs {command:?}, not its binary {}",
                    service.binary()
                ),
            );
        }
        let env = |key: &str| deployed.environment.get(key).and_then(scalar);
        let port = service.port.to_string();
        match env("PORT") {
            Some(value) if value == port => {}
            other => drift.say(
                COMPOSE,
                format!(
                    "{name} has PORT {}, the roster says {port}",
                    other.as_deref().unwrap_or("(none)")
                ),
            ),
        }
        let published = format!("{port}:{port}");
        if !deployed.ports.contains(&published) {
            drift.say(
                COMPOSE,
                format!(
                    "{name} publishes {:?}, the roster says {published}",
                    deployed.ports
                ),
            );
        }
        match env("DATABASE_URL").as_deref().map(database_url) {
            Some(Some((role, password, database))) => {
                if role != service.schema || database != DATABASE {
                    drift.say(
                        COMPOSE,
                        format!(
                            "{name} logs in as {role} to {database}, the roster says {} to {DATABASE}",
                            service.schema
                        ),
                    );
                }
                if passwords
                    .get(service.schema)
                    .is_some_and(|expected| *expected != password)
                {
                    drift.say(
                        COMPOSE,
                        format!("{name}'s DATABASE_URL password differs from {INIT_SQL}'s"),
                    );
                }
            }
            _ => drift.say(
                COMPOSE,
                format!("{name} has no DATABASE_URL of the form postgres://role:password@host/db"),
            ),
        }
        check_peer_urls(roster, name, &deployed.environment, drift);
    }
}

fn has_merge_key(value: &Value) -> bool {
    match value {
        Value::Mapping(mapping) => {
            mapping.contains_key("<<") || mapping.values().any(has_merge_key)
        }
        Value::Sequence(items) => items.iter().any(has_merge_key),
        _ => false,
    }
}

/// `(service, n)` when `name` is `<service>-<n>`, a further replica of a
/// service of the roster (n ≥ 2).
fn replica_of(roster: &[Service], name: &str) -> Option<(Service, u16)> {
    let (base, number) = name.rsplit_once('-')?;
    let number: u16 = number.parse().ok().filter(|n| *n >= 2)?;
    let service = roster.iter().find(|service| service.name == base)?;
    Some((*service, number))
}

/// A further replica runs its service's binary on its service's port and
/// database, published [`REPLICA_PORT_STEP`] per replica above it, as the
/// launcher's `HEYBLUE_REPLICAS` places them.
fn check_replica(
    service: &Service,
    number: u16,
    name: &str,
    replica: &ComposeService,
    first: Option<&&ComposeService>,
    drift: &mut Drift,
) {
    let env = |deployed: &ComposeService, key: &str| deployed.environment.get(key).and_then(scalar);
    let published = format!(
        "{}:{}",
        service.port + REPLICA_PORT_STEP * (number - 1),
        service.port
    );
    if replica.ports != [published.clone()] {
        drift.say(
            COMPOSE,
            format!(
                "{name} publishes {:?}, a replica there publishes {published}",
                replica.ports
            ),
        );
    }
    if env(replica, "PORT") != Some(service.port.to_string()) {
        drift.say(
            COMPOSE,
            format!("{name}'s PORT is not {}'s {}", service.name, service.port),
        );
    }
    let command = replica.command.as_ref().and_then(scalar);
    if command.as_deref() != Some(service.binary()) {
        drift.say(
            COMPOSE,
            format!("{name} runs {command:?}, not {}", service.binary()),
        );
    }
    if first.is_some_and(|first| env(first, "DATABASE_URL") != env(replica, "DATABASE_URL")) {
        drift.say(
            COMPOSE,
            format!("{name}'s DATABASE_URL is not {}'s", service.name),
        );
    }
}

/// The job that creates the topics (the compose service with a `TOPICS`
/// setting) creates every topic of the contract, and no other.
fn check_topics_job(compose: &ComposeFile, drift: &mut Drift) {
    let listed: BTreeSet<String> = compose
        .services
        .values()
        .filter_map(|service| service.environment.get("TOPICS").and_then(scalar))
        .flat_map(|topics| {
            topics
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = Topic::ALL
        .iter()
        .map(|topic| topic.name().to_owned())
        .collect();
    drift.compare(
        COMPOSE,
        "topic (TOPICS of the topics job)",
        &expected,
        &listed,
    );
}

/// `HEYBLUE_*_URL` settings that name no peer service: where email goes, the
/// identity provider's keys and tokens, the gateway's own public address.
const NOT_PEER_URLS: &[&str] = &[
    "HEYBLUE_SMTP_URL",
    "HEYBLUE_JWKS_URL",
    "HEYBLUE_OAUTH_TOKEN_URL",
    "HEYBLUE_PUBLIC_BASE_URL",
];

/// Every service is told where every other listens, as the launcher does.
fn check_peer_urls(
    roster: &[Service],
    name: &str,
    environment: &BTreeMap<String, Value>,
    drift: &mut Drift,
) {
    let expected: BTreeSet<String> = roster
        .iter()
        .map(|peer| format!("{}=http://{}:{}", peer.url_variable(), peer.name, peer.port))
        .collect();
    let found: BTreeSet<String> = environment
        .iter()
        .filter(|(key, _)| key.starts_with("HEYBLUE_") && key.ends_with("_URL"))
        .filter(|(key, _)| !NOT_PEER_URLS.contains(&key.as_str()))
        .filter_map(|(key, value)| Some(format!("{key}={}", scalar(value)?)))
        .collect();
    for missing in expected.difference(&found) {
        drift.say(COMPOSE, format!("{name}'s environment lacks {missing}"));
    }
    for extra in found.difference(&expected) {
        drift.say(
            COMPOSE,
            format!("{name}'s environment has {extra}, which the roster does not"),
        );
    }
}

/// `(role, password, database)` of `postgres://role:password@host:port/database`.
fn database_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("postgres://")?;
    let (credentials, location) = rest.split_once('@')?;
    let (role, password) = credentials.split_once(':')?;
    let (_, database) = location.split_once('/')?;
    let database = database.split('?').next()?;
    Some((role.to_owned(), password.to_owned(), database.to_owned()))
}

/// A YAML string or number as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn check_dockerfile(roster: &[Service], text: &str, drift: &mut Drift) {
    // Continuation lines joined, so `for bin in …; do` reads as one line.
    let joined = text.replace("\\\n", " ");
    let binaries: BTreeSet<String> = joined
        .lines()
        .filter_map(|line| line.split_once("for bin in "))
        .flat_map(|(_, rest)| {
            rest.split(';')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = roster.iter().map(|s| s.binary().to_owned()).collect();
    drift.compare(DOCKERFILE, "binary (for bin in …)", &expected, &binaries);

    let exposed: BTreeSet<u16> = joined
        .lines()
        .filter_map(|line| line.trim().strip_prefix("EXPOSE "))
        .flat_map(|ports| {
            ports
                .split_whitespace()
                .map(|port| port.parse().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = roster.iter().map(|s| s.port).collect();
    drift.compare(DOCKERFILE, "port (EXPOSE)", &expected, &exposed);

    for line in joined.lines() {
        if let Some(command) = line.trim().strip_prefix("CMD ") {
            let program = command.trim_matches(['[', ']', ' ']).split(',').next();
            let program = program.unwrap_or_default().trim().trim_matches('"');
            if !roster.iter().any(|s| s.binary() == program) {
                drift.say(
                    DOCKERFILE,
                    format!("CMD runs {program}, which is no binary of the roster"),
                );
            }
        }
    }
}

/// The `name` of a manifest's `[package]`.
fn package_name(manifest: &Path) -> String {
    let text = fs::read_to_string(manifest).expect("read Cargo.toml");
    text.lines()
        .find_map(|line| {
            let value = line.trim().strip_prefix("name")?.trim_start();
            Some(value.strip_prefix('=')?.trim().trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| panic!("{} has no package name", manifest.display()))
}

fn assert_names(drift: &[String], expected: &[&str]) {
    for needle in expected {
        assert!(
            drift.iter().any(|line| line.contains(needle)),
            "no difference mentions {needle:?}: {drift:#?}"
        );
    }
}

#[test]
fn the_deployment_and_the_workspace_match_the_roster() {
    let mut drift = deploy_drift(ALL, &DeployFiles::read());
    drift.extend(workspace_drift(ALL, &repo_root()));
    assert!(
        drift.is_empty(),
        "these differ from the roster in crates/fleet/src/lib.rs:\n  {}",
        drift.join("\n  ")
    );
}

#[test]
fn a_port_changed_by_hand_in_the_compose_file_is_named() {
    let mut files = DeployFiles::read();
    files.compose = files.compose.replace("\"8084:8084\"", "\"8089:8084\"");
    files.compose = files.compose.replace("PORT: \"8084\"", "PORT: \"8089\"");
    let drift = deploy_drift(ALL, &files);
    assert_eq!(drift.len(), 2, "{drift:#?}");
    assert_names(
        &drift,
        &[COMPOSE, "user-points has PORT 8089, the roster says 8084"],
    );
    assert_names(&drift, &["user-points publishes [\"8089:8084\"]"]);
}

#[test]
fn a_role_dropped_from_init_sql_is_named() {
    let mut files = DeployFiles::read();
    files.init_sql = files
        .init_sql
        .lines()
        .filter(|line| !line.contains("\"dispatcher\""))
        .collect::<Vec<_>>()
        .join("\n");
    let drift = deploy_drift(ALL, &files);
    assert_names(
        &drift,
        &[
            "role (CREATE ROLE) dispatcher is missing",
            "schema (CREATE SCHEMA) dispatcher is missing",
            "role (GRANT CONNECT) dispatcher is missing",
        ],
    );
    assert!(drift.iter().all(|line| line.starts_with(INIT_SQL)));
}

#[test]
fn a_password_that_differs_between_init_sql_and_compose_is_named() {
    let mut files = DeployFiles::read();
    files.init_sql = files.init_sql.replace("'cart_local_pw'", "'changed'");
    let drift = deploy_drift(ALL, &files);
    assert_eq!(
        drift,
        [format!(
            "{COMPOSE}: cart's DATABASE_URL password differs from {INIT_SQL}'s"
        )]
    );
}

#[test]
fn a_binary_missing_from_the_dockerfile_is_named() {
    let mut files = DeployFiles::read();
    files.dockerfile = files.dockerfile.replace(" dispatcher ", " ");
    files.dockerfile = files.dockerfile.replace(" 8087 ", " ");
    let drift = deploy_drift(ALL, &files);
    assert_eq!(
        drift,
        [
            format!("{DOCKERFILE}: binary (for bin in …) dispatcher is missing"),
            format!("{DOCKERFILE}: port (EXPOSE) 8087 is missing"),
        ]
    );
}

#[test]
fn a_replica_on_the_wrong_port_and_a_topic_the_job_forgot_are_named() {
    let mut files = DeployFiles::read();
    files.compose = files.compose.replace("\"8186:8086\"", "\"8187:8086\"");
    files.compose = files.compose.replace(" heyblue.payment.v1", "");
    let drift = deploy_drift(ALL, &files);
    assert_eq!(
        drift,
        [
            format!(
                "{COMPOSE}: order-2 publishes [\"8187:8086\"], a replica there publishes 8186:8086"
            ),
            format!("{COMPOSE}: topic (TOPICS of the topics job) heyblue.payment.v1 is missing"),
        ]
    );
}

#[test]
fn a_compose_service_the_roster_lacks_is_named() {
    let mut files = DeployFiles::read();
    files.compose = files.compose.replace(
        "\nvolumes:\n",
        "\n  loyalty:\n    <<: *service\n    command: loyalty\n\nvolumes:\n",
    );
    let drift = deploy_drift(ALL, &files);
    assert_eq!(
        drift,
        [format!(
            "{COMPOSE}: service loyalty is not in the roster (crates/fleet)"
        )]
    );
}

#[test]
fn a_service_added_to_the_roster_is_missing_everywhere_until_deployed() {
    let loyalty = Service {
        name: "loyalty",
        port: 8089,
        schema: "loyalty",
        produces: &[],
    };
    let roster: Vec<Service> = ALL
        .iter()
        .copied()
        .chain(std::iter::once(loyalty))
        .collect();
    let mut drift = deploy_drift(&roster, &DeployFiles::read());
    drift.extend(workspace_drift(&roster, &repo_root()));
    assert_names(
        &drift,
        &[
            "init.sql: role (CREATE ROLE) loyalty is missing",
            "docker-compose.yml: service loyalty is missing",
            "docker-compose.yml: user-points's environment lacks HEYBLUE_LOYALTY_URL=http://loyalty:8089",
            "Dockerfile: binary (for bin in …) loyalty is missing",
            "Dockerfile: port (EXPOSE) 8089 is missing",
            "services/*/Cargo.toml: service crate loyalty is missing",
            "migrations/: migrations folder loyalty is missing",
        ],
    );
    assert!(
        drift
            .iter()
            .all(|line| line.contains("loyalty") || line.contains("8089")),
        "only the new service differs: {drift:#?}"
    );
}
