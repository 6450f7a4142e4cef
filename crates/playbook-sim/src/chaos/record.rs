//! The status Chaos Mesh keeps on every experiment: records (one per selected pod or container), their events, the conditions, and the Kubernetes Events its reconcilers emit.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `phase` of a record once the fault is in place.
pub const INJECTED: &str = "Injected";
/// `phase` of a record before injection and after recovery.
pub const NOT_INJECTED: &str = "Not Injected";
/// How many events a record keeps (Chaos Mesh's default `MaxEvents`).
pub const MAX_RECORD_EVENTS: usize = 10;

/// One entry of `status.experiment.containerRecords`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// `namespace/pod`, or `namespace/pod/container` for container-level experiments.
    pub id: String,
    /// `.` for `spec.selector`, `.Target` for a NetworkChaos `spec.target`.
    pub selector_key: String,
    /// [`INJECTED`] or [`NOT_INJECTED`].
    pub phase: String,
    /// Successful injections.
    #[serde(default)]
    pub injected_count: i64,
    /// Successful recoveries.
    #[serde(default)]
    pub recovered_count: i64,
    /// The last injections and recoveries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<RecordEvent>,
}

/// One event of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEvent {
    /// `Succeeded` or `Failed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `Apply` or `Recover`.
    pub operation: String,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When (RFC 3339, seconds).
    pub timestamp: String,
}

impl Record {
    /// A record not yet injected.
    pub fn new(id: String, selector_key: &str) -> Self {
        Record {
            id,
            selector_key: selector_key.to_string(),
            phase: NOT_INJECTED.into(),
            injected_count: 0,
            recovered_count: 0,
            events: Vec::new(),
        }
    }

    /// Appends an event, keeping the last [`MAX_RECORD_EVENTS`].
    pub fn push_event(&mut self, ok: bool, apply: bool, message: Option<String>, now: Timestamp) {
        if self.events.len() >= MAX_RECORD_EVENTS {
            self.events.remove(0);
        }
        self.events.push(RecordEvent {
            type_: if ok { "Succeeded" } else { "Failed" }.into(),
            operation: if apply { "Apply" } else { "Recover" }.into(),
            message,
            timestamp: seconds(now),
        });
    }
}

/// `status.experiment.containerRecords`, or `None` when never selected (absent or null).
pub fn records_of(obj: &Value) -> Option<Vec<Record>> {
    obj.pointer("/status/experiment/containerRecords")
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value(v.clone()).unwrap_or_default())
}

/// A time as Kubernetes serializes `metav1.Time` (whole seconds, UTC).
pub fn seconds(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second())
        .unwrap_or(t)
        .to_string()
}

/// The conditions Chaos Mesh's condition reconciler computes, in a fixed order.
pub fn conditions(records: Option<&[Record]>, paused: bool) -> Value {
    let tf = |b: bool| if b { "True" } else { "False" };
    let all = |phase: &str| records.is_some_and(|r| r.iter().all(|x| x.phase == phase));
    json!([
        {"type": "Selected", "status": tf(records.is_some()), "reason": ""},
        {"type": "AllInjected", "status": tf(all(INJECTED)), "reason": ""},
        {"type": "AllRecovered", "status": tf(all(NOT_INJECTED)), "reason": ""},
        {"type": "Paused", "status": tf(paused), "reason": ""},
    ])
}

/// A Kubernetes Event to emit about the experiment: (type, reason, message, component).
#[derive(Debug, Clone, PartialEq)]
pub struct KubeEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// The reason, as Chaos Mesh's recorder names it.
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// The reconciler that emits it (`source.component`).
    pub component: &'static str,
}

impl KubeEvent {
    fn normal(reason: &'static str, message: impl Into<String>, component: &'static str) -> Self {
        KubeEvent {
            type_: "Normal",
            reason,
            message: message.into(),
            component,
        }
    }

    /// `FinalizerInited`.
    pub fn finalizer_inited() -> Self {
        Self::normal(
            "FinalizerInited",
            "Finalizer has been inited",
            "initFinalizers",
        )
    }
    /// Finalizer removal (Chaos Mesh v2.8.1 emits it with reason `FinalizerInited`, sic).
    pub fn finalizer_removed() -> Self {
        Self::normal(
            "FinalizerInited",
            "Finalizer has been removed",
            "finalizers",
        )
    }
    /// `Updated`: "Successfully update <field> of resource".
    pub fn updated(field: &str, component: &'static str) -> Self {
        Self::normal(
            "Updated",
            format!("Successfully update {field} of resource"),
            component,
        )
    }
    /// `Started`, `Paused`, `TimeUp`, `Deleted` (the desired-phase reconciler).
    pub fn phase(reason: &'static str) -> Self {
        let message = match reason {
            "Started" => "Experiment has started",
            "Paused" => "Experiment has been paused",
            "TimeUp" => "Time up according to the duration",
            _ => "Experiment has been deleted",
        };
        Self::normal(reason, message, "desiredphase")
    }
    /// `Applied`: "Successfully apply chaos for <id>".
    pub fn applied(id: &str) -> Self {
        Self::normal(
            "Applied",
            format!("Successfully apply chaos for {id}"),
            "records",
        )
    }
    /// `Recovered`: "Successfully recover chaos for <id>".
    pub fn recovered(id: &str) -> Self {
        Self::normal(
            "Recovered",
            format!("Successfully recover chaos for {id}"),
            "records",
        )
    }
    /// `Failed` (Warning): "Failed to <activity>: <err>".
    pub fn failed(activity: &str, err: &str, component: &'static str) -> Self {
        KubeEvent {
            type_: "Warning",
            reason: "Failed",
            message: format!("Failed to {activity}: {err}"),
            component,
        }
    }
}
