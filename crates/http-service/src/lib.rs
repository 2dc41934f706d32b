//! What every HTTP service of the fleet shares, and nothing else:
//!
//! - [`config`]: typed settings from the environment, errors naming the variable;
//! - [`telemetry`]: the tracing subscriber;
//! - [`problem`]: RFC 9457 error bodies and extractors whose rejections are problems;
//! - [`error`]: a service's error table (status and stable code per variant)
//!   and the database constraints that mean client errors;
//! - [`pagination`]: `?limit=&cursor=` lists answering `{items, next_cursor}`;
//! - [`auth`]: bearer-token verification and the [`AuthUser`] extractor;
//! - [`idempotency`]: the `Idempotency-Key` rules of DESIGN §2, stored in the service's schema;
//! - [`server`]: the shared middleware stack (with the concurrency cap, the
//!   request timeout and the security headers), the operational endpoints,
//!   the OpenAPI document generated from the handlers, and serving with
//!   graceful shutdown;
//! - [`testing`]: the check every service's tests run on its router and document.
//!
//! Domain rules, persistence and messaging live elsewhere.

pub mod auth;
pub mod config;
pub mod error;
pub mod idempotency;
pub mod pagination;
pub mod problem;
pub mod server;
pub mod telemetry;
pub mod testing;

/// What [`error_table!`] expands to refers to; not for direct use.
#[doc(hidden)]
pub mod __private {
    pub use axum::http::StatusCode;
    pub use axum::response::{IntoResponse, Response};
}

/// utoipa's axum router and its `routes!`, so services name one version.
pub use utoipa_axum::{router::OpenApiRouter, routes};

pub use auth::{mint_hs256, AuthUser, Authenticator, Claims, Role};
pub use config::{
    env_millis, env_or, env_required, env_secret, AuthConfig, ConfigError, HttpConfig,
};
pub use error::{ErrorTable, ProblemCode};
pub use pagination::{Page, PageRequest};
pub use problem::{Json, Path, Problem, Query};
pub use server::{
    layered, serve, serve_with_config, service_api, shutdown_on_signals, CommonRoutes,
    ReadinessCheck,
};
pub use telemetry::init_tracing;
