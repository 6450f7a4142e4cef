//! The kill switch's front end: `playbook freeze --reason TEXT` (the freeze mark every run
//! obeys), `playbook unfreeze`, and `playbook stop --all` (freeze, then remove every Chaos Mesh
//! object labelled as playbook's with `playbook cleanup`'s label sweep). The mark and what a
//! run does about it are `coord`'s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::cli::{FreezeArgs, StopArgs, TargetArgs, UnfreezeArgs};
use crate::connection::request::{self, Budget};
use crate::connection::{Target, TargetKind};
use crate::coord::{self, FREEZE, NAMESPACE};
use crate::outcome::Verdict;
use crate::session::say;

/// The time the freeze's requests have (retries included).
const WINDOW: Duration = Duration::from_secs(30);

/// The cluster the command acts on; the in-process simulator is refused (nothing else runs in it).
fn connect(target: &TargetArgs, what: &str) -> Result<Target, Verdict> {
    let targets = crate::run::Targets::connect(&target.choice()).map_err(|e| {
        eprintln!("error: {e}");
        Verdict::Error
    })?;
    if targets.kind() == TargetKind::Sim {
        eprintln!(
            "error: nothing to {what} in the in-process simulator (it lives only as long as a run); \
             point --kubeconfig/--context at the cluster (or `playbook sim serve`)"
        );
        return Err(Verdict::Invalid);
    }
    let stop = crate::stop::interrupted().clone();
    request::install(Budget {
        until: Instant::now() + WINDOW,
        cancelled: Some(Arc::new(move || stop.load(Ordering::Relaxed))),
    });
    let target = targets.next();
    say(&target.description);
    Ok(target)
}

/// Freezes the cluster: the mark now there.
fn set(target: &Target, reason: &str) -> Result<coord::Freeze, Verdict> {
    let rt = crate::connection::Rt::current();
    match rt.block_on(coord::freeze(target, reason)) {
        Ok((mark, true)) => {
            say(&format!(
                "frozen: ConfigMap {NAMESPACE}/{FREEZE} (by {}, {}: {}); running runs stop and clean up, new ones are refused until `playbook unfreeze`",
                mark.by, mark.at, mark.reason
            ));
            Ok(mark)
        }
        Ok((mark, false)) => {
            say(&format!("already frozen: {mark}"));
            Ok(mark)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Verdict::Error)
        }
    }
}

/// `playbook freeze --reason TEXT`.
pub fn freeze(args: &FreezeArgs) -> Verdict {
    if args.reason.trim().is_empty() {
        eprintln!("error: --reason must say why (every stopped or refused run shows it)");
        return Verdict::Invalid;
    }
    match connect(&args.target, "freeze").and_then(|t| set(&t, &args.reason)) {
        Ok(_) => Verdict::Passed,
        Err(v) => v,
    }
}

/// `playbook unfreeze`.
pub fn unfreeze(args: &UnfreezeArgs) -> Verdict {
    let target = match connect(&args.target, "unfreeze") {
        Ok(t) => t,
        Err(v) => return v,
    };
    let rt = crate::connection::Rt::current();
    match rt.block_on(coord::unfreeze(&target)) {
        Ok(Some(was)) => {
            say(&format!(
                "unfrozen: runs may inject again (it was frozen by {} since {}: {})",
                was.by, was.at, was.reason
            ));
            Verdict::Passed
        }
        Ok(None) => {
            say("not frozen: nothing to do");
            Verdict::Passed
        }
        Err(e) => {
            eprintln!("error: {e}");
            Verdict::Error
        }
    }
}

/// `playbook stop --all`: freeze, then remove every labelled Chaos Mesh object (those of runs
/// still going too: they are stopping, and their own cleanup finds them gone).
pub fn stop(args: &StopArgs) -> Verdict {
    let target = match connect(&args.target, "stop") {
        Ok(t) => t,
        Err(v) => return v,
    };
    if let Err(v) = set(&target, &args.reason) {
        return v;
    }
    // This is cleanup: each removal has its own budget and outlasts an outage; Ctrl-C stops
    // it after the removal in flight.
    crate::stop::set_cleaning(true);
    let flag = crate::stop::interrupted().clone();
    let interrupted = move || flag.load(Ordering::Relaxed);
    let rt = crate::connection::Rt::current();
    let swept =
        match crate::sweep::sweep_labelled(&target, &rt, None, &BTreeSet::new(), &interrupted) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Verdict::Error;
            }
        };
    if interrupted() {
        eprintln!(
            "interrupted: stopped after the removal in flight; the cluster stays frozen; `playbook stop --all` again finishes"
        );
        return Verdict::Interrupted;
    }
    if swept.complain() {
        say(&format!(
            "stopped: removed {} object(s); nothing created by playbook is left; the cluster stays frozen until `playbook unfreeze`",
            swept.removed
        ));
        Verdict::Passed
    } else {
        Verdict::CleanupIncomplete
    }
}
