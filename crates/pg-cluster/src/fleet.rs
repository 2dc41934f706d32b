//! The schemas of the fleet and which service owns which.
//!
//! A service's schema name is also its login role's name (see
//! [`crate::provision`]); service names and schema names differ where a
//! schema name reads better in SQL (`orders` rather than `order`, a keyword).

/// Every schema of the fleet, one per service.
pub const FLEET_SCHEMAS: [&str; 8] = [
    "catalog",
    "cart",
    "checkout",
    "points",
    "payment",
    "orders",
    "dispatcher",
    "notification",
];

/// `(service name, schema name)` for every service of the fleet.
pub const SERVICE_SCHEMAS: [(&str, &str); 8] = [
    ("catalog", "catalog"),
    ("cart", "cart"),
    ("checkout", "checkout"),
    ("user-points", "points"),
    ("payment-gateway", "payment"),
    ("order", "orders"),
    ("dispatcher", "dispatcher"),
    ("notification", "notification"),
];

/// The schema (and login role) that `service` owns, if it is one of the fleet.
pub fn schema_for_service(service: &str) -> Option<&'static str> {
    SERVICE_SCHEMAS
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, schema)| *schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_owns_a_distinct_fleet_schema() {
        for (service, schema) in SERVICE_SCHEMAS {
            assert_eq!(schema_for_service(service), Some(schema));
            assert!(FLEET_SCHEMAS.contains(&schema));
        }
        let mut schemas: Vec<_> = SERVICE_SCHEMAS.iter().map(|(_, s)| *s).collect();
        schemas.sort_unstable();
        schemas.dedup();
        assert_eq!(schemas.len(), FLEET_SCHEMAS.len());
        assert_eq!(schema_for_service("unknown"), None);
    }
}
