//! The gateway's own vocabulary, free of HTTP, SQL and any provider's wire
//! format: money as minor units of a currency, the ids that every provider
//! call is keyed by, and what the gateway remembers of an authorization and
//! of what was done with it afterwards.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;

/// An ISO 4217 currency code, upper case (`USD`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn new(code: &str) -> Result<Self, String> {
        let code = code.trim();
        if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency(code.to_ascii_uppercase()))
        } else {
            Err(format!(
                "currency must be a three-letter ISO 4217 code, not {code:?}"
            ))
        }
    }

    /// `USD`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many decimals the currency's major unit has (2 for USD, 0 for JPY).
    pub fn exponent(&self) -> u32 {
        shared_events::payment::minor_unit_exponent(&self.0)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A positive amount of money: a count of the currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, String> {
        if amount_minor < 1 {
            return Err(format!(
                "amount_minor must be at least 1, not {amount_minor}"
            ));
        }
        Ok(Money {
            amount_minor,
            currency,
        })
    }

    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// The amount in the major unit with exactly the currency's decimals,
    /// as providers that take decimal strings want it: 1050 USD → `10.50`.
    pub fn to_decimal_string(&self) -> String {
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return self.amount_minor.to_string();
        }
        let factor = 10_i64.pow(exponent);
        format!(
            "{}.{:0width$}",
            self.amount_minor / factor,
            self.amount_minor % factor,
            width = exponent as usize
        )
    }

    /// Parses a provider's decimal string (`10.50`) in `currency`; `None`
    /// when it has more decimals than the currency or is not a number.
    pub fn from_decimal_str(value: &str, currency: Currency) -> Option<Self> {
        let exponent = currency.exponent() as usize;
        let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
        if fraction.len() > exponent
            || whole.is_empty()
            || !whole.chars().all(|c| c.is_ascii_digit())
            || !fraction.chars().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        let digits = format!("{whole}{fraction:0<exponent$}");
        let amount_minor = digits.parse().ok()?;
        Money::new(amount_minor, currency).ok()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// Our id of one authorization: the key of everything done with that
/// payment (confirm, capture, void).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorizationId(pub Uuid);

/// Our id of one refund, minted by the order service (`refund_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefundId(pub Uuid);

/// The customer (`sub` of the buyer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CustomerId(pub Uuid);

impl fmt::Display for AuthorizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an authorization stands, as the gateway recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorizationState {
    /// The provider has been asked and has not answered yet.
    Pending,
    RequiresAction,
    Authorized,
    Declined,
    Voided,
    Captured,
}

impl AuthorizationState {
    /// The spelling in the API and in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationState::Pending => "pending",
            AuthorizationState::RequiresAction => "requires_action",
            AuthorizationState::Authorized => "authorized",
            AuthorizationState::Declined => "declined",
            AuthorizationState::Voided => "voided",
            AuthorizationState::Captured => "captured",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => AuthorizationState::Pending,
            "requires_action" => AuthorizationState::RequiresAction,
            "authorized" => AuthorizationState::Authorized,
            "declined" => AuthorizationState::Declined,
            "voided" => AuthorizationState::Voided,
            "captured" => AuthorizationState::Captured,
            _ => return None,
        })
    }
}

/// One authorization of one order, with the provider's answer once it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub authorization_id: AuthorizationId,
    pub order_id: Uuid,
    pub checkout_id: Uuid,
    pub customer_id: CustomerId,
    pub provider: String,
    pub payment_method: String,
    /// The provider's handle, once it answered (see `ProviderReference`).
    pub provider_reference: Option<String>,
    pub amount: Money,
    pub return_url: Option<String>,
    /// Where the customer acts, while the state is `RequiresAction`.
    pub redirect_url: Option<String>,
    pub state: AuthorizationState,
    pub decline_code: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// How far a provider call that follows an authorization (capture, void,
/// refund) has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Recorded; the provider has not confirmed it yet.
    Pending,
    Succeeded,
    Failed,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::Succeeded => "succeeded",
            CallState::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => CallState::Pending,
            "succeeded" => CallState::Succeeded,
            "failed" => CallState::Failed,
            _ => return None,
        })
    }
}

/// The one capture of an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub authorization_id: AuthorizationId,
    pub amount_minor: i64,
    pub state: CallState,
    pub transaction_id: Option<String>,
    /// Provider calls made so far; after the first, the provider is asked
    /// before it is called again.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// One refund, keyed by the order service's `refund_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub refund_id: RefundId,
    pub authorization_id: AuthorizationId,
    pub order_id: Uuid,
    pub business_id: Option<Uuid>,
    pub amount_minor: i64,
    pub currency: String,
    pub reason: String,
    pub state: CallState,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::new("usd").expect("valid currency")
    }

    #[test]
    fn money_writes_and_reads_the_currencys_decimals() {
        let money = Money::new(1050, usd()).expect("positive");
        assert_eq!(money.to_decimal_string(), "10.50");
        assert_eq!(Money::from_decimal_str("10.50", usd()), Some(money));
        assert_eq!(
            Money::from_decimal_str("10.5", usd()).map(|m| m.amount_minor()),
            Some(1050)
        );
        let yen = Money::new(500, Currency::new("JPY").expect("valid")).expect("positive");
        assert_eq!(yen.to_decimal_string(), "500");
        assert_eq!(Money::from_decimal_str("1.234", usd()), None);
        assert_eq!(Money::from_decimal_str("-1.00", usd()), None);
    }

    #[test]
    fn money_is_positive_and_currency_is_three_letters() {
        assert!(Money::new(0, usd()).is_err());
        assert!(Currency::new("US").is_err());
        assert_eq!(usd().as_str(), "USD");
    }
}
