//! A private PostgreSQL cluster and the per-service databases roles.
//!
//! The fleet keeps one database (`heyblue`) with one schema per service, and
//! each service logs in as a role that can touch only its own schema. This
//! crate builds exactly that, and keeps it within reach:
//!
//! - [`PgCluster`] runs a throw-away or project-local PostgreSQL server from
//!   the machine's server binaries, for the local stack and for tests, where
//!   no Docker and no system-wide server can be assumed.
//! - [`provision`] creates a database, the roles and the schemas on any server
//!   an admin URL points at (the private cluster or `DATABASE_URL`).
//! - [`server_can_enter`] and [`server_temp_dir`] keep a cluster where the
//!   OS user running the server (`postgres`, when we are root) can reach it.
//!
//! Which schemas the fleet has is the roster's business (crate `fleet`).

mod cluster;
mod provision;
mod server_user;

pub use cluster::{restart, ClusterOptions, PgCluster};
pub use provision::{provision, role_password, Provisioned};
pub use server_user::{server_can_enter, server_temp_dir};
