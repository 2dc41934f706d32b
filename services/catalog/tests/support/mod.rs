//! What catalog's test files share: the service running on port 0 against a
//! fresh database and a broker of the test's own.

#![allow(dead_code)] // each test file uses a different part of it

use catalog::CatalogSettings;
use messaging::embedded::EmbeddedBroker;
use sqlx::PgPool;
use test_harness::{Api, TestService};
use uuid::Uuid;

pub struct Fixture {
    pub service: TestService,
    pub broker: EmbeddedBroker,
    /// The catalog schema's own role, for tests that look past the API.
    pub pool: PgPool,
    pub api: Api,
    /// An admin's id, for calls that need one.
    pub admin: Uuid,
}

pub async fn start() -> Fixture {
    let db = test_harness::fresh_database(&["catalog"]).await;
    let broker = test_harness::own_broker();
    let service = TestService::start_with(
        &catalog::SPEC,
        catalog::build,
        &db,
        broker.bootstrap_servers(),
        CatalogSettings::default(),
    )
    .await;
    let pool = PgPool::connect(db.url("catalog"))
        .await
        .expect("connect to the catalog schema");
    Fixture {
        api: service.api(),
        service,
        broker,
        pool,
        admin: Uuid::new_v4(),
    }
}
