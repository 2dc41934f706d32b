//! The cart's queries. Each takes the caller's connection (usually a
//! transaction), so a change and the cart's `updated_at` commit together.

use std::collections::BTreeMap;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::domain::{Cart, CartItem, CheckoutOutcome, Quantity};

/// The user's cart; empty for a user who never added anything.
#[tracing::instrument(skip(conn))]
pub async fn cart(conn: &mut PgConnection, user_id: Uuid) -> Result<Cart, sqlx::Error> {
    let Some(updated_at) = sqlx::query_scalar("SELECT updated_at FROM carts WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(Cart::empty(user_id));
    };
    let rows = sqlx::query(
        "SELECT offering_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY position",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let quantity: i32 = row.get("quantity");
            Ok(CartItem {
                offering_id: row.get("offering_id"),
                // The table's CHECK holds every stored quantity to the rule.
                quantity: Quantity::new(i64::from(quantity))
                    .map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Cart {
        user_id,
        items,
        updated_at: Some(updated_at),
    })
}

/// Sets how many units of `offering_id` the cart holds; a new item goes
/// last, an existing one keeps its place.
#[tracing::instrument(skip(conn))]
pub async fn set_item(
    conn: &mut PgConnection,
    user_id: Uuid,
    offering_id: Uuid,
    quantity: Quantity,
) -> Result<(), sqlx::Error> {
    touch(conn, user_id).await?;
    sqlx::query(
        "INSERT INTO cart_items (user_id, offering_id, quantity) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, offering_id) DO UPDATE SET quantity = EXCLUDED.quantity",
    )
    .bind(user_id)
    .bind(offering_id)
    .bind(i32::try_from(quantity.get()).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes `offering_id` out of the cart, if it is there.
#[tracing::instrument(skip(conn))]
pub async fn remove_item(
    conn: &mut PgConnection,
    user_id: Uuid,
    offering_id: Uuid,
) -> Result<(), sqlx::Error> {
    let removed = sqlx::query("DELETE FROM cart_items WHERE user_id = $1 AND offering_id = $2")
        .bind(user_id)
        .bind(offering_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if removed > 0 {
        touch(conn, user_id).await?;
    }
    Ok(())
}

/// Empties the cart.
#[tracing::instrument(skip(conn))]
pub async fn clear(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    let removed = sqlx::query("DELETE FROM cart_items WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if removed > 0 {
        touch(conn, user_id).await?;
    }
    Ok(())
}

/// Lowers each of the user's lines by what `order_id` bought of it,
/// removing lines that reach 0; what was added after the checkout stays.
/// Once per order, however often the order is announced.
#[tracing::instrument(skip(conn, bought))]
pub async fn apply_checkout(
    conn: &mut PgConnection,
    order_id: Uuid,
    user_id: Uuid,
    bought: &[(Uuid, u32)],
) -> Result<CheckoutOutcome, sqlx::Error> {
    let first_time = sqlx::query(
        "INSERT INTO checked_out_orders (order_id, user_id) VALUES ($1, $2)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(user_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if !first_time {
        return Ok(CheckoutOutcome::AlreadyApplied);
    }
    let mut per_offering: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (offering_id, quantity) in bought {
        *per_offering.entry(*offering_id).or_default() += i64::from(*quantity);
    }
    for (offering_id, quantity) in per_offering {
        // Lines that would reach 0 or less go; the rest are lowered. Two
        // statements, because the quantity's CHECK refuses a 0 in between.
        sqlx::query(
            "DELETE FROM cart_items WHERE user_id = $1 AND offering_id = $2 AND quantity <= $3",
        )
        .bind(user_id)
        .bind(offering_id)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "UPDATE cart_items SET quantity = quantity - $3
             WHERE user_id = $1 AND offering_id = $2 AND quantity > $3",
        )
        .bind(user_id)
        .bind(offering_id)
        .bind(quantity)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE carts SET updated_at = now() WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(CheckoutOutcome::Lowered)
}

/// Creates the user's cart row if needed and marks it changed now.
async fn touch(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO carts (user_id) VALUES ($1)
         ON CONFLICT (user_id) DO UPDATE SET updated_at = now()",
    )
    .bind(user_id)
    .execute(conn)
    .await?;
    Ok(())
}
