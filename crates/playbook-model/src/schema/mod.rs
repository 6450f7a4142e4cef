//! Validation of custom objects against their CRD's openAPIV3Schema, as the API server does.
//!
//! [`validate`] follows kube-openapi's `validate.SchemaValidator` (type, anyOf/allOf/oneOf/not,
//! string, format, number, array, enum and object checks, each run independently) and renders
//! results as apiextensions' `kubeOpenAPIResultToFieldErrors` turns them into `field.Error`s.
//! [`prune_and_default`] is what the API server does to a decoded object before validating it:
//! structural pruning, then `default`s, then dropping `null`s of non-nullable fields.
//! Object metadata (name, labels, ...) is not checked here.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// One violation, rendered like the API server's field.Error.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Field path, e.g. `spec.containerNames[0]`.
    pub path: String,
    /// Everything after `path: `, e.g. `Required value`.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validates `object` (a whole custom object as JSON) against `schema` (the version's `schema.openAPIV3Schema`).
pub fn validate(schema: &Value, object: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    check(schema, object, "", &mut out);
    embedded(schema, object, "", &mut out);
    out
}

/// Applies structural pruning and defaulting to `object` in place, as the API server does on create
/// and update: unknown fields are dropped unless `x-kubernetes-preserve-unknown-fields` is set
/// (`apiVersion`, `kind` and `metadata` of the object and of embedded resources are kept), missing
/// fields (or non-nullable `null`s) with a `default` get it, and other non-nullable `null`s are removed.
pub fn prune_and_default(schema: &Value, object: &mut Value) {
    prune_and_default_reporting(schema, object);
}

/// [`prune_and_default`], returning the paths of the fields pruned as unknown, in the form the
/// API server's strict decoding reports them (`spec.durtion`, `spec.items[0].x`): what
/// `fieldValidation=Warn` turns into warnings and `Strict` into an error
/// (apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go, `PruneWithOptions`
/// with `ReturnPruned`).
pub fn prune_and_default_reporting(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune(object, Some(schema), true, "", &mut pruned);
    default(object, schema);
    drop_nulls(object, schema);
    pruned
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// A `BadValue` of a field.Error, printed as Go's `ErrorBody` does.
enum Bad<'a> {
    Str(&'a str),
    Data(&'a Value),
    Int(i64),
}

fn bad_value(v: &Bad) -> String {
    match v {
        Bad::Str(s) => go_quote(s),
        Bad::Int(i) => i.to_string(),
        Bad::Data(Value::String(s)) => go_quote(s),
        Bad::Data(Value::Null) => "\"null\"".into(),
        Bad::Data(Value::Number(n)) => number_text(n),
        Bad::Data(v) => v.to_string(),
    }
}

fn number_text(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) => i.to_string(),
        None => go_float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Field path from a kube-openapi name: the leading `.` is dropped.
fn field(name: &str) -> String {
    name.strip_prefix('.').unwrap_or(name).to_string()
}

fn push(out: &mut Vec<Violation>, name: &str, kind: &str, bad: Option<Bad>, detail: &str) {
    let mut message = kind.to_string();
    if let Some(bad) = bad {
        message = format!("{message}: {}", bad_value(&bad));
    }
    if !detail.is_empty() {
        message = format!("{message}: {detail}");
    }
    out.push(Violation {
        path: field(name),
        message,
    });
}

fn invalid(out: &mut Vec<Violation>, name: &str, bad: Bad, detail: String) {
    push(out, name, "Invalid value", Some(bad), &detail);
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    let list = v
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    list.iter().filter_map(Value::as_str).collect()
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The schema's types as the API server converts them (`x-kubernetes-int-or-string` is integer,string).
fn types(schema: &Value) -> Vec<&str> {
    if flag(schema, "x-kubernetes-int-or-string") {
        return vec!["integer", "string"];
    }
    match schema.get("type") {
        Some(Value::String(t)) if !t.is_empty() => vec![t.as_str()],
        Some(list @ Value::Array(_)) => strs(Some(list)),
        _ => Vec::new(),
    }
}

/// Formats the API server validates; others (int32, int64, int-or-string, ...) are stripped.
fn format(schema: &Value) -> &str {
    const SUPPORTED: &[&str] = &[
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
    ];
    let f = schema.get("format").and_then(Value::as_str).unwrap_or("");
    if SUPPORTED.contains(&f.replace('-', "").as_str()) {
        f
    } else {
        ""
    }
}

fn check(schema: &Value, data: &Value, name: &str, out: &mut Vec<Violation>) {
    check_type(schema, data, name, out);
    if data.is_null() {
        check_enum(schema, data, name, out);
        return;
    }
    check_combinators(schema, data, name, out);
    match data {
        Value::String(s) => {
            check_string(schema, s, name, out);
            check_format(schema, s, name, out);
        }
        Value::Number(n) => check_number(schema, n, name, out),
        Value::Array(items) => check_array(schema, items, name, out),
        _ => {}
    }
    check_enum(schema, data, name, out);
    if let Value::Object(map) = data {
        check_object(schema, map, name, out);
    }
}

fn check_type(schema: &Value, data: &Value, name: &str, out: &mut Vec<Violation>) {
    let types = types(schema);
    let format = format(schema);
    if types.is_empty() && format.is_empty() {
        return;
    }
    let joined = types.join(",");
    let (kind, data_format) = match data {
        Value::Null => {
            if !types.is_empty() && !types.contains(&"null") && !flag(schema, "nullable") {
                let msg = format!("{name} in body must be of type {joined}: \"null\"");
                invalid(out, name, Bad::Str("null"), msg);
            }
            return;
        }
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Number(n) if n.is_f64() => ("number", "float64"),
        Value::Number(_) => ("integer", "int64"),
    };
    let has = |t: &str| types.contains(&t);
    let float_int = kind == "number"
        && data
            .as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15)
        && has("integer");
    let int_float = kind == "integer" && has("number");
    let stringish = matches!(data, Value::String(_) | Value::Array(_));
    let ok = has(kind) || float_int || int_float;
    if !stringish && !format.is_empty() && !ok && data_format != format {
        let msg = format!("{name} in body must be of type {format}: \"{data_format}\"");
        return invalid(out, name, Bad::Str(data_format), msg);
    }
    let numeric = has("number") || has("integer");
    if stringish && !format.is_empty() && !numeric {
        return;
    }
    if !ok {
        invalid(
            out,
            name,
            Bad::Str(kind),
            format!("{name} in body must be of type {joined}: \"{kind}\""),
        );
    }
}

fn check_combinators(schema: &Value, data: &Value, name: &str, out: &mut Vec<Violation>) {
    let subs = |key: &str| {
        schema
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let run = |s: &Value| {
        let mut v = Vec::new();
        check(s, data, name, &mut v);
        v
    };
    let composite = |out: &mut Vec<Violation>, msg: String| {
        out.push(Violation {
            path: String::new(),
            message: format!("Invalid value: \"\": {msg}"),
        });
    };
    let any_of = subs("anyOf");
    if !any_of.is_empty() {
        let results: Vec<_> = any_of.iter().map(run).collect();
        if results.iter().all(|r| !r.is_empty()) {
            composite(
                out,
                format!("{name} must validate at least one schema (anyOf)"),
            );
            out.extend(results.into_iter().next().unwrap_or_default());
        }
    }
    let one_of = subs("oneOf");
    if !one_of.is_empty() {
        let results: Vec<_> = one_of.iter().map(run).collect();
        match results.iter().filter(|r| r.is_empty()).count() {
            0 => {
                composite(
                    out,
                    format!(
                        "{name} must validate one and only one schema (oneOf). Found none valid"
                    ),
                );
                out.extend(results.into_iter().next().unwrap_or_default());
            }
            1 => {}
            n => composite(
                out,
                format!(
                    "{name} must validate one and only one schema (oneOf). Found {n} valid alternatives"
                ),
            ),
        }
    }
    let all_of = subs("allOf");
    if !all_of.is_empty() {
        let results: Vec<_> = all_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        results.into_iter().for_each(|r| out.extend(r));
        if valid != all_of.len() {
            let none = if valid == 0 { ". None validated" } else { "" };
            composite(
                out,
                format!("{name} must validate all the schemas (allOf){none}"),
            );
        }
    }
    if let Some(not) = schema.get("not")
        && run(not).is_empty()
    {
        composite(out, format!("{name} must not validate the schema (not)"));
    }
}

fn check_string(schema: &Value, s: &str, name: &str, out: &mut Vec<Violation>) {
    let len = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        let unit = if max == 1 { "byte" } else { "bytes" };
        return push(
            out,
            name,
            "Too long",
            None,
            &format!("may not be more than {max} {unit}"),
        );
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        let msg = format!("{name} in body should be at least {min} chars long");
        return invalid(out, name, Bad::Str(s), msg);
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let matched = regex_match(pattern, s);
        let shown = match matched {
            Ok(true) => return,
            Ok(false) => pattern.to_string(),
            Err(e) => format!("{pattern}, but pattern is invalid: {e}"),
        };
        invalid(
            out,
            name,
            Bad::Str(s),
            format!("{name} in body should match '{shown}'"),
        );
    }
}

/// Whether `s` matches the Go RE2 `pattern` (searched, not anchored); compiled regexes are cached.
fn regex_match(pattern: &str, s: &str) -> Result<bool, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<Regex, String>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let entry = cache
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&go_regex(pattern)).map_err(|e| e.to_string()));
    match entry {
        Ok(re) => Ok(re.is_match(s)),
        Err(e) => Err(e.clone()),
    }
}

/// Go's `\d`, `\w`, `\s`, `\b` are ASCII-only; Rust's are Unicode-aware unless told otherwise.
fn go_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('d' | 'D' | 'w' | 'W' | 's' | 'S' | 'b' | 'B')) => {
                out.push_str(&format!("(?-u:\\{e})"));
            }
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn check_format(schema: &Value, s: &str, name: &str, out: &mut Vec<Violation>) {
    let format = format(schema);
    let ok = match format.replace('-', "").as_str() {
        "datetime" => is_date_time(s),
        "date" => is_date(s),
        "byte" => is_base64(s),
        "uuid" => {
            Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
                .is_ok_and(|re| re.is_match(s))
        }
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::IpAddr>().is_ok(),
        _ => true,
    };
    if !ok {
        invalid(
            out,
            name,
            Bad::Str(s),
            format!("{name} in body must be of type {format}: {}", go_quote(s)),
        );
    }
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    let num = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    if p.len() != 3 || !num(p[0], 4) || !num(p[1], 2) || !num(p[2], 2) {
        return false;
    }
    let (y, m, d) = (
        p[0].parse::<u32>(),
        p[1].parse::<u32>(),
        p[2].parse::<u32>(),
    );
    let (Ok(y), Ok(m), Ok(d)) = (y, m, d) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (1..=12).contains(&m) && d >= 1 && d <= days[m as usize - 1]
}

/// strfmt's `IsDateTime`: a date, `t`, then `hh:mm:ss(.frac)?(z|±hh:mm)`, case-insensitive.
fn is_date_time(s: &str) -> bool {
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return false;
    };
    let re = r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$";
    is_date(date) && regex_match(re, time).unwrap_or(false)
}

fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len() % 4 == 0
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn check_number(schema: &Value, n: &serde_json::Number, name: &str, out: &mut Vec<Violation>) {
    let int = n.as_i64();
    let f = n.as_f64().unwrap_or(f64::NAN);
    let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
    // Integers are compared with the bound truncated to an integer, floats as floats.
    let shown = |b: f64| {
        if int.is_some() {
            (b as i64).to_string()
        } else {
            go_float(b)
        }
    };
    let value = Value::Number(n.clone());
    if let Some(m) = bound("multipleOf").filter(|m| *m != 0.0) {
        let fails = match int {
            Some(i) if m as i64 != 0 => i % (m as i64) != 0,
            _ => (f / m).fract() != 0.0,
        };
        if fails {
            invalid(
                out,
                name,
                Bad::Data(&value),
                format!("{name} in body should be a multiple of {}", shown(m)),
            );
        }
    }
    if let Some(min) = bound("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        let fails = match int {
            Some(i) => i < min as i64 || (exclusive && i == min as i64),
            None => f < min || (exclusive && f == min),
        };
        if fails {
            let op = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            invalid(
                out,
                name,
                Bad::Data(&value),
                format!("{name} in body should be {op} {}", shown(min)),
            );
        }
    }
    if let Some(max) = bound("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        let fails = match int {
            Some(i) => i > max as i64 || (exclusive && i == max as i64),
            None => f > max || (exclusive && f == max),
        };
        if fails {
            let op = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            invalid(
                out,
                name,
                Bad::Data(&value),
                format!("{name} in body should be {op} {}", shown(max)),
            );
        }
    }
}

fn check_array(schema: &Value, items: &[Value], name: &str, out: &mut Vec<Violation>) {
    if let Some(item_schema) = schema.get("items").filter(|s| s.is_object()) {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{name}[{i}]"), out);
        }
    }
    let size = items.len() as i64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_i64)
        && size < min
    {
        invalid(
            out,
            name,
            Bad::Int(size),
            format!("{name} in body should have at least {min} items"),
        );
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_i64)
        && size > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        push(
            out,
            name,
            "Too many",
            Some(Bad::Int(size)),
            &format!("must have at most {max} {unit}"),
        );
    }
    if flag(schema, "uniqueItems")
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[..i].contains(a))
    {
        invalid(
            out,
            name,
            Bad::Str(""),
            format!("{name} in body shouldn't contain duplicates"),
        );
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn check_enum(schema: &Value, data: &Value, name: &str, out: &mut Vec<Violation>) {
    let Some(values) = schema
        .get("enum")
        .and_then(Value::as_array)
        .filter(|v| !v.is_empty())
    else {
        return;
    };
    if values.iter().any(|v| same(v, data)) {
        return;
    }
    let listed: Vec<String> = values
        .iter()
        .map(|v| {
            go_quote(
                &v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            )
        })
        .collect();
    let detail = format!("supported values: {}", listed.join(", "));
    push(
        out,
        name,
        "Unsupported value",
        Some(Bad::Data(data)),
        &detail,
    );
}

fn check_object(schema: &Value, map: &Map<String, Value>, name: &str, out: &mut Vec<Violation>) {
    let n = map.len() as i64;
    if let Some(min) = schema.get("minProperties").and_then(Value::as_i64)
        && n < min
    {
        let msg = format!("{name} in body should have at least {min} properties");
        return invalid(out, name, Bad::Int(n), msg);
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_i64)
        && n > max
    {
        let unit = if max == 1 { "item" } else { "items" };
        return push(
            out,
            name,
            "Too many",
            Some(Bad::Int(n)),
            &format!("must have at most {max} {unit}"),
        );
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let known = |k: &str| props.is_some_and(|p| p.contains_key(k));
    match schema.get("additionalProperties") {
        Some(Value::Bool(false)) => {
            for key in map.keys().filter(|k| !known(k)) {
                let msg = format!("{name}.{key} in body is a forbidden property");
                invalid(out, name, Bad::Str(key), msg);
            }
        }
        Some(extra @ Value::Object(_)) => {
            for (key, value) in map.iter().filter(|(k, _)| !known(k)) {
                check(extra, value, &format!("{name}.{key}"), out);
            }
        }
        _ => {}
    }
    for (key, prop) in props.into_iter().flatten() {
        if let Some(value) = map.get(key) {
            let child = if name.is_empty() {
                key.clone()
            } else {
                format!("{name}.{key}")
            };
            check(prop, value, &child, out);
        }
    }
    for key in strs(schema.get("required")) {
        if !map.contains_key(key) {
            push(out, &format!("{name}.{key}"), "Required value", None, "");
        }
    }
}

/// apiextensions' `validateEmbeddedResource` for `x-kubernetes-embedded-resource` objects.
fn embedded(schema: &Value, data: &Value, name: &str, out: &mut Vec<Violation>) {
    match data {
        Value::Object(map) => {
            if flag(schema, "x-kubernetes-embedded-resource") && !map.is_empty() {
                for key in ["apiVersion", "kind"] {
                    let path = format!("{name}.{key}");
                    match map.get(key) {
                        None => push(out, &path, "Required value", None, "must not be empty"),
                        Some(Value::String(s)) if s.is_empty() => {
                            invalid(out, &path, Bad::Str(s), "must not be empty".into())
                        }
                        Some(Value::String(_)) => {}
                        Some(v) => invalid(out, &path, Bad::Data(v), "must be a string".into()),
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, value) in map {
                let child = if name.is_empty() {
                    key.clone()
                } else {
                    format!("{name}.{key}")
                };
                match props
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties"))
                {
                    Some(sub) if sub.is_object() => embedded(sub, value, &child, out),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    embedded(sub, item, &format!("{name}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// structuralpruning.prune; `None` is "no schema" (every field of an object below is dropped).
/// The dropped fields' paths are pushed onto `pruned`.
fn prune(
    data: &mut Value,
    schema: Option<&Value>,
    root: bool,
    path: &str,
    pruned: &mut Vec<String>,
) {
    if let Some(s) = schema
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        return skip_prune(data, s, path, pruned);
    }
    match data {
        Value::Object(map) => {
            let Some(s) = schema else {
                pruned.extend(map.keys().map(|k| child_path(path, k)));
                return map.clear();
            };
            let embedded = root || flag(s, "x-kubernetes-embedded-resource");
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties");
            map.retain(|key, value| {
                if embedded
                    && matches!(
                        (key.as_str(), &*value),
                        ("apiVersion" | "kind", Value::String(_)) | ("metadata", Value::Object(_))
                    )
                {
                    return true;
                }
                let here = child_path(path, key);
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    prune(value, Some(prop), false, &here, pruned);
                } else if let Some(extra) = extra {
                    prune(
                        value,
                        extra.is_object().then_some(extra),
                        false,
                        &here,
                        pruned,
                    );
                } else {
                    let keep = root && matches!(key.as_str(), "apiVersion" | "kind" | "metadata");
                    if !keep {
                        pruned.push(here);
                    }
                    return keep;
                }
                true
            });
        }
        Value::Array(items) => {
            let items_schema = schema
                .and_then(|s| s.get("items"))
                .filter(|s| s.is_object());
            for (i, item) in items.iter_mut().enumerate() {
                prune(item, items_schema, false, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

fn skip_prune(data: &mut Value, s: &Value, path: &str, pruned: &mut Vec<String>) {
    match data {
        Value::Object(map) => {
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            let props = s.get("properties").and_then(Value::as_object);
            for (key, value) in map.iter_mut() {
                if embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let here = child_path(path, key);
                if let Some(prop) = props.and_then(|p| p.get(key)) {
                    prune(value, Some(prop), false, &here, pruned);
                } else if let Some(extra) = s.get("additionalProperties") {
                    prune(
                        value,
                        extra.is_object().then_some(extra),
                        false,
                        &here,
                        pruned,
                    );
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = s.get("items").filter(|s| s.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item, sub, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

/// structuraldefaulting.Default.
fn default(data: &mut Value, s: &Value) {
    match data {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            for (key, prop) in props.into_iter().flatten() {
                if let Some(d) = prop.get("default")
                    && map
                        .get(key)
                        .is_none_or(|v| v.is_null() && !flag(prop, "nullable"))
                {
                    map.insert(key.clone(), d.clone());
                }
            }
            for (key, value) in map.iter_mut() {
                match props
                    .and_then(|p| p.get(key))
                    .or_else(|| s.get("additionalProperties"))
                {
                    Some(sub) if sub.is_object() => default(value, sub),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = s.get("items").filter(|s| s.is_object()) {
                items.iter_mut().for_each(|item| default(item, sub));
            }
        }
        _ => {}
    }
}

/// structuraldefaulting.PruneNonNullableNullsWithoutDefaults.
fn drop_nulls(data: &mut Value, s: &Value) {
    match data {
        Value::Object(map) => {
            let Some(props) = s.get("properties").and_then(Value::as_object) else {
                return;
            };
            map.retain(|key, value| match props.get(key) {
                Some(p) if value.is_null() => p.get("default").is_some() || flag(p, "nullable"),
                Some(p) => {
                    drop_nulls(value, p);
                    true
                }
                None => true,
            });
        }
        Value::Array(items) => {
            if let Some(sub) = s.get("items").filter(|s| s.is_object()) {
                items.iter_mut().for_each(|item| drop_nulls(item, sub));
            }
        }
        _ => {}
    }
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e6 (`1e+06`).
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    format!(
        "{mantissa}e{}{:02}",
        if exp < 0 { '-' } else { '+' },
        exp.abs()
    )
}

#[cfg(test)]
mod tests;
