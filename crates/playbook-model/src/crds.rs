//! The CRDs the simulator installs at start: embedded YAML, a cheap scan for their kinds, lazy full parse.
//!
//! The big CRDs (Chaos Mesh Schedule 836 KB and Workflow 627 KB, KServe 2 MB) are not
//! parsed at startup: [`scan`] reads only the YAML head (names, scope, printer columns,
//! everything before `schema:`) and tail (`subresources`). [`CrdHandle::object`] parses
//! the whole CRD once, when its schema or the CRD object itself is first needed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

/// The CRD files embedded in the binary, as (path under `crds/`, text).
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "chaos-mesh/podchaos.yaml",
        include_str!("../../../crds/chaos-mesh/podchaos.yaml"),
    ),
    (
        "chaos-mesh/networkchaos.yaml",
        include_str!("../../../crds/chaos-mesh/networkchaos.yaml"),
    ),
    (
        "chaos-mesh/stresschaos.yaml",
        include_str!("../../../crds/chaos-mesh/stresschaos.yaml"),
    ),
    (
        "chaos-mesh/schedule.yaml",
        include_str!("../../../crds/chaos-mesh/schedule.yaml"),
    ),
    (
        "chaos-mesh/workflow.yaml",
        include_str!("../../../crds/chaos-mesh/workflow.yaml"),
    ),
    (
        "chaos-mesh/statuscheck.yaml",
        include_str!("../../../crds/chaos-mesh/statuscheck.yaml"),
    ),
    (
        "kserve/inferenceservice.yaml",
        include_str!("../../../crds/kserve/inferenceservice.yaml"),
    ),
    (
        "argo/workflow.yaml",
        include_str!("../../../crds/argo/workflow.yaml"),
    ),
];

/// A CRD known to the simulator: embedded text parsed on demand, or an object created through the API.
#[derive(Debug)]
pub struct CrdHandle {
    text: Option<&'static str>,
    parsed: OnceLock<Result<Arc<Value>, String>>,
}

impl CrdHandle {
    /// A handle on embedded YAML, parsed on first use.
    pub fn embedded(text: &'static str) -> Self {
        CrdHandle {
            text: Some(text),
            parsed: OnceLock::new(),
        }
    }

    /// A handle on an already-parsed CRD object (created through the API).
    pub fn object_value(obj: Value) -> Self {
        let parsed = OnceLock::new();
        let _ = parsed.set(Ok(Arc::new(obj)));
        CrdHandle { text: None, parsed }
    }

    /// The whole CRD object as JSON (parsed once; embedded CRDs once per process).
    pub fn object(&self) -> Result<Arc<Value>, String> {
        self.parsed
            .get_or_init(|| match self.text {
                Some(t) => parse_embedded(t),
                None => Err("CRD has no source".to_string()),
            })
            .clone()
    }

    /// [`CrdHandle::schema`], shared: an embedded CRD's schema is extracted once per process,
    /// so validating an object does not copy a large schema.
    pub fn schema_shared(&self, version: &str) -> Option<Arc<Value>> {
        type Cache = Mutex<HashMap<(usize, String), Option<Arc<Value>>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let Some(text) = self.text else {
            return self.schema(version).map(Arc::new);
        };
        let key = (text.as_ptr() as usize, version.to_string());
        let cache = CACHE.get_or_init(Cache::default);
        if let Some(s) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return s.clone();
        }
        let s = self.schema(version).map(Arc::new);
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, s.clone());
        s
    }

    /// The `openAPIV3Schema` of the version named `version`.
    pub fn schema(&self, version: &str) -> Option<Value> {
        let obj = self.object().ok()?;
        let versions = obj.pointer("/spec/versions")?.as_array()?;
        let v = versions
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?;
        v.pointer("/schema/openAPIV3Schema").cloned()
    }
}

/// Parses an embedded CRD once per process (the simulator builds a registry per cluster).
fn parse_embedded(text: &'static str) -> Result<Arc<Value>, String> {
    type Cache = Mutex<HashMap<usize, Result<Arc<Value>, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = text.as_ptr() as usize;
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(v) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return v.clone();
    }
    let v = parse_big_yaml(text).map(Arc::new);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, v.clone());
    v
}

/// Parses (possibly very large and deep) YAML into JSON.
pub fn parse_big_yaml(text: &str) -> Result<Value, String> {
    let opts = serde_saphyr::options! {
        budget: serde_saphyr::budget! { max_depth: 1024, max_nodes: 50_000_000, max_events: 100_000_000 },
    };
    serde_saphyr::from_str_with_options::<Value>(text, opts).map_err(|e| e.to_string())
}

/// What [`scan`] learns from a CRD's head and tail, without parsing its schema.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdSummary {
    /// `metadata.name`, e.g. `podchaos.chaos-mesh.org`.
    pub name: String,
    /// `spec.group`.
    pub group: String,
    /// `spec.names` as JSON.
    pub names: Value,
    /// `Namespaced` or `Cluster`.
    pub scope: String,
    /// The first served version's name.
    pub version: String,
    /// Its `additionalPrinterColumns` (JSON array, possibly empty).
    pub printer_columns: Value,
    /// Its `subresources` (JSON object, possibly empty).
    pub subresources: Value,
}

/// Cheap scan of a single-version CRD's YAML: parses only the text before the first `schema:`
/// line and after the version's `served:` line.
pub fn scan(text: &str) -> Result<CrdSummary, String> {
    let mut offset = 0;
    let mut schema_at = None;
    for line in text.split_inclusive('\n') {
        if line.trim() == "schema:" {
            schema_at = Some((offset, line.len() - line.trim_start().len()));
            break;
        }
        offset += line.len();
    }
    let (head, indent) = match schema_at {
        Some((at, indent)) => (&text[..at], indent),
        None => return summarize(&parse_big_yaml(text)?),
    };
    let head: Value = serde_saphyr::from_str(head).map_err(|e| e.to_string())?;
    // Tail: from the last `served:` line at the version's indentation.
    let marker = format!("\n{}served:", " ".repeat(indent));
    let tail = match text.rfind(&marker) {
        Some(i) => &text[i + 1..],
        None => "",
    };
    let dedented: String = tail
        .lines()
        .map(|l| l.get(indent..).unwrap_or(l.trim_start()))
        .collect::<Vec<_>>()
        .join("\n");
    let tail: Value = if dedented.trim().is_empty() {
        Value::Null
    } else {
        serde_saphyr::from_str(&dedented).map_err(|e| e.to_string())?
    };
    let mut obj = head;
    if let Some(v0) = obj
        .pointer_mut("/spec/versions/0")
        .and_then(Value::as_object_mut)
        && let Some(t) = tail.as_object()
    {
        for (k, v) in t {
            v0.insert(k.clone(), v.clone());
        }
    }
    summarize(&obj)
}

/// Summarizes a parsed CRD object (the first version).
pub fn summarize(obj: &Value) -> Result<CrdSummary, String> {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).map(str::to_string);
    let v0 = obj
        .pointer("/spec/versions/0")
        .ok_or("CRD has no versions")?;
    Ok(CrdSummary {
        name: s("/metadata/name").ok_or("CRD has no name")?,
        group: s("/spec/group").ok_or("CRD has no group")?,
        names: obj
            .pointer("/spec/names")
            .cloned()
            .ok_or("CRD has no names")?,
        scope: s("/spec/scope").unwrap_or_else(|| "Namespaced".into()),
        version: v0
            .get("name")
            .and_then(Value::as_str)
            .ok_or("version has no name")?
            .to_string(),
        printer_columns: v0
            .get("additionalPrinterColumns")
            .cloned()
            .unwrap_or(Value::Array(vec![])),
        subresources: v0
            .get("subresources")
            .cloned()
            .unwrap_or(Value::Object(Default::default())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_of_small_crds_matches_full_parse() {
        for (path, text) in EMBEDDED {
            if text.len() > 100_000 {
                continue; // the big ones are checked in release-only tests (slow in debug)
            }
            let cheap = scan(text).expect(path);
            let full = summarize(&parse_big_yaml(text).expect(path)).expect(path);
            assert_eq!(cheap, full, "{path}");
        }
    }

    #[test]
    fn scan_of_big_crds() {
        let find = |p: &str| {
            EMBEDDED
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, t)| *t)
                .expect(p)
        };
        let k = scan(find("kserve/inferenceservice.yaml")).expect("kserve");
        assert_eq!(k.names["shortNames"][0], "isvc");
        assert_eq!(k.printer_columns.as_array().map(Vec::len), Some(7));
        assert!(k.subresources.get("status").is_some());
        let w = scan(find("chaos-mesh/workflow.yaml")).expect("wf");
        assert_eq!(w.names["kind"], "Workflow");
        assert!(w.subresources.get("status").is_some());
        let s = scan(find("chaos-mesh/schedule.yaml")).expect("sched");
        assert_eq!(s.names["plural"], "schedules");
        assert_eq!(s.subresources, Value::Object(Default::default()));
    }
}
