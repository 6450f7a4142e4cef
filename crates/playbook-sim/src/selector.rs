//! Label and field selectors, parsed from query strings or `LabelSelector` JSON, matched on objects.

use serde_json::Value;

use super::error::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` / `key==value`.
    Eq(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEq(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    NotExists(String),
}

/// A label selector: all requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements, ANDed.
    pub reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Matches everything.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Parses the `labelSelector` query syntax (`a=b,c!=d,e in (f,g),!h`).
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector { reqs })
    }

    /// Builds one from a `metav1.LabelSelector` JSON (`matchLabels`, `matchExpressions`).
    /// A null/absent selector yields `None`-like "matches nothing"? No: like the API, an
    /// empty `{}` selector matches everything; callers decide what absent means.
    pub fn from_json(sel: &Value) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                reqs.push(Requirement::Eq(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                reqs.push(match op {
                    "In" => Requirement::In(key, values),
                    "NotIn" => Requirement::NotIn(key, values),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::NotExists(key),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "\"{other}\" is not a valid label selector operator"
                        )));
                    }
                });
            }
        }
        Ok(LabelSelector { reqs })
    }

    /// True if the selector has no requirement.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Does an object (its `metadata.labels`) match?
    pub fn matches(&self, obj: &Value) -> bool {
        if self.reqs.is_empty() {
            return true;
        }
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.reqs.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

impl std::fmt::Display for LabelSelector {
    /// The query-string form, e.g. `app=web,tier in (a,b)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .reqs
            .iter()
            .map(|r| match r {
                Requirement::Eq(k, v) => format!("{k}={v}"),
                Requirement::NotEq(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn split_top_level(s: &str) -> Result<Vec<&str>, ApiError> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(bad_selector(s));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(bad_selector(s));
    }
    out.push(&s[start..]);
    Ok(out)
}

fn bad_selector(s: &str) -> ApiError {
    ApiError::bad_request(format!(
        "unable to parse requirement: invalid label selector: {s:?}"
    ))
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 317
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(v: &str) -> bool {
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_requirement(p: &str) -> Result<Requirement, ApiError> {
    if let Some(k) = p.strip_prefix('!') {
        let k = k.trim();
        return if valid_key(k) {
            Ok(Requirement::NotExists(k.to_string()))
        } else {
            Err(bad_selector(p))
        };
    }
    for (op, ctor) in [("!=", 0), ("==", 1), ("=", 1)] {
        if let Some((k, v)) = p.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || !valid_value(v) {
                return Err(bad_selector(p));
            }
            return Ok(if ctor == 0 {
                Requirement::NotEq(k.into(), v.into())
            } else {
                Requirement::Eq(k.into(), v.into())
            });
        }
    }
    let words: Vec<&str> = p.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let key = words[0].trim();
        let rest = words[1].trim();
        let (op, list) = if let Some(r) = rest.strip_prefix("notin") {
            ("notin", r)
        } else if let Some(r) = rest.strip_prefix("in") {
            ("in", r)
        } else {
            return Err(bad_selector(p));
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| bad_selector(p))?;
        let values: Vec<String> = inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if !valid_key(key) || values.iter().any(|v| !valid_value(v)) {
            return Err(bad_selector(p));
        }
        return Ok(if op == "in" {
            Requirement::In(key.into(), values)
        } else {
            Requirement::NotIn(key.into(), values)
        });
    }
    if valid_key(p) {
        Ok(Requirement::Exists(p.to_string()))
    } else {
        Err(bad_selector(p))
    }
}

/// A field selector: `path=value`, `path==value`, `path!=value`, comma-separated.
/// Any dotted path works (`metadata.name`, `status.phase`, `spec.nodeName`,
/// `involvedObject.uid`); an absent field reads as the empty string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// (path segments, value, negated)
    reqs: Vec<(Vec<String>, String, bool)>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query syntax.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (path, value, neg) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
            if path.iter().any(String::is_empty) {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: '{s}'"
                )));
            }
            reqs.push((path, value.trim().to_string(), neg));
        }
        Ok(FieldSelector { reqs })
    }

    /// The value at `metadata.namespace` this selector pins, if any (lets lists use the index).
    pub fn namespace(&self) -> Option<&str> {
        self.reqs
            .iter()
            .find(|(p, _, neg)| !neg && p.len() == 2 && p[0] == "metadata" && p[1] == "namespace")
            .map(|(_, v, _)| v.as_str())
    }

    /// Does the object match?
    pub fn matches(&self, obj: &Value) -> bool {
        self.reqs.iter().all(|(path, want, neg)| {
            let mut cur = Some(obj);
            for seg in path {
                cur = cur.and_then(|c| c.get(seg));
            }
            let got = match cur {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (got == *want) != *neg
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "n", "labels": labels}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selector_operators() {
        let p = pod(json!({"app": "web", "tier": "front"}));
        let m = |s: &str| LabelSelector::parse(s).expect("parse").matches(&p);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app!=web"));
        assert!(m("app in (db, web)"));
        assert!(!m("app notin (db,web)"));
        assert!(m("tier"));
        assert!(!m("!tier"));
        assert!(m("!missing"));
        assert!(m("missing!=x"));
        assert!(m("app=web,tier in (front)"));
        assert!(!m("app=web,tier in (back)"));
    }

    #[test]
    fn bad_label_selectors_are_bad_requests() {
        for s in ["app in (a", "a b c", "=x", "app in x", "app=a b"] {
            let e = LabelSelector::parse(s).expect_err(s);
            assert_eq!(e.code(), 400, "{s}");
        }
    }

    #[test]
    fn selector_from_json_and_display() {
        let sel = LabelSelector::from_json(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}))
        .expect("json");
        assert!(sel.matches(&pod(json!({"app": "web", "tier": "front"}))));
        assert!(!sel.matches(&pod(json!({"app": "web"}))));
        assert_eq!(sel.to_string(), "app=web,tier in (front)");
    }

    #[test]
    fn field_selectors() {
        let p = pod(json!({}));
        let m = |s: &str| FieldSelector::parse(s).expect("parse").matches(&p);
        assert!(m("metadata.name=p"));
        assert!(m("metadata.namespace==n,status.phase=Running"));
        assert!(!m("status.phase!=Running"));
        assert!(m("spec.nodeName="));
        assert!(FieldSelector::parse("nonsense").is_err());
        assert_eq!(
            FieldSelector::parse("metadata.namespace=x")
                .expect("p")
                .namespace(),
            Some("x")
        );
    }
}
