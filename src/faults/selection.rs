//! The product's preview of a Chaos Mesh selection (safety checks, `--dry-run`, `selected()`
//! in a dry run): which pods a selector reaches and how many its mode keeps. The rules are
//! Chaos Mesh v2.8.1's, implemented once in `playbook_model::selector` (which the simulator's
//! Chaos Mesh uses too); this module only shapes them for the host API: pods as
//! `namespace/name`, and a line for people.

use serde_json::Value;

use playbook_model::selector;

/// The namespaces a selector lists pods in: `namespaces`, else the experiment's own.
pub fn namespaces(sel: &Value, default_ns: &str) -> Vec<String> {
    selector::namespaces(sel, default_ns).into_iter().collect()
}

/// The pods a selector names one by one (`selector.pods`), as (namespace, name).
pub fn named_pods(sel: &Value) -> Vec<(String, String)> {
    selector::named_pods(sel)
        .map(|s| s.into_iter().collect())
        .unwrap_or_default()
}

/// Whether the selector needs the cluster's nodes (`nodes` or `nodeSelectors`).
pub fn needs_nodes(sel: &Value) -> bool {
    sel.get("nodes")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
        || sel
            .get("nodeSelectors")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
}

/// The candidates among `pods` (listed from [`namespaces`], or the namespaces of
/// [`named_pods`]) as `namespace/name`, in order; `default_ns` is the experiment's namespace.
/// An error is what Chaos Mesh would refuse (a bad operator, field or node).
pub fn candidates(
    sel: &Value,
    default_ns: &str,
    pods: &[Value],
    nodes: &[Value],
) -> Result<Vec<String>, String> {
    let picked = selector::candidates(sel, default_ns, pods, nodes)?;
    Ok(picked
        .into_iter()
        .map(|i| {
            let p = &pods[i];
            format!(
                "{}/{}",
                p.pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                p.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        })
        .collect())
}

/// How many of `count` candidates `mode`/`value` keeps: `(fewest, most)`, or Chaos Mesh's error.
pub fn kept(mode: &str, value: &str, count: usize) -> Result<(usize, usize), String> {
    if count == 0 {
        // pkg/selector/generic/mode.go: FilterObjectsByMode refuses an empty list.
        return Err("cannot generate objects from empty list".into());
    }
    selector::mode_count(mode, value, count)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_down_as_chaos_mesh_does() {
        let three: Vec<String> = ["a/x", "a/y", "a/z"].map(String::from).to_vec();
        // pkg/selector/generic/mode.go: math.Floor(count * percent / 100).
        assert_eq!(kept("fixed-percent", "25", 3), Ok((0, 0)));
        assert_eq!(kept("fixed-percent", "50", 3), Ok((1, 1)));
        assert_eq!(would_select("fixed-percent", "50", &three), vec!["a/x"]);
        assert!(describe("fixed-percent", "25", &three).starts_with("0 of 3"));
        assert!(kept("one", "", 0).is_err());
    }
}
