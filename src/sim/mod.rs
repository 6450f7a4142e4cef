//! The simulated Kubernetes cluster that speaks the real HTTP API.

pub mod schema;
