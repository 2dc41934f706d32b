//! The cart's queries. Each change is one statement: the cart's
//! `updated_at` changes together with its items without a transaction
//! around them, and a change made by an event handler commits with the
//! handler's inbox record.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Cart, CartItem, CheckoutOutcome, Quantity};

/// The user's cart; empty for a user who never added anything.
///
/// The header and the items are one statement, so they are read from one
/// snapshot: the items are always those of the `updated_at` answered.
#[tracing::instrument(skip(conn))]
pub async fn cart(conn: &mut PgConnection, user_id: Uuid) -> Result<Cart, sqlx::Error> {
    let rows: Vec<CartRow> = sqlx::query_as(
        "SELECT carts.updated_at, cart_items.offering_id, cart_items.quantity
         FROM carts LEFT JOIN cart_items ON cart_items.user_id = carts.user_id
         WHERE carts.user_id = $1
         ORDER BY cart_items.position",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    let Some(updated_at) = rows.first().map(|row| row.updated_at) else {
        return Ok(Cart::empty(user_id));
    };
    let items = rows
        .into_iter()
        .filter_map(CartRow::item)
        .collect::<Result<_, _>>()?;
    Ok(Cart {
        user_id,
        items,
        updated_at: Some(updated_at),
    })
}

/// One row of a cart read: the cart's header, and one item unless the
/// cart is empty.
#[derive(sqlx::FromRow)]
struct CartRow {
    updated_at: OffsetDateTime,
    offering_id: Option<Uuid>,
    quantity: Option<i32>,
}

impl CartRow {
    fn item(self) -> Option<Result<CartItem, sqlx::Error>> {
        let (offering_id, quantity) = self.offering_id.zip(self.quantity)?;
        // The table's CHECK holds every stored quantity to the rule.
        Some(
            Quantity::new(i64::from(quantity))
                .map(|quantity| CartItem {
                    offering_id,
                    quantity,
                })
                .map_err(|error| sqlx::Error::Decode(Box::new(error))),
        )
    }
}

/// Sets how many units of `offering_id` the cart holds; a new item goes
/// last, an existing one keeps its place.
///
/// The cart row is created or marked changed first and the item written
/// from what that returns, so the cart's row is locked before the item's,
/// and the item's foreign key finds its cart within the same statement.
#[tracing::instrument(skip(conn))]
pub async fn set_item(
    conn: &mut PgConnection,
    user_id: Uuid,
    offering_id: Uuid,
    quantity: Quantity,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH cart AS (
             INSERT INTO carts (user_id) VALUES ($1)
             ON CONFLICT (user_id) DO UPDATE SET updated_at = now()
             RETURNING user_id)
         INSERT INTO cart_items (user_id, offering_id, quantity)
         SELECT cart.user_id, $2, $3 FROM cart
         ON CONFLICT (user_id, offering_id) DO UPDATE SET quantity = EXCLUDED.quantity",
    )
    .bind(user_id)
    .bind(offering_id)
    .bind(i32::try_from(quantity.get()).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes `offering_id` out of the cart, if it is there; the cart is marked
/// changed only when it was.
#[tracing::instrument(skip(conn))]
pub async fn remove_item(
    conn: &mut PgConnection,
    user_id: Uuid,
    offering_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH removed AS (
             DELETE FROM cart_items WHERE user_id = $1 AND offering_id = $2 RETURNING user_id)
         UPDATE carts SET updated_at = now()
         WHERE user_id = $1 AND EXISTS (SELECT 1 FROM removed)",
    )
    .bind(user_id)
    .bind(offering_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Empties the cart; the cart is marked changed only when it held items.
#[tracing::instrument(skip(conn))]
pub async fn clear(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH removed AS (DELETE FROM cart_items WHERE user_id = $1 RETURNING user_id)
         UPDATE carts SET updated_at = now()
         WHERE user_id = $1 AND EXISTS (SELECT 1 FROM removed)",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Lowers each of the user's lines by what `order_id` bought of it,
/// removing lines that reach 0; what was added after the checkout stays.
/// Once per order, however often the order is announced.
///
/// One statement: the order is recorded as applied, and only if that is
/// new are the lines lowered and the cart marked changed. Lines that would
/// reach 0 or less are deleted and the rest lowered by two sub-statements
/// over disjoint rows, since the quantity's CHECK refuses a 0 in between.
/// Both choose their rows from one snapshot and re-check a row changed
/// meanwhile by another device: a line then keeps the quantity that device
/// set or is lowered from it, as if the two had run one after the other.
#[tracing::instrument(skip(conn, bought))]
pub async fn apply_checkout(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: Uuid,
    bought: &[(Uuid, u32)],
) -> Result<CheckoutOutcome, sqlx::Error> {
    let mut per_offering: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (offering_id, quantity) in bought {
        *per_offering.entry(*offering_id).or_default() += i64::from(*quantity);
    }
    let (offering_ids, quantities): (Vec<Uuid>, Vec<i64>) = per_offering.into_iter().unzip();
    let first_time: bool = sqlx::query_scalar(
        "WITH first_time AS (
             INSERT INTO checked_out_orders (order_id, user_id) VALUES ($1, $2)
             ON CONFLICT (order_id) DO NOTHING
             RETURNING order_id),
         bought AS (
             SELECT * FROM unnest($3::uuid[], $4::bigint[]) AS bought (offering_id, quantity)
             WHERE EXISTS (SELECT 1 FROM first_time)),
         emptied AS (
             DELETE FROM cart_items USING bought
             WHERE cart_items.user_id = $2 AND cart_items.offering_id = bought.offering_id
               AND cart_items.quantity <= bought.quantity),
         lowered AS (
             UPDATE cart_items SET quantity = cart_items.quantity - bought.quantity
             FROM bought
             WHERE cart_items.user_id = $2 AND cart_items.offering_id = bought.offering_id
               AND cart_items.quantity > bought.quantity),
         touched AS (
             UPDATE carts SET updated_at = now()
             WHERE user_id = $2 AND EXISTS (SELECT 1 FROM first_time))
         SELECT EXISTS (SELECT 1 FROM first_time)",
    )
    .bind(order_id)
    .bind(user_id)
    .bind(offering_ids)
    .bind(quantities)
    .fetch_one(conn)
    .await?;
    Ok(if first_time {
        CheckoutOutcome::Lowered
    } else {
        CheckoutOutcome::AlreadyApplied
    })
}
