//! `playbook`: chaos experiments on Kubernetes MLOps platforms as short Rhai playbooks.
//!
//! # Layout
//! - [`cli`]: the command line (clap), one struct per subcommand.
//! - `engine`: the one Rhai engine constructor shared by runner, checker and REPL;
//!   diagnostics (file:line:col with a caret), static checks, the doc reference.
//! - `sim`: the simulated Kubernetes cluster that speaks the real HTTP API.
//!
//! The binary (`src/main.rs`) only parses the command line and maps outcomes to exit codes.

pub mod cli;
pub mod sim;
