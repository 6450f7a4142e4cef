//! `chaos::` — inject faults through Chaos Mesh: one constructor per fault taking Chaos Mesh's
//! own field names, `chaos::apply` for any manifest, and the handle each returns (status,
//! selected pods, wait for injection or recovery, pause, resume, delete). Every object is
//! checked before it is created, journaled, labelled, bounded by a duration, and cleaned up.

use std::sync::atomic::{AtomicUsize, Ordering};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rhai::{Array, Dynamic, Map, NativeCallContext};
use serde_json::Value;

use crate::faults::{self, Built, Context, Fault};
use crate::host::cluster::{api_error, to_dynamic};
use crate::host::expect::{Observation, wait_for};
use crate::host::{RhaiResultOf, error, session};
use crate::session::{Line, ObjectRef, Session};

/// Namespaces no fault may reach and no playbook may change (the cluster's own, and Chaos
/// Mesh's) unless it says `allow_protected_namespaces: true`; `--var chaos_namespace=...`
/// adds another.
pub(crate) const PROTECTED: &[&str] = &[
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "chaos-testing",
    "chaos-mesh",
];
/// A fault that can hit more pods than this (in any mode, selector or target) needs
/// `allow_large_blast_radius: true`.
pub(crate) const WIDE: usize = 5;

/// The protected namespace among `namespaces`, if any.
pub(crate) fn protected<'a>(
    s: &Session,
    namespaces: impl IntoIterator<Item = &'a String>,
) -> Option<&'a String> {
    let chaos_ns = chaos_namespace(s);
    namespaces
        .into_iter()
        .find(|ns| PROTECTED.contains(&ns.as_str()) || **ns == chaos_ns)
}

/// A fault a playbook injected: what `chaos::pod_kill(...)` and friends return.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    pub object: ObjectRef,
    /// Created for real (false in a dry run).
    pub live: bool,
    /// The pods it would select when it was built (what `selected()` returns in a dry run).
    pub preview: Vec<String>,
}

/// The Chaos Mesh namespace (`--var chaos_namespace=...`, default `chaos-testing`), also protected.
fn chaos_namespace(s: &Session) -> String {
    s.vars
        .get("chaos_namespace")
        .cloned()
        .unwrap_or_else(|| "chaos-testing".into())
}

fn next_name(s: &Session, fault: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let tail: String = s
        .run_id
        .chars()
        .rev()
        .take(11)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let n = N.fetch_add(1, Ordering::Relaxed) + 1;
    format!("pb-{}-{tail}-{n}", fault.replace('_', "-"))
}

fn context(s: &Session, fault: &str) -> Context<'static> {
    let left = s.stop.timeout().as_secs_f64() - s.elapsed_s();
    let left = std::time::Duration::from_secs(left.max(1.0).ceil() as u64);
    Context {
        run_id: Box::leak(s.run_id.clone().into_boxed_str()),
        default_name: next_name(s, fault),
        default_duration: crate::duration::format(left),
        default_namespace: s.target.client.default_namespace().to_string(),
    }
}

/// The pods one selection of a fault reaches now (Running, matching namespaces, labels and
/// names), as `namespace/name`.
fn reachable(
    ctx: &NativeCallContext,
    s: &Session,
    reach: &faults::Reach,
) -> RhaiResultOf<Vec<String>> {
    let sel = &reach.selector;
    for unsupported in ["namespaceSelectors", "clusterScoped"] {
        if sel.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(error(
                ctx,
                format!(
                    "refusing {}.{unsupported}: playbook cannot tell which namespaces it reaches; list them in `namespaces`",
                    reach.what
                ),
            ));
        }
    }
    let labels: Vec<String> = sel
        .get("labelSelectors")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let named: Option<&serde_json::Map<String, Value>> = sel
        .get("pods")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty());
    let mut out = Vec::new();
    for ns in &reach.namespaces {
        let labels = if named.is_some() {
            String::new()
        } else {
            labels.join(",")
        };
        for p in crate::host::cluster::list_pods(ctx, s, ns, &labels)? {
            let name = p.metadata.name.clone().unwrap_or_default();
            let running = p.status.as_ref().and_then(|st| st.phase.as_deref()) == Some("Running")
                && p.metadata.deletion_timestamp.is_none();
            let listed = named.is_none_or(|m| {
                m.get(ns)
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|n| n.as_str() == Some(&name)))
            });
            if running && listed {
                out.push(format!("{ns}/{name}"));
            }
        }
    }
    Ok(out)
}

/// The pods a fault's selector reaches now, by Chaos Mesh's rules (`faults::selection`), as
/// `namespace/name`.
pub(crate) fn candidates(
    ctx: &NativeCallContext,
    s: &Session,
    built: &Built,
) -> RhaiResultOf<Vec<String>> {
    use crate::faults::selection;
    let sel = built
        .object
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_default();
    let as_json = |p: &k8s_openapi::api::core::v1::Pod| serde_json::to_value(p).unwrap_or_default();
    let mut pods = Vec::new();
    let named = selection::named_pods(&sel);
    if named.is_empty() {
        for ns in selection::namespaces(&sel, &built.namespace) {
            pods.extend(
                crate::host::cluster::list_pods(ctx, s, &ns, "")?
                    .iter()
                    .map(as_json),
            );
        }
    } else {
        let mut seen = std::collections::BTreeSet::new();
        for (ns, _) in &named {
            if seen.insert(ns.clone()) {
                pods.extend(
                    crate::host::cluster::list_pods(ctx, s, ns, "")?
                        .iter()
                        .map(as_json),
                );
            }
        }
    }
    let nodes: Vec<Value> = if selection::needs_nodes(&sel) {
        let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(s.target.client.clone());
        s.rt.block_on(api.list(&Default::default()))
            .map_err(|e| api_error(ctx, "listing nodes", e))?
            .items
            .iter()
            .map(|n| serde_json::to_value(n).unwrap_or_default())
            .collect()
    } else {
        Vec::new()
    };
    selection::candidates(&sel, &built.namespace, &pods, &nodes).map_err(|e| {
        error(
            ctx,
            format!("{} {}: the selector: {e}", built.kind, built.name),
        )
    })
}

/// The safety rules: no protected namespace among those the fault (selector, target, the
/// object itself) reaches, and no selection that can hit more than a few pods, in any mode.
fn check_safety(ctx: &NativeCallContext, s: &Session, built: &Built) -> RhaiResultOf<()> {
    if !built.allow_protected_namespaces {
        if let Some(ns) = protected(s, &built.target_namespaces) {
            return Err(error(
                ctx,
                format!(
                    "refusing to inject into namespace {ns:?}: it is protected (add `allow_protected_namespaces: true` if you mean it)"
                ),
            ));
        }
    }
    for reach in &built.reach {
        let pods = reachable(ctx, s, reach)?;
        let most = reach.most(pods.len());
        if most > WIDE && !built.allow_large_blast_radius {
            return Err(error(
                ctx,
                format!(
                    "refusing {}: mode \"{}\"{} can hit {most} of {} pods (more than {WIDE}): start smaller (mode \"one\", \"fixed\" with a small value), or add `allow_large_blast_radius: true`",
                    reach.what,
                    faults::mode_name(&reach.mode),
                    reach
                        .value
                        .as_deref()
                        .map(|v| format!(" value {v}"))
                        .unwrap_or_default(),
                    pods.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The manifest as YAML a user could `kubectl apply`.
pub(crate) fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|_| v.to_string())
}

/// Builds, checks and creates a fault; the handle. A fault that would select no pod is not
/// created: the playbook is inconclusive (exit 5), never silently "passed".
fn inject(
    ctx: &NativeCallContext,
    built: RhaiResultOf<Built>,
    what: &str,
) -> RhaiResultOf<FaultHandle> {
    use crate::faults::selection;
    let s = session(ctx)?;
    let built = built?;
    check_safety(ctx, &s, &built)?;
    let pods = candidates(ctx, &s, &built)?;
    let object = ObjectRef::new(
        faults::API_VERSION,
        &built.kind,
        Some(&built.namespace),
        &built.name,
    );
    let value = built.object["spec"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let selects = selection::describe(faults::mode_name(&built.mode), &value, &pods);
    let summary = format!(
        "{object} ({what}, mode {}, {}; selects {selects})",
        faults::mode_name(&built.mode),
        faults::bound_text(&built.object),
    );
    let preview = selection::would_select(faults::mode_name(&built.mode), &value, &pods);
    if s.dry_run {
        (s.output)(Line::Print(format!(
            "dry run: would create {summary}\n---\n{}# would select: {}\n",
            yaml(&built.object),
            if preview.is_empty() {
                "no pod (nothing would be injected)".to_string()
            } else {
                preview.join(", ")
            }
        )));
        s.record().rendered.push((built.object, pods));
        return Ok(FaultHandle {
            object,
            live: false,
            preview,
        });
    }
    // Faults without a pod selector (cloud, physical machines, schedules, workflows) select
    // through what they create; the rest must select at least one pod.
    if built.object.pointer("/spec/selector").is_some() && preview.is_empty() {
        let message = format!(
            "{object} ({what}) would select no pod: {selects}; nothing was injected (check the selector's namespaces and labels)"
        );
        s.record().inconclusive.push(message.clone());
        return Err(crate::outcome::inconclusive(message, ctx.call_position()));
    }
    s.phase(crate::session::Phase::Injecting {
        what: summary.clone(),
    });
    let dynamic: DynamicObject =
        serde_json::from_value(built.object.clone()).map_err(|e| error(ctx, e.to_string()))?;
    let api = crate::session::api_for(&s.target, &s.rt, &object).map_err(|e| error(ctx, e))?;
    let id = s.will_create(&object).map_err(|e| error(ctx, e))?;
    // Idempotent: a lost answer is checked and the object adopted (by name and run-id label).
    let label = (faults::RUN_ID_LABEL, s.run_id.as_str());
    let object = match crate::session::create_adopting(&s.rt, &api, &dynamic, label) {
        Ok(made) => s.created(id, &object, made.metadata.uid),
        Err(e) => {
            // A refusal means nothing was created: only this attempt is forgotten (an object of
            // that name is someone else's). An answer that may have been lost keeps the removal
            // in the ledger (cleanup's 404 is harmless).
            if !crate::session::transient(&e) {
                s.abandon(id, &object);
            }
            return Err(api_error(ctx, &format!("creating {object}"), e));
        }
    };
    if s.posts_events() {
        if let Some(owner) = owner_of_first(ctx, &s, &preview) {
            s.fault_created(&object, owner);
        }
    }
    (s.output)(Line::Print(format!("inject: {summary}")));
    s.phase(crate::session::Phase::Running);
    s.record().faults.push(crate::session::Fault {
        kind: built.kind.clone(),
        namespace: built.namespace.clone(),
        name: built.name.clone(),
        selected: Vec::new(),
        created_s: s.elapsed_s(),
        injected_s: None,
        recovered_s: None,
        removed_s: None,
    });
    Ok(FaultHandle {
        object,
        live: true,
        preview,
    })
}

fn build_fault(ctx: &NativeCallContext, fault: Fault, options: Map) -> RhaiResultOf<Built> {
    let s = session(ctx)?;
    let json: Value = rhai::serde::from_dynamic(&Dynamic::from_map(options))?;
    faults::build(fault, &json, &context(&s, fault.function())).map_err(|e| {
        error(
            ctx,
            format!(
                "chaos::{}: option `{}`: {}",
                fault.function(),
                e.field,
                e.message
            ),
        )
    })
}

/// The controller of the first pod of `pods` (`ns/name`), or that pod, as the run's pod list
/// has it (the list the selection preview just read): its Events' related workload.
fn owner_of_first(ctx: &NativeCallContext, s: &Session, pods: &[String]) -> Option<ObjectRef> {
    let (ns, name) = pods.first()?.split_once('/')?;
    let pod = crate::host::cluster::list_pods(ctx, s, ns, "")
        .ok()?
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some(name))?;
    let owner = pod
        .metadata
        .owner_references
        .as_ref()
        .and_then(|rs| rs.iter().find(|r| r.controller == Some(true)).cloned());
    Some(match owner {
        Some(o) => crate::session::events::owned(ns, o),
        None => {
            let mut me = ObjectRef::new("v1", "Pod", Some(ns), name);
            me.uid = pod.metadata.uid.clone();
            me
        }
    })
}

/// The object as the cluster has it now (`None` once it is gone).
fn fetch(ctx: &NativeCallContext, s: &Session, h: &FaultHandle) -> RhaiResultOf<Option<Value>> {
    let got = fetch_object(s, &h.object).map_err(|e| error(ctx, e))?;
    if let Some(obj) = &got {
        note_status(s, &h.object.name, obj);
    }
    Ok(got)
}

/// An object as the cluster has it now (`None` once it is gone).
pub(crate) fn fetch_object(s: &Session, object: &ObjectRef) -> Result<Option<Value>, String> {
    let ar = crate::session::resource_for(&s.target, &s.rt, object).map_err(|e| e.to_string())?;
    let got =
        s.rt.block_on(
            s.target
                .get_opt(&ar, object.namespace.as_deref(), &object.name),
        )
        .map_err(|e| format!("reading {object}: {}", crate::session::describe(&e)))?;
    Ok(got.map(super::cluster::json))
}

/// Proof of injection: the first time Chaos Mesh reports a fault `AllInjected`, its time and
/// the pods it recorded go into the run's record.
pub(crate) fn note_status(s: &Session, name: &str, obj: &Value) {
    if !crate::host::cluster::condition_true(obj, "AllInjected") {
        return;
    }
    let at = s.elapsed_s();
    let mut record = s.record();
    let Some(f) = record.faults.iter_mut().find(|f| f.name == name) else {
        return;
    };
    if f.injected_s.is_some() {
        return;
    }
    f.injected_s = Some(at);
    f.selected = selected(obj);
    let what = format!("{} {}/{}", f.kind, f.namespace, f.name);
    let targets = f.selected.join(", ");
    let kind = f.kind.clone();
    drop(record);
    let meta = |k: &str| obj["metadata"][k].as_str().map(str::to_string);
    let mut object = ObjectRef::new(
        obj["apiVersion"].as_str().unwrap_or(faults::API_VERSION),
        obj["kind"].as_str().unwrap_or(&kind),
        meta("namespace").as_deref(),
        name,
    );
    object.uid = meta("uid");
    s.tell_fault(
        &object,
        crate::session::events::selected_pods(obj),
        crate::session::events::Told {
            warning: false,
            action: "Inject".into(),
            reason: "FaultInjected".into(),
            note: format!(
                "{what} injected after {at:.1}s of run {} ({}); targets: {targets}",
                s.run_id, s.playbook
            ),
        },
    );
}

fn selected(obj: &Value) -> Vec<String> {
    obj.pointer("/status/experiment/containerRecords")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn conditions_text(obj: &Value) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?")
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "no status yet".into())
}

/// Waits until the fault's condition `kind` is True; milliseconds it took. A fault that never
/// reaches `AllInjected`, or reaches it having selected no pod, makes the playbook
/// inconclusive: nothing proves it took effect.
fn wait_condition(
    ctx: &NativeCallContext,
    h: &FaultHandle,
    kind: &str,
    timeout: &str,
) -> RhaiResultOf<f64> {
    let s = session(ctx)?;
    let timeout = crate::host::expect::duration_arg(ctx, &format!("wait for {kind}"), timeout)?;
    if !h.live {
        return Ok(0.0);
    }
    let mut last = Value::Null;
    let what = format!("{} {kind}", h.object);
    let (ok, took, observed) = wait_for(&s, &s.stop, &what, timeout, Some(ctx), || {
        let obj = fetch(ctx, &s, h)?;
        let ok = obj
            .as_ref()
            .is_some_and(|o| crate::host::cluster::condition_true(o, kind))
            || (kind == "AllRecovered" && obj.is_none());
        let observed = obj
            .as_ref()
            .map(conditions_text)
            .unwrap_or_else(|| "object gone".into());
        last = obj.unwrap_or(Value::Null);
        Ok(Observation { ok, observed })
    })?;
    s.phase(crate::session::Phase::Running);
    let injecting = kind == "AllInjected";
    if !ok {
        let message = format!(
            "{} did not reach {kind} within {}: {observed}{}",
            h.object,
            crate::duration::format(timeout),
            if injecting {
                format!(
                    "{}; nothing proves the fault took effect",
                    failed_records(&last)
                )
            } else {
                String::new()
            }
        );
        if injecting {
            s.record().inconclusive.push(message.clone());
            return Err(crate::outcome::inconclusive(message, ctx.call_position()));
        }
        return Err(error(ctx, message));
    }
    if injecting && selected(&last).is_empty() {
        let message = format!(
            "{} reports AllInjected but Chaos Mesh recorded no target: it selected no pod, so nothing was injected",
            h.object
        );
        s.record().inconclusive.push(message.clone());
        return Err(crate::outcome::inconclusive(message, ctx.call_position()));
    }
    if !injecting {
        let at = s.elapsed_s();
        if let Some(f) = s
            .record()
            .faults
            .iter_mut()
            .find(|f| f.name == h.object.name)
        {
            f.recovered_s = Some(at);
        }
        s.tell_fault(
            &h.object,
            Vec::new(),
            crate::session::events::Told {
                warning: false,
                action: "Recover".into(),
                reason: "FaultRecovered".into(),
                note: format!(
                    "{} recovered ({kind}) after {at:.1}s of run {} ({})",
                    h.object, s.run_id, s.playbook
                ),
            },
        );
    }
    Ok(took.as_secs_f64() * 1000.0)
}

/// What Chaos Mesh said went wrong, from its records' events (`; records: ...`), if anything.
fn failed_records(obj: &Value) -> String {
    let events: Vec<String> = obj
        .pointer("/status/experiment/containerRecords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|r| r["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["type"] == "Failed")
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect();
    if events.is_empty() {
        String::new()
    } else {
        format!("; Chaos Mesh: {}", events.join("; "))
    }
}

fn set_pause(ctx: &NativeCallContext, h: &FaultHandle, paused: bool) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    if !h.live {
        return Ok(());
    }
    let api: Api<DynamicObject> =
        crate::session::api_for(&s.target, &s.rt, &h.object).map_err(|e| error(ctx, e))?;
    let value = if paused {
        Value::from("true")
    } else {
        Value::Null
    };
    let patch = serde_json::json!({ "metadata": { "annotations": { "experiment.chaos-mesh.org/pause": value } } });
    s.rt.block_on(api.patch(
        &h.object.name,
        &PatchParams::default(),
        &Patch::Merge(&patch),
    ))
    .map_err(|e| {
        api_error(
            ctx,
            &format!(
                "{} {}",
                if paused { "pausing" } else { "resuming" },
                h.object
            ),
            e,
        )
    })?;
    crate::session::mark(
        &s,
        "fault",
        &h.object.to_string(),
        if paused { "paused" } else { "resumed" },
    );
    Ok(())
}

#[rhai::export_module]
pub mod api {
    use super::*;

    /// Kills pods (PodChaos `pod-kill`): their controllers replace them. Options are Chaos Mesh
    /// fields: `selector` (required), `mode` (default "one"), `value`, `duration` (default: the
    /// playbook's remaining time), `gracePeriod`, `name`, `namespace`.
    ///
    /// ```rhai
    /// let f = chaos::pod_kill(#{ selector: #{ namespaces: ["kserve-inference"], labelSelectors: #{ app: "sklearn-iris-predictor" } } });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pod_kill(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::PodKill, options),
            "pod-kill",
        )
    }

    /// Makes pods' containers fail until the fault ends (PodChaos `pod-failure`).
    ///
    /// ```rhai
    /// let f = chaos::pod_failure(#{ selector: #{ namespaces: ["mlflow"], labelSelectors: #{ app: "mlflow" } }, duration: "30s" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pod_failure(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::PodFailure, options),
            "pod-failure",
        )
    }

    /// Restarts containers (PodChaos `container-kill`); `containerNames` is required.
    ///
    /// ```rhai
    /// let f = chaos::container_kill(#{ selector: #{ namespaces: ["mlflow"] }, containerNames: ["mlflow"] });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn container_kill(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::ContainerKill, options),
            "container-kill",
        )
    }

    /// Delays traffic (NetworkChaos `delay`): `latency` (required, e.g. "100ms"), `jitter`,
    /// `correlation`, `direction` (to, from, both), `target` (#{ mode, selector }).
    ///
    /// ```rhai
    /// let f = chaos::network_delay(#{ selector: #{ namespaces: ["mlflow"], labelSelectors: #{ app: "mlflow" } }, latency: "100ms",
    ///     target: #{ mode: "all", selector: #{ namespaces: ["mlflow"], labelSelectors: #{ app: "postgresql" } } } });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn network_delay(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::NetworkDelay, options),
            "network delay",
        )
    }

    /// Drops packets (NetworkChaos `loss`): `loss` (required, percent as a string, e.g. "25").
    ///
    /// ```rhai
    /// let f = chaos::network_loss(#{ selector: #{ namespaces: ["mlflow"] }, loss: "25" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn network_loss(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::NetworkLoss, options),
            "network loss",
        )
    }

    /// Cuts traffic between the selected pods and a `target` (NetworkChaos `partition`).
    ///
    /// ```rhai
    /// let f = chaos::network_partition(#{ selector: #{ namespaces: ["argo"] }, direction: "to",
    ///     target: #{ mode: "all", selector: #{ namespaces: ["mlflow"] } } });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn network_partition(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::NetworkPartition, options),
            "network partition",
        )
    }

    /// Burns CPU in the selected pods (StressChaos cpu): `workers` (default 1), `load` (percent
    /// of a core per worker, default 100), `containerNames`.
    ///
    /// ```rhai
    /// let f = chaos::cpu_stress(#{ selector: #{ namespaces: ["training"] }, mode: "all", workers: 2, load: 90 });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn cpu_stress(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::CpuStress, options),
            "cpu stress",
        )
    }

    /// Fills memory in the selected pods (StressChaos memory): `size` (required, e.g. "512MB"
    /// or "80%"), `workers`, `containerNames`, `oomScoreAdj`.
    ///
    /// ```rhai
    /// let f = chaos::memory_stress(#{ selector: #{ namespaces: ["kserve-inference"] }, size: "1GB" });
    /// ```
    #[rhai_fn(return_raw)]
    pub fn memory_stress(ctx: NativeCallContext, options: Map) -> RhaiResultOf<FaultHandle> {
        inject(
            &ctx,
            build_fault(&ctx, super::Fault::MemoryStress, options),
            "memory stress",
        )
    }

    /// Cleans up now, as at the playbook's end: removes every fault created so far and runs the
    /// `on_cleanup` closures, last-in first-out, each once; true if everything was removed
    /// (what the REPL's `:cleanup` saves as).
    ///
    /// ```rhai
    /// chaos::cleanup();
    /// ```
    #[rhai_fn(name = "cleanup", return_raw)]
    pub fn cleanup_now(ctx: NativeCallContext) -> RhaiResultOf<bool> {
        let s = session(&ctx)?;
        let cleaned = s.cleanup(|f| {
            f.call_within_context::<Dynamic>(&ctx, ())
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        // The playbook goes on after it: faults may be created again.
        s.reopen();
        Ok(cleaned)
    }

    /// Applies a Chaos Mesh manifest (YAML text or a map) of any kind whose v2.8.1 CRD is in
    /// `crds/chaos-mesh/` (PodChaos, NetworkChaos, StressChaos, Schedule, Workflow,
    /// StatusCheck), checked against the CRD, labelled, journalled and bounded like the
    /// constructors: a fault gets a `duration`, a Schedule's fault template a `duration`, every
    /// Workflow template a `deadline`; Schedules and Workflows are also removed at the
    /// playbook's end. Their own faults are not followed, so a playbook using them is
    /// inconclusive at best.
    ///
    /// ```rhai
    /// let f = chaos::apply(`
    /// apiVersion: chaos-mesh.org/v1alpha1
    /// kind: PodChaos
    /// metadata: { name: kill-one, namespace: kserve-inference }
    /// spec: { action: pod-kill, mode: one, selector: { namespaces: [kserve-inference] } }`);
    /// ```
    #[rhai_fn(name = "apply", return_raw)]
    pub fn apply(ctx: NativeCallContext, manifest: Dynamic) -> RhaiResultOf<FaultHandle> {
        apply_with(ctx, manifest, Map::new())
    }

    /// `chaos::apply` with options: `#{ unbounded: true }` keeps a manifest without `duration`
    /// unbounded (it then runs until cleanup removes it); `allow_protected_namespaces` and
    /// `allow_large_blast_radius` opt in as for the constructors.
    ///
    /// ```rhai
    /// let f = chaos::apply(manifest, #{ unbounded: true });
    /// ```
    #[rhai_fn(name = "apply", return_raw)]
    pub fn apply_with(
        ctx: NativeCallContext,
        manifest: Dynamic,
        options: Map,
    ) -> RhaiResultOf<FaultHandle> {
        let s = session(&ctx)?;
        let value: Value = if let Some(text) = manifest.clone().try_cast::<rhai::ImmutableString>()
        {
            serde_saphyr::from_str(&text).map_err(|e| {
                error(
                    &ctx,
                    format!("chaos::apply: the manifest is not valid YAML: {e}"),
                )
            })?
        } else {
            rhai::serde::from_dynamic(&manifest)?
        };
        let flag = |k: &str| {
            options
                .get(k)
                .and_then(|v| v.as_bool().ok())
                .unwrap_or(false)
        };
        if let Some(k) = options.keys().find(|k| {
            ![
                "unbounded",
                "allow_protected_namespaces",
                "allow_large_blast_radius",
            ]
            .contains(&k.as_str())
        }) {
            return Err(error(
                &ctx,
                format!(
                    "chaos::apply: unknown option `{k}` (unbounded, allow_protected_namespaces, allow_large_blast_radius)"
                ),
            ));
        }
        let kind = value["kind"].as_str().unwrap_or("fault").to_string();
        let built = faults::from_manifest_allowing(
            &value,
            &context(&s, "apply"),
            flag("unbounded"),
            flag("allow_protected_namespaces"),
            flag("allow_large_blast_radius"),
        )
        .map_err(|e| error(&ctx, format!("chaos::apply: `{}`: {}", e.field, e.message)));
        inject(&ctx, built, &kind)
    }

    /// The fault's name.
    ///
    /// ```rhai
    /// print(f.name);
    /// ```
    #[rhai_fn(global, get = "name", pure)]
    pub fn name(h: &mut FaultHandle) -> String {
        h.object.name.clone()
    }

    /// The fault's kind (PodChaos, NetworkChaos, StressChaos).
    ///
    /// ```rhai
    /// print(f.kind);
    /// ```
    #[rhai_fn(global, get = "kind", pure)]
    pub fn kind(h: &mut FaultHandle) -> String {
        h.object.kind.clone()
    }

    /// The fault's status now: a map with injected, recovered, paused, phase (Run/Stop),
    /// selected (pod ids), conditions (text), exists.
    ///
    /// ```rhai
    /// print(f.status().injected);
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn status(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<Map> {
        let s = session(&ctx)?;
        let obj = if h.live { fetch(&ctx, &s, h)? } else { None };
        let o = obj.clone().unwrap_or(Value::Null);
        let mut m = Map::new();
        m.insert("exists".into(), obj.is_some().into());
        m.insert(
            "injected".into(),
            crate::host::cluster::condition_true(&o, "AllInjected").into(),
        );
        m.insert(
            "recovered".into(),
            (crate::host::cluster::condition_true(&o, "AllRecovered") || (h.live && obj.is_none()))
                .into(),
        );
        m.insert(
            "paused".into(),
            crate::host::cluster::condition_true(&o, "Paused").into(),
        );
        let phase = o
            .pointer("/status/experiment/desiredPhase")
            .and_then(Value::as_str)
            .unwrap_or_default();
        m.insert("phase".into(), phase.into());
        m.insert(
            "selected".into(),
            to_dynamic(&ctx, &serde_json::json!(super::selected(&o)))?,
        );
        m.insert("conditions".into(), conditions_text(&o).into());
        Ok(m)
    }

    /// The pods the fault selected (`namespace/name`), from Chaos Mesh's records; in a dry run,
    /// the pods it would select now (by Chaos Mesh's rules; the first ones by name where Chaos
    /// Mesh would draw at random).
    ///
    /// ```rhai
    /// let victims = f.selected();
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn selected(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        if !h.live {
            return Ok(h.preview.iter().cloned().map(Dynamic::from).collect());
        }
        let obj = fetch(&ctx, &s, h)?;
        Ok(super::selected(&obj.unwrap_or(Value::Null))
            .into_iter()
            .map(Dynamic::from)
            .collect())
    }

    /// Waits until Chaos Mesh reports the fault injected on every selected pod; milliseconds it took.
    ///
    /// ```rhai
    /// f.wait_injected("30s");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn wait_injected(
        ctx: NativeCallContext,
        h: &mut FaultHandle,
        timeout: &str,
    ) -> RhaiResultOf<f64> {
        wait_condition(&ctx, h, "AllInjected", timeout)
    }

    /// Waits until Chaos Mesh reports the fault recovered (its duration ended, or it was
    /// paused or deleted); milliseconds it took.
    ///
    /// ```rhai
    /// f.wait_recovered("2m");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn wait_recovered(
        ctx: NativeCallContext,
        h: &mut FaultHandle,
        timeout: &str,
    ) -> RhaiResultOf<f64> {
        wait_condition(&ctx, h, "AllRecovered", timeout)
    }

    /// Pauses the fault (Chaos Mesh recovers the pods until it is resumed).
    ///
    /// ```rhai
    /// f.pause();
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn pause(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<()> {
        set_pause(&ctx, h, true)
    }

    /// Resumes a paused fault.
    ///
    /// ```rhai
    /// f.resume();
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn resume(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<()> {
        set_pause(&ctx, h, false)
    }

    /// Removes the fault now and waits until Chaos Mesh has recovered and the object is gone
    /// (cleanup will not remove it again); milliseconds it took.
    ///
    /// ```rhai
    /// let ms = f.delete();
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn delete(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<f64> {
        let s = session(&ctx)?;
        if !h.live {
            return Ok(0.0);
        }
        let t0 = s.now();
        let said =
            crate::session::remove(&s.target, &s.rt, &h.object).map_err(|e| error(&ctx, e))?;
        s.removed(&h.object);
        (s.output)(Line::Print(format!("chaos: {said}")));
        let at = s.elapsed_s();
        if let Some(f) = s
            .record()
            .faults
            .iter_mut()
            .find(|f| f.name == h.object.name)
        {
            f.recovered_s.get_or_insert(at);
        }
        Ok(s.now().duration_since(t0).as_secs_f64() * 1000.0)
    }

    /// The fault's manifest as the cluster has it, as YAML.
    ///
    /// ```rhai
    /// print(f.to_yaml());
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn to_yaml(ctx: NativeCallContext, h: &mut FaultHandle) -> RhaiResultOf<String> {
        let s = session(&ctx)?;
        let obj = if h.live { fetch(&ctx, &s, h)? } else { None };
        Ok(obj
            .map(|o| yaml(&o))
            .unwrap_or_else(|| format!("# {} does not exist\n", h.object)))
    }

    /// `PodChaos ns/name` — how a fault prints.
    ///
    /// ```rhai
    /// log(`injected ${f}`);
    /// ```
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(h: &mut FaultHandle) -> String {
        h.object.to_string()
    }
}
