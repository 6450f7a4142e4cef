//! `playbook cleanup`: removes what killed runs left behind — the Chaos Mesh objects in their
//! journals that still carry the run's labels (and uid), the workloads they scaled put back, the
//! nodes they cordoned (and still carry their cordon annotation) uncordoned —
//! and (with `--all`) every Chaos Mesh object labelled as created by playbook, kind by kind (a
//! kind it may not list, or that fails, is reported and the others are still swept). It trusts
//! no journal: only Chaos Mesh kinds labelled as the journal's run are deleted, runs still alive
//! on this machine are left alone (unless `--force`), and a journal is deleted only once its
//! cluster was verified to be the one connected to. Ctrl-C stops it after the removal in
//! flight. Running it twice is harmless.

use std::collections::BTreeSet;

use kube::api::ListParams;
use serde_json::Value;

use crate::cli::CleanupArgs;
use crate::connection::request::{self, Budget};
use crate::connection::{Target, TargetKind};
use crate::faults::{MANAGED_BY, RUN_ID_LABEL};
use crate::outcome::Verdict;
use crate::session::{
    EntryState, Journal, ObjectRef, Restore, Uncordon, api_for, api_in, cluster_id, describe,
    remove, restore, say, state_dir, uncordon,
};
use kube::discovery::ApiResource;

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
    let rt = crate::connection::Rt::current();
    let target = targets.next();
    // This is cleanup: a signal is reported and removal goes on, but listing stops on Ctrl-C
    // (after the removal in flight); each removal has its own budget (see `remove`).
    crate::stop::set_cleaning(true);
    let stop = crate::session::interrupted().clone();
    let interrupted = move || stop.load(std::sync::atomic::Ordering::Relaxed);
    let cancel = interrupted.clone();
    request::install(Budget {
        until: std::time::Instant::now() + crate::session::OUTAGE_WINDOW,
        cancelled: Some(std::sync::Arc::new(cancel)),
    });
    say(&target.description);
    let here = cluster_id(&target, &rt);
    let dir = state_dir(args.state_dir.as_deref());
    let (journals, damaged) = Journal::all(&dir);
    for d in &damaged {
        eprintln!("warning: {d}");
    }
    let mut removed = 0;
    let mut left: Vec<String> = Vec::new();
    // Runs whose objects the label sweep must leave alone too.
    let mut spared: BTreeSet<String> = BTreeSet::new();
    for mut journal in journals {
        if args.run.as_ref().is_some_and(|id| *id != journal.run_id) {
            continue;
        }
        let run = journal.run_id.clone();
        if journal.alive() && !args.force {
            say(&format!(
                "run {run}: still running (pid {} on this machine): skipped (it cleans up after itself; --force to clean it anyway)",
                journal.pid
            ));
            spared.insert(run);
            continue;
        }
        let verified = match (&journal.cluster, &here) {
            (Some(theirs), Some(ours)) if theirs != ours => {
                let message = format!(
                    "run {run}: its journal names another cluster (kube-system uid {theirs}; this one is {ours}): nothing done, journal kept — point --kubeconfig/--context at that cluster"
                );
                if args.run.is_some() {
                    eprintln!("error: {message}");
                    left.push(format!("run {run} (on another cluster)"));
                } else {
                    say(&message);
                }
                spared.insert(run);
                continue;
            }
            (Some(_), Some(_)) => true,
            _ => false,
        };
        let pending: Vec<ObjectRef> = journal.pending().cloned().collect();
        let restores: Vec<Restore> = journal.pending_restores().cloned().collect();
        let uncordons: Vec<Uncordon> = journal.pending_uncordons().cloned().collect();
        say(&format!(
            "run {run}: {} object(s) in its journal{}{}",
            pending.len(),
            if restores.is_empty() {
                String::new()
            } else {
                format!(", and {} workload(s) to scale back", restores.len())
            },
            if uncordons.is_empty() {
                String::new()
            } else {
                format!(", and {} node(s) to uncordon", uncordons.len())
            }
        ));
        for object in pending.iter().rev() {
            if interrupted() {
                break;
            }
            match remove_ours(&target, &rt, &run, object) {
                Ok(said) => {
                    say(&format!("  {said}"));
                    removed += 1;
                    let _ = journal.mark(object, EntryState::Removed);
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    left.push(object.leftover());
                }
            }
        }
        for r in restores.iter().rev() {
            match restore_checked(&target, &rt, r) {
                Ok(said) => {
                    say(&format!("  {said}"));
                    let _ = journal.mark_restore(r, "done");
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    left.push(r.to_string());
                }
            }
        }
        for u in uncordons.iter().rev() {
            // Only the run's own cordon: `uncordon` checks the node's uid and annotation.
            let ours = Uncordon {
                run_id: run.clone(),
                ..u.clone()
            };
            match uncordon(&target, &rt, &ours) {
                Ok(said) => {
                    say(&format!("  {said}"));
                    let _ = journal.mark_uncordon(u, "done");
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    left.push(ours.to_string());
                }
            }
        }
        let done = journal.settled();
        if done && (verified || args.force) {
            let _ = journal.finish();
        } else if done {
            say(&format!(
                "  journal of run {run} kept: the cluster it was written for cannot be verified (no kube-system uid); --force drops it"
            ));
        }
    }
    let mut unswept: Vec<String> = Vec::new();
    if (args.all || args.run.is_some()) && !interrupted() {
        match sweep_labelled(&target, &rt, args.run.as_deref(), &spared, &interrupted) {
            Ok(swept) => {
                removed += swept.removed;
                left.extend(swept.left);
                unswept = swept.unswept;
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
    let all = Swept {
        removed,
        left,
        unswept,
    };
    if all.complain() {
        say(&format!(
            "removed {removed} object(s); nothing created by playbook is left"
        ));
        Verdict::Passed
    } else {
        Verdict::CleanupIncomplete
    }
}

/// What a label sweep did: objects removed, objects it could not remove, kinds it could not list.
#[derive(Debug, Default)]
pub struct Swept {
    pub removed: usize,
    pub left: Vec<String>,
    pub unswept: Vec<String>,
}

impl Swept {
    /// Says on standard error what could not be swept or removed; true when nothing was left.
    pub fn complain(&self) -> bool {
        if !self.unswept.is_empty() {
            eprintln!(
                "error: could not sweep kind(s) {} (see above); objects of those kinds may be left",
                self.unswept.join(", ")
            );
        }
        if !self.left.is_empty() {
            eprintln!("error: could not remove: {}", self.left.join(", "));
        }
        self.left.is_empty() && self.unswept.is_empty()
    }
}

/// Removes every Chaos Mesh object labelled as created by playbook (of run `run` only, if
/// given), kind by kind, except those of the runs in `spared`; a kind that cannot be listed is
/// reported and the others are still swept; stops after the removal in flight once
/// `interrupted`. An error if the Chaos Mesh kinds cannot be discovered.
pub fn sweep_labelled(
    target: &Target,
    rt: &crate::connection::Rt,
    run: Option<&str>,
    spared: &BTreeSet<String>,
    interrupted: &dyn Fn() -> bool,
) -> Result<Swept, String> {
    let mut swept = Swept::default();
    for ar in chaos_kinds(target, rt)? {
        if interrupted() {
            break;
        }
        let objects = match labelled(target, rt, &ar, run) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("  error: {e}; other kinds are still swept");
                swept.unswept.push(ar.kind.clone());
                continue;
            }
        };
        for (object, run) in objects {
            if interrupted() {
                break;
            }
            if spared.contains(&run) {
                say(&format!(
                    "  by label: {object} belongs to run {run}, left alone (see above)"
                ));
                continue;
            }
            match remove(target, rt, &object) {
                Ok(said) => {
                    say(&format!("  by label: {said}"));
                    swept.removed += 1;
                }
                Err(e) => {
                    eprintln!("  error: {e}");
                    swept.left.push(object.leftover());
                }
            }
        }
    }
    Ok(swept)
}

/// Removes a journal's object only if it is a Chaos Mesh object labelled as run `run`'s
/// (and, when the journal knows it, with the same uid): a journal names, it does not prove.
fn remove_ours(
    target: &Target,
    rt: &crate::connection::Rt,
    run: &str,
    object: &ObjectRef,
) -> Result<String, String> {
    if !object.is_chaos() {
        return Err(format!(
            "refusing to delete {object} ({}): only Chaos Mesh objects are removed, and a run journals nothing else",
            object.api_version
        ));
    }
    let api = api_for(target, rt, object)?;
    let found = rt
        .block_on(api.get_opt(&object.name))
        .map_err(|e| format!("cannot read {object}: {e}"))?;
    let Some(found) = found else {
        return Ok(format!("{object} was already gone"));
    };
    let labels = found.metadata.labels.clone().unwrap_or_default();
    let ours = labels.get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1)
        && labels.get(RUN_ID_LABEL).map(String::as_str) == Some(run);
    if !ours || (object.uid.is_some() && object.uid != found.metadata.uid) {
        return Ok(format!(
            "{object} was already gone (an object of that name is there, but not run {run}'s: not touched)"
        ));
    }
    let exact = ObjectRef {
        uid: found.metadata.uid,
        ..object.clone()
    };
    remove(target, rt, &exact)
}

/// Scales a workload back, by the rules a playbook's own `cluster::scale` follows: a workload
/// kind, outside protected namespaces, to a sane number of replicas.
fn restore_checked(
    target: &Target,
    rt: &crate::connection::Rt,
    r: &Restore,
) -> Result<String, String> {
    let w = &r.workload;
    let kind_ok = w.api_version == "apps/v1"
        && matches!(
            (w.kind.as_str(), r.plural.as_str()),
            ("Deployment", "deployments")
                | ("StatefulSet", "statefulsets")
                | ("ReplicaSet", "replicasets")
        );
    let ns = w.namespace.clone().unwrap_or_default();
    if !kind_ok
        || !(0..=1000).contains(&r.replicas)
        || crate::host::chaos::PROTECTED.contains(&ns.as_str())
    {
        return Err(format!(
            "refusing to {r}: not something a playbook may scale (a Deployment, StatefulSet or ReplicaSet outside protected namespaces, 0..1000 replicas)"
        ));
    }
    restore(target, rt, r)
}

/// The Chaos Mesh kinds the cluster serves (one group's discovery, not every group's).
fn chaos_kinds(target: &Target, rt: &crate::connection::Rt) -> Result<Vec<ApiResource>, String> {
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

/// Every object of one Chaos Mesh kind labelled as playbook's (of one run, if given), with the
/// run it is labelled with.
fn labelled(
    target: &Target,
    rt: &crate::connection::Rt,
    ar: &ApiResource,
    run: Option<&str>,
) -> Result<Vec<(ObjectRef, String)>, String> {
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
                    crate::connection::forbidden(&s.message)
                )
            }
            _ => format!("listing {}: {}", ar.plural, describe(&e)),
        })?;
    Ok(list
        .items
        .into_iter()
        .map(|o| {
            let labels = serde_json::to_value(&o.metadata.labels).unwrap_or(Value::Null);
            let run = labels[RUN_ID_LABEL]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut object = ObjectRef::new(
                &ar.api_version,
                &ar.kind,
                o.metadata.namespace.as_deref(),
                &o.metadata.name.unwrap_or_default(),
            );
            object.uid = o.metadata.uid;
            (object, run)
        })
        .collect())
}
