//! Offerings in the store: ranked full-text search, filters, keyset pages,
//! changes announced with `offering_changed`, and the named constraints
//! that guard the rules even against a query that skips the domain types.

mod support;

use std::time::Duration;

use catalog::domain::{
    BusinessName, ContactEmail, Currency, Description, NewBusiness, NewOffering, Offering,
    OfferingFilter, OfferingKind, OfferingPatch, PointsPrice, PriceMinor, SearchText, Stock, Title,
};
use catalog::store::{self, StoreError};
use shared_events::catalog::CatalogEvent;
use test_harness::events::read_events;
use test_harness::eventually;
use uuid::Uuid;

use support::{start, Fixture};

impl Fixture {
    async fn business(&self, name: &str) -> Uuid {
        let mut conn = self.pool.acquire().await.expect("connection");
        store::create_business(
            &mut conn,
            &NewBusiness {
                name: BusinessName::new(name).expect("name"),
                contact_email: ContactEmail::new("owner@example.com").expect("email"),
            },
        )
        .await
        .expect("create business")
        .id
    }

    async fn offering(&self, business_id: Uuid, title: &str, description: &str) -> Offering {
        let mut tx = self.pool.begin().await.expect("begin");
        let offering =
            store::create_offering(&mut tx, &new_offering(business_id, title, description))
                .await
                .expect("create offering");
        tx.commit().await.expect("commit");
        offering
    }

    /// Every offering `filter` lists, reading `limit` at a time the way the
    /// HTTP edge pages: one more row than the page, the last key served as
    /// the next page's start.
    async fn search(&self, filter: &OfferingFilter, limit: usize) -> Vec<String> {
        let mut conn = self.pool.acquire().await.expect("connection");
        let mut titles = Vec::new();
        let mut after = None;
        loop {
            let mut rows =
                store::list_offerings(&mut conn, filter, after.as_ref(), limit as i64 + 1)
                    .await
                    .expect("list offerings");
            let more = rows.len() > limit;
            rows.truncate(limit);
            after = rows.last().map(|(key, _)| *key);
            titles.extend(rows.into_iter().map(|(_, o)| o.title));
            if !more {
                return titles;
            }
        }
    }
}

fn new_offering(business_id: Uuid, title: &str, description: &str) -> NewOffering {
    NewOffering {
        business_id,
        title: Title::new(title).expect("title"),
        description: Description::new(description).expect("description"),
        kind: OfferingKind::Product,
        price_minor: PriceMinor::new(2_000).expect("price"),
        currency: Currency::USD,
        points_price: PointsPrice::new(200).expect("points price"),
        stock: Stock::new(Some(3)).expect("stock"),
        active: true,
    }
}

fn search(q: &str) -> OfferingFilter {
    OfferingFilter {
        q: Some(SearchText::new(q).expect("search text")),
        ..OfferingFilter::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_word_in_descriptions_finds_offerings_ranked_by_how_much_they_are_about_it() {
    let fixture = start().await;
    let shop = fixture.business("Lantern Works").await;
    fixture
        .offering(shop, "Camping stove", "Pairs well with a lantern.")
        .await;
    fixture
        .offering(
            shop,
            "Night kit",
            "A lantern, a spare lantern glass and lantern oil.",
        )
        .await;
    fixture
        .offering(shop, "Wool scarf", "Warm, blue, hand knitted.")
        .await;
    fixture
        .offering(shop, "Storm lantern", "Weatherproof.")
        .await;

    // The title weighs most, then how often the description says it.
    assert_eq!(
        fixture.search(&search("lantern"), 50).await,
        ["Storm lantern", "Night kit", "Camping stove"]
    );
    // Stemming: the plural finds the same offerings.
    assert_eq!(fixture.search(&search("lanterns"), 50).await.len(), 3);
    // Page by page, in the same order, none twice.
    assert_eq!(
        fixture.search(&search("lantern"), 1).await,
        ["Storm lantern", "Night kit", "Camping stove"]
    );
    assert_eq!(
        fixture.search(&search("lantern -oil"), 50).await,
        ["Storm lantern", "Camping stove"]
    );
    assert!(fixture.search(&search("bicycle"), 50).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_newest_first_and_filter_by_business_and_activity() {
    let fixture = start().await;
    let bakery = fixture.business("Bakery").await;
    let florist = fixture.business("Florist").await;
    let bread = fixture.offering(bakery, "Bread", "Sourdough loaf.").await;
    fixture.offering(florist, "Tulips", "Ten stems.").await;
    fixture
        .offering(bakery, "Cake", "Sourdough-free cake.")
        .await;

    let mut conn = fixture.pool.acquire().await.expect("connection");
    let retired = store::patch_offering(
        &mut conn,
        bread.id,
        &OfferingPatch {
            active: Some(false),
            ..OfferingPatch::default()
        },
    )
    .await
    .expect("patch")
    .expect("bread exists");
    assert!(!retired.active);
    assert!(retired.updated_at >= bread.updated_at);

    let everyone = OfferingFilter::default();
    assert_eq!(fixture.search(&everyone, 50).await, ["Cake", "Tulips"]);
    assert_eq!(fixture.search(&everyone, 1).await, ["Cake", "Tulips"]);
    let bakery_all = OfferingFilter {
        business_id: Some(bakery),
        include_inactive: true,
        q: None,
    };
    assert_eq!(fixture.search(&bakery_all, 1).await, ["Cake", "Bread"]);
    let bakery_search = OfferingFilter {
        q: Some(SearchText::new("sourdough").expect("q")),
        ..bakery_all.clone()
    };
    assert_eq!(fixture.search(&bakery_search, 50).await.len(), 2);

    // A key from a plain list cannot continue a search.
    let rows = store::list_offerings(&mut conn, &everyone, None, 2)
        .await
        .expect("first page");
    let foreign = store::list_offerings(
        &mut conn,
        &bakery_search,
        rows.first().map(|(key, _)| key),
        2,
    )
    .await;
    assert!(
        matches!(foreign, Err(StoreError::ForeignKey)),
        "{foreign:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_and_patch_is_announced_as_get_shows_it() {
    let fixture = start().await;
    let shop = fixture.business("Corner Shop").await;
    let mug = fixture.offering(shop, "Mug", "Blue.").await;
    let mut conn = fixture.pool.acquire().await.expect("connection");
    let patched = store::patch_offering(
        &mut conn,
        mug.id,
        &OfferingPatch {
            title: Some(Title::new("Big mug").expect("title")),
            stock: Some(Stock::Unlimited),
            ..OfferingPatch::default()
        },
    )
    .await
    .expect("patch")
    .expect("mug exists");
    let nothing = store::patch_offering(&mut conn, mug.id, &OfferingPatch::default())
        .await
        .expect("empty patch");
    let shown = store::get_offering(&mut conn, mug.id)
        .await
        .expect("get")
        .expect("mug exists");

    assert_eq!(patched.title, "Big mug");
    assert_eq!(patched.stock, None);
    assert_eq!(patched.description, "Blue.");
    assert_eq!(
        nothing.as_ref(),
        Some(&shown),
        "an empty patch changes nothing"
    );
    let bootstrap = fixture.broker.bootstrap_servers();
    let changes = || async {
        read_events::<CatalogEvent>(bootstrap)
            .await
            .into_iter()
            .filter_map(|envelope| match envelope.event {
                CatalogEvent::OfferingChanged(changed) => Some(changed),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(30), "two offering_changed", || async {
        changes().await.len() >= 2
    })
    .await;
    let changes = changes().await;
    assert_eq!(changes.len(), 2, "the empty patch announces nothing");
    assert_eq!(changes[0].title, "Mug");
    assert_eq!(changes[0].stock, Some(3));
    assert_eq!(changes[1].title, shown.title);
    assert_eq!(changes[1].stock, shown.stock);
    assert_eq!(changes[1].updated_at, shown.updated_at);
    assert_eq!(changes[1].currency, "USD");

    assert!(
        store::patch_offering(&mut conn, Uuid::new_v4(), &OfferingPatch::default())
            .await
            .expect("patch unknown")
            .is_none()
    );
    let unknown_business = store::create_offering(
        &mut conn,
        &new_offering(Uuid::new_v4(), "Orphan", "No shop."),
    )
    .await;
    assert!(matches!(
        unknown_business,
        Err(StoreError::UnknownBusiness(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_refuse_what_the_rules_forbid() {
    let fixture = start().await;
    let shop = fixture.business("Corner Shop").await;
    let mug = fixture.offering(shop, "Mug", "Blue.").await;

    for (statement, constraint) in [
        (
            "UPDATE offerings SET stock = -1 WHERE id = $1",
            "offerings_stock_not_negative",
        ),
        (
            "UPDATE offerings SET price_minor = 0 WHERE id = $1",
            "offerings_price_minor_in_range",
        ),
        (
            "UPDATE offerings SET points_price = 100000001 WHERE id = $1",
            "offerings_points_price_in_range",
        ),
        (
            "UPDATE offerings SET kind = 'gift' WHERE id = $1",
            "offerings_kind_known",
        ),
        (
            "UPDATE offerings SET currency = 'usd' WHERE id = $1",
            "offerings_currency_iso4217",
        ),
    ] {
        let error = sqlx::query(statement)
            .bind(mug.id)
            .execute(&fixture.pool)
            .await
            .expect_err(statement);
        let violated = error
            .as_database_error()
            .and_then(|e| e.constraint())
            .map(str::to_owned);
        assert_eq!(violated.as_deref(), Some(constraint), "{statement}");
    }
}
