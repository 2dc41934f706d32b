//! http-service
