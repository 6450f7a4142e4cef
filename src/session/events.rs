//! Kubernetes Events (`events.k8s.io/v1`) for what a run does, so `kubectl get events` and
//! Grafana's annotations show the experiment: a fault injected, recovered, removed; an
//! expectation passed or failed with its figure; the verdict. Each Event is `regarding` the
//! chaos object and `related` to the workload its selection reached (the pod's controller,
//! followed to a Deployment), posted as client-go's `tools/events` recorder does
//! (staging/src/k8s.io/client-go/tools/events/event_recorder.go: name `REGARDING.<nanos hex>`,
//! `eventTime` in microseconds, `reportingController`/`reportingInstance`; an isomorphic event
//! within 6 minutes becomes a `series` on the first one, event_broadcaster.go).
//!
//! Posting never changes a verdict and never holds the run up: events go to one task per
//! session through a channel, each request within [`EVENT_WINDOW`]; the first refusal or
//! error is said once on standard error, and a 403 stops further posts (the run lacks the
//! permission, `playbook rbac` grants it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::Value;
use tokio::sync::mpsc;

use super::ObjectRef;
use crate::connection::request::{Budget, scoped};

/// The `reportingController` of every Event the run posts.
pub const CONTROLLER: &str = "playbook";

/// How long one post (retries included) may take.
pub const EVENT_WINDOW: Duration = Duration::from_secs(5);

/// How long the end of a run waits for Events still queued.
pub const FLUSH_WINDOW: Duration = Duration::from_secs(10);

/// `staging/src/k8s.io/api/events/v1`: at most 1 kB of note, 128 characters of reason, action
/// and reporting instance (pkg/apis/core/validation/events.go).
const NOTE_LIMIT: usize = 1024;
const SHORT_LIMIT: usize = 128;

/// Within this window an isomorphic event adds to the first one's series
/// (tools/events/event_broadcaster.go: `finishTime = 6 * time.Minute`).
const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// What happened, said as one Event.
#[derive(Debug, Clone)]
pub struct Told {
    /// `Normal`, or `Warning` for what went wrong.
    pub warning: bool,
    /// What the run did: `Inject`, `Recover`, `Remove`, `Expect`, `Conclude`.
    pub action: String,
    /// Why, in UpperCamelCase: `FaultInjected`, `ExpectationFailed`, `Passed`...
    pub reason: String,
    /// The human-readable note (figures included).
    pub note: String,
}

/// A message to the posting task.
enum Message {
    /// A fault took this phase; its pods (`ns/name`), when known, give the related workload.
    /// (`told` absent: the fault was just created, and `owner` is the controller of a pod it
    /// may select, read while that pod exists — a pod-kill's victim is gone once injected.)
    Fault {
        object: ObjectRef,
        selected: Vec<String>,
        /// The controller of a pod it may select (or that pod), known when it was created.
        owner: Option<Box<ObjectRef>>,
        told: Option<Told>,
        at: Timestamp,
    },
    /// An expectation or the verdict: regarding the latest fault, once there is one.
    Run { told: Told, at: Timestamp },
}

/// One session's Event recorder: a channel to the task that posts.
pub struct Recorder {
    queue: Mutex<Option<mpsc::UnboundedSender<Message>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    rt: crate::connection::Rt,
}

impl Recorder {
    /// Starts the posting task for run `run_id` on `client`.
    pub fn start(client: kube::Client, rt: &crate::connection::Rt, run_id: &str) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        let poster = Poster {
            client,
            instance: instance(run_id),
            regarding: None,
            pending: Vec::new(),
            owners: HashMap::new(),
            related: HashMap::new(),
            seen: HashMap::new(),
            warned: false,
            forbidden: false,
        };
        let task = rt.spawn(poster.run(rx));
        Recorder {
            queue: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            rt: rt.clone(),
        }
    }

    fn send(&self, m: Message) {
        if let Some(q) = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = q.send(m);
        }
    }

    /// A fault (`object`) took a phase; `selected`: the pods it reached, when known.
    pub fn fault(&self, object: &ObjectRef, selected: Vec<String>, told: Told) {
        self.send(Message::Fault {
            object: object.clone(),
            selected,
            owner: None,
            told: Some(told),
            at: Timestamp::now(),
        });
    }

    /// A fault was created; `owner` is the controller of a pod it may select (or the pod).
    /// Nothing is posted or looked up now.
    pub fn created(&self, object: &ObjectRef, owner: ObjectRef) {
        self.send(Message::Fault {
            object: object.clone(),
            selected: Vec::new(),
            owner: Some(Box::new(owner)),
            told: None,
            at: Timestamp::now(),
        });
    }

    /// An expectation ended, or the run concluded.
    pub fn run(&self, told: Told) {
        self.send(Message::Run {
            told,
            at: Timestamp::now(),
        });
    }

    /// Closes the queue and waits (at most [`FLUSH_WINDOW`]) for what is queued to be posted;
    /// what is left then is dropped. Called from the run's own thread, outside the runtime.
    pub fn flush(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let abort = task.abort_handle();
            let done = self
                .rt
                .block_on(async { tokio::time::timeout(FLUSH_WINDOW, task).await });
            if done.is_err() {
                abort.abort();
                eprintln!(
                    "warning: Kubernetes Events still queued after {}s were dropped",
                    FLUSH_WINDOW.as_secs()
                );
            }
        }
    }
}

/// `HOST/RUN_ID` (at most 128 characters): who reports, as `reportingInstance`.
fn instance(run_id: &str) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    clip(&format!("{host}/{run_id}"), SHORT_LIMIT)
}

/// `text` cut to at most `max` bytes on a character boundary (an ellipsis marks the cut).
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The posting task's state.
struct Poster {
    client: kube::Client,
    instance: String,
    /// The latest fault: what expectations and the verdict are regarding.
    regarding: Option<ObjectRef>,
    /// Expectations that ended before any fault (steady states): posted once one exists.
    pending: Vec<(Told, Timestamp)>,
    /// Each fault's selected pod's owner, from when it was created (by fault name).
    owners: HashMap<String, ObjectRef>,
    /// Each fault's related workload, found once (by fault name).
    related: HashMap<String, Option<ObjectReference>>,
    /// Events posted (isomorphism key -> name, namespace, count, first seen) for series.
    seen: HashMap<String, (String, String, i32, Timestamp)>,
    warned: bool,
    forbidden: bool,
}

fn reference(o: &ObjectRef) -> ObjectReference {
    ObjectReference {
        api_version: Some(o.api_version.clone()),
        kind: Some(o.kind.clone()),
        namespace: o.namespace.clone(),
        name: Some(o.name.clone()),
        uid: o.uid.clone(),
        ..Default::default()
    }
}

/// The controller among an object's owners.
pub fn controller_of(
    o: &kube::api::DynamicObject,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    o.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .cloned()
}

/// An owner reference in namespace `ns` as an object reference.
pub fn owned(
    ns: &str,
    o: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> ObjectRef {
    let mut r = ObjectRef::new(&o.api_version, &o.kind, Some(ns), &o.name);
    r.uid = Some(o.uid);
    r
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

impl Poster {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        while let Some(m) = rx.recv().await {
            if self.forbidden {
                continue;
            }
            match m {
                Message::Fault {
                    object,
                    selected,
                    owner,
                    told,
                    at,
                } => {
                    if let Some(owner) = owner {
                        self.owners.insert(object.name.clone(), *owner);
                    }
                    let Some(told) = told else { continue };
                    if self.related.get(&object.name).is_none_or(Option::is_none) {
                        let found = match self.owners.get(&object.name).cloned() {
                            Some(owner) => Some(self.workload(owner).await),
                            None => self.workload_of(&selected).await,
                        };
                        self.related.insert(object.name.clone(), found);
                    }
                    self.regarding = Some(object.clone());
                    for (told, at) in std::mem::take(&mut self.pending) {
                        self.post(&object, &told, at).await;
                    }
                    self.post(&object, &told, at).await;
                }
                Message::Run { told, at } => match self.regarding.clone() {
                    Some(object) => self.post(&object, &told, at).await,
                    None => self.pending.push((told, at)),
                },
            }
        }
    }

    /// The workload `owner` (a pod's controller) belongs to: a ReplicaSet's own controller
    /// (a Deployment) when it has one; else `owner` itself.
    async fn workload(&self, owner: ObjectRef) -> ObjectReference {
        if owner.kind == "ReplicaSet"
            && let Some(ns) = owner.namespace.as_deref()
            && let Some(rs) = self
                .get(ns, &owner.api_version, "ReplicaSet", &owner.name)
                .await
            && let Some(d) = controller_of(&rs).filter(|d| d.kind == "Deployment")
        {
            return reference(&owned(ns, d));
        }
        reference(&owner)
    }

    /// The workload the first selected pod (`ns/name`) belongs to, read now (the pod itself
    /// when it has no controller; none when it is gone).
    async fn workload_of(&self, selected: &[String]) -> Option<ObjectReference> {
        let (ns, pod) = selected.first()?.split_once('/')?;
        let p = self.get(ns, "v1", "Pod", pod).await?;
        let owner = match controller_of(&p) {
            Some(o) => owned(ns, o),
            None => {
                let mut me = ObjectRef::new("v1", "Pod", Some(ns), pod);
                me.uid = p.metadata.uid.clone();
                me
            }
        };
        Some(self.workload(owner).await)
    }

    /// One object (`None` if it cannot be read), within [`EVENT_WINDOW`].
    async fn get(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Option<kube::api::DynamicObject> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let plural = format!("{}s", kind.to_lowercase());
        let ar = kube::discovery::ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        scoped(Budget::window(EVENT_WINDOW), api.get_opt(name))
            .await
            .ok()
            .flatten()
    }

    /// Posts one Event regarding `object`, or adds to the series of an isomorphic one.
    async fn post(&mut self, object: &ObjectRef, told: &Told, at: Timestamp) {
        let ns = object.namespace.clone().unwrap_or_else(|| "default".into());
        let note = clip(&told.note, NOTE_LIMIT);
        let type_ = if told.warning { "Warning" } else { "Normal" };
        let key = format!(
            "{}/{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            ns, object.name, told.action, told.reason, type_, note
        );
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let budget = Budget::window(EVENT_WINDOW);
        let window = jiff::SignedDuration::try_from(SERIES_WINDOW).unwrap_or_default();
        if let Some((name, ens, count, first)) = self.seen.get(&key).cloned()
            && at.duration_since(first) < window
        {
            // tools/events/event_broadcaster.go: the isomorphic event's series is updated.
            let count = count + 1;
            let patch = serde_json::json!({
                "series": {"count": count, "lastObservedTime": micro(at)}
            });
            let api: Api<Event> = Api::namespaced(self.client.clone(), &ens);
            let sent = scoped(
                budget,
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await;
            match sent {
                Ok(_) => {
                    self.seen.insert(key, (name, ens, count, first));
                }
                Err(e) => self.failed(&e),
            }
            return;
        }
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    object.name,
                    at.as_nanosecond().max(0) as u128
                )),
                namespace: Some(ns.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        CONTROLLER.into(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            event_time: Some(micro(at)),
            type_: Some(type_.into()),
            action: Some(clip(&told.action, SHORT_LIMIT)),
            reason: Some(clip(&told.reason, SHORT_LIMIT)),
            note: Some(note),
            regarding: Some(reference(object)),
            related: self.related.get(&object.name).cloned().flatten(),
            reporting_controller: Some(CONTROLLER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        match scoped(budget, api.create(&PostParams::default(), &ev)).await {
            Ok(made) => {
                let name = made.metadata.name.unwrap_or_default();
                self.seen.insert(key, (name, ns, 1, at));
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Says the first failure once; a 403 stops the posts (every later one would fail too).
    fn failed(&mut self, e: &kube::Error) {
        let forbidden = matches!(e, kube::Error::Api(s) if s.code == 403);
        if !self.warned {
            self.warned = true;
            let then = if forbidden {
                "no more Events will be posted (grant `create` on events.events.k8s.io: `playbook rbac`)"
            } else {
                "later failures are not reported"
            };
            eprintln!(
                "warning: cannot post a Kubernetes Event: {}; the run goes on, {then}",
                super::describe(e)
            );
        }
        if forbidden {
            self.forbidden = true;
        }
    }
}

/// The pods a Chaos Mesh object recorded (`ns/name` from `status.experiment.containerRecords`).
pub fn selected_pods(obj: &Value) -> Vec<String> {
    obj.pointer("/status/experiment/containerRecords")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["id"].as_str())
                .filter_map(|id| {
                    let mut p = id.split('/');
                    Some(format!("{}/{}", p.next()?, p.next()?))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_clipped_on_a_character_boundary() {
        let s = "é".repeat(600);
        let c = clip(&s, NOTE_LIMIT);
        assert!(c.len() <= NOTE_LIMIT, "{}", c.len());
        assert!(c.ends_with('…'));
        assert_eq!(clip("short", 10), "short");
        assert!(instance("pb-1").ends_with("/pb-1"));
    }

    /// Against the in-process simulator (which validates Events as the API server does): a
    /// steady state before any fault waits for one; a repeat becomes a series; the verdict
    /// comes last; every Event is regarding the fault.
    #[test]
    fn events_are_posted_in_order_with_series_for_repeats() {
        let rt = crate::connection::Rt::new().unwrap();
        let target = {
            let _in = rt.enter();
            crate::connection::simulated(1, playbook_sim::platform::Scenario::Empty)
        };
        let recorder = Recorder::start(target.client.clone(), &rt, "pb-test");
        let told = |reason: &str, note: &str| Told {
            warning: false,
            action: "Expect".into(),
            reason: reason.into(),
            note: note.into(),
        };
        recorder.run(told("ExpectationPassed", "steady"));
        let mut fault = ObjectRef::new("chaos-mesh.org/v1alpha1", "PodChaos", Some("default"), "f");
        fault.uid = Some("u-1".into());
        recorder.fault(&fault, Vec::new(), told("FaultInjected", "in"));
        recorder.run(told("ExpectationPassed", "again"));
        recorder.run(told("ExpectationPassed", "again"));
        recorder.run(told("Passed", "verdict"));
        recorder.flush();
        let api: Api<Event> = Api::namespaced(target.client.clone(), "default");
        let list = rt
            .block_on(api.list(&Default::default()))
            .expect("events are listed");
        let mut items = list.items;
        items.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        let reasons: Vec<(&str, &str)> = items
            .iter()
            .map(|e| (e.reason.as_deref().unwrap(), e.note.as_deref().unwrap()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("ExpectationPassed", "steady"),
                ("FaultInjected", "in"),
                ("ExpectationPassed", "again"),
                ("Passed", "verdict"),
            ]
        );
        let again = &items[2];
        assert_eq!(again.series.as_ref().map(|s| s.count), Some(2));
        for e in &items {
            let r = e.regarding.as_ref().unwrap();
            assert_eq!(r.name.as_deref(), Some("f"));
            assert_eq!(r.uid.as_deref(), Some("u-1"));
            assert_eq!(e.reporting_controller.as_deref(), Some("playbook"));
            assert!(e.event_time.is_some());
        }
        // Nothing is posted after the flush.
        recorder.run(told("Passed", "late"));
    }

    #[test]
    fn container_records_give_pods() {
        let obj = serde_json::json!({"status": {"experiment": {"containerRecords": [
            {"id": "kserve/predictor-0/kserve-container"}, {"id": "ml/api-1"}
        ]}}});
        assert_eq!(selected_pods(&obj), vec!["kserve/predictor-0", "ml/api-1"]);
    }
}
