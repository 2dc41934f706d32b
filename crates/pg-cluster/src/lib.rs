//! A private PostgreSQL cluster and the per-service databases roles.
//!
//! The fleet keeps one database (`heyblue`) with one schema per service, and
//! each service logs in as a role that can touch only its own schema. This
//! crate builds exactly that, twice over:
//!
//! - [`PgCluster`] runs a throw-away or project-local PostgreSQL server from
//!   the machine's server binaries, for the local stack and for tests, where
//!   no Docker and no system-wide server can be assumed.
//! - [`provision`] creates a database, the roles and the schemas on any server
//!   an admin URL points at (the private cluster or `DATABASE_URL`).
//!
//! [`fleet`] names the schemas of the eight services.

mod cluster;
pub mod fleet;
mod provision;

pub use cluster::{ClusterOptions, PgCluster};
pub use fleet::{schema_for_service, FLEET_SCHEMAS, SERVICE_SCHEMAS};
pub use provision::{provision, role_password, Provisioned};
