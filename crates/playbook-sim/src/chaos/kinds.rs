//! The three kinds the controller serves, read through their typed (kopium) specs: what each selects, whether it is one-shot, and how a record is applied and recovered.

use std::time::Duration;

use serde_json::Value;

use super::record::{INJECTED, NOT_INJECTED, Record};
use super::{pod, stress};
use crate::world::Ctx;
use playbook_model::chaosmesh::{NetworkChaosSpec, PodChaosAction, PodChaosSpec, StressChaosSpec};
use playbook_model::units;

/// A Chaos Mesh kind served by the simulated controller-manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `PodChaos` (pod-kill, pod-failure, container-kill).
    Pod,
    /// `NetworkChaos` (delay, loss, partition, ...).
    Network,
    /// `StressChaos` (cpu, memory).
    Stress,
}

impl Kind {
    /// Every kind, in the order the controller visits them.
    pub const ALL: [Kind; 3] = [Kind::Pod, Kind::Network, Kind::Stress];

    /// The resource key in the registry.
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "podchaos.chaos-mesh.org",
            Kind::Network => "networkchaos.chaos-mesh.org",
            Kind::Stress => "stresschaos.chaos-mesh.org",
        }
    }
}

/// One selector of an experiment: key (`.` or `.Target`), `PodSelectorSpec`, mode, value.
#[derive(Debug, Clone)]
pub struct SelectorSpec {
    /// `.` or `.Target`.
    pub key: &'static str,
    /// The selector JSON.
    pub selector: Value,
    /// `one`, `all`, `fixed`, `fixed-percent`, `random-max-percent`.
    pub mode: String,
    /// The mode's value ("" when absent).
    pub value: String,
}

/// What the common pipeline needs from a spec.
#[derive(Debug, Clone)]
pub struct Common {
    /// The kind.
    pub kind: Kind,
    /// `spec.duration`, parsed (`Err` keeps the text for the log; treated as no duration).
    pub duration: Option<Result<Duration, String>>,
    /// pod-kill and container-kill act once and stay `Run`.
    pub one_shot: bool,
    /// Records are per container (`ns/pod/container`) rather than per pod.
    pub container_level: bool,
    /// `spec.containerNames`.
    pub container_names: Vec<String>,
    /// The selectors, `.` first.
    pub selectors: Vec<SelectorSpec>,
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn spec_of<T: serde::de::DeserializeOwned>(obj: &Value) -> Result<T, String> {
    serde_json::from_value(obj.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("invalid spec: {e}"))
}

/// Reads the common part of an experiment's spec.
pub fn common(kind: Kind, obj: &Value) -> Result<Common, String> {
    let dur = |d: &Option<String>| d.as_deref().map(units::go_duration);
    match kind {
        Kind::Pod => {
            let s: PodChaosSpec = spec_of(obj)?;
            let one_shot = matches!(
                s.action,
                PodChaosAction::PodKill | PodChaosAction::ContainerKill
            );
            Ok(Common {
                kind,
                duration: dur(&s.duration),
                one_shot,
                container_level: s.action == PodChaosAction::ContainerKill,
                container_names: s.container_names.clone().unwrap_or_default(),
                selectors: vec![SelectorSpec {
                    key: ".",
                    selector: to_json(&s.selector),
                    mode: enum_str(&s.mode),
                    value: s.value.clone().unwrap_or_default(),
                }],
            })
        }
        Kind::Network => {
            let s: NetworkChaosSpec = spec_of(obj)?;
            let mut selectors = vec![SelectorSpec {
                key: ".",
                selector: to_json(&s.selector),
                mode: enum_str(&s.mode),
                value: s.value.clone().unwrap_or_default(),
            }];
            if let Some(t) = &s.target {
                selectors.push(SelectorSpec {
                    key: ".Target",
                    selector: to_json(&t.selector),
                    mode: enum_str(&t.mode),
                    value: t.value.clone().unwrap_or_default(),
                });
            }
            Ok(Common {
                kind,
                duration: dur(&s.duration),
                one_shot: false,
                container_level: false,
                container_names: Vec::new(),
                selectors,
            })
        }
        Kind::Stress => {
            let s: StressChaosSpec = spec_of(obj)?;
            Ok(Common {
                kind,
                duration: dur(&s.duration),
                one_shot: false,
                container_level: true,
                container_names: s.container_names.clone().unwrap_or_default(),
                selectors: vec![SelectorSpec {
                    key: ".",
                    selector: to_json(&s.selector),
                    mode: enum_str(&s.mode),
                    value: s.value.clone().unwrap_or_default(),
                }],
            })
        }
    }
}

/// Injects one record's fault; returns the record's new phase.
pub fn apply(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    chaos: &mut Value,
    rec: &Record,
    starts: &mut stress::Starts,
) -> Result<&'static str, String> {
    match kind {
        Kind::Pod => pod::apply(ctx, chaos, rec),
        Kind::Stress => stress::apply(ctx, chaos, rec, starts),
        Kind::Network => {
            // The daemon of the pod's node installs the rules (PodNetworkChaos' FailedMessage
            // when it cannot be reached).
            // Only records whose pod gets rules (trafficcontrol/impl.go, partition/impl.go).
            let spec = chaos.get("spec");
            let text = |k: &str| spec.and_then(|s| s.get(k)).and_then(Value::as_str);
            let dir = text("direction").unwrap_or("to");
            let rules = text("action") == Some("partition")
                || match rec.selector_key.as_str() {
                    "." => dir != "from",
                    _ => dir != "to",
                };
            let (ns, name, _) = split_id(&rec.id);
            if rules {
                super::daemon::reach(ctx, ns, name)?;
            }
            // The traffic model reads injected records (network.rs); count the instance as the
            // real controller counts its PodNetworkChaos generations.
            if rec.selector_key == "." {
                let instances = object_at(chaos, &["status", "instances"]);
                let n = instances.get(&rec.id).and_then(Value::as_i64).unwrap_or(0);
                instances.insert(rec.id.clone(), Value::from(n + 1));
            }
            Ok(INJECTED)
        }
    }
}

/// Removes one record's fault; returns the record's new phase.
pub fn recover(
    ctx: &mut Ctx<'_>,
    kind: Kind,
    chaos: &mut Value,
    rec: &Record,
    starts: &mut stress::Starts,
) -> Result<&'static str, String> {
    match kind {
        Kind::Pod => pod::recover(ctx, chaos, rec),
        Kind::Stress => stress::recover(ctx, chaos, rec, starts),
        Kind::Network => Ok(NOT_INJECTED),
    }
}

/// Splits a record id into (namespace, pod, container).
pub fn split_id(id: &str) -> (&str, &str, Option<&str>) {
    let mut it = id.splitn(3, '/');
    let ns = it.next().unwrap_or_default();
    let pod = it.next().unwrap_or_default();
    (ns, pod, it.next())
}

/// The object at `path` inside `v`, created (replacing whatever else is there) if needed.
pub fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> &'a mut serde_json::Map<String, Value> {
    let mut cur = v;
    for key in path {
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let Value::Object(m) = cur else {
            unreachable!()
        };
        cur = m.entry(key.to_string()).or_insert(Value::Null);
    }
    if !cur.is_object() {
        *cur = Value::Object(serde_json::Map::new());
    }
    match cur {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}
