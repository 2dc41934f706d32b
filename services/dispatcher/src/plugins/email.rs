//! `email`: each part is mailed to the business (through the shared `mail`
//! crate: SMTP when configured, `.eml` files otherwise) with one signed,
//! single-use, expiring link per answer — confirm, decline, shipped,
//! delivered. A link opens `GET /v1/dispatch/actions/{token}`, a page whose
//! button POSTs the answer; opening it changes nothing.
//!
//! A part counts as placed once the mail server accepted the message. A
//! server that refuses for now (4xx) or cannot be reached is retried by the
//! core; one that refuses the message for good declines the part.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::anyhow;
use async_trait::async_trait;
use job_queue::Clock;
use mail::{Email as Message, Mailer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Delivered, DeliveryError, InvalidConfig, Placement, Plugin};
use crate::domain::Dispatch;
use crate::links::{LinkAction, LinkSigner};

pub const NAME: &str = "email";

/// The longest address SMTP carries (RFC 5321).
const MAX_ADDRESS: usize = 254;

/// A business's email configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Where the business receives its parts.
    pub address: String,
}

impl EmailConfig {
    pub fn parse(config: &Value) -> Result<Self, InvalidConfig> {
        let config = EmailConfig::deserialize(config).map_err(|error| {
            InvalidConfig(format!("the email plugin takes {{\"address\"}}: {error}"))
        })?;
        let address = config.address.trim();
        let well_formed = address.len() <= MAX_ADDRESS
            && !address.chars().any(char::is_whitespace)
            && matches!(address.split_once('@'), Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if !well_formed {
            return Err(InvalidConfig(format!(
                "address {address:?} is not an email address"
            )));
        }
        Ok(EmailConfig {
            address: address.to_owned(),
        })
    }
}

pub struct Email {
    links: LinkSigner,
    mailer: Mailer,
    clock: Arc<dyn Clock>,
    /// Where the action pages are reached, without a trailing slash.
    public_base_url: String,
}

impl Email {
    pub fn new(
        links: LinkSigner,
        mailer: Mailer,
        clock: Arc<dyn Clock>,
        public_base_url: &str,
    ) -> Self {
        Email {
            links,
            mailer,
            clock,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn message(&self, part: &Dispatch, to: &str) -> Message {
        let now = self.clock.now();
        let link = |action| {
            format!(
                "{}/v1/dispatch/actions/{}",
                self.public_base_url,
                self.links.issue(part.dispatch_id, action, now)
            )
        };
        let address = &part.shipping_address;
        let mut text = format!(
            "A new order for you to fulfil (order {}, dispatch {}).\n\n",
            part.order_id, part.dispatch_id
        );
        let mut html = format!(
            "<p>A new order for you to fulfil (order {}, dispatch {}).</p><ul>",
            part.order_id, part.dispatch_id
        );
        for line in &part.lines {
            let _ = writeln!(text, "- {} × {}", line.quantity, line.title);
            let _ = write!(html, "<li>{} × {}</li>", line.quantity, escape(&line.title));
        }
        let ship_to = [
            Some(address.name.as_str()),
            Some(address.line1.as_str()),
            address.line2.as_deref(),
            Some(address.postal_code.as_str()),
            Some(address.city.as_str()),
            Some(address.country.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ");
        let _ = write!(text, "\nShip to: {ship_to}\n\n");
        let _ = write!(html, "</ul><p>Ship to: {}</p><ul>", escape(&ship_to));
        for (action, label) in [
            (LinkAction::Confirm, "Confirm the order"),
            (LinkAction::Decline, "Decline the order"),
            (LinkAction::Shipped, "Once confirmed: mark it shipped"),
            (LinkAction::Delivered, "Once shipped: mark it delivered"),
        ] {
            let url = link(action);
            let _ = writeln!(text, "{label}: {url}");
            let _ = write!(html, "<li><a href=\"{url}\">{label}</a></li>");
        }
        text.push_str("\nEach link works once and expires.\n");
        html.push_str("</ul><p>Each link works once and expires.</p>");
        Message::text(to, format!("New order {}", part.order_id), text)
            .with_html(html)
            .with_message_id(format!("{}@dispatch.heyblue", part.dispatch_id))
    }
}

impl Email {
    async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        match self.mailer.send(message).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_permanent() => Err(DeliveryError::Permanent(error.into())),
            Err(error) => Err(DeliveryError::Retryable(error.into())),
        }
    }
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[async_trait]
impl Plugin for Email {
    fn name(&self) -> &'static str {
        NAME
    }

    fn placement(&self) -> Placement {
        Placement::Delivery
    }

    fn check_config(&self, config: &Value) -> Result<Value, InvalidConfig> {
        let config = EmailConfig::parse(config)?;
        serde_json::to_value(config).map_err(|error| InvalidConfig(error.to_string()))
    }

    async fn deliver(&self, part: &Dispatch, config: &Value) -> Result<Delivered, DeliveryError> {
        let config = EmailConfig::parse(config).map_err(|error| {
            DeliveryError::Permanent(anyhow!("bad email configuration: {error}"))
        })?;
        self.send(&self.message(part, &config.address)).await?;
        Ok(Delivered::default())
    }

    async fn withdraw(&self, part: &Dispatch, config: &Value) -> Result<(), DeliveryError> {
        let config = EmailConfig::parse(config).map_err(|error| {
            DeliveryError::Permanent(anyhow!("bad email configuration: {error}"))
        })?;
        let text = format!(
            "The customer cancelled order {} (dispatch {}). Please do not fulfil it; \
             its links no longer work.\n",
            part.order_id, part.dispatch_id
        );
        let message = Message::text(
            config.address,
            format!("Cancelled: order {}", part.order_id),
            text,
        )
        .with_message_id(format!("{}.withdrawn@dispatch.heyblue", part.dispatch_id));
        self.send(&message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_needs_one_plausible_address() {
        assert!(EmailConfig::parse(&serde_json::json!({"address": "orders@shop.example"})).is_ok());
        for bad in [
            serde_json::json!({"address": "orders"}),
            serde_json::json!({"address": "orders@shop"}),
            serde_json::json!({"address": "or ders@shop.example"}),
            serde_json::json!({"address": "a@b@shop.example"}),
            serde_json::json!({}),
        ] {
            assert!(EmailConfig::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape("<b>\"Tea\" & 'cake'</b>"),
            "&lt;b&gt;&quot;Tea&quot; &amp; &#39;cake&#39;&lt;/b&gt;"
        );
    }
}
