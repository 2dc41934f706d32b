//! The text printed once the fleet is ready: where everything is and how to
//! call it.
//!
//! Scripts and tests read it too, so a few lines have a fixed shape, each on
//! a line of its own: `HEYBLUE_JWT_SECRET=<secret>`, `KAFKA_BOOTSTRAP=<host:port>`
//! and, last, [`READY_LINE`].

use crate::seed::DemoToken;

/// The banner's last line; whoever waits for the fleet waits for it.
pub const READY_LINE: &str = "heyblue fleet ready";

/// What the banner shows.
#[derive(Debug)]
pub struct Banner<'a> {
    /// `(service, port)` for every service.
    pub services: Vec<(&'static str, u16)>,
    pub tokens: &'a [DemoToken],
    pub token_days: u64,
    pub jwt_secret: &'a str,
    pub kafka_bootstrap: &'a str,
    /// Where the database is, already free of any password.
    pub database: &'a str,
    pub warnings: &'a [String],
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
        if !self.warnings.is_empty() {
            lines.push(String::new());
            lines.push("seeding warnings:".to_owned());
            lines.extend(self.warnings.iter().map(|w| format!("  {w}")));
        }
        lines.push(String::new());
        lines.push(format!("HEYBLUE_JWT_SECRET={}", self.jwt_secret));
        lines.push(format!("KAFKA_BOOTSTRAP={}", self.kafka_bootstrap));
        lines.push(String::new());
        lines.push("Ctrl-C stops everything.".to_owned());
        lines.push(READY_LINE.to_owned());
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::{demo_tokens, DEMO_BUSINESS_ID};

    fn banner_lines(warnings: &[String]) -> Vec<String> {
        let tokens = demo_tokens("secret");
        Banner {
            services: vec![("catalog", 8081), ("payment-gateway", 8085)],
            tokens: &tokens,
            token_days: 30,
            jwt_secret: "secret",
            kafka_bootstrap: "127.0.0.1:39092",
            database: "postgres://postgres@127.0.0.1:5999/heyblue",
            warnings,
        }
        .lines()
    }

    #[test]
    fn secret_and_bootstrap_stand_on_lines_of_their_own_and_ready_comes_last() {
        let lines = banner_lines(&[]);
        assert!(lines.iter().any(|l| l == "HEYBLUE_JWT_SECRET=secret"));
        assert!(lines.iter().any(|l| l == "KAFKA_BOOTSTRAP=127.0.0.1:39092"));
        assert_eq!(lines.last().map(String::as_str), Some(READY_LINE));
    }

    #[test]
    fn every_service_url_is_listed_with_aligned_names() {
        let lines = banner_lines(&[]);
        assert!(lines.contains(&"  catalog          http://127.0.0.1:8081".to_owned()));
        assert!(lines.contains(&"  payment-gateway  http://127.0.0.1:8085".to_owned()));
    }

    #[test]
    fn one_token_line_per_role_with_the_user_id() {
        let lines = banner_lines(&[]);
        for demo in demo_tokens("secret") {
            let role = demo.user.role.as_str();
            let line = lines
                .iter()
                .find(|l| l.trim_start().starts_with(&format!("{role} ")))
                .unwrap_or_else(|| panic!("no line for {role}"));
            assert!(line.contains(&format!("user_id={}", demo.user.id)));
            assert!(line.contains(" token=ey"), "{line}");
        }
        assert!(lines
            .iter()
            .any(|l| l.contains(&format!("business_id={DEMO_BUSINESS_ID}"))));
    }

    #[test]
    fn warnings_are_shown_before_the_ready_line() {
        let lines = banner_lines(&["user-points does not take awards yet".to_owned()]);
        let warning = lines
            .iter()
            .position(|l| l.contains("does not take awards yet"))
            .expect("warning shown");
        assert!(warning < lines.len() - 1);
    }
}
