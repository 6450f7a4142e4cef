//! The metrics-server model: every 15 s, writes `metrics.k8s.io/v1beta1` PodMetrics (per running
//! pod, from the use model in [`super::model`], with ±3% seeded noise) and NodeMetrics (the sum
//! over the node's pods plus system overhead), and removes those of pods that stopped.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use rand::Rng;
use serde_json::{Value, json};

use super::model::{container_use, containers, limits};
use super::util::{Key, key_of, s, ts};
use crate::world::{Controller, Ctx};

/// How often metrics are refreshed (metrics-server's default resolution).
pub const PERIOD: SignedDuration = SignedDuration::from_secs(15);
/// The `window` PodMetrics report.
pub const WINDOW: &str = "30s";
/// CPU (millicores) and memory (bytes) a node uses outside pods.
pub const NODE_OVERHEAD: (i64, i64) = (150, 900 << 20);

/// Refreshes metrics.k8s.io objects. See the module doc.
#[derive(Default)]
pub struct Metrics {
    next: Option<Timestamp>,
}

/// CPU as metrics-server renders it (nanocores).
pub fn fmt_cpu(milli: f64) -> String {
    format!("{}n", (milli.max(0.0) * 1e6).round() as i64)
}

/// Memory as metrics-server renders it (KiB).
pub fn fmt_mem(bytes: f64) -> String {
    format!("{}Ki", (bytes.max(0.0) / 1024.0).round() as i64)
}

fn scrape(ctx: &mut Ctx<'_>) {
    let now = ctx.now();
    let stamp = ts(now);
    let mut per_node: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut live: BTreeSet<Key> = BTreeSet::new();
    for pod in ctx.list("pods", None) {
        let node = s(&pod, "/spec/nodeName");
        if node.is_empty() || s(&pod, "/status/phase") != "Running" {
            continue;
        }
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut usage = Vec::new();
        let (mut pcpu, mut pmem) = (0.0, 0.0);
        for c in containers(&pod) {
            let name = s(c, "/name");
            let running = statuses
                .iter()
                .any(|x| x["name"] == name && x["state"].get("running").is_some());
            if !running {
                continue;
            }
            let (cpu, mem) = container_use(&pod, c);
            let noise_c: f64 = ctx.rng().random_range(-0.03..0.03);
            let noise_m: f64 = ctx.rng().random_range(-0.01..0.01);
            let cpu = cpu as f64 * (1.0 + noise_c);
            let mut mem = mem as f64 * (1.0 + noise_m);
            if let (_, Some(l)) = limits(c) {
                mem = mem.min(l as f64);
            }
            pcpu += cpu;
            pmem += mem;
            usage.push(
                json!({"name": name, "usage": {"cpu": fmt_cpu(cpu), "memory": fmt_mem(mem)}}),
            );
        }
        if usage.is_empty() {
            continue;
        }
        let e = per_node.entry(node.to_string()).or_default();
        e.0 += pcpu;
        e.1 += pmem;
        let key = key_of(&pod);
        let obj = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": key.name, "namespace": key.namespace, "labels": pod["metadata"]["labels"]},
            "timestamp": stamp, "window": WINDOW, "containers": usage});
        put(ctx, "pods.metrics.k8s.io", &key, obj);
        live.insert(key);
    }
    for old in ctx.list("pods.metrics.k8s.io", None) {
        let key = key_of(&old);
        if !live.contains(&key) {
            let _ = ctx.delete("pods.metrics.k8s.io", &key.namespace, &key.name);
        }
    }
    for node in ctx.list("nodes", None) {
        let name = s(&node, "/metadata/name").to_string();
        let (cpu, mem) = per_node.get(&name).copied().unwrap_or_default();
        let obj = json!({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "NodeMetrics",
            "metadata": {"name": name, "labels": node["metadata"]["labels"]},
            "timestamp": stamp, "window": "20.05s",
            "usage": {"cpu": fmt_cpu(cpu + NODE_OVERHEAD.0 as f64), "memory": fmt_mem(mem + NODE_OVERHEAD.1 as f64)}});
        put(ctx, "nodes.metrics.k8s.io", &Key::new("", name), obj);
    }
}

fn put(ctx: &mut Ctx<'_>, res: &str, key: &Key, mut obj: Value) {
    match ctx.get(res, &key.namespace, &key.name) {
        Some(cur) => {
            let labels = obj["metadata"]["labels"].clone();
            obj["metadata"] = cur["metadata"].clone();
            obj["metadata"]["labels"] = labels;
            obj["metadata"]["resourceVersion"] = json!("");
            let _ = ctx.update(res, obj);
        }
        None => {
            let _ = ctx.create(res, obj);
        }
    }
}

impl Controller for Metrics {
    fn name(&self) -> &'static str {
        "metrics-server"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["nodes"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        if self.next.is_none_or(|n| now >= n) {
            scrape(ctx);
            self.next = Some(now + PERIOD);
        }
        if let Some(n) = self.next {
            ctx.wake_at(n);
        }
    }
}
