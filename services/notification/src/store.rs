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

/// What [`take_order`] found of the order, and what became of the event's
/// notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOrder {
    /// Whom the order belongs to, as far as notification has learnt.
    pub known: Option<KnownCustomer>,
    /// Whether this transaction taught the order's row something its earlier
    /// events had not: the customer, or a new address. Only then may there
    /// be parked facts to move, or notifications without an address to
    /// email.
    pub learnt: bool,
    /// The notification the notice became; `None` when there was no notice,
    /// it was parked, or its fact was told before.
    pub notified: Option<Uuid>,
}

/// Takes the order's row until the transaction ends, making it on the first
/// event about the order, records whom the order belongs to when the event
/// names them (`customer`), and files `notice`: into the customer's inbox
/// when they are known (to be emailed to their address, if known), else
/// among the parked facts. One statement, so an event that tells something
/// costs the database one round trip for it.
///
/// The row is the order's lock. The order's, payment and dispatch topics
/// are consumed concurrently; without it a fact could be parked by one
/// transaction just as another, not seeing it yet, learns the customer and
/// moves the parked facts, leaving it parked for good. The update always
/// writes, so that what it returns is the row as the last transaction to
/// hold it left it, not as this statement's snapshot saw it; the notice is
/// filed from what it returns. A known address is kept when an event
/// carries none; the customer of an order never changes, so a different
/// one is ignored (and logged by the caller).
///
/// A row this statement makes has learnt nothing (`learnt_in` stays NULL),
/// even when the event names the customer: facts are parked and told only
/// by this statement, after it has taken the row, so the statement that
/// makes it is the order's first, with nothing parked and no notification
/// to email. (One that meets a row another transaction is making waits for
/// that transaction and, if it commits, updates the row.) Rows are never
/// deleted, which keeps that true.
#[tracing::instrument(skip_all, fields(%order_id))]
pub async fn take_order(
    conn: &mut PgConnection,
    order_id: Uuid,
    customer: Option<&Customer>,
    notice: Option<&Notice>,
) -> Result<TakenOrder, sqlx::Error> {
    let row = sqlx::query(
        "WITH taken AS (
             INSERT INTO order_customers AS known (order_id, customer_id, email)
             VALUES ($1, $2, $3)
             ON CONFLICT (order_id) DO UPDATE SET
                 customer_id = coalesce(known.customer_id, EXCLUDED.customer_id),
                 email = coalesce(EXCLUDED.email, known.email),
                 learnt_in = CASE
                     WHEN (known.customer_id IS NULL AND EXCLUDED.customer_id IS NOT NULL)
                       OR known.email IS DISTINCT FROM coalesce(EXCLUDED.email, known.email)
                     THEN pg_current_xact_id() ELSE known.learnt_in END
             RETURNING customer_id, email,
                       coalesce(learnt_in = pg_current_xact_id(), false) AS learnt
         ), told AS (
             INSERT INTO notifications
                 (id, user_id, order_id, kind, fact_key, title, body, email_to)
             SELECT $4, customer_id, $1, $5, $6, $7, $8, email FROM taken
             WHERE $5::text IS NOT NULL AND customer_id IS NOT NULL
             ON CONFLICT ON CONSTRAINT notifications_once_per_fact DO NOTHING
             RETURNING id
         ), parked AS (
             INSERT INTO parked_notifications (order_id, kind, fact_key, title, body)
             SELECT $1, $5, $6, $7, $8 FROM taken
             WHERE $5::text IS NOT NULL AND customer_id IS NULL
             ON CONFLICT ON CONSTRAINT parked_notifications_once_per_fact DO NOTHING
         )
         SELECT customer_id, email, learnt, (SELECT id FROM told) AS notified FROM taken",
    )
    .bind(order_id)
    .bind(customer.map(|customer| customer.customer_id))
    .bind(customer.and_then(|customer| customer.email.as_deref()))
    .bind(Uuid::now_v7())
    .bind(notice.map(|notice| notice.kind.as_str()))
    .bind(notice.map(|notice| notice.fact_key.as_str()))
    .bind(notice.map(|notice| notice.title.as_str()))
    .bind(notice.map(|notice| notice.body.as_str()))
    .fetch_one(conn)
    .await?;
    let known = row
        .get::<Option<Uuid>, _>("customer_id")
        .map(|customer_id| KnownCustomer {
            customer_id,
            email: row.get("email"),
        });
    Ok(TakenOrder {
        known,
        learnt: row.get("learnt"),
        notified: row.get("notified"),
    })
}

/// Puts `notice` in `user_id`'s inbox, without an address to email it to,
/// unless its fact was told before. Returns the new notification's id, or
/// `None` when the fact was told before.
#[tracing::instrument(skip_all, fields(order_id = %notice.order_id, kind = notice.kind.as_str()))]
async fn insert_unemailed(
    conn: &mut PgConnection,
    user_id: Uuid,
    notice: &Notice,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO notifications (id, user_id, order_id, kind, fact_key, title, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT ON CONSTRAINT notifications_once_per_fact DO NOTHING
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(user_id)
    .bind(notice.order_id)
    .bind(notice.kind.as_str())
    .bind(&notice.fact_key)
    .bind(&notice.title)
    .bind(&notice.body)
    .fetch_optional(conn)
    .await
}

/// Moves the order's parked facts into `user_id`'s inbox, in the order they
/// arrived, for [`claim_unsent_emails`] to give them an address. Returns how
/// many were moved.
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
        if insert_unemailed(conn, user_id, notice).await?.is_some() {
            moved += 1;
        }
    }
    Ok(moved)
}

/// Marks the order's notifications that have no email yet as emailed to
/// `email`, and returns each one's id and what its email says, for the
/// caller to queue their jobs.
#[tracing::instrument(skip(conn, email))]
pub async fn claim_unsent_emails(
    conn: &mut PgConnection,
    order_id: Uuid,
    email: &str,
) -> Result<Vec<(Uuid, QueuedEmail)>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE notifications SET email_to = $2
         WHERE order_id = $1 AND email_to IS NULL
         RETURNING id, email_to, title, body",
    )
    .bind(order_id)
    .bind(email)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("id"), queued_email_from_row(row)))
        .collect())
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
    Ok(row.as_ref().map(queued_email_from_row))
}

fn queued_email_from_row(row: &PgRow) -> QueuedEmail {
    QueuedEmail {
        to: row.get("email_to"),
        title: row.get("title"),
        body: row.get("body"),
    }
}

/// Records that notification `id` was emailed, and ends the email job in
/// the same statement (the job learns whether this attempt still owned it:
/// [`job_queue::Job::done_arguments`]).
#[tracing::instrument(skip(conn, job), fields(job_id = job.id))]
pub async fn mark_emailed(
    conn: &mut PgConnection,
    id: Uuid,
    job: &job_queue::Job,
) -> Result<(), sqlx::Error> {
    let (job_id, attempt) = job.done_arguments();
    let ended = sqlx::query_scalar(
        "WITH emailed AS (
             UPDATE notifications SET emailed_at = now() WHERE id = $1 AND emailed_at IS NULL
         )
         SELECT job_queue_done($2, $3)",
    )
    .bind(id)
    .bind(job_id)
    .bind(attempt)
    .fetch_one(conn)
    .await?;
    job.ended_by_handler(ended);
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
