//! Building Chaos Mesh objects from a playbook's options, apart from sending them: options are
//! checked (unknown keys, durations, modes and values, the CRD's own schema) before anything is
//! created, and every object is labelled with the run and bounded by a `duration`.

use std::sync::OnceLock;

use serde_json::{Map, Value, json};

use playbook_model::crds::{self, CrdHandle};
use playbook_model::schema;

pub mod selection;

/// A selector's mode: `one`, `all`, `fixed`, `fixed-percent`, `random-max-percent` (the
/// generated Chaos Mesh type; the three kinds share these values).
pub use playbook_model::chaosmesh::PodChaosMode as Mode;

/// A mode as Chaos Mesh spells it.
pub fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::One => "one",
        Mode::All => "all",
        Mode::Fixed => "fixed",
        Mode::FixedPercent => "fixed-percent",
        Mode::RandomMaxPercent => "random-max-percent",
    }
}

/// The mode of a spec (or of its `target`), read with the generated type; absent is `one`.
fn mode_of(spec: &Map<String, Value>, prefix: &str) -> Result<Mode, OptionError> {
    match spec.get("mode") {
        None => Ok(Mode::One),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            bad(
                &format!("{prefix}mode"),
                format!("{v} is not a mode: one, all, fixed, fixed-percent or random-max-percent"),
            )
        }),
    }
}

/// `app.kubernetes.io/managed-by` on every object a run creates.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "playbook");
/// The label naming the run that created an object.
pub const RUN_ID_LABEL: &str = "playbook.chaos/run-id";
/// The annotation a run puts on a node it cordons (`cluster::cordon`, `cluster::drain`): its
/// run id, so cleanup — and `playbook cleanup` after a crash — uncordons only its own cordons.
pub const CORDONED_BY: &str = "playbook.chaos/cordoned-by";
/// Chaos Mesh's group/version.
pub const API_VERSION: &str = "chaos-mesh.org/v1alpha1";

/// The faults a playbook can inject, one constructor each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    PodKill,
    PodFailure,
    ContainerKill,
    NetworkDelay,
    NetworkLoss,
    NetworkPartition,
    CpuStress,
    MemoryStress,
}

impl Fault {
    /// Every fault constructor.
    pub const ALL: [Fault; 8] = [
        Fault::PodKill,
        Fault::PodFailure,
        Fault::ContainerKill,
        Fault::NetworkDelay,
        Fault::NetworkLoss,
        Fault::NetworkPartition,
        Fault::CpuStress,
        Fault::MemoryStress,
    ];

    /// The fault whose constructor is `chaos::<name>`.
    pub fn from_function(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.function() == name)
    }

    /// The constructor's name in playbooks (`chaos::pod_kill`).
    pub fn function(self) -> &'static str {
        match self {
            Fault::PodKill => "pod_kill",
            Fault::PodFailure => "pod_failure",
            Fault::ContainerKill => "container_kill",
            Fault::NetworkDelay => "network_delay",
            Fault::NetworkLoss => "network_loss",
            Fault::NetworkPartition => "network_partition",
            Fault::CpuStress => "cpu_stress",
            Fault::MemoryStress => "memory_stress",
        }
    }

    /// The Chaos Mesh kind.
    pub fn kind(self) -> &'static str {
        match self {
            Fault::PodKill | Fault::PodFailure | Fault::ContainerKill => "PodChaos",
            Fault::NetworkDelay | Fault::NetworkLoss | Fault::NetworkPartition => "NetworkChaos",
            Fault::CpuStress | Fault::MemoryStress => "StressChaos",
        }
    }

    /// The `spec.action` (StressChaos has none).
    fn action(self) -> Option<&'static str> {
        Some(match self {
            Fault::PodKill => "pod-kill",
            Fault::PodFailure => "pod-failure",
            Fault::ContainerKill => "container-kill",
            Fault::NetworkDelay => "delay",
            Fault::NetworkLoss => "loss",
            Fault::NetworkPartition => "partition",
            Fault::CpuStress | Fault::MemoryStress => return None,
        })
    }

    /// Options this fault takes besides the common ones, and which of them are required.
    fn options(self) -> (&'static [&'static str], &'static [&'static str]) {
        const NET: &[&str] = &["direction", "target", "externalTargets", "device"];
        match self {
            Fault::PodKill => (&["gracePeriod"], &[]),
            Fault::PodFailure => (&[], &[]),
            Fault::ContainerKill => (&["containerNames"], &["containerNames"]),
            Fault::NetworkDelay => (
                &[
                    "latency",
                    "jitter",
                    "correlation",
                    "direction",
                    "target",
                    "externalTargets",
                    "device",
                ],
                &["latency"],
            ),
            Fault::NetworkLoss => (
                &[
                    "loss",
                    "correlation",
                    "direction",
                    "target",
                    "externalTargets",
                    "device",
                ],
                &["loss"],
            ),
            Fault::NetworkPartition => (NET, &[]),
            Fault::CpuStress => (&["workers", "load", "containerNames"], &[]),
            Fault::MemoryStress => (
                &["workers", "size", "containerNames", "oomScoreAdj"],
                &["size"],
            ),
        }
    }
}

/// Options every fault takes.
const COMMON: &[&str] = &[
    "name",
    "namespace",
    "selector",
    "mode",
    "value",
    "duration",
    "unbounded",
    "allow_protected_namespaces",
    "allow_large_blast_radius",
];

/// A bad option: which one, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for OptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn bad(field: &str, message: impl Into<String>) -> OptionError {
    OptionError {
        field: field.to_string(),
        message: message.into(),
    }
}

/// What the run supplies to every object it builds.
pub struct Context<'a> {
    pub run_id: &'a str,
    /// A name for the object when the playbook gives none (unique within the run).
    pub default_name: String,
    /// The `duration` when the playbook gives none: the playbook's remaining time.
    pub default_duration: String,
    /// The namespace of an object that names none (the client's default, as kubectl does).
    pub default_namespace: String,
}

/// A Chaos Mesh object ready to create, and what the safety checks need to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The whole manifest (what `kubectl apply` would take).
    pub object: Value,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Every namespace the fault can reach: its selector's, its `target`'s (the object's own
    /// for either that names none), and the object's own.
    pub target_namespaces: Vec<String>,
    /// How many of the selected pods it acts on (Chaos Mesh's own enum).
    pub mode: Mode,
    /// The pod selections the fault makes: `spec.selector`, and `spec.target` if any.
    pub reach: Vec<Reach>,
    pub allow_protected_namespaces: bool,
    pub allow_large_blast_radius: bool,
}

/// One pod selection of a fault (`spec.selector` with `spec.mode`/`value`, or `spec.target`).
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    /// `selector` or `target`.
    pub what: &'static str,
    /// The selector (Chaos Mesh's `PodSelectorSpec`).
    pub selector: Value,
    /// The namespaces it lists pods in (the object's own when it names none).
    pub namespaces: Vec<String>,
    /// Its mode (absent is `one`).
    pub mode: Mode,
    /// Its `value`, for the modes that take one.
    pub value: Option<String>,
}

impl Reach {
    /// How many of `candidates` pods this selection can hit at most (Chaos Mesh's
    /// `pkg/selector/generic/mode.go`: fixed-percent and random-max-percent round down).
    pub fn most(&self, candidates: usize) -> usize {
        let value = self
            .value
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        match self.mode {
            Mode::One => candidates.min(1),
            Mode::Fixed => value.min(candidates),
            Mode::FixedPercent | Mode::RandomMaxPercent => candidates * value.min(100) / 100,
            Mode::All => candidates,
        }
    }
}

/// Builds the object for `fault` from a playbook's options.
pub fn build(fault: Fault, options: &Value, cx: &Context<'_>) -> Result<Built, OptionError> {
    let opts = options.as_object().ok_or_else(|| {
        bad(
            "options",
            "expected a map of Chaos Mesh fields, e.g. #{ selector: ..., mode: \"one\" }",
        )
    })?;
    check_keys(fault, opts.keys().map(String::as_str))?;
    let (_, required) = fault.options();
    for key in required.iter().chain(["selector"].iter()) {
        if !opts.contains_key(*key) {
            return Err(bad(key, format!("required by chaos::{}", fault.function())));
        }
    }
    build_checked(fault, opts, cx)
}

/// Refuses option keys `fault` does not take (with the nearest known key as a suggestion).
pub fn check_keys<'k>(
    fault: Fault,
    keys: impl Iterator<Item = &'k str>,
) -> Result<(), OptionError> {
    let (extra, _) = fault.options();
    for key in keys {
        if !COMMON.contains(&key) && !extra.contains(&key) {
            let known: Vec<&str> = COMMON.iter().chain(extra).copied().collect();
            let hint = closest(key, &known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| {
                    format!(" (chaos::{} takes: {})", fault.function(), known.join(", "))
                });
            return Err(bad(
                key,
                format!("unknown option for chaos::{}{hint}", fault.function()),
            ));
        }
    }
    Ok(())
}

fn build_checked(
    fault: Fault,
    opts: &Map<String, Value>,
    cx: &Context<'_>,
) -> Result<Built, OptionError> {
    let mut spec = Map::new();
    if let Some(action) = fault.action() {
        spec.insert("action".into(), action.into());
    }
    for key in ["selector", "mode", "value"] {
        if let Some(v) = opts.get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    spec.entry("mode").or_insert_with(|| "one".into());
    match fault {
        Fault::NetworkDelay => {
            let delay: Map<String, Value> = ["latency", "jitter", "correlation"]
                .iter()
                .filter_map(|k| opts.get(*k).map(|v| (k.to_string(), stringify(v))))
                .collect();
            spec.insert("delay".into(), Value::Object(delay));
        }
        Fault::NetworkLoss => {
            let loss: Map<String, Value> = ["loss", "correlation"]
                .iter()
                .filter_map(|k| opts.get(*k).map(|v| (k.to_string(), stringify(v))))
                .collect();
            spec.insert("loss".into(), Value::Object(loss));
        }
        Fault::CpuStress => {
            let workers = opts.get("workers").cloned().unwrap_or(json!(1));
            let load = opts.get("load").cloned().unwrap_or(json!(100));
            spec.insert(
                "stressors".into(),
                json!({ "cpu": { "workers": workers, "load": load } }),
            );
        }
        Fault::MemoryStress => {
            let workers = opts.get("workers").cloned().unwrap_or(json!(1));
            let mut memory = json!({ "workers": workers, "size": stringify(&opts["size"]) });
            if let Some(adj) = opts.get("oomScoreAdj") {
                memory["oomScoreAdj"] = adj.clone();
            }
            spec.insert("stressors".into(), json!({ "memory": memory }));
        }
        _ => {}
    }
    for key in [
        "gracePeriod",
        "containerNames",
        "direction",
        "target",
        "externalTargets",
        "device",
    ] {
        if let Some(v) = opts.get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    let namespace = match opts.get("namespace") {
        Some(Value::String(ns)) => ns.clone(),
        Some(_) => return Err(bad("namespace", "expected a string")),
        None => selector_namespaces(&spec)
            .first()
            .cloned()
            .unwrap_or_else(|| cx.default_namespace.clone()),
    };
    let name = match opts.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err(bad("name", "expected a string")),
        None => cx.default_name.clone(),
    };
    let unbounded = flag(opts, "unbounded")?;
    match opts.get("duration") {
        Some(Value::String(d)) => {
            let parsed = crate::duration::parse(d).map_err(|e| bad("duration", e))?;
            spec.insert("duration".into(), crate::duration::format(parsed).into());
        }
        Some(_) => {
            return Err(bad(
                "duration",
                "expected a string such as \"30s\" or \"2m\"",
            ));
        }
        None if unbounded => {}
        None => {
            spec.insert("duration".into(), cx.default_duration.clone().into());
        }
    }
    let object = json!({
        "apiVersion": API_VERSION,
        "kind": fault.kind(),
        "metadata": { "name": name, "namespace": namespace },
        "spec": Value::Object(spec),
    });
    finish(
        object,
        cx,
        flag(opts, "allow_protected_namespaces")?,
        flag(opts, "allow_large_blast_radius")?,
    )
}

/// Takes any Chaos Mesh manifest (`chaos::apply`): checks it the same way and labels it. A
/// manifest without `duration` is refused unless `unbounded` is true.
pub fn from_manifest(
    manifest: &Value,
    cx: &Context<'_>,
    unbounded: bool,
) -> Result<Built, OptionError> {
    from_manifest_allowing(manifest, cx, unbounded, false, false)
}

/// [`from_manifest`] with the safety opt-ins `chaos::apply`'s options may give.
pub fn from_manifest_allowing(
    manifest: &Value,
    cx: &Context<'_>,
    unbounded: bool,
    allow_protected: bool,
    allow_wide: bool,
) -> Result<Built, OptionError> {
    let mut object = manifest.clone();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    if api_version != API_VERSION {
        return Err(bad(
            "apiVersion",
            format!("expected {API_VERSION}, got {:?}", object["apiVersion"]),
        ));
    }
    if object.pointer("/metadata/name").is_none() {
        object["metadata"]["name"] = cx.default_name.clone().into();
    }
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    if crd_schema(&kind).is_none() {
        return Err(bad(
            "kind",
            format!(
                "{kind:?}: playbook has no Chaos Mesh v2.8.1 CRD for it (the kinds it can check and bound: {})",
                chaos_kinds().join(", ")
            ),
        ));
    }
    // Where the pod selector and the bound are: a Schedule's fault template, or the spec.
    let inner = match kind.as_str() {
        "Schedule" => schedule_template(&object).map(|t| format!("/spec/{t}")),
        _ => Some("/spec".to_string()),
    };
    if object.pointer("/metadata/namespace").is_none() {
        let ns = inner
            .as_deref()
            .and_then(|p| object.pointer(p))
            .and_then(Value::as_object)
            .map(selector_namespaces)
            .unwrap_or_default()
            .first()
            .cloned()
            .unwrap_or_else(|| cx.default_namespace.clone());
        object["metadata"]["namespace"] = ns.into();
    }
    if let Some(Value::String(d)) = object.pointer("/spec/duration") {
        crate::duration::parse(d).map_err(|e| bad("spec.duration", e))?;
    }
    if !unbounded {
        bound(&mut object, &kind, inner.as_deref(), cx);
    }
    finish(object, cx, allow_protected, allow_wide)
}

/// The Chaos Mesh kinds whose CRDs are embedded (in `crds/chaos-mesh/`).
pub fn chaos_kinds() -> Vec<String> {
    crds::EMBEDDED
        .iter()
        .filter(|(path, _)| path.starts_with("chaos-mesh/"))
        .filter_map(|(_, text)| {
            crds::scan(text).ok()?.names["kind"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// The field of a Schedule's fault template: `type: PodChaos` -> `podChaos`
/// (api/v1alpha1/schedule_types.go: `ScheduleItem` embeds `EmbedChaos`).
fn schedule_template(object: &Value) -> Option<String> {
    let t = object.pointer("/spec/type")?.as_str()?;
    let mut chars = t.chars();
    let first = chars.next()?.to_ascii_lowercase();
    Some(format!("{first}{}", chars.as_str()))
}

/// Gives a manifest a bound it does not have, so nothing it starts runs on if `playbook` dies:
/// a fault's `duration`; a Schedule's fault template's `duration` (each fault it creates
/// expires; the Schedule itself has no deadline field and is removed at the playbook's end);
/// every Workflow template's `deadline` (api/v1alpha1/workflow_types.go: `Template.Deadline`;
/// the Workflow is removed at the playbook's end too). A StatusCheck injects nothing and
/// keeps its own `duration` when it has one.
fn bound(object: &mut Value, kind: &str, inner: Option<&str>, cx: &Context<'_>) {
    let duration: Value = cx.default_duration.clone().into();
    match kind {
        "Workflow" => {
            if let Some(Value::Array(templates)) = object.pointer_mut("/spec/templates") {
                for t in templates.iter_mut().filter_map(Value::as_object_mut) {
                    t.entry("deadline").or_insert_with(|| duration.clone());
                }
            }
        }
        "StatusCheck" => {}
        _ => {
            if let Some(Value::Object(spec)) = inner.and_then(|p| object.pointer_mut(p)) {
                spec.entry("duration").or_insert(duration);
            }
        }
    }
}

/// How a created object is bounded, for the line that says it was created.
pub fn bound_text(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or_default();
    let own = object.pointer("/spec/duration").and_then(Value::as_str);
    match (kind, own) {
        ("Schedule", _) => {
            let each = schedule_template(object)
                .and_then(|t| object.pointer(&format!("/spec/{t}/duration")).cloned())
                .and_then(|d| d.as_str().map(str::to_string));
            match each {
                Some(d) => {
                    format!("each fault it creates lasts {d}; removed at the playbook's end")
                }
                None => "its faults are unbounded; removed at the playbook's end".into(),
            }
        }
        ("Workflow", _) => "every template has a deadline; removed at the playbook's end".into(),
        (_, Some(d)) => format!("duration {d}"),
        (_, None) => "unbounded".into(),
    }
}

/// Labels the object, validates it against its CRD, and reads what the safety checks need.
fn finish(
    mut object: Value,
    cx: &Context<'_>,
    allow_protected: bool,
    allow_wide: bool,
) -> Result<Built, OptionError> {
    let labels = object["metadata"]
        .as_object_mut()
        .map(|m| m.entry("labels").or_insert_with(|| json!({})));
    if let Some(Value::Object(labels)) = labels {
        labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
        labels.insert(RUN_ID_LABEL.into(), cx.run_id.into());
    }
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let schema = crd_schema(&kind).ok_or_else(|| bad("kind", format!("{kind:?} is not a Chaos Mesh kind playbook knows (PodChaos, NetworkChaos, StressChaos, ...)")))?;
    schema::prune_and_default(&schema, &mut object);
    if let Some(v) = schema::validate(&schema, &object).into_iter().next() {
        return Err(bad(&v.path, v.message));
    }
    // Every pod selection the object makes: its own spec's, or those of the fault templates it
    // carries (a Schedule's, each template of a Workflow). The safety rules read them all.
    let spec = object["spec"].as_object().cloned().unwrap_or_default();
    let mut selections = Vec::new();
    selecting_maps(&spec, &mut selections);
    if selections.is_empty() && kind != "StatusCheck" {
        // The cloud kinds and the like: what they reach is not a pod selector the safety rules
        // can read, so they are not created.
        return Err(bad(
            "spec.selector",
            format!(
                "{kind} has no pod selector: playbook cannot check what it reaches, so it does not create it"
            ),
        ));
    }
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut reach = Vec::new();
    for sel in &selections {
        check_mode(sel, "")?;
        reach.push(reach_of("selector", sel, &namespace));
        if let Some(Value::Object(target)) = sel.get("target") {
            check_mode(target, "target.")?;
            reach.push(reach_of("target", target, &namespace));
        }
    }
    let mut target_namespaces: Vec<String> = Vec::new();
    for ns in reach
        .iter()
        .flat_map(|r| r.namespaces.iter())
        .chain([&namespace])
    {
        if !target_namespaces.contains(ns) {
            target_namespaces.push(ns.clone());
        }
    }
    Ok(Built {
        reach,
        kind,
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        mode: match selections.first() {
            Some(sel) => mode_of(sel, "")?,
            None => Mode::One,
        },
        namespace,
        target_namespaces,
        allow_protected_namespaces: allow_protected,
        allow_large_blast_radius: allow_wide,
        object,
    })
}

/// The maps of `spec` that select pods (a `selector` object beside `mode`/`value`): the spec
/// itself for the fault kinds, the fault templates inside a Schedule or a Workflow.
fn selecting_maps(spec: &Map<String, Value>, out: &mut Vec<Map<String, Value>>) {
    if spec.get("selector").is_some_and(Value::is_object) {
        out.push(spec.clone());
        return;
    }
    for (key, v) in spec {
        match v {
            Value::Object(m) if key != "target" => selecting_maps(m, out),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(m) = item {
                        selecting_maps(m, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The rules Chaos Mesh's webhook adds to the schema: modes that need a `value`, and its range.
fn check_mode(spec: &Map<String, Value>, prefix: &str) -> Result<(), OptionError> {
    let mode = mode_of(spec, prefix)?;
    let value = spec.get("value").and_then(Value::as_str);
    let field = format!("{prefix}value");
    let name = mode_name(&mode);
    match (&mode, value) {
        (Mode::Fixed | Mode::FixedPercent | Mode::RandomMaxPercent, None) => Err(bad(
            &field,
            format!(
                "mode \"{name}\" needs a value (a number{})",
                if matches!(mode, Mode::Fixed) {
                    " of pods"
                } else {
                    " of percent, 0-100"
                }
            ),
        )),
        (Mode::Fixed, Some(v)) => match v.parse::<u64>() {
            Ok(n) if n > 0 => Ok(()),
            _ => Err(bad(
                &field,
                format!("mode \"fixed\" needs a whole number of pods above 0, not {v:?}"),
            )),
        },
        (Mode::FixedPercent | Mode::RandomMaxPercent, Some(v)) => match v.parse::<u64>() {
            Ok(n) if (1..=100).contains(&n) => Ok(()),
            _ => Err(bad(
                &field,
                format!("mode \"{name}\" needs a percentage from 1 to 100, not {v:?}"),
            )),
        },
        _ => Ok(()),
    }
}

/// The selection `spec` (or `spec.target`) makes; a selector naming no namespace selects in
/// the object's own (Chaos Mesh's webhook, `PodSelectorSpec.DefaultNamespace`).
fn reach_of(what: &'static str, spec: &Map<String, Value>, own: &str) -> Reach {
    let mut namespaces = selector_namespaces(spec);
    if namespaces.is_empty() {
        namespaces.push(own.to_string());
    }
    Reach {
        what,
        selector: spec.get("selector").cloned().unwrap_or_default(),
        namespaces,
        mode: mode_of(spec, "").unwrap_or(Mode::One),
        value: spec.get("value").map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
    }
}

/// `selector.namespaces`, or the namespaces of `selector.pods`.
fn selector_namespaces(spec: &Map<String, Value>) -> Vec<String> {
    let sel = spec.get("selector");
    let mut out: Vec<String> = sel
        .and_then(|s| s.get("namespaces"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(pods) = sel.and_then(|s| s.get("pods")).and_then(Value::as_object) {
        out.extend(pods.keys().cloned());
    }
    out.sort();
    out.dedup();
    out
}

fn flag(opts: &Map<String, Value>, key: &str) -> Result<bool, OptionError> {
    match opts.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(key, "expected true or false")),
    }
}

/// Numbers written where Chaos Mesh wants strings ("latency", "loss", "size", "value") are accepted.
fn stringify(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.to_string().into(),
        other => other.clone(),
    }
}

/// The `openAPIV3Schema` of a Chaos Mesh kind, from the embedded CRDs (parsed once).
pub fn crd_schema(kind: &str) -> Option<Value> {
    static CRDS: OnceLock<Vec<(String, CrdHandle)>> = OnceLock::new();
    let crds = CRDS.get_or_init(|| {
        crds::EMBEDDED
            .iter()
            .filter(|(path, _)| path.starts_with("chaos-mesh/"))
            .filter_map(|(_, text)| {
                let summary = crds::scan(text).ok()?;
                let kind = summary.names["kind"].as_str()?.to_string();
                Some((kind, CrdHandle::embedded(text)))
            })
            .collect()
    });
    crds.iter().find(|(k, _)| k == kind)?.1.schema("v1alpha1")
}

/// The known name nearest to `key`, if it is close (a likely typo).
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| {
            (
                crate::suggest::edit_distance(&key, &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            run_id: "pb-test",
            default_name: "pb-fault-1".into(),
            default_duration: "10m".into(),
            default_namespace: "default".into(),
        }
    }

    fn opts(v: Value) -> Value {
        v
    }

    #[test]
    fn builds_a_labelled_bounded_pod_kill_with_the_smallest_blast_radius() {
        let b = build(
            Fault::PodKill,
            &opts(json!({ "selector": { "namespaces": ["kserve-inference"], "labelSelectors": { "app": "x" } } })),
            &cx(),
        )
        .unwrap();
        assert_eq!(b.object["kind"], "PodChaos");
        assert_eq!(b.object["spec"]["action"], "pod-kill");
        assert_eq!(b.object["spec"]["mode"], "one");
        assert_eq!(b.object["spec"]["duration"], "10m");
        assert_eq!(b.object["metadata"]["namespace"], "kserve-inference");
        assert_eq!(b.object["metadata"]["labels"][RUN_ID_LABEL], "pb-test");
        assert_eq!(
            b.object["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "playbook"
        );
        let typed: playbook_model::chaosmesh::PodChaos =
            serde_json::from_value(b.object.clone()).unwrap();
        assert_eq!(typed.spec.duration.as_deref(), Some("10m"));
    }

    #[test]
    fn network_delay_and_stress_take_chaos_mesh_fields() {
        let b = build(
            Fault::NetworkDelay,
            &json!({ "selector": { "namespaces": ["mlflow"] }, "latency": "100ms", "jitter": "10ms", "direction": "to",
                     "target": { "mode": "all", "selector": { "namespaces": ["mlflow"], "labelSelectors": { "app": "postgresql" } } },
                     "duration": "1m30s" }),
            &cx(),
        )
        .unwrap();
        assert_eq!(b.object["spec"]["delay"]["latency"], "100ms");
        assert_eq!(b.object["spec"]["duration"], "1m30s");
        let _: playbook_model::chaosmesh::NetworkChaos = serde_json::from_value(b.object).unwrap();
        let b = build(
            Fault::MemoryStress,
            &json!({ "selector": { "namespaces": ["a"] }, "size": "512MB", "workers": 2 }),
            &cx(),
        )
        .unwrap();
        assert_eq!(b.object["spec"]["stressors"]["memory"]["size"], "512MB");
        let _: playbook_model::chaosmesh::StressChaos = serde_json::from_value(b.object).unwrap();
    }

    #[test]
    fn bad_options_name_the_field() {
        let sel = json!({ "namespaces": ["a"] });
        let err = |fault, v: Value| build(fault, &v, &cx()).unwrap_err();
        let e = err(
            Fault::NetworkDelay,
            json!({ "selector": sel, "laency": "100ms" }),
        );
        assert_eq!(e.field, "laency");
        assert!(e.message.contains("did you mean `latency`?"), "{e}");
        let e = err(
            Fault::PodKill,
            json!({ "selector": sel, "duration": "30x" }),
        );
        assert_eq!(e.field, "duration");
        assert!(e.message.contains("unknown unit"), "{e}");
        let e = err(
            Fault::PodKill,
            json!({ "selector": sel, "mode": "fixed-percent" }),
        );
        assert_eq!(e.field, "value");
        assert!(e.message.contains("needs a value"), "{e}");
        let e = err(
            Fault::PodKill,
            json!({ "selector": sel, "mode": "fixed", "value": "two" }),
        );
        assert!(e.message.contains("whole number"), "{e}");
        let e = err(
            Fault::PodKill,
            json!({ "selector": sel, "mode": "everything" }),
        );
        assert_eq!(e.field, "spec.mode");
        assert!(
            e.message.contains("Unsupported value: \"everything\""),
            "{e}"
        );
        let e = err(
            Fault::NetworkDelay,
            json!({ "selector": sel, "latency": "1m30s" }),
        );
        assert_eq!(e.field, "spec.delay.latency");
        let e = err(Fault::ContainerKill, json!({ "selector": sel }));
        assert_eq!(e.field, "containerNames");
        let e = err(Fault::PodKill, json!({ "mode": "one" }));
        assert_eq!(e.field, "selector");
        let e = err(
            Fault::CpuStress,
            json!({ "selector": sel, "workers": "two" }),
        );
        assert!(e.field.contains("workers"), "{e}");
    }

    #[test]
    fn manifests_are_checked_and_bounded_too() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/crds/chaos-mesh/examples/pod-kill-example.yaml"
        ))
        .unwrap();
        let manifest: Value = serde_saphyr::from_str(&text).unwrap();
        let b = from_manifest(&manifest, &cx(), false).unwrap();
        assert_eq!(b.object["metadata"]["labels"][RUN_ID_LABEL], "pb-test");
        assert!(b.object["spec"]["duration"].is_string());
        let unbounded = from_manifest(&manifest, &cx(), true).unwrap();
        assert_eq!(
            unbounded.object["spec"].get("duration").is_some(),
            manifest["spec"].get("duration").is_some()
        );
        let mut broken = manifest.clone();
        broken["spec"]["mode"] = "bogus".into();
        assert_eq!(
            from_manifest(&broken, &cx(), false).unwrap_err().field,
            "spec.mode"
        );
    }

    #[test]
    fn the_reach_counts_every_mode_and_the_target_and_the_own_namespace() {
        let b = build(
            Fault::NetworkDelay,
            &json!({ "namespace": "kube-system", "selector": { "namespaces": ["a"] }, "latency": "1ms",
                     "mode": "fixed", "value": "8", "target": { "mode": "all", "selector": { "labelSelectors": { "x": "y" } } } }),
            &cx(),
        )
        .unwrap();
        assert_eq!(b.target_namespaces, ["a", "kube-system"]);
        assert_eq!(
            b.reach[1].namespaces,
            ["kube-system"],
            "a target naming none"
        );
        assert_eq!(b.reach[0].most(20), 8);
        assert_eq!(b.reach[1].most(20), 20);
        let r = |mode: &str, value: &str| Reach {
            what: "selector",
            selector: json!({}),
            namespaces: vec![],
            mode: serde_json::from_value(json!(mode)).unwrap(),
            value: Some(value.into()),
        };
        assert_eq!(r("one", "").most(9), 1);
        assert_eq!(r("fixed-percent", "100").most(9), 9);
        assert_eq!(r("random-max-percent", "50").most(9), 4);
        assert_eq!(r("fixed", "8").most(3), 3);
        let schedule = json!({ "apiVersion": API_VERSION, "kind": "Schedule",
            "metadata": { "name": "s", "namespace": "a" },
            "spec": { "schedule": "@every 1m", "type": "PodChaos", "historyLimit": 1, "concurrencyPolicy": "Forbid",
                      "podChaos": { "action": "pod-kill", "mode": "all", "selector": { "namespaces": ["kube-system"] } } } });
        // A Schedule's fault template is read like a fault: the safety rules see kube-system.
        let b = from_manifest(&schedule, &cx(), false).expect("a bounded Schedule");
        assert!(
            b.target_namespaces.iter().any(|n| n == "kube-system"),
            "{:?}",
            b.target_namespaces
        );
    }
}
