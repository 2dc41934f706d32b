//! A browser as far as the webshop's pages need one: it keeps the cookies
//! it is given (and forgets those that expire), submits forms, and follows
//! redirects only when asked, so a test can look at each answer, its
//! `Set-Cookie` and `Location` included.
//!
//! It runs no JavaScript, which the pages do not need either.

use std::collections::BTreeMap;
use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};

/// One answer of the webshop.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    /// Every `Set-Cookie` line, as sent.
    pub set_cookies: Vec<String>,
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Page {
    /// The value of the form field `name` (a hidden input's, say): the
    /// first `name="<name>" value="…"` on the page.
    ///
    /// # Panics
    /// When the page has no such field.
    pub fn field(&self, name: &str) -> String {
        self.field_after(name, "")
    }

    /// [`Page::field`], in the first form after `marker` on the page (a
    /// form's `action`, say).
    ///
    /// # Panics
    /// When there is no such field after `marker`.
    pub fn field_after(&self, name: &str, marker: &str) -> String {
        let from = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker:?} on the page:\n{}", self.body));
        let needle = format!("name=\"{name}\" value=\"");
        let rest = &self.body[from..];
        let start = rest.find(&needle).unwrap_or_else(|| {
            panic!(
                "no field {name:?} after {marker:?} on the page:\n{}",
                self.body
            )
        }) + needle.len();
        let end = rest[start..]
            .find('"')
            .map_or(rest.len(), |end| start + end);
        rest[start..end].to_owned()
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|line| line.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }

    pub fn is_html(&self) -> bool {
        self.content_type.starts_with("text/html")
    }
}

/// A cookie-keeping client of one site.
pub struct Browser {
    base_url: String,
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    pub fn new(base_url: impl Into<String>) -> Browser {
        Browser {
            base_url: base_url.into(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// The value of a cookie the browser holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    /// Sets a cookie by hand, as another browser that copied it would.
    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .lock()
            .expect("cookies")
            .insert(name.to_owned(), value.to_owned());
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// POSTs `fields` as a form (`application/x-www-form-urlencoded`).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    /// Follows `page`'s redirect (with a GET), if it is one; else `page`.
    pub async fn follow(&self, page: Page) -> Page {
        let mut page = page;
        for _ in 0..10 {
            if !page.status.is_redirection() {
                return page;
            }
            let location = page.location.clone().expect("a redirect has a Location");
            page = self.get(&location).await;
        }
        panic!("more than 10 redirects");
    }

    async fn send(&self, method: Method, path: &str, form: Option<String>) -> Page {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base_url)
        };
        let mut request = self.http.request(method, &url);
        let cookies = {
            let jar = self.cookies.lock().expect("cookies");
            jar.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        if !cookies.is_empty() {
            request = request.header(COOKIE, cookies);
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect();
        let page = Page {
            status: response.status(),
            location: header(LOCATION),
            content_type: header(reqwest::header::CONTENT_TYPE).unwrap_or_default(),
            set_cookies,
            body: String::new(),
        };
        let body = response.text().await.unwrap_or_default();
        self.keep(&page.set_cookies);
        Page { body, ..page }
    }

    fn keep(&self, set_cookies: &[String]) {
        let mut jar = self.cookies.lock().expect("cookies");
        for line in set_cookies {
            let mut attributes = line.split(';').map(str::trim);
            let Some((name, value)) = attributes.next().and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            let expired = attributes.any(|attribute| attribute.eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }
}
