//! One run of one playbook: its id, variables, output, stop conditions, and failures it reports.

mod stop;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use stop::{Stop, StopReason, interrupted};

/// What a playbook says, routed to whoever shows it (console, REPL, report).
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `print(...)` and `log(...)`.
    Print(String),
    /// `debug(...)`, with where it was called.
    Debug(String),
}

/// Where a session's lines go.
pub type Output = Arc<dyn Fn(Line) + Send + Sync>;

/// An output that writes lines to standard output.
pub fn stdout_output() -> Output {
    Arc::new(|line| match line {
        Line::Print(s) => println!("{s}"),
        Line::Debug(s) => println!("[debug] {s}"),
    })
}

/// A failed expectation: the playbook's verdict is "failed" (exit code 1), not "broken".
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
}

/// The state one playbook run shares with its host functions (reached through the engine's tag).
pub struct Session {
    pub run_id: String,
    pub vars: BTreeMap<String, String>,
    pub output: Output,
    pub stop: Stop,
}

impl Session {
    pub fn new(
        run_id: String,
        vars: BTreeMap<String, String>,
        output: Output,
        stop: Stop,
    ) -> Arc<Self> {
        Arc::new(Session {
            run_id,
            vars,
            output,
            stop,
        })
    }
}
