//! pg-cluster
