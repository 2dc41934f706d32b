//! service-host
