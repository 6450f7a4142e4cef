//! Readable printing of what an evaluation returned: maps and arrays of maps as aligned
//! tables, scalars plainly, strings without quotes, `()` not at all.

use rhai::{Array, Dynamic, Map};

use crate::host::chaos::FaultHandle;

/// Cells longer than this are cut (with `…`) so a table stays readable.
const CELL: usize = 60;

/// The text to print for `value`, or `None` for `()`.
pub(crate) fn show(value: &Dynamic) -> Option<String> {
    let value = value.flatten_clone();
    if value.is_unit() {
        return None;
    }
    if let Some(map) = value.clone().try_cast::<Map>() {
        if map.is_empty() {
            return Some("#{}".into());
        }
        let rows: Vec<Vec<String>> = map
            .iter()
            .map(|(k, v)| vec![k.to_string(), cell(v)])
            .collect();
        return Some(table(&[], &rows));
    }
    if let Some(items) = value.clone().try_cast::<Array>() {
        return Some(array(&items));
    }
    Some(scalar(&value))
}

fn array(items: &Array) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let maps: Vec<Map> = items
        .iter()
        .filter_map(|v| v.flatten_clone().try_cast::<Map>())
        .collect();
    if maps.len() == items.len() {
        // Columns in order of first appearance, `name` and `namespace` first.
        let mut columns: Vec<String> = Vec::new();
        for m in &maps {
            for k in m.keys() {
                if !columns.iter().any(|c| c == k.as_str()) {
                    columns.push(k.to_string());
                }
            }
        }
        columns.sort_by_key(|c| match c.as_str() {
            "name" => 0,
            "namespace" => 1,
            _ => 2,
        });
        let rows: Vec<Vec<String>> = maps
            .iter()
            .map(|m| {
                columns
                    .iter()
                    .map(|c| m.get(c.as_str()).map(cell).unwrap_or_default())
                    .collect()
            })
            .collect();
        return table(&columns, &rows);
    }
    if items.iter().all(|v| v.is_string()) {
        return items.iter().map(scalar).collect::<Vec<_>>().join("\n");
    }
    format!(
        "[{}]",
        items.iter().map(inline).collect::<Vec<_>>().join(", ")
    )
}

/// A value as one table cell.
fn cell(v: &Dynamic) -> String {
    let text = if v.is_string() || v.is_unit() {
        scalar(v)
    } else {
        inline(v)
    };
    let text = text.replace('\n', " ");
    if text.chars().count() > CELL {
        let cut: String = text.chars().take(CELL - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// A value on one line: nested maps and arrays in Rhai's notation.
fn inline(v: &Dynamic) -> String {
    let v = v.flatten_clone();
    if let Some(h) = v.clone().try_cast::<FaultHandle>() {
        return h.object.to_string();
    }
    if let Some(items) = v.clone().try_cast::<Array>() {
        return format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(map) = v.clone().try_cast::<Map>() {
        return format!(
            "#{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if v.is_string() {
        return format!("{:?}", v.to_string());
    }
    scalar(&v)
}

/// A scalar as a person reads it: strings without quotes, a fault as `PodChaos ns/name`.
fn scalar(v: &Dynamic) -> String {
    if v.is_unit() {
        return String::new();
    }
    if let Some(h) = v.clone().try_cast::<FaultHandle>() {
        return h.object.to_string();
    }
    v.to_string()
}

/// Rows under an optional header, columns padded to their widest cell.
pub(crate) fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let mut width = vec![0; columns];
    for row in rows.iter().chain(std::iter::once(&header.to_vec())) {
        for (i, c) in row.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut out = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(c);
            } else {
                let pad = width[i] - c.chars().count();
                out.push_str(c);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = Vec::new();
    if !header.is_empty() {
        out.push(line(
            &header.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>(),
        ));
    }
    out.extend(rows.iter().map(|r| line(r)));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Option<String> {
        show(&rhai::Engine::new().eval::<Dynamic>(text).unwrap())
    }

    #[test]
    fn scalars_plainly_unit_not_at_all() {
        assert_eq!(eval("()"), None);
        assert_eq!(eval("let x = 1;"), None);
        assert_eq!(eval("40 + 2").as_deref(), Some("42"));
        assert_eq!(eval(r#""a b""#).as_deref(), Some("a b"));
        assert_eq!(eval("[1, \"x\"]").as_deref(), Some("[1, \"x\"]"));
        assert_eq!(eval("[\"a\", \"b\"]").as_deref(), Some("a\nb"));
    }

    #[test]
    fn arrays_of_maps_are_aligned_tables() {
        let out = eval(
            r#"[#{ phase: "Running", name: "a", restarts: 0 }, #{ name: "longer-name", phase: "Pending", restarts: 12 }]"#,
        )
        .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "NAME         PHASE    RESTARTS");
        assert_eq!(lines[1], "a            Running  0");
        assert_eq!(lines[2], "longer-name  Pending  12");
        let out = eval(r#"#{ ready: 1, desired: 3, note: "x" }"#).unwrap();
        assert!(
            out.contains("desired  3") && out.contains("note     x"),
            "{out}"
        );
    }
}
