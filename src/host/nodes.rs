//! Node faults that need no Chaos Mesh, behind `cluster::`: cordon, drain through the Eviction
//! API (as `kubectl drain --ignore-daemonsets` does, PodDisruptionBudgets honoured), both undone
//! at cleanup through the ledger and the journal; deleting one pod; nodes by label.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use rhai::{Array, Map, NativeCallContext};
use serde_json::{Value, json};

use crate::host::cluster::{api_error, to_dynamic};
use crate::host::{RhaiResultOf, error, session};
use crate::session::{Line, Session, Uncordon, mark};

/// How long a drain keeps asking for evictions a PodDisruptionBudget refuses (429) and waits
/// for the evicted pods to be gone, unless `timeout` says otherwise.
const DRAIN_TIMEOUT: &str = "2m";
/// Between two rounds of refused evictions (kubectl drain retries every 5 s).
const EVICTION_RETRY: jiff::SignedDuration = jiff::SignedDuration::from_secs(5);

/// A node name as the API server accepts it (a DNS-1123 subdomain), or a script error.
fn node_name(ctx: &NativeCallContext, what: &str, name: &str) -> RhaiResultOf<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(error(
            ctx,
            format!(
                "{what}: {name:?} is not a node name (lower-case letters, digits, '-' and '.'); `cluster::nodes(\"\")` lists them"
            ),
        ));
    }
    Ok(())
}

/// Reads node `name`; a missing one is an error that says so and how to list them.
fn get_node(ctx: &NativeCallContext, s: &Session, what: &str, name: &str) -> RhaiResultOf<Node> {
    node_name(ctx, what, name)?;
    let api: Api<Node> = Api::all(s.target.client.clone());
    match s.rt.block_on(api.get_opt(name)) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(error(
            ctx,
            format!(
                "{what}: node {name:?} not found (NotFound, 404); `cluster::nodes(\"\")` lists the nodes"
            ),
        )),
        Err(e) => Err(api_error(ctx, &format!("{what}: reading node {name}"), e)),
    }
}

/// A node as a playbook sees it.
fn node_summary(n: &Node) -> Value {
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let taints: Vec<String> = spec
        .taints
        .unwrap_or_default()
        .iter()
        .map(|t| match &t.value {
            Some(v) => format!("{}={v}:{}", t.key, t.effect),
            None => format!("{}:{}", t.key, t.effect),
        })
        .collect();
    let quantities = |q: Option<
        std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >|
     -> Value {
        q.unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v.0)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    json!({
        "name": n.metadata.name.clone().unwrap_or_default(),
        "ready": ready,
        "unschedulable": spec.unschedulable.unwrap_or(false),
        "labels": n.metadata.labels.clone().unwrap_or_default(),
        "taints": taints,
        "capacity": quantities(status.capacity),
        "allocatable": quantities(status.allocatable),
    })
}

/// The nodes matching a label selector, by name.
pub(crate) fn nodes(ctx: &NativeCallContext, selector: &str) -> RhaiResultOf<Array> {
    let s = session(ctx)?;
    let api: Api<Node> = Api::all(s.target.client.clone());
    let list =
        s.rt.block_on(api.list(&ListParams::default().labels(selector)))
            .map_err(|e| api_error(ctx, &format!("listing nodes matching {selector:?}"), e))?;
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    items
        .iter()
        .map(|n| to_dynamic(ctx, &node_summary(n)))
        .collect()
}

/// Marks `name` unschedulable (and this run's), with its uncordon in the ledger and journal
/// first. A node someone else had already cordoned is left as it is (and not uncordoned at
/// cleanup). True when this call cordoned it.
fn cordon_node(ctx: &NativeCallContext, s: &Session, what: &str, name: &str) -> RhaiResultOf<bool> {
    let node = get_node(ctx, s, what, name)?;
    let already = node.spec.as_ref().and_then(|sp| sp.unschedulable) == Some(true);
    if already {
        if !s.cordoned(name) {
            (s.output)(Line::Print(format!(
                "{what}: node {name} was already cordoned (not by this run): left cordoned at cleanup"
            )));
        }
        return Ok(false);
    }
    if s.dry_run {
        (s.output)(Line::Print(format!("dry run: would cordon node {name}")));
        return Ok(false);
    }
    let undo = Uncordon {
        node: name.to_string(),
        uid: node.metadata.uid.clone(),
        run_id: s.run_id.clone(),
    };
    s.will_cordon(undo).map_err(|e| error(ctx, e))?;
    // The cordon `kubectl cordon` makes (spec.unschedulable), with the run's mark beside it.
    let patch = json!({
        "metadata": { "annotations": { crate::faults::CORDONED_BY: s.run_id } },
        "spec": { "unschedulable": true },
    });
    let api: Api<Node> = Api::all(s.target.client.clone());
    s.rt.block_on(api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)))
        .map_err(|e| api_error(ctx, &format!("{what}: cordoning node {name}"), e))?;
    mark(s, "cordon", name, "unschedulable until cleanup");
    Ok(true)
}

/// `cluster::cordon`.
pub(crate) fn cordon(ctx: &NativeCallContext, name: &str) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    cordon_node(ctx, &s, "cordon", name).map(|_| ())
}

/// `cluster::uncordon`: undoes this run's cordon now (cleanup then has nothing left to do).
pub(crate) fn uncordon(ctx: &NativeCallContext, name: &str) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    node_name(ctx, "uncordon", name)?;
    let Some(u) = s.pending_uncordon(name) else {
        return Err(error(
            ctx,
            format!(
                "uncordon: this run did not cordon node {name:?} (only its own cordons are undone)"
            ),
        ));
    };
    let said = crate::session::uncordon(&s.target, &s.rt, &u).map_err(|e| error(ctx, e))?;
    s.uncordoned(&u);
    mark(&s, "uncordon", name, &said);
    Ok(())
}

/// Why a pod on a draining node is left alone, as `kubectl drain --ignore-daemonsets` decides
/// (staging/src/k8s.io/kubectl/pkg/drain/filters.go), plus the safety rules; `None` to evict.
fn leave_alone(s: &Session, p: &Pod) -> Option<String> {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let annotations = p.metadata.annotations.clone().unwrap_or_default();
    if annotations.contains_key("kubernetes.io/config.mirror") {
        return Some("a mirror pod (static, managed by the kubelet)".into());
    }
    let daemon = p
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == "DaemonSet");
    if daemon {
        return Some("a DaemonSet pod (ignored, as with --ignore-daemonsets)".into());
    }
    if crate::host::chaos::protected(s, [&ns]).is_some() {
        return Some(format!("in protected namespace {ns} (never evicted)"));
    }
    if p.metadata.deletion_timestamp.is_some() {
        return Some("already terminating".into());
    }
    let phase = p.status.as_ref().and_then(|st| st.phase.clone());
    if matches!(phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Some(format!("finished ({})", phase.unwrap_or_default()));
    }
    None
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.clone().unwrap_or_default(),
        p.metadata.name.clone().unwrap_or_default()
    )
}

/// Options of `cluster::drain`.
struct DrainOptions {
    timeout: std::time::Duration,
    allow_large_blast_radius: bool,
}

fn drain_options(ctx: &NativeCallContext, options: &Map) -> RhaiResultOf<DrainOptions> {
    let mut o = DrainOptions {
        timeout: crate::host::expect::duration_arg(ctx, "drain timeout", DRAIN_TIMEOUT)?,
        allow_large_blast_radius: false,
    };
    for (k, v) in options {
        match k.as_str() {
            "timeout" => {
                let text = v.clone().into_string().map_err(|t| {
                    error(
                        ctx,
                        format!("drain: timeout must be a duration like \"2m\", not a {t}"),
                    )
                })?;
                o.timeout = crate::host::expect::duration_arg(ctx, "drain timeout", &text)?;
            }
            "allow_large_blast_radius" => {
                o.allow_large_blast_radius = v.as_bool().map_err(|t| {
                    error(
                        ctx,
                        format!("drain: allow_large_blast_radius must be true or false, not a {t}"),
                    )
                })?;
            }
            other => {
                return Err(error(
                    ctx,
                    format!("drain: unknown option `{other}` (timeout, allow_large_blast_radius)"),
                ));
            }
        }
    }
    Ok(o)
}

/// `cluster::drain`: cordon, then evict every pod of the node but DaemonSet and mirror pods
/// and those of protected namespaces, retrying evictions a PodDisruptionBudget refuses until
/// the timeout, then wait (within the same timeout) for the evicted pods to be gone.
pub(crate) fn drain(ctx: &NativeCallContext, name: &str, options: &Map) -> RhaiResultOf<Map> {
    let s = session(ctx)?;
    let o = drain_options(ctx, options)?;
    get_node(ctx, &s, "drain", name)?;
    let pods_api: Api<Pod> = Api::all(s.target.client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={name}"));
    let listed =
        s.rt.block_on(pods_api.list(&on_node))
            .map_err(|e| api_error(ctx, &format!("drain: listing the pods on node {name}"), e))?;
    let mut skipped = Array::new();
    let mut to_evict: Vec<Pod> = Vec::new();
    for p in listed
        .items
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|sp| sp.node_name.as_deref()) == Some(name))
    {
        match leave_alone(&s, &p) {
            Some(why) => skipped.push(to_dynamic(
                ctx,
                &json!({ "pod": pod_key(&p), "reason": why }),
            )?),
            None => to_evict.push(p),
        }
    }
    if to_evict.len() > crate::host::chaos::WIDE && !o.allow_large_blast_radius {
        return Err(error(
            ctx,
            format!(
                "refusing to drain node {name}: it would evict {} pods (more than {}): drain a smaller node, or add `allow_large_blast_radius: true`",
                to_evict.len(),
                crate::host::chaos::WIDE
            ),
        ));
    }
    if s.dry_run {
        (s.output)(Line::Print(format!(
            "dry run: would cordon node {name} and evict {}",
            to_evict.iter().map(pod_key).collect::<Vec<_>>().join(", ")
        )));
        let mut m = Map::new();
        m.insert("evicted".into(), Array::new().into());
        m.insert("refused".into(), Array::new().into());
        m.insert("skipped".into(), skipped.into());
        m.insert("remaining".into(), Array::new().into());
        m.insert("took_ms".into(), 0.0.into());
        return Ok(m);
    }
    cordon_node(ctx, &s, "drain", name)?;
    let start = s.now();
    let limit = start
        .checked_add(jiff::SignedDuration::try_from(o.timeout).unwrap_or_default())
        .unwrap_or(start);
    let pos = ctx.call_position();
    let mut evicted: Vec<Pod> = Vec::new();
    let mut refused: Vec<(Pod, String)> = Vec::new();
    let mut pending = to_evict;
    loop {
        let mut still = Vec::new();
        for p in pending {
            let ns = p.metadata.namespace.clone().unwrap_or_default();
            let pod = p.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(s.target.client.clone(), &ns);
            match s.rt.block_on(api.evict(&pod, &EvictParams::default())) {
                Ok(_) => evicted.push(p),
                // Gone already: nothing to evict.
                Err(kube::Error::Api(st)) if st.code == 404 => {}
                // A PodDisruptionBudget forbids it now: asked again in the next round.
                Err(kube::Error::Api(st)) if st.code == 429 => still.push((p, st.message)),
                Err(e) => {
                    if let Some(r) = s.stop.check() {
                        return Err(crate::host::expect::terminated(r, pos));
                    }
                    refused.push((p, crate::session::describe(&e)));
                }
            }
        }
        if still.is_empty() || s.now() >= limit {
            refused.extend(still);
            break;
        }
        pending = still.into_iter().map(|(p, _)| p).collect();
        let next = s
            .now()
            .checked_add(EVICTION_RETRY)
            .unwrap_or(limit)
            .min(limit);
        s.target
            .clock
            .sleep_until(next, &s.stop)
            .map_err(|r| crate::host::expect::terminated(r, pos))?;
    }
    // Evicted pods are deleted gracefully: wait (within the timeout) until each is gone.
    let mut remaining: Vec<String> = Vec::new();
    for p in &evicted {
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let pod = p.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(s.target.client.clone(), &ns);
        loop {
            let now =
                s.rt.block_on(api.get_opt(&pod))
                    .map_err(|e| api_error(ctx, &format!("drain: reading pod {ns}/{pod}"), e))?;
            let there = now.is_some_and(|n| n.metadata.uid == p.metadata.uid);
            if !there {
                break;
            }
            if s.now() >= limit {
                remaining.push(pod_key(p));
                break;
            }
            s.target
                .clock
                .step(limit, &s.stop)
                .map_err(|r| crate::host::expect::terminated(r, pos))?;
        }
    }
    let took_ms = s.now().duration_since(start).as_secs_f64() * 1000.0;
    let names = |v: &[Pod]| -> Array { v.iter().map(|p| pod_key(p).into()).collect() };
    let refused_out: Array = refused
        .iter()
        .map(|(p, why)| to_dynamic(ctx, &json!({ "pod": pod_key(p), "reason": why })))
        .collect::<RhaiResultOf<_>>()?;
    let detail = format!(
        "{} evicted, {} refused, {} skipped",
        evicted.len(),
        refused.len(),
        skipped.len()
    );
    (s.output)(Line::Print(format!("drain node {name}: {detail}")));
    for (p, why) in &refused {
        (s.output)(Line::Print(format!(
            "  eviction of {} refused: {why}",
            pod_key(p)
        )));
    }
    mark(&s, "drain", name, &detail);
    let mut m = Map::new();
    m.insert("evicted".into(), names(&evicted).into());
    m.insert("refused".into(), refused_out.into());
    m.insert("skipped".into(), skipped.into());
    m.insert(
        "remaining".into(),
        remaining
            .into_iter()
            .map(Into::into)
            .collect::<Array>()
            .into(),
    );
    m.insert("took_ms".into(), took_ms.into());
    Ok(m)
}

/// `cluster::delete_pod`: deletes one pod (its controller, if any, replaces it); protected
/// namespaces refused unless the options allow them.
pub(crate) fn delete_pod(
    ctx: &NativeCallContext,
    namespace: &str,
    name: &str,
    options: &Map,
) -> RhaiResultOf<()> {
    let s = session(ctx)?;
    crate::host::cluster::guard_write(ctx, &s, &format!("delete pod {name}"), namespace, options)?;
    if s.dry_run {
        (s.output)(Line::Print(format!(
            "dry run: would delete pod {namespace}/{name}"
        )));
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(s.target.client.clone(), namespace);
    match s.rt.block_on(api.delete(name, &DeleteParams::default())) {
        Ok(_) => {
            mark(&s, "delete_pod", &format!("{namespace}/{name}"), "deleted");
            Ok(())
        }
        Err(kube::Error::Api(st)) if st.code == 404 => Err(error(
            ctx,
            format!(
                "delete_pod: pod {name:?} not found in namespace {namespace:?} (NotFound, 404); `cluster::pods(\"{namespace}\", \"\")` lists them"
            ),
        )),
        Err(e) => Err(api_error(
            ctx,
            &format!("deleting pod {namespace}/{name}"),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_summary_names_taints_and_gpu_capacity() {
        let n: Node = serde_json::from_value(json!({
            "metadata": { "name": "sim-gpu-1", "labels": { "nvidia.com/gpu.present": "true" } },
            "spec": { "unschedulable": true, "taints": [
                { "key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule" },
                { "key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule" } ] },
            "status": { "capacity": { "nvidia.com/gpu": "4" },
                        "conditions": [{ "type": "Ready", "status": "True" }] }
        }))
        .unwrap();
        let v = node_summary(&n);
        assert_eq!(v["unschedulable"], true);
        assert_eq!(v["ready"], true);
        assert_eq!(v["capacity"]["nvidia.com/gpu"], "4");
        assert_eq!(
            v["taints"],
            json!([
                "nvidia.com/gpu=present:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule"
            ])
        );
    }
}
