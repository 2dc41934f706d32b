//! Signed, expiring action links (the email plugin's): each link names one
//! part, one action and its own id, and is signed with the service's link
//! secret, so nothing needs storing until it is used. Using a link records
//! its id (`used_action_links`), which makes it single-use.
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(payload))`, the
//! payload being a small JSON object; a token whose signature does not
//! match was tampered with, and one past its expiry is refused.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    Confirm,
    Decline,
    Shipped,
    Delivered,
}

impl LinkAction {
    pub const ALL: [LinkAction; 4] = [
        LinkAction::Confirm,
        LinkAction::Decline,
        LinkAction::Shipped,
        LinkAction::Delivered,
    ];
}

/// A link whose signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "l")]
    pub link_id: Uuid,
    #[serde(rename = "d")]
    pub dispatch_id: Uuid,
    #[serde(rename = "a")]
    pub action: LinkAction,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is not one this service issued")]
    Tampered,
    #[error("the link has expired")]
    Expired,
}

/// Issues and checks action links.
#[derive(Clone)]
pub struct LinkSigner {
    secret: Arc<SecretString>,
    ttl: Duration,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl LinkSigner {
    pub fn new(secret: SecretString, ttl: Duration) -> Self {
        LinkSigner {
            secret: Arc::new(secret),
            ttl,
        }
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(payload);
        mac
    }

    /// A new link for `action` on the part, working until `now + ttl`.
    pub fn issue(&self, dispatch_id: Uuid, action: LinkAction, now: OffsetDateTime) -> String {
        let link = Link {
            link_id: Uuid::new_v4(),
            dispatch_id,
            action,
            expires_at: (now + self.ttl).unix_timestamp(),
        };
        // A struct of UUIDs, a unit enum and an integer always serializes.
        let payload = serde_json::to_vec(&link).unwrap_or_default();
        let signature = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The link `token` stands for, if this service signed it and it has
    /// not expired. Whether it was used is the store's to say.
    pub fn open(&self, token: &str, now: OffsetDateTime) -> Result<Link, LinkError> {
        let (payload, signature) = token.split_once('.').ok_or(LinkError::Tampered)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Tampered)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Tampered)?;
        self.mac(&payload)
            .verify_slice(&signature)
            .map_err(|_| LinkError::Tampered)?;
        let link: Link = serde_json::from_slice(&payload).map_err(|_| LinkError::Tampered)?;
        if now.unix_timestamp() >= link.expires_at {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secret: &str) -> LinkSigner {
        LinkSigner::new(secret.to_owned().into(), Duration::from_secs(60))
    }

    #[test]
    fn a_link_opens_until_it_expires_and_only_with_its_own_secret() {
        let now = OffsetDateTime::now_utc();
        let dispatch_id = Uuid::new_v4();
        let token = signer("one").issue(dispatch_id, LinkAction::Shipped, now);
        let link = signer("one").open(&token, now).expect("a valid link");
        assert_eq!(
            (link.dispatch_id, link.action),
            (dispatch_id, LinkAction::Shipped)
        );
        assert_eq!(
            signer("one").open(&token, now + Duration::from_secs(60)),
            Err(LinkError::Expired)
        );
        assert_eq!(signer("two").open(&token, now), Err(LinkError::Tampered));
    }

    #[test]
    fn a_changed_link_is_refused() {
        let now = OffsetDateTime::now_utc();
        let token = signer("one").issue(Uuid::new_v4(), LinkAction::Confirm, now);
        let (payload, signature) = token.split_once('.').expect("two halves");
        // Someone swaps the action for another, keeping the signature.
        let mut link: Link =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("json");
        link.action = LinkAction::Decline;
        let forged = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&link).expect("json"))
        );
        assert_eq!(signer("one").open(&forged, now), Err(LinkError::Tampered));
        assert_eq!(signer("one").open("garbage", now), Err(LinkError::Tampered));
    }
}
