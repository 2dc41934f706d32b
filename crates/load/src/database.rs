//! What the fleet's database does, read by its superuser: commits
//! (`pg_stat_database.xact_commit` of `heyblue`, read-only transactions
//! included), transaction ids handed out (one per transaction that wrote,
//! so one per commit that waits for its WAL flush — the commits the
//! ceiling is about), rows written per schema, and how many connections
//! are busy at once; and, when the server was started with
//! `pg_stat_statements` loaded (`HEYBLUE_POSTGRES_OPTIONS="-c
//! shared_preload_libraries=pg_stat_statements"`), the statements the fleet
//! ran.
//!
//! The admin connection sits in the `postgres` database, so that its own
//! queries add no commit to `heyblue`'s count; the row counts need one
//! query in `heyblue` itself, which costs one read-only commit.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The fleet's database.
const FLEET_DATABASE: &str = fleet::DATABASE;

/// The superuser's connections to the fleet's server.
#[derive(Clone)]
pub struct Database {
    admin: PgPool,
    fleet: PgPool,
    options: PgConnectOptions,
    /// Whether `pg_stat_statements` can be read.
    statements: bool,
}

/// The database's counters at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    pub commits: i64,
    pub write_transactions: i64,
    /// Statements run in the fleet's database (`pg_stat_statements`'
    /// calls), when they are counted.
    pub statements: Option<i64>,
}

impl Counters {
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            commits: self.commits - earlier.commits,
            write_transactions: self.write_transactions - earlier.write_transactions,
            statements: self
                .statements
                .zip(earlier.statements)
                .map(|(now, then)| now - then),
        }
    }
}

/// Rows a table had inserted, updated and deleted (a count, or a count per order).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rows {
    pub inserted: f64,
    pub updated: f64,
    pub deleted: f64,
}

impl Rows {
    pub fn total(&self) -> f64 {
        self.inserted + self.updated + self.deleted
    }

    /// What was written since `earlier`, shared out over `orders`.
    pub fn per_order_since(&self, earlier: &Rows, orders: f64) -> Rows {
        Rows {
            inserted: (self.inserted - earlier.inserted) / orders,
            updated: (self.updated - earlier.updated) / orders,
            deleted: (self.deleted - earlier.deleted) / orders,
        }
    }
}

impl Database {
    /// Connects with the banner's admin URL.
    pub async fn connect(admin_url: &str) -> anyhow::Result<Database> {
        let options: PgConnectOptions = admin_url
            .parse()
            .context("the banner's database URL does not parse")?;
        let pool = |database: &str| {
            PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(10))
                .connect_lazy_with(options.clone().database(database))
        };
        let admin = pool("postgres");
        // Counted only where the server loaded the module; the extension is
        // made in `postgres`, whose view shows every database's statements.
        let statements = sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .execute(&admin)
            .await
            .is_ok()
            && sqlx::query("SELECT 1 FROM pg_stat_statements LIMIT 1")
                .execute(&admin)
                .await
                .is_ok();
        Ok(Database {
            admin,
            fleet: pool(FLEET_DATABASE),
            options,
            statements,
        })
    }

    /// Where the server listens, for `pgbench`.
    pub fn host_and_port(&self) -> (String, u16) {
        (self.options.get_host().to_owned(), self.options.get_port())
    }

    /// The superuser's options for another database of the same server.
    pub fn options_for(&self, database: &str) -> PgConnectOptions {
        self.options.clone().database(database)
    }

    pub fn admin(&self) -> &PgPool {
        &self.admin
    }

    pub async fn counters(&self) -> anyhow::Result<Counters> {
        let statements = if self.statements {
            "(SELECT sum(calls)::bigint FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1))"
        } else {
            "NULL::bigint"
        };
        let (commits, next_xid, statements): (i64, String, Option<i64>) = sqlx::query_as(&format!(
            "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = $1),
                    pg_snapshot_xmax(pg_current_snapshot())::text,
                    {statements}"
        ))
        .bind(FLEET_DATABASE)
        .fetch_one(&self.admin)
        .await
        .context("failed to read the database's counters")?;
        Ok(Counters {
            commits,
            write_transactions: next_xid.parse().context("a transaction id")?,
            statements,
        })
    }

    /// Rows inserted, updated and deleted so far in every table, by
    /// schema (= service) and table.
    pub async fn rows_written(&self) -> anyhow::Result<BTreeMap<(String, String), Rows>> {
        let tables: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT schemaname::text, relname::text, n_tup_ins, n_tup_upd, n_tup_del
             FROM pg_stat_user_tables",
        )
        .fetch_all(&self.fleet)
        .await
        .context("failed to read rows written per table")?;
        Ok(tables
            .into_iter()
            .map(|(schema, table, inserted, updated, deleted)| {
                (
                    (schema, table),
                    Rows {
                        inserted: inserted as f64,
                        updated: updated as f64,
                        deleted: deleted as f64,
                    },
                )
            })
            .collect())
    }

    /// Connections to the fleet's database that are running a statement or
    /// are inside a transaction right now.
    pub async fn busy_connections(&self) -> anyhow::Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = $1 AND state IS NOT NULL AND state <> 'idle'",
        )
        .bind(FLEET_DATABASE)
        .fetch_one(&self.admin)
        .await
        .context("failed to read pg_stat_activity")
    }
}
