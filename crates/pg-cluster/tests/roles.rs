//! A private cluster with provisioned service roles, seen from the roles' side.

use pg_cluster::{provision, ClusterOptions, PgCluster};
use sqlx::{Connection, Executor, PgConnection};

const PERMISSION_DENIED: &str = "42501";

fn error_code(error: sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()).unwrap_or_default(),
        other => panic!("expected a database error, got {other}"),
    }
}

#[tokio::test]
async fn a_service_role_touches_only_its_own_schema() {
    let dir = pg_cluster::server_temp_dir("heyblue-pg-").expect("temp dir");
    let cluster = PgCluster::start_with(dir.path(), ClusterOptions::tests()).expect("cluster");

    provision(&cluster.admin_url(), "heyblue", &["cart", "orders"])
        .await
        .expect("first provisioning");
    // Running it again changes nothing and fails on nothing.
    let db = provision(&cluster.admin_url(), "heyblue", &["cart", "orders"])
        .await
        .expect("second provisioning");

    let mut cart = PgConnection::connect(&db.url("cart"))
        .await
        .expect("cart connects");
    cart.execute("CREATE TABLE carts (user_id bigint PRIMARY KEY)")
        .await
        .expect("cart creates in its own schema");
    cart.execute("INSERT INTO carts VALUES (1)")
        .await
        .expect("insert");
    let schema: String = sqlx::query_scalar(
        "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'carts'",
    )
    .fetch_one(&mut cart)
    .await
    .expect("table lookup");
    assert_eq!(schema, "cart");

    let mut orders = PgConnection::connect(&db.url("orders"))
        .await
        .expect("orders connects");
    let read = orders
        .execute("SELECT * FROM cart.carts")
        .await
        .expect_err("orders must not read cart's table");
    assert_eq!(error_code(read), PERMISSION_DENIED);
    let create = orders
        .execute("CREATE TABLE public.sneaky (id int)")
        .await
        .expect_err("orders must not create in public");
    assert_eq!(error_code(create), PERMISSION_DENIED);
    orders
        .execute("CREATE TABLE orders (id bigint PRIMARY KEY)")
        .await
        .expect("orders creates in its own schema");

    cart.close().await.ok();
    orders.close().await.ok();
    cluster.stop().expect("stop");
}

#[tokio::test]
async fn a_restarted_cluster_keeps_its_data() {
    let dir = pg_cluster::server_temp_dir("heyblue-pg-").expect("temp dir");
    let first = PgCluster::start_with(dir.path(), ClusterOptions::tests()).expect("first start");
    let db = provision(&first.admin_url(), "heyblue", &["points"])
        .await
        .expect("provision");
    let mut points = PgConnection::connect(&db.url("points"))
        .await
        .expect("connect");
    points
        .execute("CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (7)")
        .await
        .expect("write");
    points.close().await.ok();
    first.stop().expect("stop");

    let second = PgCluster::start(dir.path()).expect("second start reuses the data directory");
    let db = provision(&second.admin_url(), "heyblue", &["points"])
        .await
        .expect("provision again");
    let mut points = PgConnection::connect(&db.url("points"))
        .await
        .expect("reconnect");
    let id: i32 = sqlx::query_scalar("SELECT id FROM ledger")
        .fetch_one(&mut points)
        .await
        .expect("read back");
    assert_eq!(id, 7);
    points.close().await.ok();
}
