//! Calls from one service of the fleet to another (DESIGN §1: checkout to
//! catalog, cart, user-points and payment-gateway; order to the dispatcher;
//! the webshop to everyone).
//!
//! - [`token`]: the `service` bearer token every call carries, minted with
//!   the HS256 secret or obtained by OAuth2 client credentials, cached;
//! - [`client`]: [`ServiceClient`], JSON calls to one peer with a timeout,
//!   passing on the trace context and request id;
//! - [`error`]: [`CallError`], which keeps a peer's 4xx problem and turns a
//!   peer that cannot answer into `503 dependency_unavailable`.
//!
//! A service builds one [`TokenSource`] at start-up and one client per peer:
//!
//! ```ignore
//! let tokens = TokenSource::from_env("checkout", &auth_config)?;
//! let catalog = ServiceClient::from_env("catalog", "HEYBLUE_CATALOG_URL", tokens.clone())?;
//! let offering: OfferingBody = catalog.get(&format!("/v1/offerings/{id}")).await?;
//! ```

pub mod client;
pub mod error;
pub mod token;

pub use client::{Call, Reply, ServiceClient, DEFAULT_TIMEOUT, IDEMPOTENCY_KEY_HEADER};
pub use error::{CallError, Unavailable, DEPENDENCY_UNAVAILABLE};
pub use token::{service_subject, AccessToken, ClientCredentials, TokenError, TokenSource};
