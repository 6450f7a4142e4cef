//! How a run earns its verdict: an error that ended a script classified (failure,
//! inconclusive, timeout, interrupted, script), and the proof-of-injection rule that turns a run
//! whose faults never took effect into *inconclusive* rather than "passed".

use rhai::EvalAltResult;

use crate::outcome::{Inconclusive, Verdict};
use crate::session::{Failure, Line, Session, StopReason};

/// A failed expectation is "failed"; "could not tell" is "inconclusive"; Ctrl-C is
/// "interrupted"; anything else is "error". With the kind of error the reports name: failure,
/// inconclusive, timeout, interrupted or script.
pub fn classify(err: &EvalAltResult, stopped: Option<StopReason>) -> (Verdict, ErrorKind) {
    // A signal ends whatever was running, a request in flight included (its error is the
    // signal's doing, not the script's).
    if stopped == Some(StopReason::Interrupted)
        && !matches!(err.unwrap_inner(), EvalAltResult::ErrorRuntime(v, _) if v.is::<Failure>())
    {
        return (Verdict::Interrupted, ErrorKind::Interrupted);
    }
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Failure>() => {
            (Verdict::Failed, ErrorKind::Failure)
        }
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Inconclusive>() => {
            (Verdict::Inconclusive, ErrorKind::Inconclusive)
        }
        EvalAltResult::ErrorTerminated(..) => match stopped {
            Some(StopReason::Interrupted) => (Verdict::Interrupted, ErrorKind::Interrupted),
            Some(StopReason::Timeout(_) | StopReason::TimeoutAfter(_)) => {
                (Verdict::Error, ErrorKind::Timeout)
            }
            None => (Verdict::Error, ErrorKind::Script),
        },
        _ => (Verdict::Error, ErrorKind::Script),
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
        kind: ErrorKind::Inconclusive.as_str().into(),
        message,
        at: None,
        notes: Vec::new(),
    }
}

/// What ended a playbook early, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An expectation failed (`fail`, `expect`, `always`).
    Failure,
    /// The playbook ran past its `--timeout`.
    Timeout,
    /// We could not tell: a fault never took effect, a disruption was never observed.
    Inconclusive,
    /// A signal stopped it.
    Interrupted,
    /// Anything else the script did wrong.
    Script,
    /// A bug in playbook (a host function panicked).
    Internal,
}

impl ErrorKind {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failure => "failure",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Inconclusive => "inconclusive",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Script => "script",
            ErrorKind::Internal => "internal",
        }
    }
}
