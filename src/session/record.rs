//! What a run observed, kept as data for the console summary and the reports: expectations
//! with their timings and last observed values, faults, records, cleanup steps.

use serde::{Deserialize, Serialize};

/// How an expectation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Could not be evaluated meaningfully (`expect_recovery` never saw the disruption).
    Inconclusive,
}

/// One `expect`, `always` or `steady_state`.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub name: String,
    /// `expect`, `always`, `steady_state` or `steady_state (after cleanup)`.
    pub kind: String,
    /// The time allowed (`expect`) or the window (`always`), in milliseconds.
    pub timeout_ms: u64,
    pub status: Status,
    /// Time from the start of the check until it passed or failed, in milliseconds.
    pub took_ms: u64,
    /// The last value the condition returned besides its verdict.
    pub observed: String,
    /// Where in the playbook (file:line:col).
    pub at: String,
}

/// One fault the run injected.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub selected: Vec<String>,
    /// Seconds since the playbook started (run clock).
    pub created_s: f64,
    pub injected_s: Option<f64>,
    pub recovered_s: Option<f64>,
    /// When its object was deleted (by the playbook or by cleanup).
    pub removed_s: Option<f64>,
}

/// One cleanup step and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupStep {
    pub step: String,
    pub ok: bool,
    pub detail: String,
    /// How long the step took on the run's clock, in milliseconds.
    pub took_ms: u64,
}

/// One line the playbook wrote (`log`, `print`, `debug`) or the run said about it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Seconds since the playbook started (run clock).
    pub at_s: f64,
    /// A `debug(...)` line.
    pub debug: bool,
    pub text: String,
}

/// Everything observed during one playbook.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub expectations: Vec<Expectation>,
    pub faults: Vec<Fault>,
    /// `record(key, value)`, in the order written (a key written twice keeps its last value).
    pub records: Vec<(String, serde_json::Value)>,
    pub cleanup: Vec<CleanupStep>,
    /// Why the run proved nothing (a fault that selected no pod or never reached injected, a
    /// recovery whose disruption was never observed): the verdict is then inconclusive.
    pub inconclusive: Vec<String>,
    /// The playbook's output, filled by whoever routes its lines (the runner's console).
    pub log: Vec<LogLine>,
    /// In a dry run: each object a fault would have created, and the pods it could select.
    #[serde(skip)]
    pub rendered: Vec<(serde_json::Value, Vec<String>)>,
}

impl Record {
    /// Sets a record, keeping first-write order.
    pub fn set(&mut self, key: &str, value: serde_json::Value) {
        match self.records.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.records.push((key.to_string(), value)),
        }
    }
}
