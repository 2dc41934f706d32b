//! What a checkout request must hold once parsed: a points budget that is
//! not negative, a complete shipping address, and a payment choice when
//! there is something to pay. Past the HTTP edge nothing re-checks these.

use super::Points;

/// The longest text accepted in one address field.
const MAX_FIELD: usize = 200;

/// Where the order goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

impl ShippingAddress {
    /// Trims each field; every field but `line2` must then be non-empty.
    pub fn new(
        name: &str,
        line1: &str,
        line2: Option<&str>,
        city: &str,
        postal_code: &str,
        country: &str,
    ) -> Result<Self, InvalidRequest> {
        let country = country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(InvalidRequest::Country(country));
        }
        Ok(ShippingAddress {
            name: required("name", name)?,
            line1: required("line1", line1)?,
            line2: match line2.map(str::trim) {
                None | Some("") => None,
                Some(line2) => Some(required("line2", line2)?),
            },
            city: required("city", city)?,
            postal_code: required("postal_code", postal_code)?,
            country,
        })
    }
}

fn required(field: &'static str, value: &str) -> Result<String, InvalidRequest> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InvalidRequest::EmptyField(field));
    }
    if value.chars().count() > MAX_FIELD {
        return Err(InvalidRequest::FieldTooLong(field));
    }
    Ok(value.to_owned())
}

/// How the customer pays: a provider (`sandbox`, `stripe`, …) and its
/// payment method. payment-gateway knows which providers it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentChoice {
    pub provider: String,
    pub payment_method: String,
}

impl PaymentChoice {
    pub fn new(provider: &str, payment_method: &str) -> Result<Self, InvalidRequest> {
        Ok(PaymentChoice {
            provider: required("payment.provider", provider)?,
            payment_method: required("payment.payment_method", payment_method)?,
        })
    }
}

/// A checkout request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// `None`: all available points.
    pub points_to_redeem: Option<Points>,
    pub payment: Option<PaymentChoice>,
    pub shipping_address: ShippingAddress,
    /// An absolute http(s) URL.
    pub return_url: Option<String>,
}

impl CheckoutRequest {
    pub fn new(
        points_to_redeem: Option<i64>,
        payment: Option<PaymentChoice>,
        shipping_address: ShippingAddress,
        return_url: Option<&str>,
    ) -> Result<Self, InvalidRequest> {
        let points_to_redeem = points_budget(points_to_redeem)?;
        let return_url = match return_url {
            None => None,
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|_| InvalidRequest::ReturnUrl(url.to_owned()))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(InvalidRequest::ReturnUrl(url.to_owned()));
                }
                Some(url.to_owned())
            }
        };
        Ok(CheckoutRequest {
            points_to_redeem,
            payment,
            shipping_address,
            return_url,
        })
    }
}

/// A request that is well-formed JSON but breaks a rule (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("points_to_redeem must not be negative, not {0}")]
    NegativePoints(i64),
    #[error("{0} must not be empty")]
    EmptyField(&'static str),
    #[error("{0} is longer than {MAX_FIELD} characters")]
    FieldTooLong(&'static str),
    #[error("country must be an ISO 3166-1 alpha-2 code, not {0:?}")]
    Country(String),
    #[error("return_url must be an absolute http(s) URL, not {0:?}")]
    ReturnUrl(String),
}

/// Parses a budget the quote endpoint was given.
pub fn points_budget(points: Option<i64>) -> Result<Option<Points>, InvalidRequest> {
    points
        .map(|points| Points::new(points).map_err(|_| InvalidRequest::NegativePoints(points)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_needs_every_field_but_line2_and_a_country_code() {
        let address = ShippingAddress::new(
            " Ada ",
            "1 Main St",
            Some(" "),
            "Springfield",
            "12345",
            "us",
        )
        .expect("valid");
        assert_eq!(address.name, "Ada");
        assert_eq!(address.line2, None);
        assert_eq!(address.country, "US");
        assert_eq!(
            ShippingAddress::new("Ada", "", None, "Springfield", "12345", "US"),
            Err(InvalidRequest::EmptyField("line1"))
        );
        assert!(
            ShippingAddress::new("Ada", "1 Main St", None, "Springfield", "12345", "USA").is_err()
        );
    }

    #[test]
    fn negative_points_and_odd_return_urls_are_refused() {
        let address = ShippingAddress::new("Ada", "1 Main St", None, "Springfield", "12345", "US")
            .expect("valid");
        assert_eq!(
            CheckoutRequest::new(Some(-1), None, address.clone(), None),
            Err(InvalidRequest::NegativePoints(-1))
        );
        assert!(
            CheckoutRequest::new(None, None, address.clone(), Some("javascript:alert(1)")).is_err()
        );
        assert!(
            CheckoutRequest::new(Some(0), None, address, Some("https://shop.example/back")).is_ok()
        );
    }
}
