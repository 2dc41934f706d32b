//! A business's answers about its part (confirm, decline, shipped,
//! delivered), whichever way they arrive: the API, an inbound webhook or an
//! email link. Their texts are checked once, here.

use super::Status;

/// The longest text a business may put in a reference, reason, carrier or
/// tracking number.
pub const MAX_TEXT: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{field} is required for this action")]
    Missing { field: &'static str },
    #[error("{field} must not be blank")]
    Blank { field: &'static str },
    #[error("{field} must be at most {MAX_TEXT} characters")]
    TooLong { field: &'static str },
}

fn text(field: &'static str, raw: &str) -> Result<String, ActionError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(ActionError::Blank { field });
    }
    if trimmed.chars().count() > MAX_TEXT {
        return Err(ActionError::TooLong { field });
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(raw: &str) -> Result<Self, ActionError> {
                text($field, raw).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

text_type!(
    /// The business's own id for the part, given when it confirms.
    Reference,
    "reference"
);
text_type!(
    /// Why the business declines, in its own words.
    DeclineReason,
    "reason"
);
text_type!(Carrier, "carrier");
text_type!(TrackingNumber, "tracking_number");

/// What a business says about its part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Confirm {
        reference: Option<Reference>,
    },
    Decline {
        reason: DeclineReason,
    },
    Ship {
        carrier: Carrier,
        tracking_number: TrackingNumber,
    },
    Deliver,
}

impl Action {
    /// The status the part takes when the action is accepted.
    pub fn leads_to(&self) -> Status {
        match self {
            Action::Confirm { .. } => Status::Confirmed,
            Action::Decline { .. } => Status::Declined,
            Action::Ship { .. } => Status::Shipped,
            Action::Deliver => Status::Delivered,
        }
    }

    /// For messages: "a sent part cannot be shipped".
    pub fn past_tense(&self) -> &'static str {
        match self {
            Action::Confirm { .. } => "confirmed",
            Action::Decline { .. } => "declined",
            Action::Ship { .. } => "shipped",
            Action::Deliver => "delivered",
        }
    }

    /// The action's name as links and webhooks spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Confirm { .. } => "confirm",
            Action::Decline { .. } => "decline",
            Action::Ship { .. } => "shipped",
            Action::Deliver => "delivered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_and_must_say_something_short() {
        assert_eq!(
            Carrier::new("  UPS ").map(Carrier::into_inner),
            Ok("UPS".to_owned())
        );
        assert_eq!(
            DeclineReason::new("   "),
            Err(ActionError::Blank { field: "reason" })
        );
        assert_eq!(
            TrackingNumber::new(&"9".repeat(MAX_TEXT + 1)),
            Err(ActionError::TooLong {
                field: "tracking_number"
            })
        );
    }
}
