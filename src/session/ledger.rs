//! The cleanup ledger: what a run must undo, last-in first-out, each step exactly once, each
//! object known by its identity (kind, namespace, name and, once created, uid — never by name
//! alone); and the removal of one object — delete (only the object with that uid), then wait
//! until it is gone (so Chaos Mesh has recovered), retrying transient API errors.

use std::time::{Duration, Instant};

use jiff::SignedDuration;
use kube::api::{Api, DeleteParams, DynamicObject, Preconditions};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};

use crate::connection::Target;
use crate::connection::request::{self, Budget};

/// An object a run created: enough to find it again, even from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// The uid the API server gave the object (absent until it was created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
            uid: None,
        }
    }

    /// The same kind, namespace and name (whatever the uids): the API server would refuse the
    /// second create.
    pub fn same_name(&self, other: &ObjectRef) -> bool {
        self.api_version == other.api_version
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }

    /// Whether this is a Chaos Mesh object.
    pub fn is_chaos(&self) -> bool {
        self.api_version.split('/').next() == Some("chaos-mesh.org")
    }

    fn gvk(&self) -> GroupVersionKind {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        };
        GroupVersionKind::gvk(group, version, &self.kind)
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One thing to undo.
#[derive(Clone)]
pub enum Step {
    /// Delete an object the run created and wait until it is gone.
    Delete(ObjectRef),
    /// Call a closure the playbook registered with `on_cleanup`.
    Script { label: String, f: rhai::FnPtr },
    /// Put a workload the playbook scaled back to the replicas it had.
    Restore(Restore),
    /// Make a node the playbook cordoned (or drained) schedulable again.
    Uncordon(Uncordon),
}

/// A node the playbook cordoned, which was schedulable before: uncordoned at cleanup, by this
/// run and by `playbook cleanup` after a crash — only while the node is the same one (uid) and
/// still carries this run's cordon annotation ([`crate::faults::CORDONED_BY`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncordon {
    pub node: String,
    /// The node's uid when it was cordoned: a node replaced since is not ours to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The run that cordoned it.
    pub run_id: String,
}

impl std::fmt::Display for Uncordon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uncordon node {}", self.node)
    }
}

/// A workload's replicas before the playbook first scaled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    pub workload: ObjectRef,
    /// The plural of its kind (`deployments`, `statefulsets`, `replicasets`).
    pub plural: String,
    pub replicas: i64,
}

impl std::fmt::Display for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scale {} back to {}", self.workload, self.replicas)
    }
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::Delete(o) => format!("delete {o}"),
            Step::Script { label, .. } => label.clone(),
            Step::Restore(r) => r.to_string(),
            Step::Uncordon(u) => u.to_string(),
        }
    }
}

/// The steps of one run, in the order they were added, each with whether it has run and
/// (for objects) whether the object is known to be gone.
#[derive(Default)]
pub struct Ledger {
    steps: Vec<(Step, bool)>,
    removed: Vec<ObjectRef>,
    /// Steps whose create failed: nothing of theirs exists, nothing is to be removed.
    abandoned: std::collections::BTreeSet<usize>,
}

impl Ledger {
    /// Adds a step; returns its id.
    pub fn push(&mut self, step: Step) -> usize {
        self.steps.push((step, false));
        self.steps.len() - 1
    }

    /// Marks the step for `object` (this very object: same uid) as done (it was removed
    /// early, e.g. by `handle.delete()`).
    pub fn done(&mut self, object: &ObjectRef) {
        for (step, done) in &mut self.steps {
            if matches!(step, Step::Delete(o) if o == object) {
                *done = true;
            }
        }
        if !self.removed.contains(object) {
            self.removed.push(object.clone());
        }
    }

    /// The object created by step `id` got its uid.
    pub fn set_uid(&mut self, id: usize, uid: Option<String>) -> Option<ObjectRef> {
        match self.steps.get_mut(id) {
            Some((Step::Delete(o), _)) => {
                o.uid = uid;
                Some(o.clone())
            }
            _ => None,
        }
    }

    /// Step `id` will never be needed (its create failed): it is dropped, and nothing else.
    pub fn abandon(&mut self, id: usize) {
        if let Some((_, done)) = self.steps.get_mut(id) {
            *done = true;
            self.abandoned.insert(id);
        }
    }

    /// A live object of the run with the same kind, namespace and name as `object`.
    pub fn live_named(&self, object: &ObjectRef) -> Option<ObjectRef> {
        self.live_objects()
            .into_iter()
            .find(|o| o.same_name(object))
    }

    /// Whether a restore of `workload` is already in the ledger (the first scale's replicas
    /// are the ones to put back).
    pub fn restores(&self, workload: &ObjectRef) -> bool {
        self.steps
            .iter()
            .any(|(s, _)| matches!(s, Step::Restore(r) if r.workload.same_name(workload)))
    }

    /// Whether an uncordon of `node` is pending (the first cordon is the one to undo).
    pub fn uncordons(&self, node: &str) -> bool {
        self.steps
            .iter()
            .any(|(s, done)| !done && matches!(s, Step::Uncordon(u) if u.node == node))
    }

    /// The pending uncordon of `node`, if any.
    pub fn pending_uncordon(&self, node: &str) -> Option<Uncordon> {
        self.steps.iter().find_map(|(s, done)| match s {
            Step::Uncordon(u) if !done && u.node == node => Some(u.clone()),
            _ => None,
        })
    }

    /// The uncordon `u` ran early (`cluster::uncordon`): cleanup has nothing left to do for it.
    pub fn uncordoned(&mut self, u: &Uncordon) {
        for (step, done) in &mut self.steps {
            if matches!(step, Step::Uncordon(x) if x == u) {
                *done = true;
            }
        }
    }

    /// Steps not yet run.
    pub fn pending(&self) -> usize {
        self.steps.iter().filter(|(_, done)| !done).count()
    }

    /// Takes every step not yet run, last-in first-out, and marks them run: each runs once.
    pub fn take(&mut self) -> Vec<Step> {
        let mut out = Vec::new();
        for (step, done) in self.steps.iter_mut().rev() {
            if !*done {
                *done = true;
                out.push(step.clone());
            }
        }
        out
    }

    /// Objects created and not known to be removed, oldest first (a removal that failed in
    /// cleanup leaves its object here, so the run can name it).
    pub fn live_objects(&self) -> Vec<ObjectRef> {
        self.steps
            .iter()
            .enumerate()
            .filter(|(id, _)| !self.abandoned.contains(id))
            .filter_map(|(_, (s, _))| match s {
                Step::Delete(o) if !self.removed.contains(o) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How long cleanup waits for one object to be gone once deleted (finalizers, Chaos Mesh's
/// recovery).
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long cleanup keeps retrying one removal through an API outage (5xx, 429, resets, no
/// answer, a 409 on DELETE) before it names what is left and how to remove it. Generous on
/// purpose: leaving a fault behind is the worst outcome of a run.
pub const OUTAGE_WINDOW: Duration = Duration::from_secs(300);

/// The API resource of `object`'s kind, found by discovery (so plurals are never guessed).
pub fn resource_for(
    target: &Target,
    rt: &crate::connection::Rt,
    object: &ObjectRef,
) -> Result<ApiResource, String> {
    let gvk = object.gvk();
    rt.block_on(target.resource(&gvk)).map_err(|e| {
        format!(
            "cannot find kind {} {}: {}",
            object.api_version, object.kind, e
        )
    })
}

/// The API of `object`'s kind, found by discovery.
pub fn api_for(
    target: &Target,
    rt: &crate::connection::Rt,
    object: &ObjectRef,
) -> Result<Api<DynamicObject>, String> {
    let ar = resource_for(target, rt, object)?;
    Ok(api_in(target, &ar, object.namespace.as_deref()))
}

/// The API of a resource, in a namespace or cluster-wide.
pub fn api_in(target: &Target, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(target.client.clone(), ns, ar),
        None => Api::all_with(target.client.clone(), ar),
    }
}

impl ObjectRef {
    /// The kubectl command that removes this object by hand.
    pub fn kubectl_delete(&self) -> String {
        let group = self.api_version.split_once('/').map(|(g, _)| g);
        let kind = self.kind.to_ascii_lowercase();
        let what = match group {
            Some(g) => format!("{kind}.{g}"),
            None => kind,
        };
        match &self.namespace {
            Some(ns) => format!("kubectl delete {what} -n {ns} {}", self.name),
            None => format!("kubectl delete {what} {}", self.name),
        }
    }

    /// This object, and how to remove it by hand: what a run names when it could not.
    pub fn leftover(&self) -> String {
        format!("{self} (remove it with: {})", self.kubectl_delete())
    }
}

/// Deletes `object` and waits until it is gone; what happened, in words. Transient API errors
/// are retried for [`OUTAGE_WINDOW`]; Ctrl-C does not interrupt a removal in flight.
pub fn remove(
    target: &Target,
    rt: &crate::connection::Rt,
    object: &ObjectRef,
) -> Result<String, String> {
    let outage = crate::duration::format(OUTAGE_WINDOW);
    let budget = Budget::window(OUTAGE_WINDOW);
    let until = budget.until;
    request::within(budget, || {
        let ar = resource_for(target, rt, object).map_err(|e| {
            format!(
                "{e}; {object} may still be there: {}",
                object.kubectl_delete()
            )
        })?;
        let api = api_in(target, &ar, object.namespace.as_deref());
        let mut params = DeleteParams::background();
        // Only this very object: another one that took its name since is not ours to delete.
        if object.uid.is_some() {
            params = params.preconditions(Preconditions {
                uid: object.uid.clone(),
                resource_version: None,
            });
        }
        // DELETE until the server accepts it; a 409 (a conflicting change) is tried again too,
        // unless it is our uid precondition failing: then the object is someone else's.
        loop {
            match rt.block_on(api.delete(&object.name, &params)) {
                Ok(_) => break,
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Ok(format!("{object} was already gone"));
                }
                Err(kube::Error::Api(s)) if s.code == 409 && object.uid.is_some() => {
                    return Ok(format!(
                        "{object} was already gone (another object has that name now; not touched)"
                    ));
                }
                Err(e) if (transient(&e) || conflict(&e)) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot delete {object} (tried for up to {outage}): {}; remove it with: {}",
                        describe(&e),
                        object.kubectl_delete()
                    ));
                }
            }
        }
        let start = target.clock.now();
        let limit = start
            .checked_add(SignedDuration::try_from(REMOVE_TIMEOUT).unwrap_or_default())
            .unwrap_or(start);
        // A stop that never fires: cleanup must finish even after Ctrl-C or a timeout.
        let never = crate::session::Stop::unbounded();
        loop {
            let ns = object.namespace.as_deref();
            let now = rt
                .block_on(target.get_opt(&ar, ns, &object.name))
                .map(|o| o.filter(|o| object.uid.is_none() || o.metadata.uid == object.uid));
            match now {
                Ok(None) => {
                    let took = target.clock.now().duration_since(start);
                    return Ok(format!("removed {object} (gone after {})", show(took)));
                }
                Ok(Some(_)) if target.clock.now() >= limit => {
                    return Err(format!(
                        "{object} is still there {} after deletion (a finalizer not removed?); \
                         remove it with: {}",
                        crate::duration::format(REMOVE_TIMEOUT),
                        object.kubectl_delete()
                    ));
                }
                Ok(Some(_)) => {
                    let _ = target.clock.step(limit, &never);
                }
                Err(e) if transient(&e) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(format!(
                        "deleted {object} but cannot check that it is gone (tried for up to {outage}): {}; \
                         make sure with: {}",
                        describe(&e),
                        object.kubectl_delete()
                    ));
                }
            }
        }
    })
}

/// Scales a workload back to the replicas it had before the playbook first scaled it.
pub fn restore(target: &Target, rt: &crate::connection::Rt, r: &Restore) -> Result<String, String> {
    let (group, version) = r
        .workload
        .api_version
        .split_once('/')
        .unwrap_or(("", r.workload.api_version.as_str()));
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: r.workload.api_version.clone(),
        kind: r.workload.kind.clone(),
        plural: r.plural.clone(),
    };
    let api = api_in(target, &ar, r.workload.namespace.as_deref());
    let patch = serde_json::json!({ "spec": { "replicas": r.replicas } });
    // Cleanup's own time: transient errors are retried through an outage, as for removals.
    let patched = request::within(Budget::window(OUTAGE_WINDOW), || {
        rt.block_on(api.patch_scale(
            &r.workload.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        ))
    });
    match patched {
        Ok(_) => Ok(format!("scaled {} back to {}", r.workload, r.replicas)),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Ok(format!("{} is gone: nothing to scale back", r.workload))
        }
        Err(e) => Err(format!("cannot {r}: {e}")),
    }
}

/// Makes a node the run cordoned schedulable again (the JSON merge patch `kubectl uncordon`
/// amounts to: `spec.unschedulable` removed), and removes the run's cordon annotation — only if
/// it is still the node the run cordoned and still carries that run's annotation: a node
/// replaced or re-cordoned by someone else since is left alone. Transient errors are retried
/// through an outage, as for removals.
pub fn uncordon(
    target: &Target,
    rt: &crate::connection::Rt,
    u: &Uncordon,
) -> Result<String, String> {
    let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(target.client.clone());
    request::within(Budget::window(OUTAGE_WINDOW), || {
        let until = Instant::now() + OUTAGE_WINDOW;
        let node = loop {
            match rt.block_on(api.get_opt(&u.node)) {
                Ok(n) => break n,
                Err(e) if transient(&e) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read node {} to {u}: {}",
                        u.node,
                        describe(&e)
                    ));
                }
            }
        };
        let Some(node) = node else {
            return Ok(format!("node {} is gone: nothing to uncordon", u.node));
        };
        if u.uid.is_some() && node.metadata.uid != u.uid {
            return Ok(format!(
                "node {} was replaced since the run cordoned it: not touched",
                u.node
            ));
        }
        let mark = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(crate::faults::CORDONED_BY));
        if mark != Some(&u.run_id) {
            return Ok(format!(
                "node {} no longer carries run {}'s cordon (changed by someone since): not touched",
                u.node, u.run_id
            ));
        }
        let patch = serde_json::json!({
            "metadata": { "annotations": { crate::faults::CORDONED_BY: null } },
            "spec": { "unschedulable": null },
        });
        loop {
            match rt.block_on(api.patch(
                &u.node,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )) {
                Ok(_) => return Ok(format!("uncordoned node {}", u.node)),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    return Ok(format!("node {} is gone: nothing to uncordon", u.node));
                }
                Err(e) if transient(&e) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(500));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot {u}: {}; do it with: kubectl uncordon {}",
                        describe(&e),
                        u.node
                    ));
                }
            }
        }
    })
}

/// Which cluster `target` is: the uid of its `kube-system` namespace (`None` if unreadable).
pub fn cluster_id(target: &Target, rt: &crate::connection::Rt) -> Option<String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(target.client.clone());
    rt.block_on(api.get_opt("kube-system"))
        .ok()
        .flatten()
        .and_then(|n| n.metadata.uid)
}

fn show(d: SignedDuration) -> String {
    crate::duration::format(d.unsigned_abs())
}

/// An API error in words, with the server's reason when it gave one.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({}, {})", s.message, s.reason, s.code),
        other => other.to_string(),
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Whether an error may go away by itself: 5xx, 429, a broken connection, no answer in time.
pub fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => !matches!(
            request::gave_up(e),
            Some(request::GaveUp::Interrupted { .. })
        ),
        _ => false,
    }
}

/// Creates `obj` idempotently: when the answer is lost (a 500 or a reset after the server
/// created it, or a retry that meets 409 AlreadyExists), the object is looked up by name and
/// adopted if it carries `label` (this run's id); otherwise the error stands.
pub fn create_adopting(
    rt: &crate::connection::Rt,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    label: (&str, &str),
) -> Result<DynamicObject, kube::Error> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let created = rt.block_on(api.create(&kube::api::PostParams::default(), obj));
    let err = match created {
        Ok(o) => return Ok(o),
        Err(e) => e,
    };
    let lost = conflict(&err) || transient(&err);
    if !lost || name.is_empty() {
        return Err(err);
    }
    match rt.block_on(api.get_opt(&name)) {
        Ok(Some(found))
            if found
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(label.0))
                .is_some_and(|v| v == label.1) =>
        {
            Ok(found)
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_last_in_first_out_and_once() {
        let a = ObjectRef::new("v1", "ConfigMap", Some("ns"), "a");
        let b = ObjectRef::new("v1", "ConfigMap", Some("ns"), "b");
        let c = ObjectRef::new("v1", "ConfigMap", Some("ns"), "c");
        let mut l = Ledger::default();
        for o in [&a, &b, &c] {
            l.push(Step::Delete(o.clone()));
        }
        l.done(&b);
        assert_eq!(l.live_objects(), vec![a.clone(), c.clone()]);
        let order: Vec<String> = l.take().iter().map(Step::describe).collect();
        assert_eq!(order, ["delete ConfigMap ns/c", "delete ConfigMap ns/a"]);
        assert!(l.take().is_empty());
        // Taken is not removed: a removal that failed still names its object.
        assert_eq!(l.live_objects(), vec![a.clone(), c.clone()]);
        l.done(&a);
        l.done(&c);
        assert!(l.live_objects().is_empty());
    }

    #[test]
    fn a_leftover_names_the_kubectl_command_that_removes_it() {
        let o = ObjectRef::new("chaos-mesh.org/v1alpha1", "PodChaos", Some("argo"), "pb-x");
        assert_eq!(
            o.leftover(),
            "PodChaos argo/pb-x (remove it with: kubectl delete podchaos.chaos-mesh.org -n argo pb-x)"
        );
    }
}
