//! Which pods (and containers) an experiment hits: Chaos Mesh's selector (namespaces, labels, expressions, annotations, fields, pods, phases, nodes) and mode (one, all, fixed, fixed-percent, random-max-percent).
//!
//! Follows `pkg/selector/pod` and `pkg/selector/generic/mode.go` of Chaos Mesh v2.8.1, error
//! messages included, with one deliberate difference the simulator's users rely on: pods that
//! are being deleted, and (unless `podPhaseSelectors` says otherwise) pods not `Running`, are
//! never candidates (completed Argo step pods are the classic trap).

use std::collections::BTreeSet;
use std::sync::Arc;

use rand::Rng;
use serde_json::{Value, json};

use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Store, meta_str};

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

/// Every pod the selector matches that can be a target (not being deleted; `Running` unless
/// `podPhaseSelectors` is given), ordered by namespace and name.
pub fn candidates(
    store: &Store,
    selector: &Value,
    default_ns: &str,
) -> Result<Vec<Arc<Value>>, String> {
    let Some(pods_res) = store.registry().lookup("pods") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Arc<Value>> = Vec::new();
    if let Some(by_ns) = selector
        .get("pods")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    {
        let mut wanted = BTreeSet::new();
        for (ns, names) in by_ns {
            for n in names.as_array().into_iter().flatten() {
                if let Some(n) = n.as_str() {
                    wanted.insert((ns.clone(), n.to_string()));
                }
            }
        }
        out.extend(
            wanted
                .iter()
                .filter_map(|(ns, n)| store.get(pods_res, ns, n).cloned()),
        );
    } else {
        let labels = LabelSelector::from_json(&json!({
            "matchLabels": selector.get("labelSelectors").cloned().unwrap_or(Value::Null),
            "matchExpressions": selector.get("expressionSelectors").cloned().unwrap_or(Value::Null),
        }))
        .map_err(|e| e.to_string())?;
        let mut namespaces: BTreeSet<String> =
            strings(selector.get("namespaces")).into_iter().collect();
        if namespaces.is_empty() {
            namespaces.insert(default_ns.to_string());
        }
        for ns in &namespaces {
            out.extend(store.list(pods_res, Some(ns), &labels, &FieldSelector::default()));
        }
    }
    let annotations = selector
        .get("annotationSelectors")
        .and_then(Value::as_object);
    let fields = selector.get("fieldSelectors").and_then(Value::as_object);
    let nodes = node_filter(store, selector)?;
    let phases = PhaseFilter::parse(&strings(selector.get("podPhaseSelectors")))?;
    out.retain(|pod| {
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            return false;
        }
        let phase = pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !phases.matches(phase) {
            return false;
        }
        if let Some(a) = annotations {
            let have = pod.pointer("/metadata/annotations");
            if !a
                .iter()
                .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
            {
                return false;
            }
        }
        if let Some(f) = fields
            && !f.iter().all(|(path, v)| field(pod, path) == v.as_str())
        {
            return false;
        }
        if let Some(nodes) = &nodes {
            let node = pod.pointer("/spec/nodeName").and_then(Value::as_str);
            if !node.is_some_and(|n| nodes.contains(n)) {
                return false;
            }
        }
        true
    });
    Ok(out)
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

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A dotted field path (`metadata.name`, `spec.nodeName`, `status.phase`) of a pod.
fn field<'a>(pod: &'a Value, path: &str) -> Option<&'a str> {
    let mut v = pod;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    v.as_str()
}

/// The node names pods must run on (`nodes` united with the nodes `nodeSelectors` match), or
/// `None` when neither is given.
fn node_filter(store: &Store, selector: &Value) -> Result<Option<BTreeSet<String>>, String> {
    let listed = strings(selector.get("nodes"));
    let by_labels = selector
        .get("nodeSelectors")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    if listed.is_empty() && by_labels.is_none() {
        return Ok(None);
    }
    let mut set: BTreeSet<String> = listed.into_iter().collect();
    if let Some(m) = by_labels {
        let sel =
            LabelSelector::from_json(&json!({"matchLabels": m})).map_err(|e| e.to_string())?;
        if let Some(nodes) = store.registry().lookup("nodes") {
            for n in store.list(nodes, None, &sel, &FieldSelector::default()) {
                set.insert(meta_str(&n, "name").to_string());
            }
        }
    }
    Ok(Some(set))
}

/// `podPhaseSelectors`: `Running`, `Pending` (include) and `!Succeeded` (exclude), as Chaos
/// Mesh's phase selector parses them; with none, only `Running` pods are candidates.
struct PhaseFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl PhaseFilter {
    fn parse(items: &[String]) -> Result<Self, String> {
        let mut f = PhaseFilter {
            include: Vec::new(),
            exclude: Vec::new(),
        };
        for item in items.iter().flat_map(|s| s.split(',')) {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            match item.strip_prefix('!') {
                Some(p) => f.exclude.push(p.trim().to_string()),
                None if item.contains(['=', ' ', '(']) => {
                    return Err(format!("unsupported operator in podPhaseSelectors: {item}"));
                }
                None => f.include.push(item.to_string()),
            }
        }
        if f.include.is_empty() && f.exclude.is_empty() {
            f.include.push("Running".into());
        }
        Ok(f)
    }

    fn matches(&self, phase: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p == phase))
            && !self.exclude.iter().any(|p| p == phase)
    }
}

/// Go's `strconv.Atoi`, with its error text.
fn atoi(value: &str) -> Result<i64, String> {
    value.parse::<i64>().map_err(|e| match e.kind() {
        std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
            format!("strconv.Atoi: parsing \"{value}\": value out of range")
        }
        _ => format!("strconv.Atoi: parsing \"{value}\": invalid syntax"),
    })
}

/// Chaos Mesh's `FilterObjectsByMode`: the indexes (in draw order) of the `count` candidates to keep.
pub fn filter_by_mode(
    mode: &str,
    value: &str,
    count: usize,
    rng: &mut impl Rng,
) -> Result<Vec<usize>, String> {
    if count == 0 {
        return Err("cannot generate objects from empty list".into());
    }
    let below = || "cannot select any object as value below or equal 0".to_string();
    let n = match mode {
        "one" => return Ok(vec![rng.random_range(0..count)]),
        "all" => count,
        "fixed" => {
            let num = atoi(value)?.min(count as i64);
            if num <= 0 {
                return Err(below());
            }
            num as usize
        }
        "fixed-percent" => {
            let p = atoi(value)?;
            if p == 0 {
                return Err(below());
            }
            if !(0..=100).contains(&p) {
                return Err(format!(
                    "fixed percentage value of {p} is invalid, Must be (0,100]"
                ));
            }
            count * p as usize / 100
        }
        "random-max-percent" => {
            let max = atoi(value)?;
            if max == 0 {
                return Err(below());
            }
            if !(0..=100).contains(&max) {
                return Err(format!(
                    "fixed percentage value of {max} is invalid, Must be [0-100]"
                ));
            }
            let p = rng.random_range(0..=max as usize);
            count * p / 100
        }
        other => return Err(format!("mode {other} not supported")),
    };
    if n >= count {
        return Ok((0..count).collect());
    }
    let mut picked = Vec::with_capacity(n);
    while picked.len() < n {
        let i = rng.random_range(0..count);
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    Ok(picked)
}
