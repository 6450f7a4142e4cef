//! Which pods a Chaos Mesh selector reaches and how many its mode keeps, as a pure function of
//! the pods and nodes listed from the cluster — Chaos Mesh v2.8.1's own rules
//! (`pkg/selector/pod/selector.go`, `phase_selector.go`, `node_selector.go`,
//! `pkg/selector/generic/{label,annotation,field,namespace}`, `pkg/selector/generic/mode.go`):
//!
//! - `pods` (namespace -> names) wins outright: those pods, in any phase, and no other selector
//!   applies (`selectSpecifiedPods`).
//! - otherwise every pod of `namespaces` (the experiment's own when empty, as the webhook
//!   defaults it) matching `labelSelectors` + `expressionSelectors`, `annotationSelectors`,
//!   `fieldSelectors`, `nodes` / `nodeSelectors` (their nodes united) and `podPhaseSelectors`
//!   (`Running`, `!Succeeded`). With no phase selector **every phase** is a candidate, pods
//!   being deleted included: Chaos Mesh does not skip them.
//! - the mode keeps: `one` 1, `all` all, `fixed` min(n, count), `fixed-percent`
//!   ceil(count x p / 100), `random-max-percent` ceil(count x r / 100) for r drawn from 0..=p
//!   (so it may keep none).
//!
//! This is the one place the product previews a selection (safety checks, `--dry-run`,
//! `selected()` in a dry run); the simulator has its own copy in `playbook-sim`'s
//! `chaos/select.rs`. One interface for both is meant to replace them: swap the bodies of
//! [`candidates`] and [`kept`] for it.

use serde_json::Value;

/// The pod fields the API server accepts in a field selector (`pkg/registry/core/pod/strategy.go`,
/// `ToSelectableFields`), as Chaos Mesh passes `fieldSelectors` on to it.
const POD_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
];

/// The namespaces a selector lists pods in: `namespaces`, else the experiment's own.
pub fn namespaces(selector: &Value, default_ns: &str) -> Vec<String> {
    let listed = strings(selector.get("namespaces"));
    if listed.is_empty() {
        vec![default_ns.to_string()]
    } else {
        listed
    }
}

/// Whether the selector names pods one by one (`selector.pods`): those namespaces and names.
pub fn named_pods(selector: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(by_ns) = selector.get("pods").and_then(Value::as_object) {
        for (ns, names) in by_ns {
            for n in strings(Some(names)) {
                out.push((ns.clone(), n));
            }
        }
    }
    out
}

/// Whether the selector needs the cluster's nodes (`nodes` or `nodeSelectors`).
pub fn needs_nodes(selector: &Value) -> bool {
    !strings(selector.get("nodes")).is_empty()
        || selector
            .get("nodeSelectors")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
}

/// The candidates among `pods` (the pods of [`namespaces`], or those [`named_pods`] found),
/// as `namespace/name`, sorted. `nodes` are the cluster's nodes (only read when
/// [`needs_nodes`]). An error is what Chaos Mesh would refuse (a bad operator or field).
pub fn candidates(
    selector: &Value,
    pods: &[Value],
    nodes: &[Value],
) -> Result<Vec<String>, String> {
    let id = |p: &Value| {
        format!(
            "{}/{}",
            p.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            p.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )
    };
    let mut out: Vec<String>;
    let named = named_pods(selector);
    if !named.is_empty() {
        out = pods
            .iter()
            .map(id)
            .filter(|i| named.iter().any(|(ns, n)| *i == format!("{ns}/{n}")))
            .collect();
    } else {
        let wanted = namespaces(selector, "");
        let node_names = node_names(selector, nodes)?;
        let phases = Phases::parse(&strings(selector.get("podPhaseSelectors")))?;
        let mut keep = Vec::new();
        for p in pods {
            let ns = p
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !wanted.is_empty()
                && wanted.iter().any(|w| !w.is_empty())
                && !wanted.iter().any(|w| w == ns)
            {
                continue;
            }
            if !labels_match(selector, p.pointer("/metadata/labels"))?
                || !equal_all(
                    selector.get("annotationSelectors"),
                    p.pointer("/metadata/annotations"),
                )
                || !fields_match(selector.get("fieldSelectors"), p)?
                || !phases.matches(
                    p.pointer("/status/phase")
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                )
            {
                continue;
            }
            if let Some(names) = &node_names {
                let node = p
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !names.iter().any(|n| n == node) {
                    continue;
                }
            }
            keep.push(id(p));
        }
        out = keep;
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// How many of `count` candidates `mode`/`value` keeps: `(fewest, most)` (equal but for
/// `random-max-percent`), or Chaos Mesh's own error (`cannot generate objects from empty list`...).
pub fn kept(mode: &str, value: &str, count: usize) -> Result<(usize, usize), String> {
    if count == 0 {
        return Err("cannot generate objects from empty list".into());
    }
    let atoi = |v: &str| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| format!("strconv.Atoi: parsing {v:?}: invalid syntax"))
    };
    let below = "cannot select any object as value below or equal 0".to_string();
    let ceil = |pct: i64| {
        (count as i64 * pct).div_euclid(100) as usize + usize::from((count as i64 * pct) % 100 != 0)
    };
    match mode {
        "one" => Ok((1, 1)),
        "all" => Ok((count, count)),
        "fixed" => {
            let n = atoi(value)?.min(count as i64);
            if n <= 0 {
                return Err(below);
            }
            Ok((n as usize, n as usize))
        }
        "fixed-percent" | "random-max-percent" => {
            let p = atoi(value)?;
            if p == 0 {
                return Err(below);
            }
            if !(0..=100).contains(&p) {
                return Err(format!(
                    "fixed percentage value of {p} is invalid, Must be (0,100]"
                ));
            }
            let most = ceil(p).min(count);
            if mode == "fixed-percent" {
                Ok((most, most))
            } else {
                Ok((0, most))
            }
        }
        other => Err(format!("mode {other} not supported")),
    }
}

/// What a dry run says the fault would select: the first `most` candidates by name (Chaos Mesh
/// draws them at random; a dry run cannot know which, so it names the first ones).
pub fn would_select(mode: &str, value: &str, candidates: &[String]) -> Vec<String> {
    match kept(mode, value, candidates.len()) {
        Ok((_, most)) => candidates.iter().take(most).cloned().collect(),
        Err(_) => Vec::new(),
    }
}

/// One line for people: "2 of 3 candidate pod(s): a, b, c" / "0 to 1 of ...".
pub fn describe(mode: &str, value: &str, candidates: &[String]) -> String {
    let list = if candidates.is_empty() {
        "no pod matches the selector now".to_string()
    } else {
        candidates.join(", ")
    };
    match kept(mode, value, candidates.len()) {
        Ok((a, b)) if a == b => format!("{b} of {} candidate pod(s): {list}", candidates.len()),
        Ok((a, b)) => format!(
            "{a} to {b} of {} candidate pod(s): {list}",
            candidates.len()
        ),
        Err(e) => format!("nothing ({e}): {list}"),
    }
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

/// `labelSelectors` (matchLabels) and `expressionSelectors` (matchExpressions: In, NotIn,
/// Exists, DoesNotExist), as `metav1.LabelSelectorAsSelector` reads them.
fn labels_match(selector: &Value, labels: Option<&Value>) -> Result<bool, String> {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    if !equal_all(selector.get("labelSelectors"), labels) {
        return Ok(false);
    }
    for e in selector
        .get("expressionSelectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values = strings(e.get("values"));
        let have = get(key);
        let ok = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => have.is_some_and(|h| values.iter().any(|v| v == h)),
            "NotIn" => have.is_none_or(|h| !values.iter().any(|v| v == h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            op => return Err(format!("{op:?} is not a valid label selector operator")),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Every key of `wanted` has exactly that value in `have` (`labels.SelectorFromSet`).
fn equal_all(wanted: Option<&Value>, have: Option<&Value>) -> bool {
    wanted
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| have.and_then(|h| h.get(k)).and_then(Value::as_str) == v.as_str())
}

fn fields_match(wanted: Option<&Value>, pod: &Value) -> Result<bool, String> {
    for (path, v) in wanted.and_then(Value::as_object).into_iter().flatten() {
        if !POD_FIELDS.contains(&path.as_str()) {
            return Err(format!(
                "field label not supported: {path} (a pod field selector takes {})",
                POD_FIELDS.join(", ")
            ));
        }
        let mut at = pod;
        for part in path.split('.') {
            at = at.get(part).unwrap_or(&Value::Null);
        }
        let have = match at {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null if path == "spec.hostNetwork" => "false".into(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if Some(have.as_str()) != v.as_str() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The nodes pods must run on (`nodes` united with the nodes `nodeSelectors` match), or `None`.
fn node_names(selector: &Value, nodes: &[Value]) -> Result<Option<Vec<String>>, String> {
    if !needs_nodes(selector) {
        return Ok(None);
    }
    let mut names = strings(selector.get("nodes"));
    for n in &names {
        if !nodes
            .iter()
            .any(|x| x.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
        {
            return Err(format!("nodes \"{n}\" not found"));
        }
    }
    if let Some(sel) = selector
        .get("nodeSelectors")
        .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
    {
        for n in nodes {
            if equal_all(Some(sel), n.pointer("/metadata/labels")) {
                names.extend(
                    n.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                );
            }
        }
    }
    Ok(Some(names))
}

/// `podPhaseSelectors`: `Running` includes, `!Succeeded` excludes; none: every phase.
struct Phases {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Phases {
    fn parse(items: &[String]) -> Result<Self, String> {
        let mut p = Phases {
            include: Vec::new(),
            exclude: Vec::new(),
        };
        for item in items
            .iter()
            .flat_map(|s| s.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match item.strip_prefix('!') {
                Some(x) => p.exclude.push(x.trim().to_string()),
                None if item.contains(['=', ' ', '(']) => {
                    return Err(format!("unsupported operator in podPhaseSelectors: {item}"));
                }
                None => p.include.push(item.to_string()),
            }
        }
        Ok(p)
    }

    fn matches(&self, phase: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| p == phase))
            && !self.exclude.iter().any(|p| p == phase)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, phase: &str, labels: Value, node: &str) -> Value {
        json!({ "metadata": { "namespace": ns, "name": name, "labels": labels, "annotations": { "team": "ml" } },
                "spec": { "nodeName": node }, "status": { "phase": phase } })
    }

    fn pods() -> Vec<Value> {
        vec![
            pod(
                "a",
                "p1",
                "Running",
                json!({ "app": "x", "tier": "web" }),
                "n1",
            ),
            pod("a", "p2", "Pending", json!({ "app": "x" }), ""),
            pod(
                "a",
                "p3",
                "Succeeded",
                json!({ "app": "x", "tier": "batch" }),
                "n2",
            ),
            pod("b", "p4", "Running", json!({ "app": "x" }), "n2"),
        ]
    }

    #[test]
    fn every_selector_kind_as_chaos_mesh_reads_it() {
        let nodes = vec![
            json!({ "metadata": { "name": "n1", "labels": { "zone": "z1" } } }),
            json!({ "metadata": { "name": "n2", "labels": { "zone": "z2" } } }),
        ];
        let c = |s: Value| candidates(&s, &pods(), &nodes).unwrap();
        // Every phase is a candidate when no phase selector is given.
        assert_eq!(
            c(json!({ "namespaces": ["a"], "labelSelectors": { "app": "x" } })),
            ["a/p1", "a/p2", "a/p3"]
        );
        assert_eq!(
            c(json!({ "namespaces": ["a"], "podPhaseSelectors": ["Running"] })),
            ["a/p1"]
        );
        assert_eq!(
            c(json!({ "namespaces": ["a"], "podPhaseSelectors": ["!Succeeded"] })),
            ["a/p1", "a/p2"]
        );
        assert_eq!(
            c(
                json!({ "namespaces": ["a", "b"], "expressionSelectors": [{ "key": "tier", "operator": "In", "values": ["web", "batch"] }] })
            ),
            ["a/p1", "a/p3"]
        );
        assert_eq!(
            c(
                json!({ "namespaces": ["a"], "expressionSelectors": [{ "key": "tier", "operator": "DoesNotExist" }] })
            ),
            ["a/p2"]
        );
        assert_eq!(
            c(
                json!({ "namespaces": ["a"], "annotationSelectors": { "team": "ml" }, "fieldSelectors": { "status.phase": "Pending" } })
            ),
            ["a/p2"]
        );
        assert_eq!(
            c(json!({ "namespaces": ["a", "b"], "nodeSelectors": { "zone": "z2" } })),
            ["a/p3", "b/p4"]
        );
        assert_eq!(
            c(
                json!({ "namespaces": ["a", "b"], "nodes": ["n1"], "nodeSelectors": { "zone": "z2" } })
            ),
            ["a/p1", "a/p3", "b/p4"]
        );
        // Named pods win outright, in any phase, whatever the other selectors say.
        assert_eq!(
            c(json!({ "pods": { "a": ["p3", "gone"] }, "labelSelectors": { "app": "nope" } })),
            ["a/p3"]
        );
        assert!(
            candidates(
                &json!({ "fieldSelectors": { "spec.bogus": "x" } }),
                &pods(),
                &nodes
            )
            .is_err()
        );
        assert!(candidates(&json!({ "nodes": ["n9"] }), &pods(), &nodes).is_err());
    }

    #[test]
    fn modes_round_up_as_chaos_mesh_does() {
        assert_eq!(kept("fixed-percent", "25", 3), Ok((1, 1)));
        assert_eq!(kept("fixed-percent", "50", 3), Ok((2, 2)));
        assert_eq!(kept("fixed-percent", "100", 3), Ok((3, 3)));
        assert_eq!(kept("random-max-percent", "50", 3), Ok((0, 2)));
        assert_eq!(kept("fixed", "5", 3), Ok((3, 3)));
        assert_eq!(kept("one", "", 3), Ok((1, 1)));
        assert_eq!(kept("all", "", 3), Ok((3, 3)));
        assert!(kept("one", "", 0).unwrap_err().contains("empty list"));
        assert!(
            kept("fixed", "0", 3)
                .unwrap_err()
                .contains("below or equal 0")
        );
        assert_eq!(
            would_select("fixed-percent", "50", &["a".into(), "b".into(), "c".into()]),
            ["a", "b"]
        );
        assert!(describe("one", "", &[]).contains("no pod matches"));
    }
}
