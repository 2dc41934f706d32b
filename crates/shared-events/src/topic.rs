//! The topics of the system: one per producing service, plus a dead-letter
//! twin of each (`<topic>.dlq`).

use std::fmt;

/// A Kafka topic of the system. Services name topics only through this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Checkout,
    Order,
    Payment,
    Catalog,
    Points,
    Dispatch,
    /// Published by the connection capability, outside this system.
    Connection,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Checkout,
        Topic::Order,
        Topic::Payment,
        Topic::Catalog,
        Topic::Points,
        Topic::Dispatch,
        Topic::Connection,
    ];

    /// The topic's name on the broker.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Checkout => "heyblue.checkout.v1",
            Topic::Order => "heyblue.order.v1",
            Topic::Payment => "heyblue.payment.v1",
            Topic::Catalog => "heyblue.catalog.v1",
            Topic::Points => "heyblue.points.v1",
            Topic::Dispatch => "heyblue.dispatch.v1",
            Topic::Connection => "heyblue.connection.v1",
        }
    }

    /// The dead-letter topic for messages a consumer of this topic could not handle.
    pub const fn dlq_name(self) -> &'static str {
        match self {
            Topic::Checkout => "heyblue.checkout.v1.dlq",
            Topic::Order => "heyblue.order.v1.dlq",
            Topic::Payment => "heyblue.payment.v1.dlq",
            Topic::Catalog => "heyblue.catalog.v1.dlq",
            Topic::Points => "heyblue.points.v1.dlq",
            Topic::Dispatch => "heyblue.dispatch.v1.dlq",
            Topic::Connection => "heyblue.connection.v1.dlq",
        }
    }

    /// The topic with this broker name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_round_trips_through_its_name_and_has_a_dead_letter_twin() {
        for topic in Topic::ALL {
            assert_eq!(Topic::from_name(topic.name()), Some(topic));
            assert_eq!(topic.dlq_name(), format!("{}.dlq", topic.name()));
        }
    }
}
