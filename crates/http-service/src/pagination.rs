//! Lists, the same way in every service: `?limit=` (default 50, at most
//! 200) and an opaque `?cursor=`, answered with
//! `{"items": [...], "next_cursor": "..." | null}`.
//!
//! A cursor is the sort key of the last item served (a sequence number, or
//! `(created_at, id)`), versioned and base64url-encoded; the store reads the
//! next page with a keyset condition (`WHERE key < $after`), which stays
//! fast however deep the client pages. A bad limit or a cursor this service
//! did not issue answers `422 invalid_pagination`.
//!
//! ```ignore
//! async fn list(page: PageRequest<i64>, ..) -> Result<Json<Page<EntryBody>>, ApiError> {
//!     let rows = store::entries(&mut conn, user, page.after(), page.fetch_limit()).await?;
//!     Ok(Json(page.page(rows).map(EntryBody::from)))
//! }
//! ```

use axum::{extract::FromRequestParts, http::request::Parts};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use utoipa::{
    openapi::{
        path::{Parameter, ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
        Required,
    },
    IntoParams, ToSchema,
};

use crate::problem::{Problem, Query};

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items one page may hold.
pub const MAX_LIMIT: u32 = 200;
/// The one code of every bad `limit` or `cursor`.
pub const INVALID_PAGINATION: &str = "invalid_pagination";

/// Bumped when the encoding changes; cursors of another version are refused
/// rather than misread.
const CURSOR_VERSION: u8 = 1;

/// The key a list sorts by, e.g. `i64` or `(OffsetDateTime, Uuid)`. Any
/// serde type is one.
pub trait CursorKey: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> CursorKey for T {}

/// Encodes `key` as an opaque cursor.
pub fn encode_cursor<K: Serialize + ?Sized>(key: &K) -> String {
    let mut bytes = vec![CURSOR_VERSION];
    // Serializing plain keys (integers, strings, times, UUIDs) cannot fail;
    // a key type whose serializer can would produce a cursor that does not
    // decode, which the next request reports.
    if let Err(error) = serde_json::to_writer(&mut bytes, key) {
        tracing::error!(%error, "cursor key does not serialize");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a cursor made by [`encode_cursor`] with the same key type.
pub fn decode_cursor<K: CursorKey>(cursor: &str) -> Result<K, Problem> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid("cursor is not one this service issued"))?;
    match bytes.split_first() {
        Some((&CURSOR_VERSION, key)) => serde_json::from_slice(key)
            .map_err(|_| invalid("cursor is not one this service issued")),
        _ => Err(invalid("cursor is not one this service issued")),
    }
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::unprocessable(INVALID_PAGINATION, detail)
}

/// The pagination of a list request, `K` being the list's sort key. As an
/// extractor it reads `limit` and `cursor` from the query string and ignores
/// the list's other parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<K> {
    limit: u32,
    after: Option<K>,
}

impl<K: CursorKey> PageRequest<K> {
    /// Parses the raw parameters; `None` means absent.
    pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Self, Problem> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    invalid(format!(
                        "limit must be a whole number from 1 to {MAX_LIMIT}, not {raw:?}"
                    ))
                })?,
        };
        let after = cursor.map(decode_cursor).transpose()?;
        Ok(Self { limit, after })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The key of the last item the client has seen; the page holds the
    /// items after it in the list's order.
    pub fn after(&self) -> Option<&K> {
        self.after.as_ref()
    }

    /// How many rows to fetch: one more than the page holds, which tells
    /// whether a next page exists without counting.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// The page of `rows` (fetched with [`Self::fetch_limit`], in the list's
    /// order, each with its sort key); the cursor points after the last item
    /// served when more rows exist.
    pub fn page<T>(&self, rows: Vec<(K, T)>) -> Page<T> {
        let limit = self.limit as usize;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        let mut last_key = None;
        for (key, item) in rows.into_iter().take(limit) {
            items.push(item);
            last_key = Some(key);
        }
        Page {
            items,
            next_cursor: last_key.filter(|_| more).map(|key| encode_cursor(&key)),
        }
    }
}

#[derive(Deserialize)]
struct RawPage {
    limit: Option<String>,
    cursor: Option<String>,
}

impl<K, S> FromRequestParts<S> for PageRequest<K>
where
    K: CursorKey + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(raw) = Query::<RawPage>::from_request_parts(parts, state).await?;
        Self::parse(raw.limit.as_deref(), raw.cursor.as_deref())
    }
}

impl<K> IntoParams for PageRequest<K> {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let limit = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(MAX_LIMIT))
            .default(Some(DEFAULT_LIMIT.into()));
        let cursor = ObjectBuilder::new().schema_type(Type::String);
        vec![
            ParameterBuilder::new()
                .name("limit")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(format!(
                    "Items per page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
                )))
                .schema(Some(limit))
                .build(),
            ParameterBuilder::new()
                .name("cursor")
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(
                    "`next_cursor` of the previous page; absent for the first page.",
                ))
                .schema(Some(cursor))
                .build(),
        ]
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item converted, e.g. into its wire type.
    pub fn map<U>(self, convert: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(convert).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_50_and_accepts_1_to_200() {
        assert_eq!(PageRequest::<i64>::parse(None, None).unwrap().limit(), 50);
        assert_eq!(
            PageRequest::<i64>::parse(Some("1"), None).unwrap().limit(),
            1
        );
        assert_eq!(
            PageRequest::<i64>::parse(Some("200"), None)
                .unwrap()
                .limit(),
            200
        );
    }

    #[test]
    fn a_bad_limit_is_invalid_pagination() {
        for limit in ["0", "201", "abc", "-1", "", "1.5"] {
            let problem = PageRequest::<i64>::parse(Some(limit), None).unwrap_err();
            assert_eq!(problem.code(), "invalid_pagination", "{limit:?}");
            assert_eq!(problem.status().as_u16(), 422);
        }
    }

    #[test]
    fn a_cursor_round_trips_its_key() {
        let key = (time_like(), uuid::Uuid::new_v4());
        let cursor = encode_cursor(&key);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let request = PageRequest::<(String, uuid::Uuid)>::parse(None, Some(&cursor)).unwrap();
        assert_eq!(request.after(), Some(&key));
    }

    fn time_like() -> String {
        "2025-01-02T03:04:05Z".to_owned()
    }

    #[test]
    fn a_cursor_this_service_did_not_issue_is_invalid_pagination() {
        let other_key_type = encode_cursor(&"a string key");
        let other_version = URL_SAFE_NO_PAD.encode([2, b'1']);
        for cursor in ["not base64!", "", "MTI", &other_key_type, &other_version] {
            let problem = PageRequest::<i64>::parse(None, Some(cursor)).unwrap_err();
            assert_eq!(problem.code(), "invalid_pagination", "{cursor:?}");
        }
    }

    #[test]
    fn a_page_keeps_limit_items_and_points_after_the_last() {
        let request = PageRequest::<i64>::parse(Some("2"), None).unwrap();
        assert_eq!(request.fetch_limit(), 3);
        let page = request.page(vec![(30, "c"), (20, "b"), (10, "a")]);
        assert_eq!(page.items, vec!["c", "b"]);
        let next = PageRequest::<i64>::parse(Some("2"), page.next_cursor.as_deref()).unwrap();
        assert_eq!(next.after(), Some(&20));

        let last = request.page(vec![(10, "a")]);
        assert_eq!(last.items, vec!["a"]);
        assert_eq!(last.next_cursor, None);
    }
}
