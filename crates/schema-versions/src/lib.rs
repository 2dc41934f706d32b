//! Versioned DDL for the tables a shared crate keeps inside each service's
//! schema: the messaging outbox and inbox, the job queue, stored
//! idempotency keys.
//!
//! A service's own tables migrate with `sqlx::migrate!` from
//! `migrations/<service>/`. A shared crate cannot add files there, and two
//! migrators cannot share sqlx's one `_sqlx_migrations` table without
//! tripping over each other's versions, so each shared crate names its
//! component and lists its steps here; `schema_components` remembers which
//! steps ran. A step, once released, never changes: a change is a new step
//! at the end of the list.

use sqlx::{Executor, PgPool, Row};

/// The DDL steps of one component, in order; step `i` is version `i + 1`.
#[derive(Debug)]
pub struct ComponentSchema {
    /// Unique among the components a service installs (`messaging`, `jobs`, …).
    pub component: &'static str,
    pub steps: &'static [&'static str],
}

/// Applies the steps of `schema` that have not run in the connection's
/// schema yet, all in one transaction. Instances of a service starting
/// together serialise on an advisory lock, so each step runs once.
/// Returns how many steps ran.
pub async fn apply(pool: &PgPool, schema: &ComponentSchema) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.schema_components'))")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_components (
             component  TEXT NOT NULL,
             version    INT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             PRIMARY KEY (component, version)
         )",
    )
    .execute(&mut *tx)
    .await?;
    let applied: i32 = sqlx::query(
        "SELECT coalesce(max(version), 0) AS version FROM schema_components WHERE component = $1",
    )
    .bind(schema.component)
    .fetch_one(&mut *tx)
    .await?
    .get("version");
    let applied = usize::try_from(applied).unwrap_or(0);
    let mut ran = 0;
    for (index, step) in schema.steps.iter().enumerate().skip(applied) {
        // A step may hold several statements: the simple protocol runs them all.
        tx.execute(*step).await?;
        sqlx::query("INSERT INTO schema_components (component, version) VALUES ($1, $2)")
            .bind(schema.component)
            .bind(i32::try_from(index + 1).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
        ran += 1;
    }
    tx.commit().await?;
    if ran > 0 {
        tracing::info!(
            component = schema.component,
            steps = ran,
            "schema steps applied"
        );
    }
    Ok(ran)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    static V1: ComponentSchema = ComponentSchema {
        component: "widgets",
        steps: &["CREATE TABLE widgets (id INT PRIMARY KEY)"],
    };
    static V2: ComponentSchema = ComponentSchema {
        component: "widgets",
        steps: &[
            "CREATE TABLE widgets (id INT PRIMARY KEY)",
            "ALTER TABLE widgets ADD COLUMN name TEXT NOT NULL DEFAULT ''",
        ],
    };

    #[tokio::test]
    async fn each_step_runs_once_and_later_steps_run_on_upgrade() {
        let db = test_harness::fresh_database(&["cart"]).await;
        let pool = PgPool::connect(db.url("cart")).await.unwrap();
        assert_eq!(apply(&pool, &V1).await.unwrap(), 1);
        assert_eq!(apply(&pool, &V1).await.unwrap(), 0);
        assert_eq!(apply(&pool, &V2).await.unwrap(), 1);
        sqlx::query("INSERT INTO widgets (id, name) VALUES (1, 'a')")
            .execute(&pool)
            .await
            .unwrap();
        let versions: Vec<i32> = sqlx::query_scalar(
            "SELECT version FROM schema_components WHERE component = 'widgets' ORDER BY version",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(versions, vec![1, 2]);
    }

    #[tokio::test]
    async fn instances_starting_together_apply_each_step_once() {
        let db = test_harness::fresh_database(&["cart"]).await;
        let pool = PgPool::connect(db.url("cart")).await.unwrap();
        let runs = apply_from_four_tasks(&pool).await;
        assert_eq!(runs, 2, "the two steps ran once in all");
    }

    async fn apply_from_four_tasks(pool: &PgPool) -> usize {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { apply(&pool, &V2).await.unwrap() })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    }
}
