//! notification's queries. Each takes the caller's connection (usually the
//! consumer's transaction), so a notification, its parked facts and its
//! email job commit together with the event that caused them.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Customer, Kind, Notice, Notification};

/// Whom an order belongs to, as far as notification has learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownCustomer {
    pub customer_id: Uuid,
    pub email: Option<String>,
}

/// What an email job sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEmail {
    pub to: String,
    pub title: String,
    pub body: String,
}

/// Holds the order's lock until the transaction ends. The order's, payment
/// and dispatch topics are consumed concurrently; without it a fact could be
/// parked by one transaction just as another, not seeing it yet, learns the
/// customer and moves the parked facts, leaving it parked for good.
#[tracing::instrument(skip(conn))]
pub async fn lock_order(conn: &mut PgConnection, order_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records whom `customer.order_id` belongs to. A known address is kept when
/// an event carries none; the customer of an order never changes, so a
/// different one is ignored (and logged by the caller). Also says whether
/// this taught notification something: the customer, or a new address (the
/// row is written only then). The caller holds the order's lock.
#[tracing::instrument(skip_all, fields(order_id = %customer.order_id))]
pub async fn remember_customer(
    conn: &mut PgConnection,
    customer: &Customer,
) -> Result<(KnownCustomer, bool), sqlx::Error> {
    let row = sqlx::query(
        "WITH known AS (SELECT customer_id, email FROM order_customers WHERE order_id = $1),
              saved AS (
                  INSERT INTO order_customers (order_id, customer_id, email) VALUES ($1, $2, $3)
                  ON CONFLICT (order_id) DO UPDATE SET email = EXCLUDED.email, updated_at = now()
                  WHERE EXCLUDED.email IS NOT NULL
                    AND order_customers.email IS DISTINCT FROM EXCLUDED.email
                  RETURNING customer_id, email)
         SELECT customer_id, email, true AS learnt FROM saved
         UNION ALL
         SELECT customer_id, email, false FROM known WHERE NOT EXISTS (SELECT 1 FROM saved)",
    )
    .bind(customer.order_id)
    .bind(customer.customer_id)
    .bind(&customer.email)
    .fetch_one(conn)
    .await?;
    let known = KnownCustomer {
        customer_id: row.get("customer_id"),
        email: row.get("email"),
    };
    Ok((known, row.get("learnt")))
}

/// The order's customer, if an event has named them.
#[tracing::instrument(skip(conn))]
pub async fn customer_of(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<KnownCustomer>, sqlx::Error> {
    let row = sqlx::query("SELECT customer_id, email FROM order_customers WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|row| KnownCustomer {
        customer_id: row.get("customer_id"),
        email: row.get("email"),
    }))
}

/// Puts `notice` in `user_id`'s inbox unless its fact was told before.
/// Returns whether it was new.
#[tracing::instrument(skip_all, fields(order_id = %notice.order_id, kind = notice.kind.as_str()))]
pub async fn insert(
    conn: &mut PgConnection,
    user_id: Uuid,
    notice: &Notice,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO notifications (id, user_id, order_id, kind, fact_key, title, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT notifications_once_per_fact DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(notice.order_id)
    .bind(notice.kind.as_str())
    .bind(&notice.fact_key)
    .bind(&notice.title)
    .bind(&notice.body)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Keeps `notice` until its order's customer is known.
#[tracing::instrument(skip_all, fields(order_id = %notice.order_id, kind = notice.kind.as_str()))]
pub async fn park(conn: &mut PgConnection, notice: &Notice) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO parked_notifications (order_id, kind, fact_key, title, body)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT ON CONSTRAINT parked_notifications_once_per_fact DO NOTHING",
    )
    .bind(notice.order_id)
    .bind(notice.kind.as_str())
    .bind(&notice.fact_key)
    .bind(&notice.title)
    .bind(&notice.body)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves the order's parked facts into `user_id`'s inbox, in the order they
/// arrived. Returns how many were moved.
#[tracing::instrument(skip(conn))]
pub async fn unpark(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let parked = sqlx::query(
        "DELETE FROM parked_notifications WHERE order_id = $1
         RETURNING seq, kind, fact_key, title, body",
    )
    .bind(order_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut parked: Vec<(i64, Notice)> = parked
        .iter()
        .map(|row| {
            let kind: String = row.get("kind");
            Ok((
                row.get("seq"),
                Notice {
                    order_id,
                    kind: kind_from_row(&kind)?,
                    fact_key: row.get("fact_key"),
                    title: row.get("title"),
                    body: row.get("body"),
                },
            ))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    parked.sort_by_key(|(seq, _)| *seq);
    let mut moved = 0;
    for (_, notice) in &parked {
        if insert(conn, user_id, notice).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Marks the order's notifications that have no email yet as emailed to
/// `email`, and returns their ids, for the caller to queue their jobs.
#[tracing::instrument(skip(conn, email))]
pub async fn claim_unsent_emails(
    conn: &mut PgConnection,
    order_id: Uuid,
    email: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE notifications SET email_to = $2
         WHERE order_id = $1 AND email_to IS NULL
         RETURNING id",
    )
    .bind(order_id)
    .bind(email)
    .fetch_all(conn)
    .await
}

/// What the email job of notification `id` sends.
#[tracing::instrument(skip(conn))]
pub async fn queued_email(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<QueuedEmail>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT email_to, title, body FROM notifications WHERE id = $1 AND email_to IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| QueuedEmail {
        to: row.get("email_to"),
        title: row.get("title"),
        body: row.get("body"),
    }))
}

#[tracing::instrument(skip(conn))]
pub async fn mark_emailed(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE notifications SET emailed_at = now() WHERE id = $1 AND emailed_at IS NULL")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Up to `limit` of `user_id`'s notifications before `before_seq`, newest
/// first, each with its `seq` (the key the inbox pages by).
#[tracing::instrument(skip(conn))]
pub async fn inbox_page(
    conn: &mut PgConnection,
    user_id: Uuid,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, Notification)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT seq, id, user_id, order_id, kind, title, body, created_at, read_at
         FROM notifications
         WHERE user_id = $1 AND ($2::BIGINT IS NULL OR seq < $2)
         ORDER BY seq DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.get("seq"), notification_from_row(row)?)))
        .collect()
}

/// Marks `user_id`'s notification `id` read, keeping the first `read_at`;
/// `None` when the user has no such notification.
#[tracing::instrument(skip(conn))]
pub async fn mark_read(
    conn: &mut PgConnection,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Notification>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE notifications SET read_at = COALESCE(read_at, now())
         WHERE id = $1 AND user_id = $2
         RETURNING id, user_id, order_id, kind, title, body, created_at, read_at",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(notification_from_row).transpose()
}

fn notification_from_row(row: &PgRow) -> Result<Notification, sqlx::Error> {
    let kind: String = row.get("kind");
    Ok(Notification {
        id: row.get("id"),
        user_id: row.get("user_id"),
        order_id: row.get("order_id"),
        kind: kind_from_row(&kind)?,
        title: row.get("title"),
        body: row.get("body"),
        created_at: row.get("created_at"),
        read_at: row.get("read_at"),
    })
}

fn kind_from_row(kind: &str) -> Result<Kind, sqlx::Error> {
    Kind::parse(kind)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown notification kind {kind:?}").into()))
}

/// How many facts are parked, and when the oldest of them was.
#[tracing::instrument(skip(conn))]
pub async fn parked_summary(
    conn: &mut PgConnection,
) -> Result<(i64, Option<OffsetDateTime>), sqlx::Error> {
    let row = sqlx::query(
        "SELECT count(*) AS parked, min(parked_at) AS oldest FROM parked_notifications",
    )
    .fetch_one(conn)
    .await?;
    Ok((row.get("parked"), row.get("oldest")))
}
