//! The one integration test binary: a module per area, driving the real `playbook` binary
//! (and kubectl against `playbook sim serve`).

mod cli;
mod host;
mod platform;
mod playbooks;
mod repl;
mod report;
mod sim_api;
mod verdicts;
