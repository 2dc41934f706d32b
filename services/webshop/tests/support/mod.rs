//! A webshop started on port 0 against a fresh database, with its demo
//! sign-in on. The services behind it are not started: every peer URL
//! points at a port nobody listens on, so these tests see the webshop's
//! own behaviour and how it meets a peer that is down. The whole fleet's
//! pages are tested in `tests/webshop` at the workspace root.

#![allow(dead_code)]

use reqwest::Url;
use test_harness::{fresh_database, Browser, Page, TestDatabase, TestService};
use webshop::{PeerUrls, Settings};

pub struct Shop {
    pub service: TestService,
    pub db: TestDatabase,
}

/// A port that was free a moment ago and has no listener now.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

pub fn settings(public_base_url: &str) -> Settings {
    let nobody = Url::parse(&format!("http://127.0.0.1:{}", closed_port())).expect("a URL");
    let peers = fleet::ALL
        .iter()
        .filter(|service| service.name != fleet::WEBSHOP.name)
        .map(|service| (*service, nobody.clone()))
        .collect();
    let mut settings = Settings::new(PeerUrls(peers), Url::parse(public_base_url).expect("a URL"));
    settings.demo_sign_in = true;
    settings
}

impl Shop {
    pub async fn start() -> Shop {
        Shop::start_with(settings("http://127.0.0.1:8080")).await
    }

    pub async fn start_with(settings: Settings) -> Shop {
        let db = fresh_database(&[fleet::WEBSHOP.schema]).await;
        let service = TestService::start_with(
            &webshop::SPEC,
            webshop::build,
            &db,
            test_harness::broker().bootstrap_servers(),
            settings,
        )
        .await;
        Shop { service, db }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(self.service.base_url.clone())
    }

    /// Signs `browser` in as the demo civilian; the answer to the sign-in.
    pub async fn sign_in_as_civilian(&self, browser: &Browser) -> Page {
        let page = browser.get("/sign-in").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let civilian = demo_shop::DEMO_USERS[0].id.to_string();
        browser
            .post_form(
                "/sign-in/demo",
                &[
                    ("form_token", &page.field("form_token")),
                    ("next", "/orders"),
                    ("user", &civilian),
                ],
            )
            .await
    }

    /// How many sessions the webshop keeps.
    pub async fn sessions(&self) -> i64 {
        let pool = sqlx::PgPool::connect(self.db.url(fleet::WEBSHOP.schema))
            .await
            .expect("connect");
        let count = sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&pool)
            .await
            .expect("count sessions");
        pool.close().await;
        count
    }
}
