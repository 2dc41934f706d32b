//! The plugins of the microkernel: one file per way of reaching a business,
//! each behind the one [`Plugin`] trait, registered in [`Plugins::standard`].
//!
//! Adding an integration is one new file here (a type implementing
//! [`Plugin`]: its name, whether a part is placed on arrival or by a durable
//! delivery, how its configuration is checked, the delivery itself, and how
//! a withdrawn part is called back) plus
//! one `.register(...)` line in [`Plugins::standard`]. The core
//! (`fulfillment`, `delivery`) does the rest: storing the part, retrying a
//! delivery with backoff, declining a part its plugin could not place, and
//! publishing every event.
//!
//! A plugin's wire types (what it sends, its configuration's shape) stay in
//! its file.

pub mod email;
pub mod portal;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use async_trait::async_trait;
use job_queue::Clock;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::Dispatch;
use crate::links::LinkSigner;
use crate::settings::Settings;
use crate::store;

/// The plugin of a business that configured none.
pub const DEFAULT_PLUGIN: &str = portal::NAME;

/// When a part counts as placed at its business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The moment it is stored: the business pulls it (`portal`).
    OnArrival,
    /// Once [`Plugin::deliver`] succeeds, which a durable job calls outside
    /// the consumer's transaction and retries.
    Delivery,
}

/// A business's configuration that its plugin refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

/// The business has the part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivered {
    /// The business's own reference, when its answer gave one.
    pub reference: Option<String>,
}

/// Why a delivery failed, which decides whether it is tried again.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// May pass next time: a 5xx, a timeout, a refused connection.
    #[error("{0:#}")]
    Retryable(anyhow::Error),
    /// Will fail again: the business refused the part (4xx), or its
    /// configuration cannot work.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
}

/// One way of reaching businesses.
#[async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The name businesses are configured with (`PUT .../integrations/{id}`).
    fn name(&self) -> &'static str;

    fn placement(&self) -> Placement;

    /// Checks a business's configuration and returns it as it is stored.
    fn check_config(&self, config: &Value) -> Result<Value, InvalidConfig>;

    /// The configuration as an admin reads it back; secrets left out.
    fn shown_config(&self, config: &Value) -> Value {
        config.clone()
    }

    /// Places `part` at its business. Runs outside any transaction, at least
    /// once per part: the business tells repeats apart by `dispatch_id`.
    async fn deliver(&self, part: &Dispatch, config: &Value) -> Result<Delivered, DeliveryError>;

    /// Tells the business that a part it has was withdrawn (the customer
    /// cancelled), from a durable job retried like a delivery. Nothing by
    /// default: a business that pulls its parts sees the status.
    async fn withdraw(&self, _part: &Dispatch, _config: &Value) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// The registered plugins, by name.
#[derive(Clone, Default)]
pub struct Plugins {
    by_name: BTreeMap<&'static str, Arc<dyn Plugin>>,
}

impl Plugins {
    /// Every plugin the dispatcher ships; register a new one here.
    pub fn standard(
        settings: &Settings,
        links: LinkSigner,
        mailer: mail::Mailer,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Plugins::default()
            .register(portal::Portal)
            .register(webhook::Webhook::new(&settings.webhook))
            .register(email::Email::new(
                links,
                mailer,
                clock,
                &settings.public_base_url,
            ))
    }

    /// Adds `plugin`; a second plugin of one name replaces nothing and is a
    /// programming mistake, caught at start-up.
    ///
    /// # Panics
    /// When a plugin of that name is registered already.
    pub fn register(mut self, plugin: impl Plugin) -> Self {
        let name = plugin.name();
        let previous = self.by_name.insert(name, Arc::new(plugin));
        assert!(
            previous.is_none(),
            "two dispatcher plugins are named {name}"
        );
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Plugin>> {
        self.by_name.get(name)
    }

    /// The names, for messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.by_name.keys().copied().collect()
    }

    /// The business's plugin and its configuration; `portal` when it chose none.
    pub async fn for_business(
        &self,
        conn: &mut PgConnection,
        business_id: Uuid,
    ) -> anyhow::Result<(Arc<dyn Plugin>, Value)> {
        let integration = store::integration(conn, business_id)
            .await
            .with_context(|| format!("failed to read business {business_id}'s integration"))?;
        let (name, config) = match integration {
            Some(row) => (row.plugin, row.config),
            None => (DEFAULT_PLUGIN.to_owned(), Value::Object(Default::default())),
        };
        let plugin = self.get(&name).with_context(|| {
            format!("business {business_id} is configured with plugin {name:?}, which is not registered")
        })?;
        Ok((Arc::clone(plugin), config))
    }
}
