//! The fleet's roster: which services exist, and for each its name (also its
//! crate, binary and compose service), port, PostgreSQL schema (also its
//! login role) and the topic it publishes on (DESIGN §1).
//!
//! Everything else reads the fleet from here: the services' `SPEC`s, the
//! launcher, the tests. The deployment files cannot read Rust, so
//! `tests/deploy_files.rs` checks that `deploy/postgres/init.sql`,
//! `deploy/docker-compose.yml` and `deploy/Dockerfile` name exactly these
//! services, ports and roles, and says which one drifted.
//!
//! A new service is one line in the table below, plus its deployment files.

use shared_events::Topic;

/// The database every service's schema lives in.
pub const DATABASE: &str = "heyblue";

/// One service of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// The service's name: also its crate (`services/<name>`), its binary,
    /// its migrations folder (`migrations/<name>`), its compose service, its
    /// consumer group and the `producer` of its events.
    pub name: &'static str,
    /// Its HTTP port when nothing moves it.
    pub port: u16,
    /// Its PostgreSQL schema, and the login role that owns that schema. It
    /// differs from the name where SQL reads better (`orders`, not the
    /// keyword `order`).
    pub schema: &'static str,
    /// The topics it writes to its outbox.
    pub produces: &'static [Topic],
}

impl Service {
    /// The name of its executable: the same as the service's.
    pub const fn binary(&self) -> &'static str {
        self.name
    }

    /// The variable that tells the other services where this one listens:
    /// `HEYBLUE_USER_POINTS_URL` for `user-points`.
    pub fn url_variable(&self) -> String {
        format!(
            "HEYBLUE_{}_URL",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

/// Declares one constant per service and [`ALL`] listing them in order, so
/// that a service is added in one line.
macro_rules! roster {
    ($($constant:ident => $name:literal, $port:literal, $schema:literal, [$($topic:expr),*];)+) => {
        $(
            #[doc = concat!("`", $name, "`: port ", stringify!($port), ", schema and role `", $schema, "`.")]
            pub const $constant: Service = Service {
                name: $name,
                port: $port,
                schema: $schema,
                produces: &[$($topic),*],
            };
        )+

        /// Every service of the fleet, in port order.
        pub const ALL: &[Service] = &[$($constant),+];
    };
}

roster! {
    // constant     => name               port  schema/role     publishes on
    WEBSHOP         => "webshop",         8080, "webshop",      [];
    CATALOG         => "catalog",         8081, "catalog",      [Topic::Catalog];
    CART            => "cart",            8082, "cart",         [];
    CHECKOUT        => "checkout",        8083, "checkout",     [Topic::Checkout];
    USER_POINTS     => "user-points",     8084, "points",       [Topic::Points];
    PAYMENT_GATEWAY => "payment-gateway", 8085, "payment",      [Topic::Payment];
    ORDER           => "order",           8086, "orders",       [Topic::Order];
    DISPATCHER      => "dispatcher",      8087, "dispatcher",   [Topic::Dispatch];
    NOTIFICATION    => "notification",    8088, "notification", [];
}

/// The service called `name`, if the fleet has one.
pub fn service(name: &str) -> Option<Service> {
    ALL.iter().find(|service| service.name == name).copied()
}

/// Every service's schema (and role), in [`ALL`]'s order.
pub fn schemas() -> Vec<&'static str> {
    ALL.iter().map(|service| service.schema).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_ports_schemas_and_topics_are_each_taken_once() {
        let distinct = |values: Vec<String>| values.iter().collect::<HashSet<_>>().len();
        let all = |field: fn(&Service) -> String| ALL.iter().map(field).collect::<Vec<_>>();
        assert_eq!(distinct(all(|s| s.name.to_owned())), ALL.len());
        assert_eq!(distinct(all(|s| s.port.to_string())), ALL.len());
        assert_eq!(distinct(all(|s| s.schema.to_owned())), ALL.len());
        let topics: Vec<Topic> = ALL
            .iter()
            .flat_map(|s| s.produces.iter().copied())
            .collect();
        assert_eq!(
            topics.iter().collect::<HashSet<_>>().len(),
            topics.len(),
            "a topic has one producer"
        );
    }

    #[test]
    fn ports_ascend_in_roster_order() {
        assert!(ALL.windows(2).all(|pair| pair[0].port < pair[1].port));
    }

    #[test]
    fn a_service_is_found_by_name() {
        assert_eq!(service("user-points"), Some(USER_POINTS));
        assert_eq!(service("user-points").map(|s| s.schema), Some("points"));
        assert_eq!(service("points"), None);
    }

    #[test]
    fn peer_url_variables_are_named_after_the_service() {
        assert_eq!(CATALOG.url_variable(), "HEYBLUE_CATALOG_URL");
        assert_eq!(
            PAYMENT_GATEWAY.url_variable(),
            "HEYBLUE_PAYMENT_GATEWAY_URL"
        );
    }
}
