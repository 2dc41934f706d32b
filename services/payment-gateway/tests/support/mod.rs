//! Local servers that speak the payment providers' wire formats, for the
//! provider tests.

pub mod paypal;
pub mod stripe;
