//! `PUT/GET /v1/dispatch/integrations/{business_id}` (admin): which plugin
//! places a business's parts, and its configuration, checked by that
//! plugin. A business with none uses `portal`.

use axum::extract::State;
use http_service::auth::{AuthUser, Role};
use http_service::problem::{Json, Path};
use http_service::{routes, OpenApiRouter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ApiError, DispatchState};
use crate::plugins::{Plugin, DEFAULT_PLUGIN};
use crate::store;

pub fn router() -> OpenApiRouter<DispatchState> {
    OpenApiRouter::new().routes(routes!(put, get))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationRequest {
    /// `portal`, `webhook` or `email`.
    plugin: String,
    /// The plugin's own: `{}` for portal, `{url, secret}` for webhook,
    /// `{address}` for email.
    #[serde(default)]
    #[schema(value_type = Object)]
    config: Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationBody {
    pub business_id: Uuid,
    pub plugin: String,
    /// The configuration without its secrets.
    #[schema(value_type = Object)]
    pub config: Value,
    /// Null while the business uses the default.
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

fn body(
    plugin: &dyn Plugin,
    business_id: Uuid,
    config: &Value,
    updated_at: Option<OffsetDateTime>,
) -> IntegrationBody {
    IntegrationBody {
        business_id,
        plugin: plugin.name().to_owned(),
        config: plugin.shown_config(config),
        updated_at,
    }
}

/// Choose the plugin that places a business's parts (admin).
#[utoipa::path(
    put,
    path = "/v1/dispatch/integrations/{business_id}",
    tag = "dispatch",
    params(("business_id" = Uuid, Path, description = "The business")),
    request_body = IntegrationRequest,
    responses(
        (status = OK, description = "Stored; new parts use it", body = IntegrationBody),
        (status = BAD_REQUEST, description = "The body is not JSON"),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not an admin"),
        (status = PAYLOAD_TOO_LARGE),
        (status = UNPROCESSABLE_ENTITY, description = "Unknown plugin, or a configuration it refuses"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %business_id))]
async fn put(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(business_id): Path<Uuid>,
    Json(request): Json<IntegrationRequest>,
) -> Result<Json<IntegrationBody>, ApiError> {
    caller.require_role(&[Role::Admin])?;
    let plugin = state
        .plugins
        .get(&request.plugin)
        .ok_or_else(|| ApiError::UnknownPlugin(request.plugin.clone()))?;
    let config = plugin.check_config(&request.config)?;
    let now = state.service.clock.now();
    let mut conn = state.service.pool.acquire().await?;
    let row = store::put_integration(&mut conn, business_id, plugin.name(), &config, now).await?;
    Ok(Json(body(
        plugin.as_ref(),
        business_id,
        &row.config,
        Some(row.updated_at),
    )))
}

/// The plugin that places a business's parts (admin).
#[utoipa::path(
    get,
    path = "/v1/dispatch/integrations/{business_id}",
    tag = "dispatch",
    params(("business_id" = Uuid, Path, description = "The business")),
    responses(
        (status = OK, description = "The business's integration, or the default", body = IntegrationBody),
        (status = UNAUTHORIZED),
        (status = FORBIDDEN, description = "Not an admin"),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %caller.id(), %business_id))]
async fn get(
    caller: AuthUser,
    State(state): State<DispatchState>,
    Path(business_id): Path<Uuid>,
) -> Result<Json<IntegrationBody>, ApiError> {
    caller.require_role(&[Role::Admin])?;
    let mut conn = state.service.pool.acquire().await?;
    let row = store::integration(&mut conn, business_id).await?;
    let (name, config, updated_at) = match row {
        Some(row) => (row.plugin, row.config, Some(row.updated_at)),
        None => (
            DEFAULT_PLUGIN.to_owned(),
            Value::Object(Default::default()),
            None,
        ),
    };
    let plugin = state.plugins.get(&name).ok_or_else(|| {
        anyhow::anyhow!("business {business_id} uses plugin {name:?}, which is not registered")
    })?;
    Ok(Json(body(
        plugin.as_ref(),
        business_id,
        &config,
        updated_at,
    )))
}
