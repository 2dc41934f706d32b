//! What every HTTP service of the fleet shares, and nothing else:
//!
//! - [`config`]: typed settings from the environment, errors naming the variable;
//! - [`telemetry`]: the tracing subscriber;
//! - [`problem`]: RFC 9457 error bodies and extractors whose rejections are problems;
//! - [`auth`]: bearer-token verification and the [`AuthUser`] extractor;
//! - [`idempotency`]: the `Idempotency-Key` rules of DESIGN §2, stored in the service's schema;
//! - [`server`]: the shared middleware stack, the operational endpoints, the
//!   OpenAPI builder, and serving with graceful shutdown.
//!
//! Domain rules, persistence and messaging live elsewhere.

pub mod auth;
pub mod config;
pub mod idempotency;
pub mod problem;
pub mod server;
pub mod telemetry;

pub use auth::{mint_hs256, AuthUser, Authenticator, Claims, Role};
pub use config::{env_or, env_required, env_secret, AuthConfig, ConfigError, HttpConfig};
pub use problem::{Json, Path, Problem, Query};
pub use server::{
    layered, serve, shutdown_on_signals, CommonRoutes, OpenApi, Operation, ReadinessCheck,
};
pub use telemetry::init_tracing;
