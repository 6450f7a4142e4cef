//! Admission of a write's object before it reaches the store, as the API server decodes it:
//! built-in kinds through their typed structs (k8s-openapi here, Go structs upstream) with Go's
//! type errors, custom kinds through structural pruning and defaulting; unknown fields handled
//! per `fieldValidation` (Ignore, Warn with `Warning: 299` headers, Strict); the warnings a
//! response carries. Field validation of the decoded object is [`super::validation`].
//!
//! Upstream: staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go (`transformDecodeError`),
//! .../handlers/patch.go (`jsonPatcher`, `smpPatcher`, `applyPatcher`), .../handlers/rest.go
//! (`fieldValidation`), staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::super::error::{ApiError, Reason};
use super::super::resources::ResourceDef;
use super::Req;

/// `fieldValidation`: what the server does with unknown (and duplicate) fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Directive {
    /// Drop them silently.
    Ignore,
    /// Drop them with a `Warning` header each (the server's default when the client says nothing).
    Warn,
    /// Fail the request with 400 `strict decoding error`.
    Strict,
}

impl Directive {
    /// The request's `fieldValidation` (handlers/rest.go: empty is `Warn`). An unknown value is
    /// 422 from the options' validation (apimachinery/pkg/apis/meta/v1/validation/validation.go).
    pub(crate) fn of(r: &Req, options_kind: &str) -> Result<Directive, ApiError> {
        match r.q("fieldValidation").unwrap_or("") {
            "" | "Warn" => Ok(Directive::Warn),
            "Ignore" => Ok(Directive::Ignore),
            "Strict" => Ok(Directive::Strict),
            other => Err(ApiError::invalid(
                options_kind,
                "meta.k8s.io",
                "",
                &[(
                    "fieldValidation".into(),
                    format!(
                        "Unsupported value: \"{other}\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
                    ),
                )],
            )),
        }
    }
}

/// How the object to decode came to be: the decode error a real server gives depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A create or update body (handlers/create.go, update.go).
    Body,
    /// The result of a JSON merge patch or JSON patch (patch.go `jsonPatcher`).
    JsonPatch,
    /// The result of a strategic merge patch (patch.go `smpPatcher`); carries the patch.
    Strategic,
    /// A server-side apply configuration (fieldmanager: structured-merge-diff's typed conversion).
    Apply,
}

/// Decodes `obj` for `def` as the API server does; unknown fields are dropped (pruned), their
/// warnings pushed onto `warnings` under `Warn`. `patch` is the request's patch (for the
/// message of a strategic merge patch's type error).
pub(crate) fn decode(
    def: &ResourceDef,
    obj: &mut Value,
    source: Source,
    directive: Directive,
    patch: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let unknown = if let Some(crd) = &def.crd {
        match crd.schema_shared(&def.version) {
            Some(schema) => playbook_model::schema::prune_and_default_reporting(&schema, obj),
            None => Vec::new(),
        }
    } else {
        match typed_check(def, obj) {
            Ok(unknown) => unknown,
            Err(e) => return Err(type_error(def, obj, source, patch, &e)),
        }
    };
    if unknown.is_empty() {
        return Ok(());
    }
    if source == Source::Apply && !def.is_custom() {
        // structured-merge-diff refuses a field its schema does not declare (fieldmanager).
        let f = smd_path(obj, &unknown[0]);
        return Err(ApiError::new(
            Reason::Unknown,
            format!(
                "failed to create typed patch object ({}): {f}: field not declared in schema",
                gvknn(def, obj)
            ),
        ));
    }
    let msgs: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match directive {
        Directive::Strict => {
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                msgs.join(", ")
            )));
        }
        Directive::Warn => warnings.extend(msgs),
        Directive::Ignore => {}
    }
    if !def.is_custom() {
        for p in &unknown {
            remove_path(obj, p);
        }
    }
    Ok(())
}

/// A type error found decoding into the typed struct.
#[derive(Debug)]
struct TypeError {
    /// Path segments from the root (object keys and array indices).
    path: Vec<Seg>,
    /// The Go type the field has (`int32`, `string`, `v1.Container`...).
    go_type: String,
    /// The Go name of the struct holding the field (`DeploymentSpec`).
    parent: String,
    /// Dotted path of struct field names (Go's `UnmarshalTypeError.Field`).
    field: String,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Checks `obj` against the kind's typed struct: a type error, or the unknown fields' paths.
fn typed_check(def: &ResourceDef, obj: &Value) -> Result<Vec<String>, TypeError> {
    use k8s_openapi::api::{apps::v1 as apps, autoscaling::v2 as hpa, core::v1 as core};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => check::<core::Pod>(obj, "v1"),
        ("", "Service") => check::<core::Service>(obj, "v1"),
        ("", "ConfigMap") => check::<core::ConfigMap>(obj, "v1"),
        ("", "Namespace") => check::<core::Namespace>(obj, "v1"),
        ("", "Node") => check::<core::Node>(obj, "v1"),
        ("", "Endpoints") => check::<core::Endpoints>(obj, "v1"),
        ("", "Event") => check::<core::Event>(obj, "v1"),
        ("apps", "Deployment") => check::<apps::Deployment>(obj, "v1"),
        ("apps", "ReplicaSet") => check::<apps::ReplicaSet>(obj, "v1"),
        ("apps", "StatefulSet") => check::<apps::StatefulSet>(obj, "v1"),
        ("batch", "Job") => check::<k8s_openapi::api::batch::v1::Job>(obj, "v1"),
        ("policy", "PodDisruptionBudget") => {
            check::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(obj, "v1")
        }
        ("autoscaling", "HorizontalPodAutoscaler") if def.version == "v1" => {
            check::<k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler>(obj, "v1")
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            check::<hpa::HorizontalPodAutoscaler>(obj, "v2")
        }
        ("coordination.k8s.io", "Lease") => {
            check::<k8s_openapi::api::coordination::v1::Lease>(obj, "v1")
        }
        ("events.k8s.io", "Event") => check::<k8s_openapi::api::events::v1::Event>(obj, "v1"),
        ("", "ServiceAccount") => check::<core::ServiceAccount>(obj, "v1"),
        ("batch", "CronJob") => check::<k8s_openapi::api::batch::v1::CronJob>(obj, "v1"),
        ("rbac.authorization.k8s.io", kind) => {
            use k8s_openapi::api::rbac::v1 as rbac;
            match kind {
                "Role" => check::<rbac::Role>(obj, "v1"),
                "RoleBinding" => check::<rbac::RoleBinding>(obj, "v1"),
                "ClusterRole" => check::<rbac::ClusterRole>(obj, "v1"),
                _ => check::<rbac::ClusterRoleBinding>(obj, "v1"),
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            check::<ext::CustomResourceDefinition>(obj, "v1")
        }
        _ => Ok(Vec::new()),
    }
}

/// Go's decoder ignores missing fields and `null`s; serde needs the struct's required fields.
/// Object members that are `null` are dropped, and a missing required field is filled with a
/// placeholder of whichever type the struct accepts, so only real type errors remain.
fn check<T: DeserializeOwned + Serialize>(
    obj: &Value,
    pkg: &str,
) -> Result<Vec<String>, TypeError> {
    let mut v = obj.clone();
    strip_nulls(&mut v);
    let mut tries = 0;
    loop {
        tries += 1;
        let err = match serde_path_to_error::deserialize::<_, T>(v.clone()) {
            Ok(t) => {
                let back = serde_json::to_value(&t).unwrap_or(Value::Null);
                let mut unknown = Vec::new();
                diff_unknown(obj, &back, "", &mut unknown);
                return Ok(unknown);
            }
            Err(e) => e,
        };
        let path = segs(err.path());
        let msg = err.inner().to_string();
        if let Some(field) = missing_field(&msg)
            && tries < 200
        {
            // Fill the missing field with the first placeholder the type takes.
            let mut filled = false;
            for cand in placeholders() {
                let mut w = v.clone();
                if let Some(Value::Object(m)) = at_mut(&mut w, &path) {
                    m.insert(field.clone(), cand);
                }
                let still = serde_path_to_error::deserialize::<_, T>(w.clone())
                    .err()
                    .is_some_and(|e| {
                        let p = segs(e.path());
                        let inner = e.inner().to_string();
                        (missing_field(&inner).as_deref() == Some(field.as_str())
                            && same_path(&p, &path))
                            || (starts_with(&p, &path, &field)
                                && !inner.starts_with("missing field"))
                    });
                if !still {
                    v = w;
                    filled = true;
                    break;
                }
            }
            if filled {
                continue;
            }
        }
        let go_type = go_type_from_expected(expected(&msg), &v, &path, pkg, |w| {
            serde_path_to_error::deserialize::<_, T>(w)
                .err()
                .map(|e| (segs(e.path()), e.inner().to_string()))
        });
        let (parent, field) = go_field(&v, &path, pkg, |w| {
            serde_path_to_error::deserialize::<_, T>(w)
                .err()
                .map(|e| (segs(e.path()), e.inner().to_string()))
        });
        return Err(TypeError {
            path,
            go_type,
            parent,
            field,
        });
    }
}

fn placeholders() -> [Value; 7] {
    [
        Value::String(String::new()),
        // A required time (`series.lastObservedTime`): Go's zero time.
        Value::String("0001-01-01T00:00:00Z".into()),
        Value::from(0),
        Value::Bool(false),
        Value::Array(vec![]),
        Value::Object(Map::new()),
        Value::from(0.5),
    ]
}

fn starts_with(p: &[Seg], prefix: &[Seg], field: &str) -> bool {
    p.len() > prefix.len()
        && same_path(&p[..prefix.len()], prefix)
        && matches!(&p[prefix.len()], Seg::Key(k) if k == field)
}

fn same_path(a: &[Seg], b: &[Seg]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Seg::Key(p), Seg::Key(q)) => p == q,
            (Seg::Index(p), Seg::Index(q)) => p == q,
            _ => false,
        })
}

fn missing_field(msg: &str) -> Option<String> {
    msg.strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
        .map(str::to_string)
}

fn expected(msg: &str) -> &str {
    msg.rsplit_once(", expected ").map(|(_, e)| e).unwrap_or("")
}

fn segs(p: &serde_path_to_error::Path) -> Vec<Seg> {
    use serde_path_to_error::Segment;
    p.iter()
        .filter_map(|s| match s {
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

fn at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => cur.get_mut(k.as_str())?,
            Seg::Index(i) => cur.get_mut(*i)?,
        };
    }
    Some(cur)
}

fn at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => cur.get(k.as_str())?,
            Seg::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Input object members (not `null`) the typed round trip lost: unknown fields.
fn diff_unknown(input: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (input, back) {
        (Value::Object(i), Value::Object(b)) => {
            for (k, v) in i {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => diff_unknown(v, bv, &here, out),
                    None if v.is_null() => {}
                    None => out.push(here),
                }
            }
        }
        (Value::Array(i), Value::Array(b)) => {
            for (n, (iv, bv)) in i.iter().zip(b).enumerate() {
                diff_unknown(iv, bv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn remove_path(obj: &mut Value, path: &str) {
    // Paths here are dotted keys with `[i]` indices; keys with dots are left (not produced by typed kinds).
    let mut segs: Vec<Seg> = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        let key_end = rest.find('[').unwrap_or(rest.len());
        segs.push(Seg::Key(rest[..key_end].to_string()));
        rest = &rest[key_end..];
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').unwrap_or(r.len());
            if let Ok(i) = r[..end].parse() {
                segs.push(Seg::Index(i));
            }
            rest = r.get(end + 1..).unwrap_or("");
        }
    }
    let Some((Seg::Key(last), parent)) = segs.split_last() else {
        return;
    };
    if let Some(Value::Object(m)) = at_mut(obj, parent) {
        m.remove(last);
    }
}

type Probe<'a> = &'a dyn Fn(Value) -> Option<(Vec<Seg>, String)>;

/// What the typed struct expects at `path` (probing with a wrong value there).
fn expected_at(v: &Value, path: &[Seg], probe: Probe) -> String {
    let mut w = v.clone();
    if path.is_empty() {
        w = Value::Bool(true);
    } else if let Some((last, parent)) = path.split_last() {
        match (at_mut(&mut w, parent), last) {
            (Some(Value::Object(m)), Seg::Key(k)) => {
                m.insert(k.clone(), Value::Bool(true));
            }
            (Some(Value::Array(a)), Seg::Index(i)) if *i < a.len() => a[*i] = Value::Bool(true),
            (Some(slot), Seg::Index(_)) => *slot = Value::Array(vec![Value::Bool(true)]),
            _ => return String::new(),
        }
    }
    match probe(w) {
        Some((p, msg)) if same_path(&p, path) => expected(&msg).to_string(),
        _ => String::new(),
    }
}

/// Go's name of the type serde describes as `exp`.
fn go_type_from_expected(
    exp: &str,
    v: &Value,
    path: &[Seg],
    pkg: &str,
    probe: impl Fn(Value) -> Option<(Vec<Seg>, String)>,
) -> String {
    go_type_name(exp, v, path, pkg, &probe, 0)
}

fn go_type_name(exp: &str, v: &Value, path: &[Seg], pkg: &str, probe: Probe, depth: u8) -> String {
    match exp {
        "i32" => "int32".into(),
        "i64" => "int64".into(),
        "f64" => "float64".into(),
        "a string" => "string".into(),
        "a boolean" => "bool".into(),
        "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        "a sequence" | "a map" if depth < 4 => {
            let mut w = v.clone();
            let (child, elem) = if exp == "a sequence" {
                (Seg::Index(0), Value::Array(vec![Value::Bool(true)]))
            } else {
                let mut m = Map::new();
                m.insert("k".into(), Value::Bool(true));
                (Seg::Key("k".into()), Value::Object(m))
            };
            if let Some(slot) = at_mut(&mut w, path) {
                *slot = elem;
            } else {
                return String::new();
            }
            let mut p = path.to_vec();
            p.push(child);
            let inner = expected_at(&w, &p, probe);
            let name = go_type_name(&inner, &w, &p, pkg, probe, depth + 1);
            if exp == "a sequence" {
                format!("[]{name}")
            } else {
                format!("map[string]{name}")
            }
        }
        "" => String::new(),
        s => format!("{}.{s}", type_pkg(s, pkg)),
    }
}

/// The Go package of a struct: metav1 and core types are `v1`; the kind's own are its version's.
fn type_pkg(name: &str, pkg: &str) -> String {
    const META: &[&str] = &[
        "ObjectMeta",
        "LabelSelector",
        "LabelSelectorRequirement",
        "Time",
        "OwnerReference",
        "ManagedFieldsEntry",
    ];
    if META.contains(&name) {
        "v1".into()
    } else {
        pkg.into()
    }
}

/// The struct holding the field at `path` and Go's dotted field path (struct fields only: no
/// indices, no map keys).
fn go_field(
    v: &Value,
    path: &[Seg],
    pkg: &str,
    probe: impl Fn(Value) -> Option<(Vec<Seg>, String)>,
) -> (String, String) {
    let mut fields = Vec::new();
    let mut parent = String::new();
    for i in 0..path.len() {
        let exp = expected_at(v, &path[..i], &probe);
        if let Seg::Key(k) = &path[i]
            && exp != "a map"
        {
            fields.push(k.clone());
            parent = exp;
        }
    }
    let _ = pkg;
    (parent, fields.join("."))
}

/// The value's JSON kind as Go's `UnmarshalTypeError.Value` names it.
fn go_value_word(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(_)) => "string".into(),
        Some(Value::Bool(_)) => "bool".into(),
        Some(Value::Array(_)) => "array".into(),
        Some(Value::Object(_)) => "object".into(),
        Some(Value::Number(n)) if n.is_f64() => format!("number {}", n),
        Some(Value::Number(_)) => "number".into(),
        _ => "null".into(),
    }
}

fn type_error(
    def: &ResourceDef,
    obj: &Value,
    source: Source,
    patch: Option<&Value>,
    e: &TypeError,
) -> ApiError {
    let found = at(obj, &e.path);
    let json_err = format!(
        "json: cannot unmarshal {} into Go struct field {}.{} of type {}",
        go_value_word(found),
        e.parent,
        e.field,
        e.go_type
    );
    match source {
        // handlers/create.go transformDecodeError
        Source::Body => ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {json_err}",
            def.kind, def.version, def.kind
        )),
        // handlers/patch.go jsonPatcher.applyPatchToCurrentObject
        Source::JsonPatch => {
            patch_invalid(&serde_json::to_string(obj).unwrap_or_default(), &json_err)
        }
        // handlers/patch.go applyPatchToObject: runtime.DefaultUnstructuredConverter's error
        Source::Strategic => {
            let conv = match found {
                Some(Value::Number(_)) if e.go_type == "string" => {
                    "cannot convert int64 to string".to_string()
                }
                Some(Value::Object(_))
                | Some(Value::Array(_))
                | Some(Value::String(_))
                | Some(Value::Bool(_))
                    if e.go_type.starts_with("[]") =>
                {
                    format!("cannot restore slice from {}", go_kind(found))
                }
                _ if e.go_type.contains('.') => {
                    format!("cannot restore struct from: {}", go_kind(found))
                }
                _ => format!("unrecognized type: {}", e.go_type),
            };
            patch_invalid(&go_print(patch.unwrap_or(&Value::Null)), &conv)
        }
        // fieldmanager: structured-merge-diff's typed conversion (a 500 without reason).
        Source::Apply => {
            let want = match e.go_type.as_str() {
                "int32" | "int64" | "float64" => "numeric (int or float)",
                "string" => "string",
                "bool" => "boolean",
                t if t.starts_with("[]") => "list",
                _ => "map",
            };
            ApiError::new(
                Reason::Unknown,
                format!(
                    "failed to create typed patch object ({}): {}: expected {want}, got {}",
                    gvknn(def, obj),
                    smd_path_segs(obj, &e.path),
                    smd_kind(found)
                ),
            )
        }
    }
}

fn patch_invalid(value: &str, detail: &str) -> ApiError {
    let mut e = ApiError::invalid(
        "",
        "",
        "",
        &[(
            "patch".into(),
            format!("Invalid value: {}: {detail}", go_quote(value)),
        )],
    );
    e.details = Some(
        serde_json::json!({"causes": [{"reason": "FieldValueInvalid", "message": format!("Invalid value: {}: {detail}", go_quote(value)), "field": "patch"}]}),
    );
    e
}

fn go_kind(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::String(_)) => "string",
        Some(Value::Bool(_)) => "bool",
        Some(Value::Array(_)) => "slice",
        Some(Value::Object(_)) => "map",
        Some(Value::Number(n)) if n.is_f64() => "float64",
        Some(Value::Number(_)) => "int64",
        _ => "invalid",
    }
}

fn smd_kind(v: Option<&Value>) -> &'static str {
    match v {
        Some(Value::String(_)) => "string",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Array(_)) => "list",
        Some(Value::Object(_)) => "map",
        Some(Value::Number(_)) => "numeric",
        _ => "null",
    }
}

/// `ns/name; group/version, Kind=K` (fieldmanager's objectGVKNN).
fn gvknn(def: &ResourceDef, obj: &Value) -> String {
    let m = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}; {}/{}, Kind={}",
        m("namespace"),
        m("name"),
        def.group,
        def.version,
        def.kind
    )
}

/// structured-merge-diff's path: `.spec.containers[name="c"].image` (keyed lists by name).
fn smd_path_segs(obj: &Value, path: &[Seg]) -> String {
    let mut out = String::new();
    for (i, s) in path.iter().enumerate() {
        match s {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(n) => match at(obj, &path[..=i])
                .and_then(|e| e.get("name"))
                .and_then(Value::as_str)
            {
                Some(name) => out.push_str(&format!("[name=\"{name}\"]")),
                None => out.push_str(&format!("[{n}]")),
            },
        }
    }
    out
}

fn smd_path(obj: &Value, dotted: &str) -> String {
    let mut segs = Vec::new();
    for part in dotted.split('.') {
        let key_end = part.find('[').unwrap_or(part.len());
        segs.push(Seg::Key(part[..key_end].to_string()));
        for idx in part[key_end..].split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                segs.push(Seg::Index(i));
            }
        }
    }
    smd_path_segs(obj, &segs)
}

/// Go's `%+v` of a decoded JSON value (`map[spec:map[replicas:three]]`).
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_print(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%q`.
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The `Warning` header values for `warnings` (RFC 7234 code 299, as the API server sends them).
pub(crate) fn warning_headers(warnings: &[String]) -> Vec<String> {
    warnings
        .iter()
        .map(|w| format!("299 - {}", go_quote(w)))
        .collect()
}
