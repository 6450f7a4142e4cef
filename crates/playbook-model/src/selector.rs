//! Chaos Mesh v2.8.1's pod selection as pure functions over pods and nodes given as JSON: which pods a `PodSelectorSpec` matches and how many of them a mode keeps; the simulator's controller and the product's dry-run preview both call it.
//!
//! Follows `pkg/selector/pod/selector.go` (`SelectPods`, `selectSpecifiedPods`), the generic
//! selectors of `pkg/selector/generic/{label,namespace,field,annotation}/selector.go`,
//! `pkg/selector/pod/{node,phase}_selector.go` and `pkg/selector/generic/mode.go`, error
//! messages included:
//! - `pods` (namespace -> names) given: exactly those pods that exist, in **any** phase, and
//!   no other selector applies.
//! - Otherwise the pods of `namespaces` (the webhook defaults an empty list to the
//!   experiment's namespace), then every selector: `labelSelectors` and `expressionSelectors`
//!   (a metav1.LabelSelector), `fieldSelectors` (equality on the pod's selectable fields),
//!   `annotationSelectors` (equality), `nodes` and `nodeSelectors` (the pod runs on a named
//!   node or on a node whose labels match), `podPhaseSelectors` (`Running` includes,
//!   `!Succeeded` excludes). Without `podPhaseSelectors` pods in **every** phase are
//!   candidates (Pending, Succeeded, Failed, and pods being deleted).
//! - Modes: `one`, `all`, `fixed` (min(n, value); value <= 0 an error), `fixed-percent`
//!   (floor(n x p / 100), so possibly none), `random-max-percent` (floor(n x r / 100), r
//!   uniform in [0, max]); mode.go computes `int(math.Floor(float64(count) *
//!   float64(percentage) / 100))` for both.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The pod fields a field selector may name (the API server's pod field label conversion,
/// `pkg/registry/core/pod/strategy.go` `ToSelectableFields`, which Chaos Mesh's
/// `toPodSelectableFields` mirrors).
const POD_FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
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

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// One requirement of a label selector.
#[derive(Debug, Clone)]
enum Req {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Req {
    fn matches(&self, labels: &serde_json::Map<String, Value>) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        match self {
            Req::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Req::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Req::Exists(k) => get(k).is_some(),
            Req::DoesNotExist(k) => get(k).is_none(),
        }
    }
}

/// `metav1.LabelSelectorAsSelector` of `matchLabels` and `matchExpressions`.
fn label_selector(match_labels: Option<&Value>, exprs: Option<&Value>) -> Result<Vec<Req>, String> {
    let mut reqs: Vec<Req> = string_map(match_labels)
        .into_iter()
        .map(|(k, v)| Req::In(k, vec![v]))
        .collect();
    for e in exprs.and_then(Value::as_array).into_iter().flatten() {
        let key = s(e, "/key").to_string();
        let values = strings(e.get("values"));
        let op = s(e, "/operator");
        reqs.push(match op {
            "In" | "NotIn" if values.is_empty() => {
                return Err(
                    "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
                        .to_string(),
                );
            }
            "In" => Req::In(key, values),
            "NotIn" => Req::NotIn(key, values),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(
                    "values: Invalid value: for 'exists', 'doesnotexist' operators, values set must be empty"
                        .to_string(),
                );
            }
            "Exists" => Req::Exists(key),
            "DoesNotExist" => Req::DoesNotExist(key),
            other => return Err(format!("{other:?} is not a valid label selector operator")),
        });
    }
    Ok(reqs)
}

fn labels_of<'a>(
    obj: &'a Value,
    field: &str,
) -> std::borrow::Cow<'a, serde_json::Map<String, Value>> {
    match obj
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
    {
        Some(m) => std::borrow::Cow::Borrowed(m),
        None => std::borrow::Cow::Owned(serde_json::Map::new()),
    }
}

/// `podPhaseSelectors`, parsed as `labels.Parse` of the items joined by commas: a bare phase
/// includes, `!phase` excludes, any other operator is refused.
fn phase_selector(items: &[String]) -> Result<(Vec<String>, Vec<String>), String> {
    let (mut incl, mut excl) = (Vec::new(), Vec::new());
    let joined = items.join(",");
    for item in joined.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if let Some(p) = item.strip_prefix('!') {
            excl.push(p.trim().to_string());
        } else if item.contains("!=") {
            return Err("unsupported operator: !=".into());
        } else if item.contains("==") {
            return Err("unsupported operator: ==".into());
        } else if item.contains('=') {
            return Err("unsupported operator: =".into());
        } else if item.contains(" notin ") {
            return Err("unsupported operator: notin".into());
        } else if item.contains(" in ") {
            return Err("unsupported operator: in".into());
        } else {
            incl.push(item.to_string());
        }
    }
    Ok((incl, excl))
}

/// The value of a selectable field of a pod (Chaos Mesh's `toPodSelectableFields`).
fn pod_field<'a>(pod: &'a Value, field: &str) -> &'a str {
    match field {
        "status.podIP" => pod
            .pointer("/status/podIPs/0/ip")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        f => {
            let ptr = format!("/{}", f.replace('.', "/"));
            s(pod, &ptr)
        }
    }
}

/// The pods a selector lists by name (`pods`: namespace -> names), when it does: then they are
/// the only candidates, whatever else the selector says.
pub fn named_pods(selector: &Value) -> Option<BTreeSet<(String, String)>> {
    let by_ns = selector
        .get("pods")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())?;
    Some(
        by_ns
            .iter()
            .flat_map(|(ns, names)| {
                strings(Some(names))
                    .into_iter()
                    .map(move |n| (ns.clone(), n))
            })
            .collect(),
    )
}

/// The namespaces a selector lists pods from (`namespaces`, else `default_ns`).
pub fn namespaces(selector: &Value, default_ns: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = strings(selector.get("namespaces")).into_iter().collect();
    if out.is_empty() {
        out.insert(default_ns.to_string());
    }
    out
}

/// The indexes of the `pods` the `PodSelectorSpec` `selector` matches, ordered by namespace
/// and name (a list's order). `default_ns` stands for an empty `namespaces` (the experiment's
/// namespace). `nodes` are the cluster's nodes (for `nodes` and `nodeSelectors`).
pub fn candidates<P: Borrow<Value>, N: Borrow<Value>>(
    selector: &Value,
    default_ns: &str,
    pods: &[P],
    nodes: &[N],
) -> Result<Vec<usize>, String> {
    let key = |p: &Value| {
        (
            s(p, "/metadata/namespace").to_string(),
            s(p, "/metadata/name").to_string(),
        )
    };
    let mut order: Vec<(String, String, usize)> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (ns, n) = key(p.borrow());
            (ns, n, i)
        })
        .collect();
    order.sort();
    // selectSpecifiedPods: the named pods that exist, nothing else applies.
    if let Some(wanted) = named_pods(selector) {
        return Ok(order
            .into_iter()
            .filter(|(ns, n, _)| wanted.contains(&(ns.clone(), n.clone())))
            .map(|(_, _, i)| i)
            .collect());
    }
    let labels = label_selector(
        selector.get("labelSelectors"),
        selector.get("expressionSelectors"),
    )?;
    let namespaces = namespaces(selector, default_ns);
    let fields = string_map(selector.get("fieldSelectors"));
    if let Some(f) = fields.keys().find(|f| !POD_FIELDS.contains(&f.as_str())) {
        return Err(format!("field label not supported: {f}"));
    }
    let annotations: Vec<Req> = string_map(selector.get("annotationSelectors"))
        .into_iter()
        .map(|(k, v)| Req::In(k, vec![v]))
        .collect();
    let node_names = node_filter(selector, nodes)?;
    let (incl, excl) = phase_selector(&strings(selector.get("podPhaseSelectors")))?;
    let mut out = Vec::new();
    for (ns, _, i) in order {
        if !namespaces.contains(&ns) {
            continue;
        }
        let pod = pods[i].borrow();
        if !labels.iter().all(|r| r.matches(&labels_of(pod, "labels"))) {
            continue;
        }
        if !fields.iter().all(|(f, v)| pod_field(pod, f) == v) {
            continue;
        }
        if !annotations
            .iter()
            .all(|r| r.matches(&labels_of(pod, "annotations")))
        {
            continue;
        }
        if let Some(names) = &node_names
            && !names.contains(s(pod, "/spec/nodeName"))
        {
            continue;
        }
        let phase = s(pod, "/status/phase");
        if !(incl.is_empty() || incl.iter().any(|p| p == phase)) || excl.iter().any(|p| p == phase)
        {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

/// The node names pods must run on (`nodes` united with the nodes `nodeSelectors` match), or
/// `None` when neither is given. A named node that does not exist is an error, as the
/// controller's `Get` of it is.
fn node_filter<N: Borrow<Value>>(
    selector: &Value,
    nodes: &[N],
) -> Result<Option<BTreeSet<String>>, String> {
    let listed = strings(selector.get("nodes"));
    let by_labels = string_map(selector.get("nodeSelectors"));
    if listed.is_empty() && by_labels.is_empty() {
        return Ok(None);
    }
    let names: BTreeSet<&str> = nodes
        .iter()
        .map(|n| s(n.borrow(), "/metadata/name"))
        .collect();
    let mut set = BTreeSet::new();
    for n in listed {
        if !names.contains(n.as_str()) {
            return Err(format!("nodes \"{n}\" not found"));
        }
        set.insert(n);
    }
    if !by_labels.is_empty() {
        for n in nodes {
            let n = n.borrow();
            let l = labels_of(n, "labels");
            if by_labels
                .iter()
                .all(|(k, v)| l.get(k).and_then(Value::as_str) == Some(v.as_str()))
            {
                set.insert(s(n, "/metadata/name").to_string());
            }
        }
    }
    Ok(Some(set))
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

/// How many of `count` candidates a mode keeps: the range `(least, most)` (equal except for
/// `random-max-percent`, whose draw decides), or Chaos Mesh's error for a bad mode or value.
pub fn mode_count(mode: &str, value: &str, count: usize) -> Result<(usize, usize), String> {
    mode_pick(mode, value, count, &mut |n| n.saturating_sub(1))
        .map(|(least, most, _)| (least, most))
}

/// `floor(count x percent / 100)`, as pkg/selector/generic/mode.go's
/// `int(math.Floor(float64(count) * float64(percentage) / 100))`.
fn percent_of(count: usize, percent: usize) -> usize {
    count * percent / 100
}

/// (least, most, drawn) for a mode; `draw(n)` is a uniform draw in `[0, n)`.
fn mode_pick(
    mode: &str,
    value: &str,
    count: usize,
    draw: &mut dyn FnMut(usize) -> usize,
) -> Result<(usize, usize, usize), String> {
    if count == 0 {
        return Err("cannot generate objects from empty list".into());
    }
    let below = || "cannot select any object as value below or equal 0".to_string();
    Ok(match mode {
        "one" => (1, 1, 1),
        "all" => (count, count, count),
        "fixed" => {
            let num = atoi(value)?.min(count as i64);
            if num <= 0 {
                return Err(below());
            }
            (num as usize, num as usize, num as usize)
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
            let n = percent_of(count, p as usize);
            (n, n, n)
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
            let p = draw(max as usize + 1);
            (0, percent_of(count, max as usize), percent_of(count, p))
        }
        other => return Err(format!("mode {other} not supported")),
    })
}

/// Chaos Mesh's `FilterObjectsByMode`: the indexes (in draw order) of the candidates to keep
/// out of `count`; `draw(n)` must return a uniform draw in `[0, n)`.
pub fn filter_by_mode(
    mode: &str,
    value: &str,
    count: usize,
    draw: &mut dyn FnMut(usize) -> usize,
) -> Result<Vec<usize>, String> {
    let (_, _, n) = mode_pick(mode, value, count, draw)?;
    if mode == "one" {
        return Ok(vec![draw(count)]);
    }
    // RandomFixedIndexes: every index in order when asked for more than there are (`all`
    // asks for count + 1); else distinct random draws.
    if mode == "all" || n > count {
        return Ok((0..count).collect());
    }
    let mut picked = Vec::with_capacity(n);
    while picked.len() < n {
        let i = draw(count);
        if !picked.contains(&i) {
            picked.push(i);
        }
    }
    Ok(picked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, phase: &str, labels: Value, node: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "labels": labels,
            "annotations": {"team": name}},
            "spec": {"nodeName": node, "restartPolicy": "Always"},
            "status": {"phase": phase, "podIPs": [{"ip": format!("10.0.0.{}", name.len())}]}})
    }

    fn fixture() -> (Vec<Value>, Vec<Value>) {
        let pods = vec![
            pod("ml", "c", "Running", json!({"app": "a"}), "n1"),
            pod("ml", "a", "Succeeded", json!({"app": "a"}), "n1"),
            pod("ml", "b", "Pending", json!({"app": "a", "tier": "x"}), "n2"),
            pod("other", "d", "Running", json!({"app": "a"}), "n2"),
        ];
        let nodes = vec![
            json!({"metadata": {"name": "n1", "labels": {"gpu": "true"}}}),
            json!({"metadata": {"name": "n2", "labels": {}}}),
        ];
        (pods, nodes)
    }

    fn names(sel: Value) -> Result<Vec<String>, String> {
        let (pods, nodes) = fixture();
        Ok(candidates(&sel, "ml", &pods, &nodes)?
            .into_iter()
            .map(|i| s(&pods[i], "/metadata/name").to_string())
            .collect())
    }

    /// pkg/selector/pod/selector.go, phase_selector.go, node_selector.go and the generic
    /// selectors: every phase by default, ordered as a list.
    #[test]
    fn each_selector_kind() {
        assert_eq!(
            names(json!({"labelSelectors": {"app": "a"}})).unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            names(json!({"namespaces": ["ml", "other"], "labelSelectors": {"app": "a"}})).unwrap(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            names(json!({"expressionSelectors": [{"key": "tier", "operator": "DoesNotExist"}]}))
                .unwrap(),
            ["a", "c"]
        );
        assert_eq!(
            names(json!({"annotationSelectors": {"team": "b"}})).unwrap(),
            ["b"]
        );
        assert_eq!(
            names(json!({"fieldSelectors": {"status.phase": "Running"}})).unwrap(),
            ["c"]
        );
        assert_eq!(
            names(json!({"fieldSelectors": {"spec.foo": "x"}})).unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert_eq!(names(json!({"nodes": ["n2"]})).unwrap(), ["b"]);
        assert_eq!(
            names(json!({"nodeSelectors": {"gpu": "true"}})).unwrap(),
            ["a", "c"]
        );
        assert_eq!(
            names(json!({"nodes": ["n9"]})).unwrap_err(),
            "nodes \"n9\" not found"
        );
        assert_eq!(
            names(json!({"podPhaseSelectors": ["Running", "Pending"]})).unwrap(),
            ["b", "c"]
        );
        assert_eq!(
            names(json!({"podPhaseSelectors": ["!Succeeded"]})).unwrap(),
            ["b", "c"]
        );
        assert_eq!(
            names(json!({"podPhaseSelectors": ["phase=Running"]})).unwrap_err(),
            "unsupported operator: ="
        );
        // `pods`: exactly those, any phase, other selectors ignored.
        assert_eq!(
            names(json!({"pods": {"ml": ["a", "zz"], "other": ["d"]}, "labelSelectors": {"app": "none"}})).unwrap(),
            ["a", "d"]
        );
        assert!(
            names(json!({"expressionSelectors": [{"key": "k", "operator": "In", "values": []}]}))
                .is_err()
        );
    }

    /// pkg/selector/generic/mode.go: fixed-percent and random-max-percent round down
    /// (`math.Floor`), so a small percentage of few pods selects none.
    #[test]
    fn modes_and_their_rounding() {
        assert_eq!(mode_count("fixed-percent", "50", 3), Ok((1, 1)));
        assert_eq!(mode_count("fixed-percent", "10", 3), Ok((0, 0)));
        assert_eq!(mode_count("fixed-percent", "67", 3), Ok((2, 2)));
        assert_eq!(mode_count("fixed-percent", "100", 3), Ok((3, 3)));
        assert_eq!(mode_count("random-max-percent", "50", 3), Ok((0, 1)));
        assert_eq!(mode_count("random-max-percent", "100", 3), Ok((0, 3)));
        assert_eq!(mode_count("fixed", "5", 3), Ok((3, 3)));
        assert_eq!(
            mode_count("fixed", "-1", 3).unwrap_err(),
            "cannot select any object as value below or equal 0"
        );
        assert_eq!(mode_count("one", "", 3), Ok((1, 1)));
        assert_eq!(mode_count("all", "", 3), Ok((3, 3)));
        assert_eq!(
            mode_count("fixed", "0", 3).unwrap_err(),
            "cannot select any object as value below or equal 0"
        );
        assert_eq!(
            mode_count("fixed-percent", "101", 3).unwrap_err(),
            "fixed percentage value of 101 is invalid, Must be (0,100]"
        );
        assert_eq!(
            mode_count("fixed", "x", 3).unwrap_err(),
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            mode_count("some", "", 3).unwrap_err(),
            "mode some not supported"
        );
        assert_eq!(
            mode_count("all", "", 0).unwrap_err(),
            "cannot generate objects from empty list"
        );
        let mut seq = [2usize, 0, 0, 1].into_iter().cycle();
        let mut draw = |n: usize| seq.next().unwrap_or(0) % n;
        assert_eq!(
            filter_by_mode("fixed-percent", "67", 3, &mut draw),
            Ok(vec![2, 0])
        );
        assert_eq!(
            filter_by_mode("fixed-percent", "10", 3, &mut draw),
            Ok(vec![])
        );
        assert_eq!(filter_by_mode("all", "", 3, &mut draw), Ok(vec![0, 1, 2]));
    }
}
