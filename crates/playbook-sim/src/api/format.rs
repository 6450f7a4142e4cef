//! Formatting for tables: ages as kubectl prints them, and a small JSONPath for printer columns.

use jiff::Timestamp;
use serde_json::{Value, json};

/// Age of a timestamp as `kubectl` prints it (`5s`, `3m12s`, `4h`, `2d3h`).
pub fn age(ts: Option<&Value>, now: Timestamp) -> String {
    let Some(t) = ts
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
    else {
        return "<unknown>".into();
    };
    human_duration(now.as_second() - t.as_second())
}

/// `duration.HumanDuration` of Kubernetes.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d, y) = (s / 60, s / 3600, s / 86400, s / (86400 * 365));
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if y < 8 {
        let dd = d % 365;
        if dd == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{dd}d")
        }
    } else {
        format!("{y}y")
    }
}

/// A small JSONPath evaluator for printer columns: `.a.b`, `.a[0]`, `.a[*]`, `.a[?(@.k=='v')].b`.
pub fn jsonpath<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut cur: Vec<&Value> = vec![obj];
    let b = path.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'.' && b[j] != b'[' {
                    j += 1;
                }
                let key = &path[start..j];
                if !key.is_empty() {
                    cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
                }
                i = j;
            }
            b'[' => {
                let Some(end) = path[i..].find(']').map(|e| e + i) else {
                    return vec![];
                };
                let inner = &path[i + 1..end];
                if let Some(expr) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
                    let (lhs, op, rhs) = match expr.split_once("!=") {
                        Some((l, r)) => (l, "!=", r),
                        None => match expr.split_once("==") {
                            Some((l, r)) => (l, "==", r),
                            None => return vec![],
                        },
                    };
                    let rel = lhs.trim().trim_start_matches('@');
                    let lit: Value = {
                        let r = rhs.trim();
                        if (r.starts_with('\'') && r.ends_with('\''))
                            || (r.starts_with('"') && r.ends_with('"'))
                        {
                            json!(r[1..r.len().saturating_sub(1)])
                        } else {
                            serde_json::from_str(r).unwrap_or(json!(r))
                        }
                    };
                    cur = cur
                        .into_iter()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter(|el| {
                            let got = jsonpath(el, rel);
                            let eq = got.first().is_some_and(|g| **g == lit);
                            if op == "==" { eq } else { !eq }
                        })
                        .collect();
                } else if inner == "*" {
                    cur = cur
                        .into_iter()
                        .filter_map(Value::as_array)
                        .flatten()
                        .collect();
                } else if let Ok(n) = inner.parse::<usize>() {
                    cur = cur.into_iter().filter_map(|v| v.get(n)).collect();
                } else {
                    let key = inner.trim_matches('\'').trim_matches('"');
                    cur = cur.into_iter().filter_map(|v| v.get(key)).collect();
                }
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_printer_columns() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}],
            "traffic": [{"latestRevision": true, "percent": 100}]}});
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type=='Ready')].status"),
            vec![&json!("True")]
        );
        assert_eq!(
            jsonpath(&o, ".status.traffic[?(@.latestRevision==true)].percent"),
            vec![&json!(100)]
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[0].type"),
            vec![&json!("A")]
        );
        assert!(jsonpath(&o, ".spec.nothing").is_empty());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
        assert_eq!(human_duration(86400 * 3 + 3600), "3d1h");
    }
}
