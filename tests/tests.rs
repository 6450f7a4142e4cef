//! The one integration test binary: a module per area, driving the real `playbook` binary
//! (and kubectl against `playbook sim serve`).

mod api_faults;
mod cli;
mod coord;
mod deploy;
mod host;
mod hostile;
mod image;
mod inprocess;
mod layering;
mod mlops;
mod observe;
mod platform;
mod playbooks;
mod repl;
mod report;
mod signals;
mod sim_api;
mod support;
mod verdicts;
