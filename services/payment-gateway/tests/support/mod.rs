//! Local servers that speak the payment providers' wire formats, for the
//! provider tests.
//!
//! They stand in for Stripe and PayPal, not for our services: their routes
//! are the providers' paths, undocumented by us, so the rule that a
//! service's routes come with OpenAPI documentation does not apply.
#![allow(clippy::disallowed_methods)]

pub mod paypal;
pub mod stripe;
