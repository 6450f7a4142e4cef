//! Which pods (and containers) an experiment hits: Chaos Mesh's selector (namespaces, labels, expressions, annotations, fields, pods, phases, nodes) and mode (one, all, fixed, fixed-percent, random-max-percent).
//!
//! The rules are [`playbook_model::selector`]'s (`pkg/selector/pod` and
//! `pkg/selector/generic/mode.go` of Chaos Mesh v2.8.1, error messages included): pods in every
//! phase are candidates, being deleted or completed included (completed Argo step pods are the
//! classic trap), unless `podPhaseSelectors` says otherwise. This module feeds it the store.

use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Store, meta_str};
use playbook_model::selector as model_selector;

/// Lists the pods a `PodSelectorSpec` (`spec.selector`, or `spec.target.selector`) matches,
/// then keeps some per `mode`/`value`, drawing from `rng`. `default_ns` stands for an empty
/// `namespaces` (Chaos Mesh's webhook defaults it to the experiment's namespace).
pub fn select_pods(
    store: &Store,
    selector: &Value,
    mode: &str,
    value: &str,
    default_ns: &str,
    rng: &mut impl Rng,
) -> Result<Vec<Arc<Value>>, String> {
    let pods = candidates(store, selector, default_ns)?;
    if pods.is_empty() {
        return Err("no pod is selected".into());
    }
    let idx = filter_by_mode(mode, value, pods.len(), rng)?;
    Ok(idx.into_iter().map(|i| pods[i].clone()).collect())
}

/// Every pod the selector matches, in any phase unless `podPhaseSelectors` says otherwise
/// (being deleted included), ordered by namespace and name: [`playbook_model::selector`] over
/// the store's pods and nodes.
pub fn candidates(
    store: &Store,
    selector: &Value,
    default_ns: &str,
) -> Result<Vec<Arc<Value>>, String> {
    let Some(pods_res) = store.registry().lookup("pods") else {
        return Ok(Vec::new());
    };
    let everything = (LabelSelector::default(), FieldSelector::default());
    let mut pods: Vec<Arc<Value>> = Vec::new();
    if let Some(wanted) = model_selector::named_pods(selector) {
        pods.extend(
            wanted
                .iter()
                .filter_map(|(ns, n)| store.get(pods_res, ns, n).cloned()),
        );
    } else {
        for ns in &model_selector::namespaces(selector, default_ns) {
            pods.extend(store.list(pods_res, Some(ns), &everything.0, &everything.1));
        }
    }
    let nodes = store
        .registry()
        .lookup("nodes")
        .map(|r| store.list(r, None, &everything.0, &everything.1))
        .unwrap_or_default();
    let idx = model_selector::candidates(selector, default_ns, &pods, &nodes)?;
    Ok(idx
        .into_iter()
        .filter_map(|i| pods.get(i).cloned())
        .collect())
}

/// The containers of a selected pod a container-level experiment hits (Chaos Mesh's
/// container selector): the first container when `names` is empty, else the named
/// containers (and named init containers with `restartPolicy: Always`, i.e. sidecars).
pub fn containers_of(pod: &Value, names: &[String]) -> Vec<String> {
    let list = |k: &str| {
        pod.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let name = |c: &Value| c.get("name").and_then(Value::as_str).map(str::to_string);
    if names.is_empty() {
        return list("containers")
            .first()
            .and_then(name)
            .into_iter()
            .collect();
    }
    let wanted = |c: &Value| name(c).filter(|n| names.contains(n));
    let sidecars = list("initContainers")
        .into_iter()
        .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
        .filter_map(|c| wanted(&c));
    sidecars
        .chain(list("containers").iter().filter_map(wanted))
        .collect()
}

/// `ns/name` of a pod (the id of a pod record).
pub fn pod_id(pod: &Value) -> String {
    format!("{}/{}", meta_str(pod, "namespace"), meta_str(pod, "name"))
}

/// Chaos Mesh's `FilterObjectsByMode` ([`playbook_model::selector::filter_by_mode`]), drawing
/// from `rng`: the indexes (in draw order) of the `count` candidates to keep.
pub fn filter_by_mode(
    mode: &str,
    value: &str,
    count: usize,
    rng: &mut impl Rng,
) -> Result<Vec<usize>, String> {
    model_selector::filter_by_mode(mode, value, count, &mut |n| rng.random_range(0..n.max(1)))
}
