//! Field validation of built-in kinds on create and update, ported from the API server's
//! strategies for the fields clients write, with upstream's paths, order and messages:
//! pkg/apis/apps/validation/validation.go (Deployment, ReplicaSet, StatefulSet),
//! pkg/apis/core/validation/validation.go (Pod spec and containers, Service, ConfigMap,
//! Namespace, resources), pkg/apis/autoscaling/validation/validation.go (HPA),
//! staging/src/k8s.io/apimachinery/pkg/api/validation/objectmeta.go and
//! .../apis/meta/v1/validation/validation.go (metadata, labels, selectors),
//! .../util/validation/validation.go (name syntaxes), pkg/apis/batch/validation/validation.go
//! (Job and CronJob specs; the Job's selector, generated in defaults.rs as its strategy does, is
//! not checked against the template). Not
//! ported: volumes, probes, env,
//! security contexts, affinity/tolerations, Service IP families and node ports, HPA metric
//! specs, Pod spec immutability on update, status validation.

use serde_json::Value;

use super::super::resources::ResourceDef;
use super::super::selector::LabelSelector;
use super::admission::go_quote;

/// Field errors as (path, body): `("spec.replicas", "Invalid value: -1: must be ...")`.
pub(crate) type Errors = Vec<(String, String)>;

/// Validates `obj` (defaulted) of a built-in kind; `old` on update.
pub(crate) fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Errors {
    let mut e = Errors::new();
    let name_rule: fn(&str) -> Vec<String> = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") | ("apps", "StatefulSet") => dns1123_label,
        ("", "Service") => dns1035_label,
        _ => dns1123_subdomain,
    };
    if def.is_custom() || def.group == "metrics.k8s.io" {
        return e;
    }
    object_meta(obj, name_rule, old.is_none(), &mut e);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match (def.group.as_str(), def.kind.as_str()) {
        ("apps", "Deployment") => {
            deployment_spec(spec, &mut e);
            if let Some(old) = old {
                immutable_selector(spec, old, &mut e);
            }
        }
        ("apps", "ReplicaSet") => {
            replica_set_spec(spec, &mut e);
            if let Some(old) = old {
                immutable_selector(spec, old, &mut e);
            }
        }
        ("apps", "StatefulSet") => stateful_set_spec(spec, &mut e),
        ("", "Pod") => pod_spec(spec, "spec", &mut e),
        ("", "Service") => service_spec(spec, &mut e),
        ("", "ConfigMap") => config_map(obj, &mut e),
        ("coordination.k8s.io", "Lease") => lease_spec(spec, &mut e),
        ("", "Event") => legacy_event(obj, &mut e),
        ("autoscaling", "HorizontalPodAutoscaler") => hpa_spec(spec, &mut e),
        ("batch", "Job") => job_spec(spec, "spec", &mut e),
        ("batch", "CronJob") => cron_job(obj, old.is_none(), &mut e),
        _ => {}
    }
    e
}

// ---- field.Error constructors (apimachinery/pkg/util/validation/field/errors.go) ----

fn required(e: &mut Errors, path: &str, detail: &str) {
    let body = if detail.is_empty() {
        "Required value".to_string()
    } else {
        format!("Required value: {detail}")
    };
    e.push((path.into(), body));
}

fn invalid(e: &mut Errors, path: &str, value: &str, detail: &str) {
    e.push((path.into(), format!("Invalid value: {value}: {detail}")));
}

fn not_supported(e: &mut Errors, path: &str, value: &str, valid: &[&str]) {
    let list: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
    e.push((
        path.into(),
        format!(
            "Unsupported value: {}: supported values: {}",
            go_quote(value),
            list.join(", ")
        ),
    ));
}

fn forbidden(e: &mut Errors, path: &str, detail: &str) {
    e.push((path.into(), format!("Forbidden: {detail}")));
}

fn duplicate(e: &mut Errors, path: &str, value: &str) {
    e.push((path.into(), format!("Duplicate value: {}", go_quote(value))));
}

/// Go's `%#v` of a `map[string]string` (keys sorted, as fmt prints maps).
fn go_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        go_quote(k),
                        go_quote(m[*k].as_str().unwrap_or_default())
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector` (printed by value).
fn go_selector(sel: &Value) -> String {
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(a) => format!(
            "[]v1.LabelSelectorRequirement{{{}}}",
            a.iter()
                .map(|r| {
                    let values = match r.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|v| go_quote(v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        go_quote(str_of(r.get("key"))),
                        go_quote(str_of(r.get("operator")))
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_map(sel.get("matchLabels"))
    )
}

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or_default()
}

fn int_of(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

// ---- name syntaxes (apimachinery/pkg/util/validation/validation.go) ----

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let ex: Vec<String> = examples.iter().map(|x| format!("'{x}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        ex.join(" or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";

fn dns1123_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len_error(63));
    }
    if !is_label(s) {
        if !s.contains("..") && s.split('.').all(is_label) {
            out.push("must not contain dots".into());
        } else {
            out.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    out
}

fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push(max_len_error(253));
    }
    if !s.split('.').all(is_label) {
        out.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            &["example.com"],
        ));
    }
    out
}

fn dns1035_label(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len_error(63));
    }
    if !(is_label(s) && s.as_bytes()[0].is_ascii_lowercase()) {
        out.push(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
            "[a-z]([-a-z0-9]*[a-z0-9])?",
            &["my-name", "abc-123"],
        ));
    }
    out
}

const QNAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QNAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn is_qname_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn qualified_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [n] => *n,
        [prefix, n] => {
            if prefix.is_empty() {
                out.push("prefix part must be non-empty".into());
            } else {
                out.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            n
        }
        _ => {
            out.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return out;
        }
    };
    if name.is_empty() {
        out.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        out.push(format!("name part {}", max_len_error(63)));
    }
    if !name.is_empty() && !is_qname_part(name) {
        out.push(format!(
            "name part {}",
            regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    out
}

fn label_value(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push(max_len_error(63));
    }
    if !s.is_empty() && !is_qname_part(s) {
        out.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
            &["MyValue", "my_value", "12345"],
        ));
    }
    out
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// meta/v1/validation ValidateLabels.
fn labels(v: Option<&Value>, path: &str, e: &mut Errors) {
    let Some(m) = v.and_then(Value::as_object) else {
        return;
    };
    for (k, val) in sorted(m) {
        for msg in qualified_name(k) {
            invalid(e, path, &go_quote(k), &msg);
        }
        let s = val.as_str().unwrap_or_default();
        for msg in label_value(s) {
            invalid(e, path, &go_quote(s), &msg);
        }
    }
}

/// api/validation ValidateAnnotations.
fn annotations(v: Option<&Value>, path: &str, e: &mut Errors) {
    let Some(m) = v.and_then(Value::as_object) else {
        return;
    };
    let mut total = 0;
    for (k, val) in sorted(m) {
        for msg in qualified_name(&k.to_lowercase()) {
            invalid(e, path, &go_quote(k), &msg);
        }
        total += k.len() + val.as_str().map_or(0, str::len);
    }
    if total > 256 * 1024 {
        e.push((
            path.into(),
            "Too long: may not be more than 262144 bytes".into(),
        ));
    }
}

/// api/validation ValidateObjectMeta: the name (per kind's rule), generateName, labels, annotations.
fn object_meta(obj: &Value, rule: fn(&str) -> Vec<String>, create: bool, e: &mut Errors) {
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    let name = str_of(meta.get("name"));
    if create && !name.is_empty() {
        for msg in rule(name) {
            invalid(e, "metadata.name", &go_quote(name), &msg);
        }
    }
    labels(meta.get("labels"), "metadata.labels", e);
    annotations(meta.get("annotations"), "metadata.annotations", e);
}

fn nonnegative(v: Option<&Value>, path: &str, e: &mut Errors) {
    if let Some(n) = int_of(v)
        && n < 0
    {
        invalid(
            e,
            path,
            &n.to_string(),
            "must be greater than or equal to 0",
        );
    }
}

/// meta/v1/validation ValidateLabelSelector (matchLabels and the operators).
fn label_selector(sel: &Value, path: &str, e: &mut Errors) {
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for (i, r) in exprs.iter().enumerate() {
            let p = format!("{path}.matchExpressions[{i}]");
            let op = str_of(r.get("operator"));
            let n = r
                .get("values")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            match op {
                "In" | "NotIn" if n == 0 => required(
                    e,
                    &format!("{p}.values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ),
                "Exists" | "DoesNotExist" if n > 0 => forbidden(
                    e,
                    &format!("{p}.values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ),
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                _ => invalid(
                    e,
                    &format!("{p}.operator"),
                    &go_quote(op),
                    "not a valid selector operator",
                ),
            }
            for msg in qualified_name(str_of(r.get("key"))) {
                invalid(
                    e,
                    &format!("{p}.key"),
                    &go_quote(str_of(r.get("key"))),
                    &msg,
                );
            }
        }
    }
    labels(sel.get("matchLabels"), &format!("{path}.matchLabels"), e);
}

/// The selector part shared by Deployment, ReplicaSet and StatefulSet; the parsed selector.
fn workload_selector(spec: &Value, what: &str, e: &mut Errors) -> Option<LabelSelector> {
    let Some(sel) = spec.get("selector").filter(|s| s.is_object()) else {
        required(e, "spec.selector", "");
        return None;
    };
    label_selector(sel, "spec.selector", e);
    let n = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
        + sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
    if n == 0 {
        invalid(
            e,
            "spec.selector",
            &go_selector(sel),
            &format!("empty selector is invalid for {what}"),
        );
    }
    LabelSelector::from_json(sel).ok()
}

fn template_matches(sel: &Option<LabelSelector>, template: &Value, e: &mut Errors) {
    let labels = template.pointer("/metadata/labels");
    if let Some(s) = sel
        && !s.is_empty()
        && !s.matches(
            &serde_json::json!({"metadata": {"labels": labels.cloned().unwrap_or(Value::Null)}}),
        )
    {
        invalid(
            e,
            "spec.template.metadata.labels",
            &go_map(labels),
            "`selector` does not match template `labels`",
        );
    }
}

/// apps ValidatePodTemplateSpecForReplicaSet (core ValidatePodTemplateSpec inside).
fn replica_set_template(spec: &Value, sel: &Option<LabelSelector>, e: &mut Errors) {
    let t = spec.get("template").unwrap_or(&Value::Null);
    template_matches(sel, t, e);
    labels(t.pointer("/metadata/labels"), "spec.template.labels", e);
    annotations(
        t.pointer("/metadata/annotations"),
        "spec.template.annotations",
        e,
    );
    let ps = t.get("spec").unwrap_or(&Value::Null);
    pod_spec(ps, "spec.template.spec", e);
    let rp = str_of(ps.get("restartPolicy"));
    if rp != "Always" {
        not_supported(e, "spec.template.spec.restartPolicy", rp, &["Always"]);
    }
    if ps
        .get("activeDeadlineSeconds")
        .is_some_and(|v| !v.is_null())
    {
        forbidden(
            e,
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        );
    }
}

fn deployment_spec(spec: &Value, e: &mut Errors) {
    nonnegative(spec.get("replicas"), "spec.replicas", e);
    let sel = workload_selector(spec, "deployment", e);
    if spec.get("selector").is_some_and(Value::is_object) {
        replica_set_template(spec, &sel, e);
    }
    let st = spec.get("strategy").unwrap_or(&Value::Null);
    match str_of(st.get("type")) {
        "Recreate" => {
            if st.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
                forbidden(
                    e,
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        "RollingUpdate" => {
            let ru = st.get("rollingUpdate").unwrap_or(&Value::Null);
            let mu = int_or_percent(
                ru.get("maxUnavailable"),
                "spec.strategy.rollingUpdate.maxUnavailable",
                e,
            );
            let ms = int_or_percent(
                ru.get("maxSurge"),
                "spec.strategy.rollingUpdate.maxSurge",
                e,
            );
            if mu == Some(0) && ms == Some(0) {
                invalid(
                    e,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &go_intstr(ru.get("maxUnavailable")),
                    "may not be 0 when `maxSurge` is 0",
                );
            }
            if let Some(Value::String(s)) = ru.get("maxUnavailable")
                && s.trim_end_matches('%')
                    .parse::<i64>()
                    .is_ok_and(|p| p > 100)
            {
                invalid(
                    e,
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &go_intstr(ru.get("maxUnavailable")),
                    "must not be greater than 100%",
                );
            }
        }
        other => not_supported(e, "spec.strategy", other, &["Recreate", "RollingUpdate"]),
    }
    nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", e);
    nonnegative(
        spec.get("revisionHistoryLimit"),
        "spec.revisionHistoryLimit",
        e,
    );
    if let Some(p) = int_of(spec.get("progressDeadlineSeconds")) {
        nonnegative(
            spec.get("progressDeadlineSeconds"),
            "spec.progressDeadlineSeconds",
            e,
        );
        if p <= int_of(spec.get("minReadySeconds")).unwrap_or(0) {
            invalid(
                e,
                "spec.progressDeadlineSeconds",
                &p.to_string(),
                "must be greater than minReadySeconds",
            );
        }
    }
}

/// Go's `%#v`-free printing of an IntOrString: it is a Stringer (`intstr.IntOrString.String`).
fn go_intstr(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(n) => n.to_string(),
        None => "0".into(),
    }
}

/// apps ValidatePositiveIntOrPercent; the value as an int or a percentage.
fn int_or_percent(v: Option<&Value>, path: &str, e: &mut Errors) -> Option<i64> {
    match v {
        Some(Value::String(s)) => {
            let n = s.strip_suffix('%').and_then(|d| {
                (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then(|| d.parse().ok())?
            });
            if n.is_none() {
                invalid(
                    e,
                    path,
                    s,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                );
            }
            n
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                invalid(
                    e,
                    path,
                    &n.to_string(),
                    "must be greater than or equal to 0",
                );
            }
            Some(n)
        }
        _ => None,
    }
}

fn immutable_selector(spec: &Value, old: &Value, e: &mut Errors) {
    let new = spec.get("selector").cloned().unwrap_or(Value::Null);
    let was = old
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(Value::Null);
    if new != was && !new.is_null() {
        invalid(e, "spec.selector", &go_selector(&new), "field is immutable");
    }
}

fn replica_set_spec(spec: &Value, e: &mut Errors) {
    nonnegative(spec.get("replicas"), "spec.replicas", e);
    nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", e);
    let sel = workload_selector(spec, "deployment", e);
    if spec.get("selector").is_some_and(Value::is_object) {
        replica_set_template(spec, &sel, e);
    }
}

fn stateful_set_spec(spec: &Value, e: &mut Errors) {
    match str_of(spec.get("podManagementPolicy")) {
        "" => required(e, "spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => invalid(
            e,
            "spec.podManagementPolicy",
            &go_quote(other),
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    nonnegative(spec.get("replicas"), "spec.replicas", e);
    nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds", e);
    let sel = workload_selector(spec, "statefulset", e);
    let t = spec.get("template").unwrap_or(&Value::Null);
    if spec.get("selector").is_some_and(Value::is_object) {
        // apps ValidatePodTemplateSpecForStatefulSet: labels and annotations, not the pod spec.
        template_matches(&sel, t, e);
        labels(t.pointer("/metadata/labels"), "spec.template.labels", e);
        annotations(
            t.pointer("/metadata/annotations"),
            "spec.template.annotations",
            e,
        );
    }
    let rp = str_of(t.pointer("/spec/restartPolicy"));
    if rp != "Always" {
        not_supported(e, "spec.template.spec.restartPolicy", rp, &["Always"]);
    }
}

/// core ValidatePodSpec: containers, restartPolicy, dnsPolicy, nodeSelector, activeDeadlineSeconds.
fn pod_spec(spec: &Value, path: &str, e: &mut Errors) {
    let containers = spec.get("containers").and_then(Value::as_array);
    let cpath = format!("{path}.containers");
    if containers.is_none_or(Vec::is_empty) {
        required(e, &cpath, "");
    }
    let mut names = std::collections::HashSet::new();
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let p = format!("{cpath}[{i}]");
        container(c, &p, e);
        let name = str_of(c.get("name"));
        if !names.insert(name.to_string()) {
            duplicate(e, &format!("{p}.name"), name);
        }
    }
    for (i, c) in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("{path}.initContainers[{i}]");
        container(c, &p, e);
        let name = str_of(c.get("name"));
        if !names.insert(name.to_string()) {
            duplicate(e, &format!("{p}.name"), name);
        }
    }
    match str_of(spec.get("restartPolicy")) {
        "" => required(e, &format!("{path}.restartPolicy"), ""),
        "Always" | "OnFailure" | "Never" => {}
        other => not_supported(
            e,
            &format!("{path}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        ),
    }
    match str_of(spec.get("dnsPolicy")) {
        "" => required(e, &format!("{path}.dnsPolicy"), ""),
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        other => not_supported(
            e,
            &format!("{path}.dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ),
    }
    labels(spec.get("nodeSelector"), &format!("{path}.nodeSelector"), e);
    if let Some(a) = int_of(spec.get("activeDeadlineSeconds"))
        && !(1..=i64::from(i32::MAX)).contains(&a)
    {
        invalid(
            e,
            &format!("{path}.activeDeadlineSeconds"),
            &a.to_string(),
            "must be between 1 and 2147483647, inclusive",
        );
    }
}

/// core validateContainerCommon: name, image, terminationMessagePolicy, ports, pull policy, resources.
fn container(c: &Value, p: &str, e: &mut Errors) {
    let name = str_of(c.get("name"));
    if name.is_empty() {
        required(e, &format!("{p}.name"), "");
    } else {
        for msg in dns1123_label(name) {
            invalid(e, &format!("{p}.name"), &go_quote(name), &msg);
        }
    }
    if str_of(c.get("image")).is_empty() {
        required(e, &format!("{p}.image"), "");
    }
    match str_of(c.get("terminationMessagePolicy")) {
        "File" | "FallbackToLogsOnError" => {}
        "" => required(e, &format!("{p}.terminationMessagePolicy"), ""),
        other => not_supported(
            e,
            &format!("{p}.terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        ),
    }
    container_ports(c.get("ports"), &format!("{p}.ports"), e);
    match str_of(c.get("imagePullPolicy")) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => required(e, &format!("{p}.imagePullPolicy"), ""),
        other => not_supported(
            e,
            &format!("{p}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        ),
    }
    resources(c.get("resources"), &format!("{p}.resources"), e);
}

fn port_name(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push(max_len_error(15));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen".into());
    }
    out
}

fn port_num(n: i64, path: &str, e: &mut Errors) {
    if !(1..=65535).contains(&n) {
        invalid(
            e,
            path,
            &n.to_string(),
            "must be between 1 and 65535, inclusive",
        );
    }
}

fn protocol(p: &Value, path: &str, e: &mut Errors) {
    match str_of(p.get("protocol")) {
        "" => required(e, &format!("{path}.protocol"), ""),
        "TCP" | "UDP" | "SCTP" => {}
        other => not_supported(
            e,
            &format!("{path}.protocol"),
            other,
            &["SCTP", "TCP", "UDP"],
        ),
    }
}

fn container_ports(ports: Option<&Value>, path: &str, e: &mut Errors) {
    let mut names = std::collections::HashSet::new();
    for (i, p) in ports
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let ip = format!("{path}[{i}]");
        let name = str_of(p.get("name"));
        if !name.is_empty() {
            let msgs = port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    invalid(e, &format!("{ip}.name"), &go_quote(name), &m);
                }
            } else if !names.insert(name.to_string()) {
                duplicate(e, &format!("{ip}.name"), name);
            }
        }
        match int_of(p.get("containerPort")) {
            None | Some(0) => required(e, &format!("{ip}.containerPort"), ""),
            Some(n) => port_num(n, &format!("{ip}.containerPort"), e),
        }
        protocol(p, &ip, e);
    }
}

/// core ValidateResourceRequirements: standard names, non-negative quantities, requests <= limits.
fn resources(r: Option<&Value>, path: &str, e: &mut Errors) {
    let Some(r) = r else { return };
    let lim = r.get("limits").and_then(Value::as_object);
    let req = r.get("requests").and_then(Value::as_object);
    let standard = |n: &str| {
        n.contains('/')
            || matches!(n, "cpu" | "memory" | "ephemeral-storage")
            || n.starts_with("hugepages-")
    };
    let quantity_ok = |p: &str, name: &str, q: &Value, e: &mut Errors| -> Option<f64> {
        if !standard(name) {
            invalid(
                e,
                p,
                &go_quote(name),
                "must be a standard resource for containers",
            );
        }
        let text = q
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| q.to_string());
        let v = playbook_model::units::quantity(&text);
        if v.is_some_and(|v| v < 0.0) {
            invalid(e, p, &go_quote(&text), "must be greater than or equal to 0");
        }
        v
    };
    for (name, q) in lim.map(sorted).unwrap_or_default() {
        quantity_ok(&format!("{path}.limits[{name}]"), name, q, e);
    }
    for (name, q) in req.map(sorted).unwrap_or_default() {
        let rv = quantity_ok(&format!("{path}.requests[{name}]"), name, q, e);
        let text = q
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| q.to_string());
        let overcommit = !name.starts_with("hugepages-")
            && (!name.contains('/') || name.starts_with("kubernetes.io/"));
        match lim.and_then(|l| l.get(name)) {
            Some(l) => {
                let ltext = l
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| l.to_string());
                let lv = playbook_model::units::quantity(&ltext);
                if let (Some(rv), Some(lv)) = (rv, lv) {
                    if !overcommit && rv != lv {
                        invalid(
                            e,
                            &format!("{path}.requests"),
                            &go_quote(&text),
                            &format!("must be equal to {name} limit of {ltext}"),
                        );
                    } else if rv > lv {
                        invalid(
                            e,
                            &format!("{path}.requests"),
                            &go_quote(&text),
                            &format!("must be less than or equal to {name} limit of {ltext}"),
                        );
                    }
                }
            }
            None if !overcommit => required(
                e,
                &format!("{path}.limits"),
                "Limit must be set for non overcommitable resources",
            ),
            None => {}
        }
    }
}

/// core ValidateService: ports (required unless headless or ExternalName), names, numbers,
/// protocols, type, selector labels, sessionAffinity.
fn service_spec(spec: &Value, e: &mut Errors) {
    let ty = str_of(spec.get("type"));
    let headless = str_of(spec.get("clusterIP")) == "None";
    let ports = spec.get("ports").and_then(Value::as_array);
    if ports.is_none_or(Vec::is_empty) && !headless && ty != "ExternalName" {
        required(e, "spec.ports", "");
    }
    let many = ports.is_some_and(|p| p.len() > 1);
    let mut names = std::collections::HashSet::new();
    for (i, p) in ports.into_iter().flatten().enumerate() {
        let ip = format!("spec.ports[{i}]");
        let name = str_of(p.get("name"));
        if many && name.is_empty() {
            required(e, &format!("{ip}.name"), "");
        } else if !name.is_empty() {
            for m in dns1123_label(name) {
                invalid(e, &format!("{ip}.name"), &go_quote(name), &m);
            }
            if !names.insert(name.to_string()) {
                duplicate(e, &format!("{ip}.name"), name);
            }
        }
        port_num(int_of(p.get("port")).unwrap_or(0), &format!("{ip}.port"), e);
        protocol(p, &ip, e);
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                port_num(n.as_i64().unwrap_or(0), &format!("{ip}.targetPort"), e)
            }
            Some(Value::String(s)) => {
                for m in port_name(s) {
                    invalid(e, &format!("{ip}.targetPort"), &go_quote(s), &m);
                }
            }
            _ => {}
        }
    }
    labels(spec.get("selector"), "spec.selector", e);
    match str_of(spec.get("sessionAffinity")) {
        "" => required(e, "spec.sessionAffinity", ""),
        "ClientIP" | "None" => {}
        other => not_supported(e, "spec.sessionAffinity", other, &["ClientIP", "None"]),
    }
    match ty {
        "" => required(e, "spec.type", ""),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" => {}
        other => not_supported(
            e,
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ),
    }
}

/// core ValidateConfigMap: data and binaryData keys.
fn config_map(obj: &Value, e: &mut Errors) {
    for field in ["data", "binaryData"] {
        for (k, _) in obj
            .get(field)
            .and_then(Value::as_object)
            .map(sorted)
            .unwrap_or_default()
        {
            let mut msgs = Vec::new();
            if k.len() > 253 {
                msgs.push(max_len_error(253));
            }
            if k.is_empty()
                || !k
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                msgs.push(regex_error(
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                    "[-._a-zA-Z0-9]+",
                    &["key.name", "KEY_NAME", "key-name"],
                ));
            }
            if k == ".." {
                msgs.push("must not be '..'".into());
            } else if k.starts_with("..") {
                msgs.push("must not start with '..'".into());
            }
            for m in msgs {
                invalid(e, &format!("{field}[{k}]"), &go_quote(k), &m);
            }
        }
    }
}

/// coordination ValidateLeaseSpec (pkg/apis/coordination/validation/validation.go): a positive
/// duration, transitions not negative, a preferred holder only with a strategy.
fn lease_spec(spec: &Value, e: &mut Errors) {
    if let Some(d) = int_of(spec.get("leaseDurationSeconds"))
        && d <= 0
    {
        invalid(
            e,
            "spec.leaseDurationSeconds",
            &d.to_string(),
            "must be greater than 0",
        );
    }
    if let Some(t) = int_of(spec.get("leaseTransitions"))
        && t < 0
    {
        invalid(
            e,
            "spec.leaseTransitions",
            &t.to_string(),
            "must be greater than or equal to 0",
        );
    }
    if !str_of(spec.get("preferredHolder")).is_empty() && str_of(spec.get("strategy")).is_empty() {
        required(
            e,
            "spec.strategy",
            "must be specified when preferredHolder is set",
        );
    }
}

// ---- Events (pkg/apis/core/validation/events.go) ----

/// `ReportingInstanceLengthLimit`, `ActionLengthLimit`, `ReasonLengthLimit`, `NoteLengthLimit`.
const EVENT_SHORT_LIMIT: usize = 128;
const EVENT_NOTE_LIMIT: usize = 1024;

fn is_set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
}

/// `legacyValidateEvent`, on the stored core v1 form, for every create and update: an event
/// with an `eventTime` (the events.k8s.io shape) needs its reporter, action and reason within
/// their limits; one without must live in its involved object's namespace.
fn legacy_event(obj: &Value, e: &mut Errors) {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let involved_ns = obj["involvedObject"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let mismatch = |e: &mut Errors| {
        invalid(
            e,
            "involvedObject.namespace",
            &go_quote(involved_ns),
            "does not match event.namespace",
        )
    };
    if !is_set(obj.get("eventTime")) {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                mismatch(e);
            }
        } else if ns != involved_ns {
            mismatch(e);
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            mismatch(e);
        }
        let controller = str_of(obj.get("reportingComponent"));
        if controller.is_empty() {
            required(e, "reportingController", "");
        }
        for m in qualified_name(controller)
            .into_iter()
            .filter(|_| !controller.is_empty())
        {
            invalid(e, "reportingController", &go_quote(controller), &m);
        }
        let short = [
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ];
        for (field, path) in short {
            let v = str_of(obj.get(field));
            if v.is_empty() {
                required(e, path, "");
            }
            if v.len() > EVENT_SHORT_LIMIT {
                invalid(
                    e,
                    path,
                    "\"\"",
                    &format!("can have at most {EVENT_SHORT_LIMIT} characters"),
                );
            }
        }
        if str_of(obj.get("message")).len() > EVENT_NOTE_LIMIT {
            invalid(
                e,
                "message",
                "\"\"",
                &format!("can have at most {EVENT_NOTE_LIMIT} characters"),
            );
        }
    }
    for m in dns1123_subdomain(ns) {
        invalid(e, "namespace", &go_quote(ns), &m);
    }
}

/// `ValidateEventCreate`'s strict part for a create through events.k8s.io/v1, on the
/// request's own form (its field names): `eventTime` set, a valid `series`, type Normal or
/// Warning, none of the deprecated core fields. Updates are held only to [`legacy_event`]
/// (upstream's strict update checks — immutable fields — are not ported).
pub(crate) fn event_v1_create(obj: &Value) -> Errors {
    let mut e = Errors::new();
    if let Some(series) = obj.get("series").filter(|s| !s.is_null()) {
        if series["count"].as_i64().unwrap_or(0) < 2 {
            invalid(&mut e, "series.count", "\"\"", "should be at least 2");
        }
        if !is_set(series.get("lastObservedTime")) {
            required(&mut e, "series.lastObservedTime", "");
        }
    }
    if !is_set(obj.get("eventTime")) {
        required(&mut e, "eventTime", "");
    }
    let type_ = str_of(obj.get("type"));
    if type_ != "Normal" && type_ != "Warning" {
        invalid(
            &mut e,
            "type",
            "\"\"",
            &format!("has invalid value: {type_}"),
        );
    }
    for (field, path) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
    ] {
        if is_set(obj.get(field)) {
            invalid(&mut e, path, "\"\"", "needs to be unset");
        }
    }
    if obj["deprecatedCount"].as_i64().unwrap_or(0) != 0 {
        invalid(&mut e, "count", "\"\"", "needs to be unset");
    }
    let source = &obj["deprecatedSource"];
    if is_set(source.get("component")) || is_set(source.get("host")) {
        invalid(&mut e, "source", "\"\"", "needs to be unset");
    }
    e
}

/// autoscaling ValidateHorizontalPodAutoscaler: scaleTargetRef, minReplicas, maxReplicas.
fn hpa_spec(spec: &Value, e: &mut Errors) {
    let r = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
    for f in ["kind", "name"] {
        let v = str_of(r.get(f));
        let p = format!("spec.scaleTargetRef.{f}");
        if v.is_empty() {
            required(e, &p, "");
        } else if v == "." || v == ".." {
            invalid(e, &p, &go_quote(v), &format!("may not be '{v}'"));
        } else if v.contains('/') || v.contains('%') {
            invalid(
                e,
                &p,
                &go_quote(v),
                &format!(
                    "may not contain '{}'",
                    if v.contains('/') { "/" } else { "%" }
                ),
            );
        }
    }
    let min = int_of(spec.get("minReplicas"));
    if let Some(m) = min
        && m < 1
    {
        invalid(
            e,
            "spec.minReplicas",
            &m.to_string(),
            "must be greater than or equal to 1",
        );
    }
    let max = int_of(spec.get("maxReplicas")).unwrap_or(0);
    if max < 1 {
        invalid(
            e,
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than 0",
        );
    }
    if let Some(m) = min
        && max < m
    {
        invalid(
            e,
            "spec.maxReplicas",
            &max.to_string(),
            "must be greater than or equal to `minReplicas`",
        );
    }
    hpa_resource_metrics(spec, e);
}

/// pkg/apis/autoscaling/validation/validation.go `validateResourceSource` and
/// `validateMetricTarget` for the Resource metrics (the ones autoscaling/v1's
/// `targetCPUUtilizationPercentage` becomes); other metric sources are not validated here.
fn hpa_resource_metrics(spec: &Value, e: &mut Errors) {
    let metrics = spec.get("metrics").and_then(Value::as_array);
    for (i, m) in metrics.into_iter().flatten().enumerate() {
        let Some(r) = m.get("resource").filter(|r| r.is_object()) else {
            continue;
        };
        let p = format!("spec.metrics[{i}].resource");
        if str_of(r.get("name")).is_empty() {
            required(e, &format!("{p}.name"), "must specify a resource name");
        }
        let t = r.get("target").unwrap_or(&Value::Null);
        let ty = str_of(t.get("type"));
        if ty.is_empty() {
            required(
                e,
                &format!("{p}.target.type"),
                "must specify a metric target type",
            );
        }
        if !["Utilization", "Value", "AverageValue"].contains(&ty) {
            invalid(
                e,
                &format!("{p}.target.type"),
                &go_quote(ty),
                "must be either Utilization, Value, or AverageValue",
            );
        }
        let util = int_of(t.get("averageUtilization"));
        if let Some(u) = util
            && u < 1
        {
            invalid(
                e,
                &format!("{p}.target.averageUtilization"),
                &u.to_string(),
                "must be greater than 0",
            );
        }
        let avg = t.get("averageValue").filter(|v| !v.is_null());
        if util.is_none() && avg.is_none() {
            required(
                e,
                &format!("{p}.target.averageUtilization"),
                "must set either a target raw value or a target utilization",
            );
        }
        if util.is_some() && avg.is_some() {
            e.push((
                format!("{p}.target.averageValue"),
                "Forbidden: may not set both a target raw value and a target utilization".into(),
            ));
        }
    }
}

/// batch validateJobSpec: counts and deadline not negative, the pod template, and a restart
/// policy a Job can finish with.
fn job_spec(spec: &Value, path: &str, e: &mut Errors) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
    ] {
        nonnegative(spec.get(field), &format!("{path}.{field}"), e);
    }
    let t = spec.get("template").unwrap_or(&Value::Null);
    labels(
        t.pointer("/metadata/labels"),
        &format!("{path}.template.metadata.labels"),
        e,
    );
    let pod = t.get("spec").unwrap_or(&Value::Null);
    pod_spec(pod, &format!("{path}.template.spec"), e);
    let rp = str_of(pod.get("restartPolicy"));
    if !rp.is_empty() && rp != "OnFailure" && rp != "Never" {
        not_supported(
            e,
            &format!("{path}.template.spec.restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        );
    }
}

/// batch ValidateCronJobCreate / ValidateCronJobSpec: the name leaves room for the Jobs'
/// suffix, the schedule parses (playbook_model::cron, as robfig/cron ParseStandard), the
/// concurrency policy is known, and the job template is a Job spec without a selector.
fn cron_job(obj: &Value, create: bool, e: &mut Errors) {
    let name = str_of(obj.pointer("/metadata/name"));
    if create && name.len() > 52 {
        invalid(
            e,
            "metadata.name",
            &go_quote(name),
            "must be no more than 52 characters",
        );
    }
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let schedule = str_of(spec.get("schedule"));
    if schedule.is_empty() {
        required(e, "spec.schedule", "");
    } else if let Err(msg) = playbook_model::cron::check(schedule) {
        invalid(e, "spec.schedule", &go_quote(schedule), &msg);
    }
    nonnegative(
        spec.get("startingDeadlineSeconds"),
        "spec.startingDeadlineSeconds",
        e,
    );
    match str_of(spec.get("concurrencyPolicy")) {
        "Allow" | "Forbid" | "Replace" => {}
        "" => required(e, "spec.concurrencyPolicy", ""),
        other => not_supported(
            e,
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let job = spec.pointer("/jobTemplate/spec").unwrap_or(&Value::Null);
    job_spec(job, "spec.jobTemplate.spec", e);
    if let Some(sel) = job.get("selector").filter(|s| !s.is_null()) {
        invalid(
            e,
            "spec.jobTemplate.spec.selector",
            &go_selector(sel),
            "`selector` will be auto-generated",
        );
    }
}
