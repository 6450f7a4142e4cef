//! What a playbook is doing now, announced by the host functions (`Session::phase`) to whoever
//! shows progress: the live display on a terminal, timestamped lines in CI logs.

use std::sync::Arc;
use std::time::Duration;

/// One phase of a playbook run.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The script runs (between the other phases).
    Running,
    /// `steady_state(name, ...)` is being checked before any fault.
    SteadyState { name: String },
    /// A fault is being created: `what` names its object and options.
    Injecting { what: String },
    /// Waiting for something on the run's clock: an `expect`, an `always` window, a fault's
    /// injection or recovery, a `sleep`. Announced when the wait starts and after each step.
    Waiting {
        /// What is awaited, e.g. `expect "predictor ready again"`.
        what: String,
        /// How long it has waited so far (run clock).
        waited: Duration,
        /// How long it may wait.
        limit: Duration,
    },
    /// A cleanup step runs (last-in first-out).
    Cleanup { step: String },
}

impl Phase {
    /// The phase in a few words, e.g. `expect "predictor ready again" 12s/30s`.
    pub fn describe(&self) -> String {
        match self {
            Phase::Running => "running".into(),
            Phase::SteadyState { name } => format!("steady state \"{name}\""),
            Phase::Injecting { what } => format!("injecting {what}"),
            Phase::Waiting {
                what,
                waited,
                limit,
            } => format!("{what} {}/{}", short(*waited), short(*limit)),
            Phase::Cleanup { step } => format!("cleanup: {step}"),
        }
    }

    /// Whether `self` is the same phase as `other`, only further along (a later wait step).
    pub fn same_as(&self, other: &Phase) -> bool {
        match (self, other) {
            (Phase::Waiting { what: a, .. }, Phase::Waiting { what: b, .. }) => a == b,
            _ => self == other,
        }
    }
}

/// `12s`, `1m30s`, `850ms`: whole seconds once past one.
fn short(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        crate::duration::format(Duration::from_secs(d.as_secs()))
    } else {
        crate::duration::format(d)
    }
}

/// Receives each phase with the seconds since the playbook started on the run's clock.
pub type PhaseObserver = Arc<dyn Fn(&Phase, f64) + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_like_the_display_shows_it() {
        let p = Phase::Waiting {
            what: "expect \"predictor ready again\"".into(),
            waited: Duration::from_millis(12_400),
            limit: Duration::from_secs(30),
        };
        assert_eq!(p.describe(), "expect \"predictor ready again\" 12s/30s");
        let later = Phase::Waiting {
            what: "expect \"predictor ready again\"".into(),
            waited: Duration::from_secs(13),
            limit: Duration::from_secs(30),
        };
        assert!(p.same_as(&later));
        assert!(!p.same_as(&Phase::Running));
    }
}
