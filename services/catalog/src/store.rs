//! The catalog's queries. Each takes the caller's connection (usually a
//! transaction), so a change and the events it causes commit together:
//! creating or changing an offering enqueues its `offering_changed` here.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{
    Business, BusinessKey, NewBusiness, NewOffering, Offering, OfferingFilter, OfferingKey,
    OfferingPatch, Stock, StockHolding,
};
use crate::events::offering_changed;

/// What a store call could not do, beyond the database failing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("business {0} is not registered")]
    UnknownBusiness(Uuid),
    /// The key came from a list with another ordering (a search's key for a
    /// plain list, or the other way round).
    #[error("the page key does not belong to this list")]
    ForeignKey,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const OFFERING_COLUMNS: &str = "id, business_id, title, description, kind, price_minor, \
     currency, points_price, stock, active, created_at, updated_at";

fn offering_from_row(row: &PgRow) -> Result<Offering, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    Ok(Offering {
        id: row.try_get("id")?,
        business_id: row.try_get("business_id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        kind: kind
            .parse()
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
        price_minor: row.try_get("price_minor")?,
        currency: row.try_get("currency")?,
        points_price: row.try_get("points_price")?,
        stock: row.try_get("stock")?,
        active: row.try_get("active")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn business_from_row(row: &PgRow) -> Result<Business, sqlx::Error> {
    Ok(Business {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        contact_email: row.try_get("contact_email")?,
        created_at: row.try_get("created_at")?,
    })
}

#[tracing::instrument(skip_all, fields(name = business.name.as_str()))]
pub async fn create_business(
    conn: &mut PgConnection,
    business: &NewBusiness,
) -> Result<Business, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO businesses (id, name, contact_email) VALUES ($1, $2, $3)
         RETURNING id, name, contact_email, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(business.name.as_str())
    .bind(business.contact_email.as_str())
    .fetch_one(&mut *conn)
    .await?;
    business_from_row(&row)
}

#[tracing::instrument(skip(conn))]
pub async fn get_business(
    conn: &mut PgConnection,
    business_id: Uuid,
) -> Result<Option<Business>, sqlx::Error> {
    sqlx::query("SELECT id, name, contact_email, created_at FROM businesses WHERE id = $1")
        .bind(business_id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(business_from_row)
        .transpose()
}

/// Businesses newest first, each with its sort key (created_at, id): up to
/// `fetch_limit` of them after the key `after`.
#[tracing::instrument(skip(conn))]
pub async fn list_businesses(
    conn: &mut PgConnection,
    after: Option<&BusinessKey>,
    fetch_limit: i64,
) -> Result<Vec<(BusinessKey, Business)>, sqlx::Error> {
    sqlx::query(
        "SELECT id, name, contact_email, created_at FROM businesses
         WHERE $1::TIMESTAMPTZ IS NULL OR (created_at, id) < ($1, $2)
         ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(after.map(|(created_at, _)| *created_at))
    .bind(after.map(|(_, id)| *id))
    .bind(fetch_limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        let business = business_from_row(row)?;
        Ok(((business.created_at, business.id), business))
    })
    .collect()
}

/// Lists a new offering and announces it.
#[tracing::instrument(skip_all, fields(business_id = %offering.business_id))]
pub async fn create_offering(
    conn: &mut PgConnection,
    offering: &NewOffering,
) -> Result<Offering, StoreError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO offerings (id, business_id, title, description, kind, price_minor,
                                currency, points_price, stock, active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(offering.business_id)
    .bind(offering.title.as_str())
    .bind(offering.description.as_str())
    .bind(offering.kind.as_str())
    .bind(offering.price_minor.get())
    .bind(offering.currency.as_str())
    .bind(offering.points_price.get())
    .bind(offering.stock.units())
    .bind(offering.active)
    .fetch_one(&mut *conn)
    .await;
    let row = match inserted {
        Ok(row) => row,
        Err(sqlx::Error::Database(error))
            if error.constraint() == Some("offerings_business_known") =>
        {
            return Err(StoreError::UnknownBusiness(offering.business_id));
        }
        Err(error) => return Err(error.into()),
    };
    let created = offering_from_row(&row)?;
    messaging::outbox::enqueue(conn, &offering_changed(&created, created.id)).await?;
    Ok(created)
}

/// Applies `patch` and announces the result; `None` when there is no such
/// offering. An empty patch changes nothing and announces nothing.
#[tracing::instrument(skip(conn, patch))]
pub async fn patch_offering(
    conn: &mut PgConnection,
    offering_id: Uuid,
    patch: &OfferingPatch,
) -> Result<Option<Offering>, sqlx::Error> {
    if patch.is_empty() {
        return get_offering(conn, offering_id).await;
    }
    let row = sqlx::query(&format!(
        "UPDATE offerings SET
             title = COALESCE($2, title),
             description = COALESCE($3, description),
             price_minor = COALESCE($4, price_minor),
             points_price = COALESCE($5, points_price),
             stock = CASE WHEN $6 THEN $7 ELSE stock END,
             active = COALESCE($8, active),
             updated_at = now()
         WHERE id = $1
         RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(offering_id)
    .bind(patch.title.as_ref().map(|t| t.as_str()))
    .bind(patch.description.as_ref().map(|d| d.as_str()))
    .bind(patch.price_minor.map(|p| p.get()))
    .bind(patch.points_price.map(|p| p.get()))
    .bind(patch.stock.is_some())
    .bind(patch.stock.and_then(Stock::units))
    .bind(patch.active)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let patched = offering_from_row(&row)?;
    messaging::outbox::enqueue(conn, &offering_changed(&patched, patched.id)).await?;
    Ok(Some(patched))
}

#[tracing::instrument(skip(conn))]
pub async fn get_offering(
    conn: &mut PgConnection,
    offering_id: Uuid,
) -> Result<Option<Offering>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {OFFERING_COLUMNS} FROM offerings WHERE id = $1"
    ))
    .bind(offering_id)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(offering_from_row)
    .transpose()
}

/// Offerings matching `filter`, each with its sort key: up to `fetch_limit`
/// of them after the key `after`. A search is ranked by relevance (title
/// words weigh more than description words, and words said more often more
/// than words said once), ties newest first; a plain list is newest first.
#[tracing::instrument(skip(conn))]
pub async fn list_offerings(
    conn: &mut PgConnection,
    filter: &OfferingFilter,
    after: Option<&OfferingKey>,
    fetch_limit: i64,
) -> Result<Vec<(OfferingKey, Offering)>, StoreError> {
    if after.is_some_and(|key| !filter.continues_with(key)) {
        return Err(StoreError::ForeignKey);
    }
    let (rank, created_at, id) = match after.copied() {
        None => (None, None, None),
        Some(OfferingKey::Newest { created_at, id }) => (None, Some(created_at), Some(id)),
        Some(OfferingKey::Ranked {
            rank,
            created_at,
            id,
        }) => (Some(rank), Some(created_at), Some(id)),
    };
    let Some(q) = &filter.q else {
        let rows = sqlx::query(&format!(
            "SELECT {OFFERING_COLUMNS} FROM offerings
             WHERE ($1::UUID IS NULL OR business_id = $1)
               AND ($2 OR active)
               AND ($3::TIMESTAMPTZ IS NULL OR (created_at, id) < ($3, $4))
             ORDER BY created_at DESC, id DESC LIMIT $5"
        ))
        .bind(filter.business_id)
        .bind(filter.include_inactive)
        .bind(created_at)
        .bind(id)
        .bind(fetch_limit)
        .fetch_all(conn)
        .await?;
        return rows
            .iter()
            .map(|row| {
                let offering = offering_from_row(row)?;
                let key = OfferingKey::Newest {
                    created_at: offering.created_at,
                    id: offering.id,
                };
                Ok((key, offering))
            })
            .collect();
    };
    let rows = sqlx::query(&format!(
        "SELECT * FROM (
             SELECT {OFFERING_COLUMNS}, ts_rank(search, query) AS rank
             FROM offerings, websearch_to_tsquery('english', $1) AS query
             WHERE search @@ query
               AND ($2::UUID IS NULL OR business_id = $2)
               AND ($3 OR active)
         ) AS ranked
         WHERE $4::REAL IS NULL OR (rank, created_at, id) < ($4, $5, $6)
         ORDER BY rank DESC, created_at DESC, id DESC LIMIT $7"
    ))
    .bind(q.as_str())
    .bind(filter.business_id)
    .bind(filter.include_inactive)
    .bind(rank)
    .bind(created_at)
    .bind(id)
    .bind(fetch_limit)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let offering = offering_from_row(row)?;
            let key = OfferingKey::Ranked {
                rank: row.try_get("rank")?,
                created_at: offering.created_at,
                id: offering.id,
            };
            Ok((key, offering))
        })
        .collect()
}

/// Claims `order_id` for this transaction and, only when it was never seen,
/// locks the offerings among `offering_ids` that exist, in id order (so
/// that concurrent reservations never wait on each other in a circle), and
/// returns their stock as it is now. `None` when an earlier delivery decided
/// the order; a concurrent claim of the same order waits here until the
/// first one commits.
///
/// One statement: the claim is a sub-statement whose outcome gates the
/// lock, so the order is claimed before any offering is locked, and an
/// order decided before locks nothing. The answer always has one row, with
/// the claim's outcome, and an offering in each row when any is locked.
#[tracing::instrument(skip(conn))]
pub async fn claim_order_and_lock_holdings(
    conn: &mut PgConnection,
    order_id: Uuid,
    customer_id: Uuid,
    offering_ids: &[Uuid],
) -> Result<Option<Vec<StockHolding>>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH claim AS (
             INSERT INTO stock_orders (order_id, customer_id) VALUES ($1, $2)
             ON CONFLICT (order_id) DO NOTHING RETURNING order_id),
         locked AS (
             SELECT id, active, stock FROM offerings
             WHERE id = ANY($3) AND EXISTS (SELECT 1 FROM claim)
             ORDER BY id FOR UPDATE)
         SELECT EXISTS (SELECT 1 FROM claim) AS claimed, locked.id, locked.active, locked.stock
         FROM (SELECT) AS claim_outcome LEFT JOIN locked ON true
         ORDER BY locked.id",
    )
    .bind(order_id)
    .bind(customer_id)
    .bind(offering_ids)
    .fetch_all(conn)
    .await?;
    let claimed = match rows.first() {
        Some(row) => row.try_get("claimed")?,
        None => false,
    };
    if !claimed {
        return Ok(None);
    }
    rows.iter()
        .filter_map(|row| holding_from_row(row).transpose())
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The locked offering in a row of [`claim_order_and_lock_holdings`], if
/// the row has one.
fn holding_from_row(row: &PgRow) -> Result<Option<StockHolding>, sqlx::Error> {
    let Some(offering_id) = row.try_get("id")? else {
        return Ok(None);
    };
    Ok(Some(StockHolding {
        offering_id,
        active: row.try_get("active")?,
        stock: Stock::new(row.try_get("stock")?)
            .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
    }))
}

/// How an order was decided, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedOrder {
    pub reserved: bool,
    /// The order's lines as requested: (offering, quantity, short).
    pub lines: Vec<(Uuid, i64, bool)>,
}

/// How `order_id` was decided; the order and its lines in one statement.
#[tracing::instrument(skip(conn))]
pub async fn recorded_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<RecordedOrder>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT stock_orders.outcome, line.offering_id, line.quantity, line.short
         FROM stock_orders LEFT JOIN stock_order_lines AS line USING (order_id)
         WHERE stock_orders.order_id = $1
         ORDER BY line.position",
    )
    .bind(order_id)
    .fetch_all(conn)
    .await?;
    let outcome: Option<String> = match rows.first() {
        Some(row) => row.try_get("outcome")?,
        None => None,
    };
    let Some(outcome) = outcome else {
        return Ok(None);
    };
    let mut lines = Vec::with_capacity(rows.len());
    for row in &rows {
        let Some(offering_id) = row.try_get("offering_id")? else {
            continue;
        };
        lines.push((offering_id, row.try_get("quantity")?, row.try_get("short")?));
    }
    Ok(Some(RecordedOrder {
        reserved: outcome == "reserved",
        lines,
    }))
}

/// Records how an order claimed in this transaction was decided, and for a
/// reserved order holds each of `takes` (offering, quantity) for it and
/// lowers those offerings' stock (unless unlimited). Returns the offerings
/// whose stock changed, in the order of `takes`.
///
/// One statement over arrays: the offerings were locked by the claim, so
/// nothing here waits, and the CHECK on `stock` is the last word: were the
/// rows not locked, this would fail rather than sell stock that is not
/// there. `takes` names each offering once.
#[tracing::instrument(skip(conn, order, takes))]
pub async fn record_decision(
    conn: &mut PgConnection,
    order_id: Uuid,
    order: &RecordedOrder,
    takes: &[(Uuid, i64)],
) -> Result<Vec<Offering>, sqlx::Error> {
    let (offerings, quantities, shorts): (Vec<Uuid>, Vec<i64>, Vec<bool>) =
        order.lines.iter().copied().fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |(mut o, mut q, mut s), (offering, quantity, short)| {
                o.push(offering);
                q.push(quantity);
                s.push(short);
                (o, q, s)
            },
        );
    let (taken_offerings, taken_quantities): (Vec<Uuid>, Vec<i64>) = takes.iter().copied().unzip();
    let rows = sqlx::query(&format!(
        "WITH decided AS (
             UPDATE stock_orders SET outcome = $2 WHERE order_id = $1),
         lines AS (
             INSERT INTO stock_order_lines (order_id, position, offering_id, quantity, short)
             SELECT $1, line.position, line.offering_id, line.quantity, line.short
             FROM UNNEST($3::UUID[], $4::BIGINT[], $5::BOOLEAN[])
                  WITH ORDINALITY AS line (offering_id, quantity, short, position)),
         held AS (
             INSERT INTO stock_reservations (order_id, offering_id, reserved)
             SELECT $1, taken.offering_id, taken.quantity
             FROM UNNEST($6::UUID[], $7::BIGINT[]) AS taken (offering_id, quantity))
         UPDATE offerings SET stock = stock - taken.quantity, updated_at = now()
         FROM UNNEST($6::UUID[], $7::BIGINT[]) AS taken (offering_id, quantity)
         WHERE offerings.id = taken.offering_id AND offerings.stock IS NOT NULL
         RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(order_id)
    .bind(if order.reserved {
        "reserved"
    } else {
        "rejected"
    })
    .bind(offerings)
    .bind(quantities)
    .bind(shorts)
    .bind(taken_offerings)
    .bind(taken_quantities)
    .fetch_all(conn)
    .await?;
    let mut changed = rows
        .iter()
        .map(offering_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    changed.sort_by_key(|offering| takes.iter().position(|(id, _)| *id == offering.id));
    Ok(changed)
}

/// What an order holds of one offering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldStock {
    pub offering_id: Uuid,
    pub reserved: i64,
    pub released: i64,
}

/// Locks what the order holds of `offering_ids` (those it holds at all).
#[tracing::instrument(skip(conn))]
pub async fn lock_held_stock(
    conn: &mut PgConnection,
    order_id: Uuid,
    offering_ids: &[Uuid],
) -> Result<Vec<HeldStock>, sqlx::Error> {
    sqlx::query(
        "SELECT offering_id, reserved, released FROM stock_reservations
         WHERE order_id = $1 AND offering_id = ANY($2)
         ORDER BY offering_id FOR UPDATE",
    )
    .bind(order_id)
    .bind(offering_ids)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        Ok(HeldStock {
            offering_id: row.try_get("offering_id")?,
            reserved: row.try_get("reserved")?,
            released: row.try_get("released")?,
        })
    })
    .collect()
}

/// Gives `quantity` of what the order holds back to the offering's stock
/// (unless unlimited). Returns the offering when its stock changed.
#[tracing::instrument(skip(conn))]
pub async fn give_back_stock(
    conn: &mut PgConnection,
    order_id: Uuid,
    offering_id: Uuid,
    quantity: i64,
) -> Result<Option<Offering>, sqlx::Error> {
    // The CHECK (released <= reserved) refuses a release beyond what is held.
    sqlx::query(
        "UPDATE stock_reservations SET released = released + $3, updated_at = now()
         WHERE order_id = $1 AND offering_id = $2",
    )
    .bind(order_id)
    .bind(offering_id)
    .bind(quantity)
    .execute(&mut *conn)
    .await?;
    sqlx::query(&format!(
        "UPDATE offerings SET stock = stock + $2, updated_at = now()
         WHERE id = $1 AND stock IS NOT NULL
         RETURNING {OFFERING_COLUMNS}"
    ))
    .bind(offering_id)
    .bind(quantity)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(offering_from_row)
    .transpose()
}
