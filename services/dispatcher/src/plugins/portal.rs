//! `portal`, the default: the business pulls its parts from
//! `GET /v1/dispatch/businesses/{business_id}/orders` and answers through the
//! API. A part is placed the moment it enters that queue.

use async_trait::async_trait;
use serde_json::Value;

use super::{Delivered, DeliveryError, InvalidConfig, Placement, Plugin};
use crate::domain::Dispatch;

pub const NAME: &str = "portal";

pub struct Portal;

#[async_trait]
impl Plugin for Portal {
    fn name(&self) -> &'static str {
        NAME
    }

    fn placement(&self) -> Placement {
        Placement::OnArrival
    }

    /// Nothing to configure: `{}`.
    fn check_config(&self, config: &Value) -> Result<Value, InvalidConfig> {
        match config {
            Value::Object(fields) if fields.is_empty() => Ok(config.clone()),
            Value::Null => Ok(Value::Object(Default::default())),
            _ => Err(InvalidConfig(
                "the portal plugin takes no configuration: send {}".to_owned(),
            )),
        }
    }

    /// A part whose business switched to the portal while its delivery was
    /// pending is in the queue now.
    async fn deliver(&self, _part: &Dispatch, _config: &Value) -> Result<Delivered, DeliveryError> {
        Ok(Delivered::default())
    }
}
