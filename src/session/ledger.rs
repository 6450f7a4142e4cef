//! The cleanup ledger: what a run must undo, last-in first-out, each step exactly once, each
//! object known by its identity (kind, namespace, name and, once created, uid — never by name
//! alone); and the removal of one object — delete (only the object with that uid), then wait
//! until it is gone (so Chaos Mesh has recovered), retrying transient API errors.

use std::time::Duration;

use jiff::SignedDuration;
use kube::api::{Api, DeleteParams, DynamicObject, Preconditions};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};

use crate::connection::Target;

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
        }
    }
}

/// The steps of one run, in the order they were added.
#[derive(Default)]
pub struct Ledger {
    steps: Vec<(Step, bool)>,
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

    /// Objects created and not yet removed, oldest first.
    pub fn live_objects(&self) -> Vec<ObjectRef> {
        self.steps
            .iter()
            .filter_map(|(s, done)| match s {
                Step::Delete(o) if !done => Some(o.clone()),
                _ => None,
            })
            .collect()
    }
}

/// How long cleanup waits for one object to be gone.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Transient API errors are retried this many times.
const RETRIES: u32 = 5;

/// The API of `object`'s kind, found by discovery (so plurals are never guessed).
pub fn api_for(
    target: &Target,
    rt: &tokio::runtime::Handle,
    object: &ObjectRef,
) -> Result<Api<DynamicObject>, String> {
    let gvk = object.gvk();
    let ar = retry(|| rt.block_on(target.resource(&gvk))).map_err(|e| {
        format!(
            "cannot find kind {} {}: {}",
            object.api_version, object.kind, e
        )
    })?;
    Ok(api_in(target, &ar, object.namespace.as_deref()))
}

/// The API of a resource, in a namespace or cluster-wide.
pub fn api_in(target: &Target, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(target.client.clone(), ns, ar),
        None => Api::all_with(target.client.clone(), ar),
    }
}

/// Deletes `object` and waits until it is gone; what happened, in words.
pub fn remove(
    target: &Target,
    rt: &tokio::runtime::Handle,
    object: &ObjectRef,
) -> Result<String, String> {
    let api = api_for(target, rt, object)?;
    let mut params = DeleteParams::background();
    // Only this very object: another one that took its name since is not ours to delete.
    if object.uid.is_some() {
        params = params.preconditions(Preconditions {
            uid: object.uid.clone(),
            resource_version: None,
        });
    }
    let deleted = retry(|| rt.block_on(api.delete(&object.name, &params)));
    match deleted {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Ok(format!("{object} was already gone"));
        }
        Err(kube::Error::Api(s)) if s.code == 409 && object.uid.is_some() => {
            return Ok(format!(
                "{object} was already gone (another object has that name now; not touched)"
            ));
        }
        Err(e) => return Err(format!("cannot delete {object}: {e}")),
    }
    let start = target.clock.now();
    let limit = start
        .checked_add(SignedDuration::try_from(REMOVE_TIMEOUT).unwrap_or_default())
        .unwrap_or(start);
    // A stop that never fires: cleanup must finish even after Ctrl-C or a timeout.
    let never = crate::session::Stop::unbounded();
    loop {
        let now = retry(|| rt.block_on(api.get_opt(&object.name)))
            .map(|o| o.filter(|o| object.uid.is_none() || o.metadata.uid == object.uid));
        match now {
            Ok(None) => {
                let took = target.clock.now().duration_since(start);
                return Ok(format!("removed {object} (gone after {})", show(took)));
            }
            Ok(Some(_)) if target.clock.now() >= limit => {
                return Err(format!(
                    "{object} is still there {} after deletion (a finalizer not removed?)",
                    crate::duration::format(REMOVE_TIMEOUT)
                ));
            }
            Ok(Some(_)) => {
                let _ = target.clock.step(limit, &never);
            }
            Err(e) => return Err(format!("cannot check that {object} is gone: {e}")),
        }
    }
}

/// Scales a workload back to the replicas it had before the playbook first scaled it.
pub fn restore(
    target: &Target,
    rt: &tokio::runtime::Handle,
    r: &Restore,
) -> Result<String, String> {
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
    match retry(|| {
        rt.block_on(api.patch_scale(
            &r.workload.name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        ))
    }) {
        Ok(_) => Ok(format!("scaled {} back to {}", r.workload, r.replicas)),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Ok(format!("{} is gone: nothing to scale back", r.workload))
        }
        Err(e) => Err(format!("cannot {r}: {e}")),
    }
}

/// Which cluster `target` is: the uid of its `kube-system` namespace (`None` if unreadable).
pub fn cluster_id(target: &Target, rt: &tokio::runtime::Handle) -> Option<String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(target.client.clone());
    retry(|| rt.block_on(api.get_opt("kube-system")))
        .ok()
        .flatten()
        .and_then(|n| n.metadata.uid)
}

fn show(d: SignedDuration) -> String {
    crate::duration::format(d.unsigned_abs())
}

/// Runs `f` again on transient errors (5xx, 429, connection problems), with a short back-off.
pub fn retry<T>(mut f: impl FnMut() -> Result<T, kube::Error>) -> Result<T, kube::Error> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if attempt < RETRIES && transient(&e) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            other => return other,
        }
    }
}

fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
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
        assert!(l.live_objects().is_empty());
    }
}
