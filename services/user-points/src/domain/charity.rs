//! Charities: accounts that officers donate to. An admin registers each one
//! under its user's `sub`.

use time::OffsetDateTime;
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 200;

/// Why a charity registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CharityError {
    #[error("name must not be empty")]
    EmptyName,
    #[error("name must be at most {max} characters")]
    NameTooLong { max: usize },
}

/// A charity to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharity {
    pub charity_id: Uuid,
    pub name: String,
}

impl NewCharity {
    pub fn new(charity_id: Uuid, name: &str) -> Result<Self, CharityError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(CharityError::EmptyName);
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(CharityError::NameTooLong {
                max: MAX_NAME_CHARS,
            });
        }
        Ok(NewCharity {
            charity_id,
            name: name.to_owned(),
        })
    }
}

/// A registered charity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charity {
    pub charity_id: Uuid,
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// What registering a charity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CharityOutcome {
    Registered(Charity),
    /// Registered before with the same name: nothing changed.
    AlreadyRegistered(Charity),
    /// Registered before under another name: nothing changed.
    Conflict(Charity),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charity_needs_a_name_of_reasonable_length() {
        let id = Uuid::new_v4();
        assert_eq!(NewCharity::new(id, "  "), Err(CharityError::EmptyName));
        assert_eq!(
            NewCharity::new(id, &"n".repeat(201)),
            Err(CharityError::NameTooLong { max: 200 })
        );
        assert_eq!(
            NewCharity::new(id, " Food Bank ").map(|c| c.name),
            Ok("Food Bank".to_owned())
        );
    }
}
