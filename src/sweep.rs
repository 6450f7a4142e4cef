//! `playbook cleanup`: removes what killed runs left behind — every object in their journals,
//! and (with `--all`) every Chaos Mesh object labelled as created by playbook, kind by kind (a
//! kind it may not list, or that fails, is reported and the others are still swept). Ctrl-C
//! stops it after the removal in flight. Running it twice is harmless.

use kube::api::ListParams;

use crate::cli::{CleanupArgs, ClusterKind};
use crate::connection::request::{self, Budget};
use crate::connection::{self, Target};
use crate::faults::{MANAGED_BY, RUN_ID_LABEL};
use crate::outcome::Verdict;
use crate::session::{Journal, ObjectRef, api_in, describe, remove, say, state_dir};
use kube::discovery::ApiResource;

/// Runs the command; must be called inside a tokio runtime context.
pub fn cleanup(args: &CleanupArgs) -> Verdict {
    if connection::choose(&args.target) == ClusterKind::Sim {
        eprintln!(
            "error: nothing to clean up in the in-process simulator (it lives only as long as a run); \
             point --kubeconfig/--context at the cluster (or `playbook sim serve`) the run used"
        );
        return Verdict::Invalid;
    }
    let rt = tokio::runtime::Handle::current();
    // Listing stops on Ctrl-C; each removal has its own uninterruptible budget (see `remove`).
    let stop = crate::session::interrupted().clone();
    let interrupted = move || stop.load(std::sync::atomic::Ordering::Relaxed);
    let cancel = interrupted.clone();
    request::install(Budget {
        until: std::time::Instant::now() + crate::session::OUTAGE_WINDOW,
        cancelled: Some(std::sync::Arc::new(cancel)),
    });
    let target = match rt.block_on(connection::connect(&args.target)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Error;
        }
    };
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
            if interrupted() {
                break;
            }
            match remove(&target, &rt, object) {
                Ok(said) => {
                    say(&format!("  {said}"));
                    removed += 1;
                    let _ = journal.mark(object, "removed");
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    left.push(object.leftover());
                }
            }
        }
        if journal.pending().next().is_none() {
            let _ = journal.finish();
        }
    }
    let mut unswept: Vec<String> = Vec::new();
    if (args.all || args.run.is_some()) && !interrupted() {
        match chaos_kinds(&target, &rt) {
            Ok(kinds) => {
                for ar in kinds {
                    if interrupted() {
                        break;
                    }
                    let objects = match labelled(&target, &rt, &ar, args.run.as_deref()) {
                        Ok(o) => o,
                        Err(e) => {
                            eprintln!("  error: {e}; other kinds are still swept");
                            unswept.push(ar.kind.clone());
                            continue;
                        }
                    };
                    for object in objects {
                        if interrupted() {
                            break;
                        }
                        match remove(&target, &rt, &object) {
                            Ok(said) => {
                                say(&format!("  by label: {said}"));
                                removed += 1;
                            }
                            Err(e) => {
                                eprintln!("  error: {e}");
                                left.push(object.leftover());
                            }
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
    if interrupted() {
        eprintln!(
            "interrupted: stopped after the removal in flight; run `playbook cleanup` again to finish"
        );
        return Verdict::Interrupted;
    }
    if !unswept.is_empty() {
        eprintln!(
            "error: could not sweep kind(s) {} (see above); objects of those kinds may be left",
            unswept.join(", ")
        );
    }
    if left.is_empty() && unswept.is_empty() {
        say(&format!(
            "removed {removed} object(s); nothing created by playbook is left"
        ));
        Verdict::Passed
    } else {
        if !left.is_empty() {
            eprintln!("error: could not remove: {}", left.join(", "));
        }
        Verdict::CleanupIncomplete
    }
}

/// The Chaos Mesh kinds the cluster serves (one group's discovery, not every group's).
fn chaos_kinds(target: &Target, rt: &tokio::runtime::Handle) -> Result<Vec<ApiResource>, String> {
    let group = rt
        .block_on(kube::discovery::oneshot::group(
            &target.client,
            "chaos-mesh.org",
        ))
        .map_err(|e| format!("discovering Chaos Mesh kinds: {}", describe(&e)))?;
    Ok(group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar)
        .collect())
}

/// Every object of one Chaos Mesh kind labelled as playbook's (of one run, if given).
fn labelled(
    target: &Target,
    rt: &tokio::runtime::Handle,
    ar: &ApiResource,
    run: Option<&str>,
) -> Result<Vec<ObjectRef>, String> {
    let mut selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    if let Some(run) = run {
        selector += &format!(",{RUN_ID_LABEL}={run}");
    }
    let api = api_in(target, ar, None);
    let list = rt
        .block_on(api.list(&ListParams::default().labels(&selector)))
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.code == 403 => {
                format!(
                    "listing {}: {}",
                    ar.plural,
                    crate::rbac::forbidden(&s.message)
                )
            }
            _ => format!("listing {}: {}", ar.plural, describe(&e)),
        })?;
    Ok(list
        .items
        .into_iter()
        .map(|o| {
            ObjectRef::new(
                &ar.api_version,
                &ar.kind,
                o.metadata.namespace.as_deref(),
                &o.metadata.name.unwrap_or_default(),
            )
        })
        .collect())
}
