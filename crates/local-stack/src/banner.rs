//! The text printed once the fleet is ready: where everything is and how to
//! call it.
//!
//! Scripts and tests read it too, so a few lines have a fixed shape, each on
//! a line of its own: `HEYBLUE_JWT_SECRET=<secret>`, `KAFKA_BOOTSTRAP=<host:port>`
//! and, last, [`READY_LINE`]; a demo token's line is `<role> user_id=<id>
//! [business_id=<id>] token=<token>`.

use crate::seed::{DemoToken, SeedReport, DEMO_OFFERINGS};

/// The banner's last line; whoever waits for the fleet waits for it.
pub const READY_LINE: &str = "heyblue fleet ready";

/// What the banner shows.
#[derive(Debug)]
pub struct Banner<'a> {
    /// `(process, port)` for every process: a service, or a further
    /// replica of one (`order-2`).
    pub services: Vec<(String, u16)>,
    pub tokens: &'a [DemoToken],
    pub token_days: u64,
    pub jwt_secret: &'a str,
    pub kafka_bootstrap: &'a str,
    /// Where the database is, already free of any password.
    pub database: &'a str,
    /// Where the services' emails go, already free of any password.
    pub emails: &'a str,
    /// What seeding left in place and what it could not do.
    pub seeded: &'a SeedReport,
}

impl Banner<'_> {
    /// The banner, one string per line.
    pub fn lines(&self) -> Vec<String> {
        let width = self
            .services
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0);
        let mut lines = vec![String::new(), "Hey, Blue! fleet".to_owned()];
        lines.extend(
            self.services
                .iter()
                .map(|(name, port)| format!("  {name:<width$}  http://127.0.0.1:{port}")),
        );
        lines.push(format!("  {:<width$}  {}", "postgres", self.database));
        lines.push(format!("  {:<width$}  {}", "emails", self.emails));
        lines.push(String::new());
        lines.extend(self.shop_lines());
        if let Some((_, port)) = self
            .services
            .iter()
            .find(|(name, _)| name == fleet::WEBSHOP.name)
        {
            lines.push(String::new());
            lines.push(format!(
                "shop: open http://127.0.0.1:{port}/ and sign in at http://127.0.0.1:{port}/sign-in as any demo user below"
            ));
        }
        lines.push(String::new());
        lines.push(format!(
            "demo tokens (HS256, valid {} days; send as Authorization: Bearer <token>):",
            self.token_days
        ));
        for demo in self.tokens {
            let business = demo
                .user
                .business_id
                .map(|id| format!(" business_id={id}"))
                .unwrap_or_default();
            lines.push(format!(
                "  {:<8} user_id={}{business} token={}",
                demo.user.role.as_str(),
                demo.user.id,
                demo.token
            ));
        }
        if !self.seeded.warnings.is_empty() {
            lines.push(String::new());
            lines.push("seeding warnings:".to_owned());
            lines.extend(self.seeded.warnings.iter().map(|w| format!("  {w}")));
        }
        if !self.seeded.failures.is_empty() {
            lines.push(String::new());
            lines.push(
                "seeding FAILED (the fleet runs; a restart seeds what is missing):".to_owned(),
            );
            lines.extend(self.seeded.failures.iter().map(|f| format!("  {f}")));
        }
        lines.push(String::new());
        lines.push(format!("HEYBLUE_JWT_SECRET={}", self.jwt_secret));
        lines.push(format!("KAFKA_BOOTSTRAP={}", self.kafka_bootstrap));
        lines.push(String::new());
        lines.push("Ctrl-C stops everything.".to_owned());
        lines.push(READY_LINE.to_owned());
        lines
    }

    /// The seeded businesses with their ids and offerings, and the charity.
    fn shop_lines(&self) -> Vec<String> {
        let businesses = &self.seeded.businesses;
        let listed: usize = businesses.iter().map(|b| b.offerings).sum();
        let created: usize = businesses.iter().map(|b| b.created).sum();
        let mut lines = vec![format!(
            "demo shop: {} businesses, {listed} of the {} demo offerings ({created} added now); GET /v1/offerings on catalog lists them",
            businesses.len(),
            DEMO_OFFERINGS.len(),
        )];
        let width = businesses
            .iter()
            .map(|b| b.business.name.len())
            .max()
            .unwrap_or(0);
        lines.extend(businesses.iter().map(|seeded| {
            format!(
                "  {:<width$}  business_id={}  {} offerings",
                seeded.business.name, seeded.id, seeded.offerings
            )
        }));
        match &self.seeded.charity {
            Some(charity) => lines.push(format!(
                "  charity {:?} registered for donations, charity_id={}",
                charity.name, charity.charity_id
            )),
            None => lines.push("  no charity registered for donations".to_owned()),
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::seed::{demo_tokens, SeededBusiness, DEMO_BUSINESSES, DEMO_CHARITY};

    fn seeded() -> SeedReport {
        SeedReport {
            businesses: vec![
                SeededBusiness {
                    business: &DEMO_BUSINESSES[0],
                    id: Uuid::from_u128(0xb1),
                    offerings: 6,
                    created: 6,
                },
                SeededBusiness {
                    business: &DEMO_BUSINESSES[1],
                    id: Uuid::from_u128(0xb2),
                    offerings: 5,
                    created: 0,
                },
            ],
            charity: Some(DEMO_CHARITY),
            warnings: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn banner_lines(seeded: &SeedReport) -> Vec<String> {
        let tokens = demo_tokens("secret", &seeded.businesses);
        Banner {
            services: vec![
                ("webshop".to_owned(), 8080),
                ("catalog".to_owned(), 8081),
                ("payment-gateway".to_owned(), 8085),
            ],
            tokens: &tokens,
            token_days: 30,
            jwt_secret: "secret",
            kafka_bootstrap: "127.0.0.1:39092",
            database: "postgres://postgres@127.0.0.1:5999/heyblue",
            emails: ".eml files in /srv/heyblue/.local/mail",
            seeded,
        }
        .lines()
    }

    #[test]
    fn secret_and_bootstrap_stand_on_lines_of_their_own_and_ready_comes_last() {
        let lines = banner_lines(&seeded());
        assert!(lines.iter().any(|l| l == "HEYBLUE_JWT_SECRET=secret"));
        assert!(lines.iter().any(|l| l == "KAFKA_BOOTSTRAP=127.0.0.1:39092"));
        assert_eq!(lines.last().map(String::as_str), Some(READY_LINE));
    }

    #[test]
    fn every_service_url_is_listed_with_aligned_names() {
        let lines = banner_lines(&seeded());
        assert!(lines.contains(&"  catalog          http://127.0.0.1:8081".to_owned()));
        assert!(lines.contains(&"  payment-gateway  http://127.0.0.1:8085".to_owned()));
    }

    #[test]
    fn the_webshop_comes_first_with_its_sign_in_page() {
        let lines = banner_lines(&seeded());
        let first_url = lines.iter().find(|l| l.contains("http://")).expect("a URL");
        assert!(first_url.trim_start().starts_with("webshop "), "{lines:#?}");
        assert!(lines
            .iter()
            .any(|l| l.contains("sign in at http://127.0.0.1:8080/sign-in")));
    }

    #[test]
    fn the_banner_says_where_emails_go() {
        let lines = banner_lines(&seeded());
        assert!(
            lines.contains(&"  emails           .eml files in /srv/heyblue/.local/mail".to_owned()),
            "{lines:#?}"
        );
    }

    #[test]
    fn one_token_line_per_user_and_each_business_owner_acts_for_its_business() {
        let seeded = seeded();
        let lines = banner_lines(&seeded);
        for demo in demo_tokens("secret", &seeded.businesses) {
            let role = demo.user.role.as_str();
            let line = lines
                .iter()
                .find(|l| {
                    l.trim_start().starts_with(&format!("{role} "))
                        && l.contains(&format!("user_id={}", demo.user.id))
                })
                .unwrap_or_else(|| panic!("no line for {role} {}", demo.user.id));
            assert!(line.contains(&format!(" token={}", demo.token)), "{line}");
            if let Some(business_id) = demo.user.business_id {
                assert!(
                    line.contains(&format!("business_id={business_id} ")),
                    "{line}"
                );
            }
        }
        let business_lines = lines
            .iter()
            .filter(|l| l.trim_start().starts_with("business "))
            .count();
        assert_eq!(business_lines, 2);
    }

    #[test]
    fn the_shop_shows_each_business_with_its_id_and_offerings_and_the_charity() {
        let lines = banner_lines(&seeded());
        assert!(
            lines.iter().any(|l| l
                .starts_with("demo shop: 2 businesses, 11 of the 12 demo offerings (6 added now)")),
            "{lines:#?}"
        );
        let roaster = lines
            .iter()
            .find(|l| l.contains(DEMO_BUSINESSES[0].name))
            .expect("the roaster's line");
        assert!(roaster.contains(&format!("business_id={}", Uuid::from_u128(0xb1))));
        assert!(roaster.ends_with("6 offerings"));
        assert!(lines.iter().any(|l| l.contains(DEMO_CHARITY.name)
            && l.contains(&format!("charity_id={}", DEMO_CHARITY.charity_id))));
    }

    #[test]
    fn warnings_and_failures_are_shown_apart_before_the_ready_line() {
        let mut seeded = seeded();
        seeded.charity = None;
        seeded.warnings = vec!["catalog does not take businesses yet".to_owned()];
        seeded.failures = vec!["POST /v1/points/charities answered 500".to_owned()];
        let lines = banner_lines(&seeded);
        let position = |text: &str| {
            lines
                .iter()
                .position(|l| l.contains(text))
                .unwrap_or_else(|| panic!("{text:?} not shown"))
        };
        assert!(position("seeding warnings:") < position("does not take businesses yet"));
        assert!(position("seeding FAILED") < position("answered 500"));
        assert!(position("answered 500") < lines.len() - 1);
        assert!(lines
            .iter()
            .any(|l| l == "  no charity registered for donations"));
    }
}
