//! The simulator's HTTP API in process, through `kube::Client`: what any Rust program using
//! `playbook-sim` as a fake Kubernetes API sees. (kubectl against `playbook sim serve` is
//! tested from the product's integration tests.)

mod admission;
mod disruption;
mod hooks_and_errors;
mod in_process;
mod versions;
