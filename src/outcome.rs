//! The verdict of a playbook or a batch, the exit code each maps to (the README's table), how
//! an error that ended a script is classified, and the proof-of-injection rule that turns a
//! run whose faults never took effect into *inconclusive* rather than "passed".

use rhai::EvalAltResult;

use crate::session::{Failure, Line, Session, StopReason};

/// What happened to a playbook, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every expectation held: exit code 0.
    Passed,
    /// `--dry-run`: nothing was injected and no expectation was evaluated: exit code 0.
    DryRun,
    /// An expectation failed: exit code 1.
    Failed,
    /// We could not tell: a fault never took effect (selected no pod, never reached
    /// injected), or a recovery was timed without the disruption ever being observed: exit code 5.
    Inconclusive,
    /// Usage error or invalid playbook; nothing was run: exit code 2.
    Invalid,
    /// Script error, API error or timeout: exit code 3.
    Error,
    /// Interrupted by Ctrl-C or SIGTERM (after cleanup): exit code 130.
    Interrupted,
    /// Cleanup could not remove everything the run created: exit code 4.
    CleanupIncomplete,
}

impl Verdict {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed | Verdict::DryRun => 0,
            Verdict::Failed => 1,
            Verdict::Invalid => 2,
            Verdict::Error => 3,
            Verdict::CleanupIncomplete => 4,
            Verdict::Inconclusive => 5,
            Verdict::Interrupted => 130,
        }
    }

    /// In a batch the most severe wins: 4, 130, 3, 2, 5, 1, 0 (dry run), 0.
    fn severity(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::DryRun => 1,
            Verdict::Failed => 2,
            Verdict::Inconclusive => 3,
            Verdict::Invalid => 4,
            Verdict::Error => 5,
            Verdict::Interrupted => 6,
            Verdict::CleanupIncomplete => 7,
        }
    }

    /// The more severe of two verdicts.
    pub fn worst(self, other: Verdict) -> Verdict {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// A word for tables and summaries.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::DryRun => "dry run (not evaluated)",
            Verdict::Failed => "failed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Invalid => "invalid",
            Verdict::Error => "error",
            Verdict::Interrupted => "interrupted",
            Verdict::CleanupIncomplete => "cleanup incomplete",
        }
    }
}

/// The error payload of "we could not tell" (a fault that never took effect, a disruption never
/// observed): the playbook's verdict is inconclusive (exit code 5), and cleanup runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Inconclusive {
    pub message: String,
}

/// The error that makes a playbook inconclusive, at `pos`.
pub fn inconclusive(message: impl Into<String>, pos: rhai::Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        rhai::Dynamic::from(Inconclusive {
            message: message.into(),
        }),
        pos,
    )
    .into()
}

/// A failed expectation is "failed"; "could not tell" is "inconclusive"; Ctrl-C is
/// "interrupted"; anything else is "error". With the kind of error the reports name: failure,
/// inconclusive, timeout, interrupted or script.
pub fn classify(err: &EvalAltResult, stopped: Option<StopReason>) -> (Verdict, &'static str) {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Failure>() => (Verdict::Failed, "failure"),
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Inconclusive>() => {
            (Verdict::Inconclusive, "inconclusive")
        }
        EvalAltResult::ErrorTerminated(..) => match stopped {
            Some(StopReason::Interrupted) => (Verdict::Interrupted, "interrupted"),
            Some(StopReason::Timeout(_) | StopReason::TimeoutAfter(_)) => {
                (Verdict::Error, "timeout")
            }
            None => (Verdict::Error, "script"),
        },
        _ => (Verdict::Error, "script"),
    }
}

/// Before cleanup removes them: asks the cluster once more about every fault that was never
/// seen injected (a playbook need not wait for it), so that proof of injection is not missed.
pub fn confirm_injections(session: &Session) {
    if session.dry_run {
        return;
    }
    let pending: Vec<crate::session::ObjectRef> = session
        .record()
        .faults
        .iter()
        .filter(|f| f.injected_s.is_none() && f.removed_s.is_none())
        .map(|f| {
            crate::session::ObjectRef::new(
                crate::faults::API_VERSION,
                &f.kind,
                Some(&f.namespace),
                &f.name,
            )
        })
        .collect();
    for object in pending {
        if let Ok(Some(obj)) = crate::host::chaos::fetch_object(session, &object) {
            crate::host::chaos::note_status(session, &object.name, &obj);
        }
    }
}

/// The reasons a run cannot be trusted to have tested anything: faults that selected no pod or
/// were never seen injected (recoveries timed without a disruption are reported where they
/// happen, as an [`Inconclusive`] error).
pub fn unproven(session: &Session) -> Vec<String> {
    let record = session.record();
    let mut out = Vec::new();
    for f in &record.faults {
        let what = format!("{} {}/{}", f.kind, f.namespace, f.name);
        match f.kind.as_str() {
            // A check, not a fault: it injects nothing.
            "StatusCheck" => continue,
            // Harsher than it could be: the faults these create are not followed, so what
            // they did is not proven.
            "Schedule" | "Workflow" => {
                out.push(format!(
                    "{what} creates its own faults, which playbook does not follow: their effect is unproven (create the faults with chaos:: functions to prove them)"
                ));
                continue;
            }
            _ => {}
        }
        match (f.injected_s, f.selected.is_empty()) {
            (None, _) => out.push(format!(
                "{what} was never seen injected (Chaos Mesh did not report AllInjected while the playbook ran): its effect is unproven"
            )),
            (Some(_), true) => out.push(format!(
                "{what} selected no pod (Chaos Mesh recorded no target): nothing was injected"
            )),
            _ => {}
        }
    }
    out
}

/// The verdict once the playbook, its cleanup and re-checks are over: a dry run is "not
/// evaluated"; a run that would pass or fail while a fault never took effect is inconclusive
/// (said on the run's output). Returns the verdict and, when it became inconclusive, why.
pub fn settle(verdict: Verdict, session: &Session) -> (Verdict, Option<String>) {
    if session.dry_run {
        return match verdict {
            Verdict::Passed => (Verdict::DryRun, None),
            other => (other, None),
        };
    }
    if !matches!(verdict, Verdict::Passed | Verdict::Failed) {
        return (verdict, None);
    }
    crate::host::expect::close_guards(session);
    let reasons = unproven(session);
    if reasons.is_empty() {
        return (verdict, None);
    }
    let message = reasons.join("; ");
    (session.output)(Line::Print(format!("inconclusive: {message}")));
    (Verdict::Inconclusive, Some(message))
}

/// What the reports say ended a playbook that proved nothing.
pub fn inconclusive_info(message: String) -> crate::report::ErrorInfo {
    crate::report::ErrorInfo {
        kind: "inconclusive".into(),
        message,
        at: None,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::Verdict::*;

    #[test]
    fn the_most_severe_wins_in_the_readme_order() {
        let order = [
            Passed,
            DryRun,
            Failed,
            Inconclusive,
            Invalid,
            Error,
            Interrupted,
            CleanupIncomplete,
        ];
        for (i, a) in order.iter().enumerate() {
            for b in &order[i..] {
                assert_eq!(a.worst(*b), *b);
                assert_eq!(b.worst(*a), *b);
            }
        }
        assert_eq!(Interrupted.exit_code(), 130);
        assert_eq!(CleanupIncomplete.exit_code(), 4);
        assert_eq!(Inconclusive.exit_code(), 5);
        assert_eq!(DryRun.exit_code(), 0);
    }
}
