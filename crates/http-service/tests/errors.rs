//! A service error table: each variant answers with its row's status and
//! code, the shared edge's problems pass through, and a 5xx reveals nothing.

#![allow(clippy::unwrap_used)] // a test whose set-up fails should fail on the spot

use axum::response::IntoResponse;
use http_service::{ErrorTable, Problem};
use reqwest::StatusCode;
use serde_json::Value;

http_service::error_table! {
    /// What the test service answers besides success.
    pub enum ShopError {
        #[error("quantity must be from 1 to 99, not {0}")]
        InvalidQuantity(u32) => (UNPROCESSABLE_ENTITY, "invalid_quantity"),
        #[error("offering {offering} is not for sale")]
        OfferingUnavailable { offering: u32 } => (CONFLICT, "offering_unavailable"),
    }
}

async fn answer(error: ShopError) -> (StatusCode, Value) {
    let response = error.into_response();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn each_variant_answers_with_its_row_and_its_message() {
    let (status, body) = answer(ShopError::InvalidQuantity(120)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_quantity");
    assert_eq!(body["detail"], "quantity must be from 1 to 99, not 120");

    let (status, body) = answer(ShopError::OfferingUnavailable { offering: 7 }).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "offering_unavailable");
}

#[tokio::test]
async fn an_internal_error_answers_500_without_its_cause() {
    let cause = anyhow::anyhow!("password authentication failed for user shop")
        .context("failed to load the cart");
    let (status, body) = answer(ShopError::from(cause)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal_error");
    assert!(!body.to_string().contains("password"), "{body}");
}

#[tokio::test]
async fn a_problem_of_the_shared_edge_passes_through() {
    let (status, body) = answer(ShopError::from(Problem::forbidden("admins only"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
    assert_eq!(body["detail"], "admins only");
}

#[test]
fn the_table_lists_every_variant_once_for_the_document() {
    let codes: Vec<(u16, &str)> = ShopError::CODES
        .iter()
        .map(|row| (row.status.as_u16(), row.code))
        .collect();
    assert_eq!(
        codes,
        vec![
            (422, "invalid_quantity"),
            (409, "offering_unavailable"),
            (500, "internal_error"),
            (503, "database_busy")
        ]
    );
}

#[tokio::test]
async fn a_statement_the_database_gave_up_on_answers_503_database_busy_to_try_again() {
    let db = test_harness::fresh_database(&["cart"]).await;
    let pool = sqlx::PgPool::connect(db.url("cart")).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = 50")
        .execute(&mut *conn)
        .await
        .unwrap();
    let cancelled = sqlx::query("SELECT pg_sleep(5)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    let error = ShopError::from(anyhow::Error::new(cancelled).context("failed to load the cart"));

    let response = error.into_response();
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, body) = {
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice::<Value>(&body).unwrap())
    };
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "database_busy");
    assert!(!body.to_string().contains("pg_sleep"), "{body}");

    // Any other database failure stays a 500 that says nothing.
    let missing = sqlx::query("SELECT * FROM no_such_table")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    let (status, body) = answer(ShopError::from(anyhow::Error::new(missing))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal_error");
}

#[tokio::test]
async fn a_pool_without_a_free_connection_in_time_answers_503_database_busy() {
    let db = test_harness::fresh_database(&["cart"]).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_millis(50))
        .connect(db.url("cart"))
        .await
        .unwrap();
    let _held = pool.acquire().await.unwrap();
    let starved = pool.acquire().await.unwrap_err();
    let error = ShopError::from(anyhow::Error::new(starved).context("failed to load the cart"));

    let (status, body) = answer(error).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "database_busy");
}
