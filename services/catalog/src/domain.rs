//! The catalog's rules and types, free of HTTP and SQL: what a valid
//! business, offering and change to one is, and how an order's lines are
//! decided against the stock there is.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The highest `price_minor` and `points_price` an offering may have.
pub const MAX_PRICE: i64 = 100_000_000;
pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 5_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_SEARCH_CHARS: usize = 200;

/// Why a value is not acceptable. Each variant names the field it is about,
/// so the HTTP edge can say which one to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} must be between 1 and {max}, not {value}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        max: i64,
    },
    #[error("stock must be at least 0 or null (unlimited), not {0}")]
    NegativeStock(i64),
    #[error("kind must be one of product, voucher, service, not {0:?}")]
    UnknownKind(String),
    #[error("currency must be an ISO 4217 code such as USD, not {0:?}")]
    InvalidCurrency(String),
    #[error("the shop sells in {sold}, not {given}")]
    CurrencyNotSold { given: Currency, sold: Currency },
    #[error("contact_email must be an email address")]
    InvalidEmail,
}

fn bounded_text(
    field: &'static str,
    value: &str,
    max: usize,
    allow_empty: bool,
) -> Result<String, ValidationError> {
    let value = value.trim();
    if value.is_empty() && !allow_empty {
        Err(ValidationError::Empty { field })
    } else if value.chars().count() > max {
        Err(ValidationError::TooLong { field, max })
    } else {
        Ok(value.to_owned())
    }
}

fn bounded_price(field: &'static str, value: i64) -> Result<i64, ValidationError> {
    if (1..=MAX_PRICE).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::OutOfRange {
            field,
            value,
            max: MAX_PRICE,
        })
    }
}

/// An ISO 4217 code: three uppercase ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn as_str(&self) -> &str {
        // Only uppercase ASCII ever gets in.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for Currency {
    type Err = ValidationError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(ValidationError::InvalidCurrency(code.to_owned())),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one currency the shop sells in (`HEYBLUE_SHOP_CURRENCY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShopCurrency(pub Currency);

impl Default for ShopCurrency {
    fn default() -> Self {
        ShopCurrency(Currency::USD)
    }
}

impl ShopCurrency {
    /// Accepts `code` only when it is the shop's currency.
    pub fn accept(&self, code: &str) -> Result<Currency, ValidationError> {
        let given: Currency = code.parse()?;
        if given == self.0 {
            Ok(given)
        } else {
            Err(ValidationError::CurrencyNotSold {
                given,
                sold: self.0,
            })
        }
    }
}

/// What an offering is: goods to ship, a voucher, or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferingKind {
    Product,
    Voucher,
    Service,
}

impl OfferingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferingKind::Product => "product",
            OfferingKind::Voucher => "voucher",
            OfferingKind::Service => "service",
        }
    }
}

impl FromStr for OfferingKind {
    type Err = ValidationError;

    fn from_str(kind: &str) -> Result<Self, Self::Err> {
        match kind {
            "product" => Ok(OfferingKind::Product),
            "voucher" => Ok(OfferingKind::Voucher),
            "service" => Ok(OfferingKind::Service),
            other => Err(ValidationError::UnknownKind(other.to_owned())),
        }
    }
}

/// An offering's title: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn new(title: &str) -> Result<Self, ValidationError> {
        bounded_text("title", title, MAX_TITLE_CHARS, false).map(Title)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An offering's description: up to 5,000 characters, trimmed; may be empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn new(description: &str) -> Result<Self, ValidationError> {
        bounded_text("description", description, MAX_DESCRIPTION_CHARS, true).map(Description)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The price of one unit in minor units of the shop's currency, 1..=100,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PriceMinor(i64);

impl PriceMinor {
    pub fn new(price_minor: i64) -> Result<Self, ValidationError> {
        bounded_price("price_minor", price_minor).map(PriceMinor)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// The points that pay one unit in full, 1..=100,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PointsPrice(i64);

impl PointsPrice {
    pub fn new(points_price: i64) -> Result<Self, ValidationError> {
        bounded_price("points_price", points_price).map(PointsPrice)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// Units available to new orders: a count, or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stock {
    Limited(i64),
    Unlimited,
}

impl Stock {
    /// `None` is unlimited; a count must not be negative.
    pub fn new(stock: Option<i64>) -> Result<Self, ValidationError> {
        match stock {
            None => Ok(Stock::Unlimited),
            Some(units) if units >= 0 => Ok(Stock::Limited(units)),
            Some(units) => Err(ValidationError::NegativeStock(units)),
        }
    }

    /// The count, `None` for unlimited (as the API and the table show it).
    pub fn units(self) -> Option<i64> {
        match self {
            Stock::Limited(units) => Some(units),
            Stock::Unlimited => None,
        }
    }
}

/// A business's name: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessName(String);

impl BusinessName {
    pub fn new(name: &str) -> Result<Self, ValidationError> {
        bounded_text("name", name, MAX_NAME_CHARS, false).map(BusinessName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An address to write to: `local@domain.tld`, no spaces, at most 254
/// characters. Whether it receives mail is for the mail server to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEmail(String);

impl ContactEmail {
    pub fn new(email: &str) -> Result<Self, ValidationError> {
        let email = email.trim();
        let well_formed = email.chars().count() <= MAX_EMAIL_CHARS
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain
                        .split_once('.')
                        .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
                    && !domain.ends_with('.')
            });
        if well_formed {
            Ok(ContactEmail(email.to_owned()))
        } else {
            Err(ValidationError::InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A business to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBusiness {
    pub name: BusinessName,
    pub contact_email: ContactEmail,
}

/// Where a page of businesses ends: (created_at, id) of its last one.
pub type BusinessKey = (OffsetDateTime, Uuid);

/// A registered business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    pub id: Uuid,
    pub name: String,
    pub contact_email: String,
    pub created_at: OffsetDateTime,
}

/// An offering to list. Every field is already checked; `currency` came
/// through [`ShopCurrency::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOffering {
    pub business_id: Uuid,
    pub title: Title,
    pub description: Description,
    pub kind: OfferingKind,
    pub price_minor: PriceMinor,
    pub currency: Currency,
    pub points_price: PointsPrice,
    pub stock: Stock,
    pub active: bool,
}

/// A change to an offering: the fields that are `Some` change. Kind,
/// currency and business stay as created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferingPatch {
    pub title: Option<Title>,
    pub description: Option<Description>,
    pub price_minor: Option<PriceMinor>,
    pub points_price: Option<PointsPrice>,
    pub stock: Option<Stock>,
    pub active: Option<bool>,
}

impl OfferingPatch {
    /// Whether the patch changes nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == OfferingPatch::default()
    }
}

/// An offering as stored, and as `GET /v1/offerings/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offering {
    pub id: Uuid,
    pub business_id: Uuid,
    pub title: String,
    pub description: String,
    pub kind: OfferingKind,
    pub price_minor: i64,
    pub currency: String,
    pub points_price: i64,
    /// `None` is unlimited.
    pub stock: Option<i64>,
    pub active: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Words to look for in titles and descriptions (web-search syntax: quotes
/// for phrases, `-` to exclude, `or`). Up to 200 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn new(q: &str) -> Result<Self, ValidationError> {
        bounded_text("q", q, MAX_SEARCH_CHARS, false).map(SearchText)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which offerings to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferingFilter {
    pub business_id: Option<Uuid>,
    /// With words, the list is ranked by relevance (then newest first);
    /// without, newest first.
    pub q: Option<SearchText>,
    pub include_inactive: bool,
}

/// Where a page of offerings ends: the next page starts after this key. Its
/// kind follows the filter: ranked for a search, by date otherwise. Clients
/// see it only as an opaque cursor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum OfferingKey {
    Newest {
        created_at: OffsetDateTime,
        id: Uuid,
    },
    Ranked {
        rank: f32,
        created_at: OffsetDateTime,
        id: Uuid,
    },
}

impl OfferingFilter {
    /// Whether `key` can continue this filter's list (a search's key cannot
    /// continue a plain list, nor the other way round).
    pub fn continues_with(&self, key: &OfferingKey) -> bool {
        matches!(
            (&self.q, key),
            (None, OfferingKey::Newest { .. }) | (Some(_), OfferingKey::Ranked { .. })
        )
    }
}

/// An offering as a reservation sees it: locked, with its current stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockHolding {
    pub offering_id: Uuid,
    pub active: bool,
    pub stock: Stock,
}

/// What an order's lines get: every offering's quantity taken, or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReservationDecision {
    /// Take `quantity` of each offering (summed over the order's lines).
    Reserve(Vec<(Uuid, i64)>),
    /// Take nothing; these offerings (in the order's line order, each once)
    /// were short, inactive or unknown.
    Reject { short_offering_ids: Vec<Uuid> },
}

/// Decides an order all or none. `lines` are the order's (offering,
/// quantity) pairs, possibly naming an offering twice; `holdings` are the
/// offerings that exist. Unlimited stock never runs short; an inactive or
/// unknown offering always does.
pub fn decide_reservation(lines: &[(Uuid, i64)], holdings: &[StockHolding]) -> ReservationDecision {
    let mut wanted: Vec<(Uuid, i64)> = Vec::new();
    for &(offering_id, quantity) in lines {
        match wanted.iter_mut().find(|(id, _)| *id == offering_id) {
            Some((_, total)) => *total += quantity,
            None => wanted.push((offering_id, quantity)),
        }
    }
    let holdings: HashMap<Uuid, &StockHolding> =
        holdings.iter().map(|h| (h.offering_id, h)).collect();
    let short_offering_ids: Vec<Uuid> = wanted
        .iter()
        .filter(|(offering_id, quantity)| match holdings.get(offering_id) {
            None => true,
            Some(holding) if !holding.active => true,
            Some(holding) => match holding.stock {
                Stock::Unlimited => false,
                Stock::Limited(units) => units < *quantity,
            },
        })
        .map(|(offering_id, _)| *offering_id)
        .collect();
    if short_offering_ids.is_empty() {
        ReservationDecision::Reserve(wanted)
    } else {
        ReservationDecision::Reject { short_offering_ids }
    }
}

/// How much of a release request to honour: never more than is still held.
pub fn releasable(requested: i64, reserved: i64, released: i64) -> i64 {
    requested.min(reserved - released).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holding(offering_id: Uuid, active: bool, stock: Option<i64>) -> StockHolding {
        StockHolding {
            offering_id,
            active,
            stock: Stock::new(stock).expect("valid stock"),
        }
    }

    #[test]
    fn prices_are_between_one_and_a_hundred_million() {
        assert!(PriceMinor::new(0).is_err());
        assert!(PriceMinor::new(-1).is_err());
        assert!(PriceMinor::new(MAX_PRICE + 1).is_err());
        assert_eq!(
            PriceMinor::new(MAX_PRICE).map(PriceMinor::get),
            Ok(MAX_PRICE)
        );
        assert!(PointsPrice::new(0).is_err());
        assert_eq!(PointsPrice::new(1).map(PointsPrice::get), Ok(1));
    }

    #[test]
    fn stock_is_a_non_negative_count_or_unlimited() {
        assert_eq!(Stock::new(None), Ok(Stock::Unlimited));
        assert_eq!(Stock::new(Some(0)), Ok(Stock::Limited(0)));
        assert_eq!(
            Stock::new(Some(-1)),
            Err(ValidationError::NegativeStock(-1))
        );
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(Title::new("  Mug ").map(|t| t.0), Ok("Mug".to_owned()));
        assert!(Title::new("   ").is_err());
        assert!(Title::new(&"x".repeat(MAX_TITLE_CHARS + 1)).is_err());
        assert!(Description::new("").is_ok());
        assert!(Description::new(&"é".repeat(MAX_DESCRIPTION_CHARS)).is_ok());
        assert!(Description::new(&"é".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
        assert!(SearchText::new(" ").is_err());
    }

    #[test]
    fn only_the_shops_currency_is_accepted() {
        let shop = ShopCurrency::default();
        assert_eq!(shop.accept("USD"), Ok(Currency::USD));
        assert!(matches!(
            shop.accept("EUR"),
            Err(ValidationError::CurrencyNotSold { .. })
        ));
        assert!(matches!(
            shop.accept("usd"),
            Err(ValidationError::InvalidCurrency(_))
        ));
        assert!(shop.accept("DOLLARS").is_err());
    }

    #[test]
    fn kinds_and_emails_parse() {
        assert_eq!("voucher".parse(), Ok(OfferingKind::Voucher));
        assert!("gift".parse::<OfferingKind>().is_err());
        assert!(ContactEmail::new("shop@example.com").is_ok());
        for bad in [
            "shop",
            "@example.com",
            "shop@",
            "shop@example",
            "a b@c.de",
            "a@b@c.de",
        ] {
            assert!(ContactEmail::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_order_is_reserved_whole_or_rejected_whole() {
        let (mug, cap, pass) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let holdings = [
            holding(mug, true, Some(3)),
            holding(cap, true, None),
            holding(pass, false, Some(10)),
        ];
        assert_eq!(
            decide_reservation(&[(mug, 2), (cap, 1_000), (mug, 1)], &holdings),
            ReservationDecision::Reserve(vec![(mug, 3), (cap, 1_000)])
        );
        // Two lines of the same offering together exceed its stock.
        assert_eq!(
            decide_reservation(&[(mug, 2), (cap, 1), (mug, 2)], &holdings),
            ReservationDecision::Reject {
                short_offering_ids: vec![mug]
            }
        );
        let unknown = Uuid::new_v4();
        assert_eq!(
            decide_reservation(&[(unknown, 1), (mug, 1), (pass, 1)], &holdings),
            ReservationDecision::Reject {
                short_offering_ids: vec![unknown, pass]
            }
        );
    }

    #[test]
    fn a_release_gives_back_at_most_what_is_still_held() {
        assert_eq!(releasable(2, 5, 0), 2);
        assert_eq!(releasable(5, 5, 2), 3);
        assert_eq!(releasable(1, 5, 5), 0);
    }
}
