//! A database with one schema and one login role per service.
//!
//! For each schema `s` of a database `db`, [`provision`] makes:
//!
//! - a LOGIN role `s` with the password [`role_password`]`(s)`,
//! - `CREATE SCHEMA s AUTHORIZATION s`,
//! - `ALTER ROLE s IN DATABASE db SET search_path = s`, so a service's
//!   unqualified tables (and its migrations' bookkeeping) land in its schema,
//! - `CONNECT` on `db` for `s`, while `PUBLIC` keeps no database privileges
//!   and no `CREATE` on schema `public`.
//!
//! A role therefore owns its schema and nothing else: it can neither see into
//! another service's schema nor put tables anywhere else.
//!
//! Roles belong to the whole server, not to one database, so many databases
//! (one per test, say) share the role `cart`; provisioning is idempotent and
//! tolerates roles and databases that already exist.

use std::borrow::Cow;

use anyhow::{bail, Context};
use sqlx::{Connection, Executor, PgConnection};
use url::Url;

/// Serialises role creation among everyone provisioning through the same admin
/// database: concurrent `CREATE ROLE`/`ALTER ROLE` of one name fail with
/// "tuple concurrently updated" rather than wait. (`"hb-prov"` in ASCII.)
const ROLE_LOCK_KEY: i64 = 0x0068_622d_7072_6f76;

/// The password of the role of `schema`: `<schema>_local_pw`.
///
/// Deterministic on purpose: roles are shared by every database on a server,
/// so a password generated per call would invalidate the URLs handed out by
/// earlier calls. The private cluster authenticates with `trust` anyway; these
/// passwords only matter on a server reached through `DATABASE_URL`, which is
/// for local development and tests. Deployed roles get real secrets from the
/// deployment, not from here.
pub fn role_password(schema: &str) -> String {
    format!("{schema}_local_pw")
}

/// What [`provision`] made: a database and the URLs of its service roles.
#[derive(Debug, Clone)]
pub struct Provisioned {
    database: String,
    admin_url: Url,
    schemas: Vec<String>,
}

impl Provisioned {
    /// The database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The admin's URL, pointed at this database.
    pub fn admin_url(&self) -> String {
        self.admin_url.to_string()
    }

    /// The provisioned schemas, in the order they were asked for.
    pub fn schemas(&self) -> &[String] {
        &self.schemas
    }

    /// The URL a service connects with to reach its own `schema`:
    /// `postgres://<schema>:<password>@<host>:<port>/<database>` (plus any
    /// query parameters of the admin URL, such as `sslmode`).
    ///
    /// Built from the name alone (see [`role_password`]), so it is only
    /// meaningful for one of [`Provisioned::schemas`].
    pub fn url(&self, schema: &str) -> String {
        let mut url = self.admin_url.clone();
        // Both only fail for URLs without a host, which `provision` rejected.
        let _ = url.set_username(schema);
        let _ = url.set_password(Some(&role_password(schema)));
        url.to_string()
    }
}

/// Creates `database` if missing and, for every name in `schemas`, the role,
/// schema and privileges described in the module docs. Safe to run again.
///
/// `admin_url` must belong to a superuser (the private cluster's `postgres`).
pub async fn provision(
    admin_url: &str,
    database: &str,
    schemas: &[&str],
) -> anyhow::Result<Provisioned> {
    check_identifier("database", database)?;
    for schema in schemas {
        check_identifier("schema", schema)?;
    }
    let admin = Url::parse(admin_url).context("admin URL is not a valid URL")?;
    if !admin.has_host() {
        bail!("admin URL must name a host");
    }
    let mut database_admin = admin.clone();
    database_admin.set_path(&format!("/{database}"));

    let mut server = PgConnection::connect(admin.as_str())
        .await
        .context("failed to connect with the admin URL")?;
    create_database(&mut server, database).await?;
    create_roles(&mut server, schemas).await?;
    server.close().await.ok();

    let mut db = PgConnection::connect(database_admin.as_str())
        .await
        .with_context(|| format!("failed to connect to database {database} as admin"))?;
    lock_down(&mut db, database, schemas).await?;
    db.close().await.ok();

    tracing::info!(database, ?schemas, "provisioned database");
    Ok(Provisioned {
        database: database.to_owned(),
        admin_url: database_admin,
        schemas: schemas.iter().map(|s| (*s).to_owned()).collect(),
    })
}

async fn create_database(server: &mut PgConnection, database: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut *server)
            .await
            .context("failed to look up databases")?;
    if exists {
        return Ok(());
    }
    match server
        .execute(format!(r#"CREATE DATABASE "{database}""#).as_str())
        .await
    {
        Ok(_) => Ok(()),
        // Someone else created it between our look-up and ours.
        Err(error) if has_code(&error, &["42P04", "23505"]) => Ok(()),
        Err(error) => Err(error).with_context(|| format!("failed to create database {database}")),
    }
}

async fn create_roles(server: &mut PgConnection, schemas: &[&str]) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(ROLE_LOCK_KEY)
        .execute(&mut *server)
        .await
        .context("failed to take the role provisioning lock")?;
    let result = async {
        for schema in schemas {
            let password = role_password(schema).replace('\'', "''");
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                    .bind(schema)
                    .fetch_one(&mut *server)
                    .await
                    .context("failed to look up roles")?;
            let verb = if exists { "ALTER" } else { "CREATE" };
            server
                .execute(
                    format!(r#"{verb} ROLE "{schema}" WITH LOGIN PASSWORD '{password}'"#).as_str(),
                )
                .await
                .with_context(|| format!("failed to {verb} ROLE {schema}"))?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(ROLE_LOCK_KEY)
        .execute(&mut *server)
        .await
        .context("failed to release the role provisioning lock")?;
    result
}

async fn lock_down(db: &mut PgConnection, database: &str, schemas: &[&str]) -> anyhow::Result<()> {
    let mut statements = vec![
        format!(r#"REVOKE ALL ON DATABASE "{database}" FROM PUBLIC"#),
        // PostgreSQL 15 already does this for new databases; older servers
        // reached through DATABASE_URL do not.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
    ];
    for schema in schemas {
        statements.extend([
            format!(r#"GRANT CONNECT ON DATABASE "{database}" TO "{schema}""#),
            format!(r#"CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{schema}""#),
            format!(r#"ALTER SCHEMA "{schema}" OWNER TO "{schema}""#),
            format!(r#"REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC"#),
            format!(
                r#"ALTER ROLE "{schema}" IN DATABASE "{database}" SET search_path = "{schema}""#
            ),
        ]);
    }
    for statement in statements {
        db.execute(statement.as_str())
            .await
            .with_context(|| format!("failed to provision {database}: {statement}"))?;
    }
    Ok(())
}

/// Names go into SQL unbound (DDL takes no parameters), so only plain
/// lower-case identifiers are accepted; they need no quoting rules.
fn check_identifier(kind: &str, name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_start || !valid_rest || name.len() > 63 || name.starts_with("pg_") {
        bail!("{kind} name {name:?} must match [a-z_][a-z0-9_]*, be at most 63 bytes and not start with pg_");
    }
    Ok(())
}

fn has_code(error: &sqlx::Error, codes: &[&str]) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code: Cow<'_, str>| codes.contains(&code.as_ref())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_accepted() {
        assert!(check_identifier("schema", "orders").is_ok());
        assert!(check_identifier("database", "t_0a1b").is_ok());
        for bad in ["", "Orders", "1st", "a-b", "a\"b", "pg_x", &"x".repeat(64)] {
            assert!(check_identifier("schema", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_service_url_names_its_role_and_the_database() {
        let provisioned = Provisioned {
            database: "heyblue".to_owned(),
            admin_url: Url::parse("postgres://postgres@127.0.0.1:5999/heyblue?sslmode=disable")
                .expect("valid url"),
            schemas: vec!["cart".to_owned()],
        };
        assert_eq!(
            provisioned.url("cart"),
            "postgres://cart:cart_local_pw@127.0.0.1:5999/heyblue?sslmode=disable"
        );
    }
}
