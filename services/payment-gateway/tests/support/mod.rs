//! Local servers that speak the payment providers' wire formats, and the
//! gateway itself started for a test.
//!
//! They stand in for Stripe and PayPal, not for our services: their routes
//! are the providers' paths, undocumented by us, so the rule that a
//! service's routes come with OpenAPI documentation does not apply.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)] // each test binary uses its own share of these

pub mod gateway;

pub mod paypal;
pub mod stripe;
