//! The one integration test binary: a module per area, driving the real `playbook` binary.

mod cli;
mod platform;
