//! `playbook cleanup`: removes what killed runs left behind — every object in their journals,
//! and (with `--all`) every Chaos Mesh object labelled as created by playbook. Running it twice
//! is harmless.

use kube::api::ListParams;

use crate::cli::CleanupArgs;
use crate::connection::{Target, TargetKind};
use crate::faults::{MANAGED_BY, RUN_ID_LABEL};
use crate::outcome::Verdict;
use crate::session::{EntryState, Journal, ObjectRef, api_in, remove, say, state_dir};

/// Runs the command; must be called inside a tokio runtime context.
pub fn cleanup(args: &CleanupArgs) -> Verdict {
    let targets = match crate::run::Targets::connect(&args.target.choice()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Error;
        }
    };
    if targets.kind() == TargetKind::Sim {
        eprintln!(
            "error: nothing to clean up in the in-process simulator (it lives only as long as a run); \
             point --kubeconfig/--context at the cluster (or `playbook sim serve`) the run used"
        );
        return Verdict::Invalid;
    }
    let rt = tokio::runtime::Handle::current();
    let target = targets.next();
    // This is cleanup: a signal is reported and removal goes on.
    crate::stop::set_cleaning(true);
    say(&target.description);
    let dir = state_dir(args.state_dir.as_deref());
    let (journals, damaged) = Journal::all(&dir);
    for d in &damaged {
        eprintln!("warning: {d}");
    }
    let mut removed = 0;
    let mut left: Vec<String> = Vec::new();
    for mut journal in journals {
        if args.run.as_ref().is_some_and(|id| *id != journal.run_id) {
            continue;
        }
        let pending: Vec<ObjectRef> = journal.pending().cloned().collect();
        say(&format!(
            "run {}: {} object(s) in its journal",
            journal.run_id,
            pending.len()
        ));
        for object in pending.iter().rev() {
            match remove(&target, &rt, object) {
                Ok(said) => {
                    say(&format!("  {said}"));
                    removed += 1;
                    let _ = journal.mark(object, EntryState::Removed);
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    left.push(object.to_string());
                }
            }
        }
        if journal.pending().next().is_none() {
            let _ = journal.finish();
        }
    }
    if args.all || args.run.is_some() {
        match labelled(&target, &rt, args.run.as_deref()) {
            Ok(objects) => {
                for object in objects {
                    match remove(&target, &rt, &object) {
                        Ok(said) => {
                            say(&format!("  by label: {said}"));
                            removed += 1;
                        }
                        Err(e) => {
                            eprintln!("  error: {e}");
                            left.push(object.to_string());
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Verdict::Error;
            }
        }
    }
    if left.is_empty() {
        say(&format!(
            "removed {removed} object(s); nothing created by playbook is left"
        ));
        Verdict::Passed
    } else {
        eprintln!("error: could not remove: {}", left.join(", "));
        Verdict::CleanupIncomplete
    }
}

/// Every Chaos Mesh object in the cluster labelled as playbook's (of one run, if given).
fn labelled(
    target: &Target,
    rt: &tokio::runtime::Handle,
    run: Option<&str>,
) -> Result<Vec<ObjectRef>, String> {
    let discovery = rt
        .block_on(
            kube::Discovery::new(target.client.clone())
                .filter(&["chaos-mesh.org"])
                .run(),
        )
        .map_err(|e| format!("discovering Chaos Mesh kinds: {e}"))?;
    let mut selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    if let Some(run) = run {
        selector += &format!(",{RUN_ID_LABEL}={run}");
    }
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, _caps) in group.recommended_resources() {
            let api = api_in(target, &ar, None);
            let list = rt
                .block_on(api.list(&ListParams::default().labels(&selector)))
                .map_err(|e| format!("listing {}: {e}", ar.plural))?;
            for o in list.items {
                out.push(ObjectRef::new(
                    &ar.api_version,
                    &ar.kind,
                    o.metadata.namespace.as_deref(),
                    &o.metadata.name.unwrap_or_default(),
                ));
            }
        }
    }
    Ok(out)
}
