//! `webhook`: each part is POSTed as JSON to the business's URL, signed with
//! the business's secret; the business answers later by POSTing, signed the
//! same way, to `POST /v1/dispatch/webhooks/{business_id}`.
//!
//! Signature, both directions: headers `Heyblue-Timestamp` (Unix seconds)
//! and `Heyblue-Signature: v1=<hex>`, where `<hex>` is HMAC-SHA256 with the
//! business's secret over `{timestamp}.{body}`. Outbound calls also carry
//! `Heyblue-Dispatch-Id`, the same on every retry, so the business can drop
//! repeats, and `Heyblue-Event`: `part_placed` (the part, to fulfil) or
//! `part_withdrawn` (the customer cancelled; do not fulfil it). A 2xx places the part (a JSON body may give `{"reference"}`); a
//! 5xx, a timeout or a connection error is retried by the core; any other
//! answer is a refusal.

use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use shared_events::{Address, Line};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Delivered, DeliveryError, InvalidConfig, Placement, Plugin};
use crate::domain::Dispatch;
use crate::settings::WebhookSettings;

pub const NAME: &str = "webhook";

pub const DISPATCH_ID_HEADER: &str = "heyblue-dispatch-id";
/// What the POST is about: [`EVENT_PLACED`] or [`EVENT_WITHDRAWN`].
pub const EVENT_HEADER: &str = "heyblue-event";
pub const EVENT_PLACED: &str = "part_placed";
pub const EVENT_WITHDRAWN: &str = "part_withdrawn";
pub const TIMESTAMP_HEADER: &str = "heyblue-timestamp";
pub const SIGNATURE_HEADER: &str = "heyblue-signature";

/// A secret shorter than this is too easy to guess.
const MIN_SECRET_LEN: usize = 16;

/// A business's webhook configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where parts are POSTed (http or https).
    pub url: String,
    /// Signs both directions; at least 16 characters.
    pub secret: String,
}

impl WebhookConfig {
    pub fn parse(config: &Value) -> Result<Self, InvalidConfig> {
        let config = WebhookConfig::deserialize(config).map_err(|error| {
            InvalidConfig(format!(
                "the webhook plugin takes {{\"url\", \"secret\"}}: {error}"
            ))
        })?;
        let url = reqwest::Url::parse(&config.url)
            .map_err(|error| InvalidConfig(format!("url is not a URL: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(InvalidConfig(
                "url must be an http(s) URL with a host".to_owned(),
            ));
        }
        if config.secret.chars().count() < MIN_SECRET_LEN {
            return Err(InvalidConfig(format!(
                "secret must be at least {MIN_SECRET_LEN} characters"
            )));
        }
        Ok(config)
    }
}

/// What a business receives for each part.
#[derive(Debug, Serialize)]
pub struct PartMessage<'a> {
    pub dispatch_id: Uuid,
    pub order_id: Uuid,
    pub business_id: Uuid,
    pub lines: &'a [Line],
    pub shipping_address: &'a Address,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a business receives when a part it has was withdrawn (the customer
/// cancelled): it must not be fulfilled.
#[derive(Debug, Serialize)]
pub struct WithdrawnMessage {
    pub dispatch_id: Uuid,
    pub order_id: Uuid,
    pub business_id: Uuid,
}

#[derive(Debug, Default, Deserialize)]
struct Answer {
    reference: Option<String>,
}

/// `v1=<hex HMAC-SHA256 over "{timestamp}.{body}">`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why an inbound signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing or malformed")]
    Missing(&'static str),
    #[error("the timestamp is too far from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks the headers of a signed request against `body` and the secret.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let timestamp: i64 = timestamp
        .and_then(|raw| raw.trim().parse().ok())
        .ok_or(SignatureError::Missing(TIMESTAMP_HEADER))?;
    let hex_signature = signature
        .and_then(|raw| raw.trim().strip_prefix("v1="))
        .and_then(|hex_part| hex::decode(hex_part).ok())
        .ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
    let age = (now.unix_timestamp() - timestamp).unsigned_abs();
    if age > tolerance.as_secs() {
        return Err(SignatureError::Stale);
    }
    // `verify_slice` compares in constant time.
    mac(secret, timestamp, body)
        .verify_slice(&hex_signature)
        .map_err(|_| SignatureError::Mismatch)
}

pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(settings: &WebhookSettings) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Webhook { client }
    }
}

#[async_trait]
impl Plugin for Webhook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn placement(&self) -> Placement {
        Placement::Delivery
    }

    fn check_config(&self, config: &Value) -> Result<Value, InvalidConfig> {
        let config = WebhookConfig::parse(config)?;
        serde_json::to_value(config).map_err(|error| InvalidConfig(error.to_string()))
    }

    fn shown_config(&self, config: &Value) -> Value {
        let mut shown = config.clone();
        if let Some(fields) = shown.as_object_mut() {
            fields.remove("secret");
        }
        shown
    }

    async fn deliver(&self, part: &Dispatch, config: &Value) -> Result<Delivered, DeliveryError> {
        let message = PartMessage {
            dispatch_id: part.dispatch_id,
            order_id: part.order_id,
            business_id: part.business_id,
            lines: &part.lines,
            shipping_address: &part.shipping_address,
            created_at: part.created_at,
        };
        let response = self.post(part, config, EVENT_PLACED, &message).await?;
        // The answer's body is optional; one that is not ours is ignored.
        let answer: Answer = response.json().await.unwrap_or_default();
        Ok(Delivered {
            reference: answer.reference,
        })
    }

    async fn withdraw(&self, part: &Dispatch, config: &Value) -> Result<(), DeliveryError> {
        let message = WithdrawnMessage {
            dispatch_id: part.dispatch_id,
            order_id: part.order_id,
            business_id: part.business_id,
        };
        self.post(part, config, EVENT_WITHDRAWN, &message).await?;
        Ok(())
    }
}

impl Webhook {
    /// POSTs `message` about `part`, signed; a 2xx answer is success.
    async fn post(
        &self,
        part: &Dispatch,
        config: &Value,
        event: &'static str,
        message: &impl Serialize,
    ) -> Result<reqwest::Response, DeliveryError> {
        let config = WebhookConfig::parse(config).map_err(|error| {
            DeliveryError::Permanent(anyhow!("bad webhook configuration: {error}"))
        })?;
        let body = serde_json::to_vec(message)
            .context("failed to encode the message")
            .map_err(DeliveryError::Permanent)?;
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let response = self
            .client
            .post(&config.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, event)
            .header(DISPATCH_ID_HEADER, part.dispatch_id.to_string())
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, sign(&config.secret, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|error| {
                // Timeouts and connection errors may pass next time.
                DeliveryError::Retryable(
                    anyhow::Error::new(error).context(format!("POST {} failed", config.url)),
                )
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let error = anyhow!("POST {} answered {status}", config.url);
        if status.is_server_error() {
            Err(DeliveryError::Retryable(error))
        } else {
            Err(DeliveryError::Permanent(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-secret-of-some-length";

    #[test]
    fn a_signature_verifies_only_for_its_body_secret_and_time() {
        let now = OffsetDateTime::now_utc();
        let ts = now.unix_timestamp();
        let signature = sign(SECRET, ts, b"{}");
        let tolerance = Duration::from_secs(300);
        let check = |secret: &str, ts: i64, sig: &str, body: &[u8]| {
            verify(
                secret,
                Some(&ts.to_string()),
                Some(sig),
                body,
                now,
                tolerance,
            )
        };
        assert_eq!(check(SECRET, ts, &signature, b"{}"), Ok(()));
        assert_eq!(
            check(SECRET, ts, &signature, b"{ }"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("another-secret-entirely", ts, &signature, b"{}"),
            Err(SignatureError::Mismatch)
        );
        let old = ts - 301;
        assert_eq!(
            check(SECRET, old, &sign(SECRET, old, b"{}"), b"{}"),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, None, Some(&signature), b"{}", now, tolerance),
            Err(SignatureError::Missing(TIMESTAMP_HEADER))
        );
    }

    #[test]
    fn a_config_needs_an_http_url_and_a_long_secret() {
        let ok = serde_json::json!({"url": "https://shop.example/orders", "secret": SECRET});
        assert!(WebhookConfig::parse(&ok).is_ok());
        for bad in [
            serde_json::json!({"url": "ftp://shop.example", "secret": SECRET}),
            serde_json::json!({"url": "https://shop.example", "secret": "short"}),
            serde_json::json!({"url": "https://shop.example"}),
            serde_json::json!({"url": "https://shop.example", "secret": SECRET, "extra": 1}),
        ] {
            assert!(WebhookConfig::parse(&bad).is_err(), "{bad}");
        }
    }
}
