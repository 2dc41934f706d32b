//! Headless Chromium driven over WebDriver (fantoccini): one chromedriver
//! for the whole run, a browser session per person a test plays, each with
//! a fresh profile, and a screenshot of every page a session shows, kept
//! as the test's artifacts in `target/browser-artifacts/<test>/`.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// How long a page may take to show what a test waits for.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// A phone's screen, the width the pages are designed for first.
pub const PHONE: (u32, u32) = (412, 915);
/// A laptop's screen, for the pictures in the README.
pub const DESKTOP: (u32, u32) = (1280, 900);

/// Where the screenshots go: `target/browser-artifacts`.
pub fn artifacts_root() -> PathBuf {
    // `CARGO_TARGET_TMPDIR` is `target/tmp` for integration tests.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("browser-artifacts"))
        .expect("the target directory")
}

/// A chromedriver on a free port of 127.0.0.1, killed when dropped.
pub struct Chromedriver {
    url: String,
    _process: Child,
}

impl Chromedriver {
    /// Starts `chromedriver` (scripts/ensure-chromium installs it) and waits
    /// until it answers `/status` as ready.
    pub async fn start() -> Chromedriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let process = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver (scripts/ensure-chromium installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = reqwest::get(format!("{url}/status"))
                .await
                .ok()
                .filter(|response| response.status().is_success());
            if let Some(response) = ready {
                let status: Value = response.json().await.unwrap_or_default();
                if status["value"]["ready"] == json!(true) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Chromedriver {
            url,
            _process: process,
        }
    }

    /// A new browser, as one person uses it, whose screenshots go to
    /// `target/browser-artifacts/<test>/<who>-NN-<page>.png`.
    pub async fn browser(&self, test: &str, who: &str, base_url: &str, size: (u32, u32)) -> Tab {
        let profile = tempfile::Builder::new()
            .prefix("heyblue-chromium-")
            .tempdir()
            .expect("a profile directory");
        let binary = which("chromium").unwrap_or_else(|| "/usr/bin/chromium".into());
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={},{}", size.0, size.1),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object");
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session");
        let dir = artifacts_root().join(test);
        std::fs::create_dir_all(&dir).expect("the artifacts directory");
        Tab {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            dir,
            who: who.to_owned(),
            shots: AtomicUsize::new(0),
            _profile: profile,
        }
    }
}

fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
            .map(|path| path.display().to_string())
    })
}

/// One person's browser. Every page it is shown is photographed.
pub struct Tab {
    pub client: Client,
    base_url: String,
    dir: PathBuf,
    who: String,
    shots: AtomicUsize,
    _profile: TempDir,
}

impl Tab {
    /// Opens `path` (of the webshop, or a whole URL) and photographs it.
    pub async fn visit(&self, path: &str) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        self.screenshot().await;
    }

    /// Saves what the browser shows now, named after the page's path.
    pub async fn screenshot(&self) -> PathBuf {
        let url = self.client.current_url().await.expect("the current URL");
        let n = self.shots.fetch_add(1, Ordering::SeqCst) + 1;
        let path = self
            .dir
            .join(format!("{}-{n:02}-{}.png", self.who, page_name(url.path())));
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(&path, png).expect("the screenshot is saved");
        path
    }

    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => panic!("no {css:?} on {}: {error}", self.url().await),
        }
    }

    /// Whether anything on the page matches `css`, right now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
            .is_empty()
    }

    /// The text of the first element `css` finds, once there is one. Read
    /// in one script, so a live page replacing the element between finding
    /// and reading it cannot make it stale.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await;
        let text = self
            .client
            .execute(
                "const found = document.querySelector(arguments[0]); \
                 return found ? found.innerText : null",
                vec![json!(css)],
            )
            .await
            .expect("an element's text");
        text.as_str().unwrap_or_default().trim().to_owned()
    }

    /// Replaces what the field `css` holds with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("the field takes keys");
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("a field's value")
            .unwrap_or_default()
    }

    /// Clicks `css` (a link or a submit button), which leads to another
    /// page; that page is photographed once it has loaded.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.mark_page().await;
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("clicking {css:?}: {error}"));
        self.settle().await;
        self.screenshot().await;
    }

    /// Follows the link whose text is `text`.
    pub async fn click_link(&self, text: &str) {
        let link = self
            .client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|error| panic!("no link {text:?}: {error}"));
        self.mark_page().await;
        link.click().await.expect("the link follows");
        self.settle().await;
        self.screenshot().await;
    }

    /// Clicks the button whose text is `text`, within `scope` (CSS).
    pub async fn click_button(&self, scope: &str, text: &str) {
        let buttons = self
            .client
            .find_all(Locator::Css(&format!("{scope} button")))
            .await
            .expect("buttons");
        for button in buttons {
            if button.text().await.unwrap_or_default().trim() == text {
                self.mark_page().await;
                button.click().await.expect("the button clicks");
                self.settle().await;
                self.screenshot().await;
                return;
            }
        }
        panic!("no button {text:?} in {scope:?} on {}", self.url().await);
    }

    /// Leaves a mark in the page shown, which the next page will not have.
    async fn mark_page(&self) {
        self.client
            .execute("window.heyblueOldPage = true; return true", vec![])
            .await
            .expect("the page is marked");
    }

    /// Waits until a new document (one without the mark) has loaded: a
    /// click only starts its navigation.
    async fn settle(&self) {
        self.until("the next page loads", || async {
            self.client
                .execute(
                    "return !window.heyblueOldPage && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .is_ok_and(|loaded| loaded == json!(true))
        })
        .await;
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_default()
    }

    /// The path and query of the page shown.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// The page's visible text.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    /// Waits until `ready` says so, for at most [`PAGE_TIMEOUT`].
    pub async fn until<F, Fut>(&self, what: &str, ready: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        while !ready().await {
            assert!(
                Instant::now() < deadline,
                "{what}: not in time on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the browser session.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// `/orders/0195…/events` → `orders-id-events`; `/` → `storefront`.
fn page_name(path: &str) -> String {
    let name: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            if uuid::Uuid::parse_str(segment).is_ok() {
                "id".to_owned()
            } else {
                segment
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect()
            }
        })
        .collect();
    if name.is_empty() {
        "storefront".to_owned()
    } else {
        name.join("-")
    }
}
