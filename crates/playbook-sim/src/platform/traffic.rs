//! The traffic model: requests flowing through the platform every second (clients to the predictor, the pipeline runner and other clients to MLflow, MLflow to PostgreSQL), their latencies and errors, and the CPU they cost.
//!
//! A request's latency is a seeded lognormal draw (figures in [`super::scenario`]) times a
//! CPU-saturation factor of the pod serving it, plus what [`network_effect`] adds on every
//! simulated hop between pods (a partition or a lost packet fails the request). MLflow is a
//! queue: `workers` concurrent calls, each `processing + round_trips x db_query`; when calls
//! arrive faster than it serves them a backlog builds, adds `backlog / capacity` of waiting,
//! and drains once it can keep up again; a call that would wait past the timeout fails (504).
//! The same functions answer calls made through the API server's proxy (`proxy.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::breaker::{Breaker, Buffer};
use super::objects::{ARGO_NS, KSERVE_NS, MLFLOW_NS, PREDICTOR};
use super::scenario::{Figures, Latency};
use crate::chaos::effects::refuses_connections;
use crate::chaos::{Exchange, Exchanged, NetFaults};
use crate::controllers::model;
use crate::controllers::util::{deleting, pod_ready};
use crate::selector::{FieldSelector, LabelSelector, Requirement};
use crate::store::Store;
use crate::world::{Controller, Ctx};

/// Upper bounds (seconds) of the latency histograms.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Mixed into the seed so the traffic draws differ from the world's.
const SALT: u64 = 0x5eed_7aff_1c00_0001;

/// Counters of one workload's requests.
#[derive(Debug, Clone, Default)]
pub struct Flow {
    /// Requests by HTTP status code.
    pub by_code: BTreeMap<u16, u64>,
    /// Histogram counts (not cumulative), one per bucket of [`BUCKETS`] plus +Inf.
    pub buckets: [u64; 13],
    pub sum_s: f64,
    pub count: u64,
}

impl Flow {
    /// Records one request.
    pub fn record(&mut self, code: u16, secs: f64) {
        *self.by_code.entry(code).or_default() += 1;
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i] += 1;
        self.sum_s += secs;
        self.count += 1;
    }
}

/// The state the traffic model, the Argo controller and the proxy share.
pub struct Shared {
    /// The platform's figures.
    pub figures: Figures,
    /// The traffic model's own seeded RNG.
    pub rng: ChaCha8Rng,
    /// The network faults in force (from NetworkChaos).
    pub faults: NetFaults,
    /// Request counters by workload: `predictor`, `mlflow`, `postgresql`, `pipeline-runner`.
    pub flows: BTreeMap<&'static str, Flow>,
    /// The pipeline runner's breaker (None: the fragile client has none).
    pub breaker: Option<Breaker>,
    /// The pipeline runner's fallback buffer.
    pub buffer: Buffer,
    /// MLflow calls waiting for a worker.
    pub backlog: f64,
    /// Metrics logged to MLflow by the pipelines, and log calls that failed.
    pub logged_metrics: u64,
    /// Log calls that failed.
    pub log_failures: u64,
    /// The `finetune` training Job's state (see `training.rs`).
    pub training: super::training::Training,
}

/// The shared state, behind a lock (taken after the world's lock, never before).
pub type SharedRef = Arc<Mutex<Shared>>;

impl Shared {
    /// Fresh state for `figures`, seeded.
    pub fn new(figures: Figures, seed: u64) -> Self {
        let breaker = figures.breaker.then(|| {
            Breaker::new(
                figures.breaker_failures,
                SignedDuration::from_secs(figures.breaker_cooldown_s),
            )
        });
        let buffer = Buffer {
            max_runs: figures.buffer_max_runs,
            ..Buffer::default()
        };
        Shared {
            figures,
            rng: ChaCha8Rng::seed_from_u64(seed ^ SALT),
            faults: NetFaults::new(),
            flows: BTreeMap::new(),
            breaker,
            buffer,
            backlog: 0.0,
            logged_metrics: 0,
            log_failures: 0,
            training: Default::default(),
        }
    }

    /// A lognormal draw, in seconds.
    pub fn draw(&mut self, l: Latency) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(1e-12);
        let u2: f64 = self.rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        l.median_ms * (l.sigma * z).exp() / 1000.0
    }

    /// One request/response exchange from `client` (None: outside the pod network) to the pod
    /// `server` through the injected network rules (see [`NetFaults::exchange`]): the seconds
    /// the network added, or `Err(seconds)` the client waited before giving up.
    pub fn call(
        &mut self,
        store: &Store,
        client: Option<&Value>,
        server: &Value,
        via: Via,
        give_up_s: f64,
    ) -> Exchanged {
        self.faults.sync(store);
        let key = |p: &Value| {
            (
                p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        let c = client.map(key);
        let sv = key(server);
        let x = Exchange {
            client: c.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            server: (sv.0.as_str(), sv.1.as_str()),
            via_service: via != Via::PodIp,
            handshake: via == Via::PodIp,
            give_up_s,
        };
        self.faults.exchange(&x, &mut self.rng)
    }

    /// One prediction served by a pod whose [`saturation`] is `sat`: (status, seconds).
    pub fn predict(&mut self, sat: f64) -> (u16, f64) {
        let base = self.draw(self.figures.inference_latency);
        (200, base * sat)
    }

    /// One MLflow call with `round_trips` database queries, from `caller`: (status, seconds).
    /// Counts it.
    pub fn mlflow_call(
        &mut self,
        store: &Store,
        view: &View,
        caller: Caller<'_>,
        round_trips: u32,
    ) -> (u16, f64) {
        let (code, secs) = self.mlflow_call_inner(store, view, caller, round_trips);
        self.flows.entry("mlflow").or_default().record(code, secs);
        (code, secs)
    }

    fn mlflow_call_inner(
        &mut self,
        store: &Store,
        view: &View,
        caller: Caller<'_>,
        round_trips: u32,
    ) -> (u16, f64) {
        let f = &self.figures;
        let (timeout, client_timeout, db_timeout) =
            (f.mlflow_timeout_s, f.client_timeout_s, f.db_timeout_s);
        let (lat, db_query, connect) = (f.mlflow_latency, f.db_query, f.db_connect_round_trips);
        let Some((server, sat)) =
            pick(&mut self.rng, &view.mlflow).filter(|(p, _)| !refuses_connections(p))
        else {
            // Connection refused / no endpoints: fails fast.
            return (503, 0.001);
        };
        let mut secs = 0.0;
        let client = match caller {
            Caller::Pod(p) => Some(Some(p)),
            Caller::Outside => Some(None),
            Caller::Reached => None,
        };
        if let Some(client) = client {
            match self.call(store, client, &server, Via::Service, client_timeout) {
                Ok(x) => secs += x,
                // Nothing came back in time: the client's timeout.
                Err(_) => return (0, client_timeout),
            }
        }
        secs += self.draw(lat) * sat;
        let trips = round_trips + if round_trips > 0 { connect } else { 0 };
        if trips > 0 {
            let Some((db, _)) =
                pick(&mut self.rng, &view.db).filter(|(p, _)| !refuses_connections(p))
            else {
                return (500, secs + 0.002);
            };
            for _ in 0..trips {
                self.flows
                    .entry("postgresql")
                    .or_default()
                    .record(200, db_query.median_ms / 1000.0);
                // MLflow reaches PostgreSQL by its ClusterIP Service (`postgresql`).
                match self.call(store, Some(&server), &db, Via::Service, db_timeout) {
                    Ok(x) => secs += x + self.draw(db_query),
                    // psycopg2 OperationalError after its connect timeout.
                    Err(_) => return (500, secs + db_timeout),
                }
            }
        }
        secs += self.backlog / view.capacity.max(1e-6);
        if secs > timeout {
            return (504, timeout);
        }
        (200, secs)
    }

    /// What MLflow looks like now: its ready pods (with their CPU saturation), its database's,
    /// and the calls it can serve per second (workers / mean service time).
    pub fn view(&mut self, store: &Store) -> View {
        let mlflow: Vec<(Arc<Value>, f64)> = ready_pods(store, MLFLOW_NS, "mlflow")
            .into_iter()
            .map(|p| {
                let s = saturation(&p);
                (p, s)
            })
            .collect();
        let db: Vec<(Arc<Value>, f64)> = ready_pods(store, MLFLOW_NS, "postgresql")
            .into_iter()
            .map(|p| (p, 1.0))
            .collect();
        let f = &self.figures;
        let mean = f.mlflow_latency.median_ms / 1000.0;
        let trips = f64::from(1 + f.db_connect_round_trips);
        let rtt = match (mlflow.first(), db.first()) {
            (Some((m, _)), Some((d, _))) => self
                .call(store, Some(m), d, Via::Service, f64::INFINITY)
                .unwrap_or(0.0),
            _ => 0.0,
        };
        let db_s = self.figures.db_query.median_ms / 1000.0 + rtt;
        let capacity = self.figures.mlflow_workers / (mean + trips * db_s).max(1e-4);
        View {
            mlflow,
            db,
            capacity,
        }
    }
}

/// How a client addresses the server of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A ClusterIP Service, on a kept-alive connection (kube-proxy DNATs it to a pod).
    Service,
    /// The pod's IP, on a new connection (the API server's service proxy dials the endpoint).
    PodIp,
}

/// Who makes an MLflow call.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A pod of the cluster (the pipeline runner), through MLflow's Service.
    Pod(&'a Value),
    /// A client outside the pod network, through the Service.
    Outside,
    /// The call already reached the MLflow pod (the API server's proxy did the hop).
    Reached,
}

/// MLflow's pods and capacity at one instant (see [`Shared::view`]).
pub struct View {
    pub mlflow: Vec<(Arc<Value>, f64)>,
    pub db: Vec<(Arc<Value>, f64)>,
    pub capacity: f64,
}

/// How much slower a pod answers, from its busiest container's CPU: queueing as its own use
/// nears the CPU it can get (1 below 70%), and, when stress processes share the container
/// (Chaos Mesh's chaos-daemon runs stress-ng in the target container's cgroup,
/// `pkg/chaosdaemon/stress_server_linux.go`), a slower request for the share of the limit left
/// to it: CFS splits a throttled cgroup's quota between its runnable threads with equal
/// weights (kernel/sched/fair.c), so while serving the process gets at least
/// `limit / (1 + stress demand in cores)`, and at least what the stress leaves unused. Not
/// modelled: the stalls at the end of each 100 ms CFS period once the quota is spent (they
/// would add to the tail).
pub fn saturation(pod: &Value) -> f64 {
    let mut worst: f64 = 1.0;
    for c in model::containers(pod) {
        let limit = model::limits(c).0.unwrap_or_else(|| {
            let (req, _) = model::requests(c);
            if req > 0 { req * 4 } else { 1000 }
        });
        if limit <= 0 {
            continue;
        }
        let (own, stress) = model::container_cpu_parts(pod, c);
        let (limit, own, stress) = (limit as f64, own as f64, stress as f64);
        let (slower, capacity) = if stress > 0.0 {
            let share = (limit - stress).max(limit / (1.0 + stress / 1000.0));
            (limit.min(1000.0) / share, share)
        } else {
            (1.0, limit)
        };
        let busy = own.min(capacity) / capacity;
        let queueing = if busy < 0.7 {
            1.0
        } else {
            1.0 + 2.0 * (busy - 0.7) / (1.0 - busy.min(0.98))
        };
        worst = worst.max(slower.max(1.0) * queueing);
    }
    worst
}

fn app_selector(app: &str) -> LabelSelector {
    LabelSelector {
        reqs: vec![Requirement::Eq("app".into(), app.into())],
    }
}

/// The ready, not terminating pods labelled `app=<app>` in `ns`, by name.
pub fn ready_pods(store: &Store, ns: &str, app: &str) -> Vec<Arc<Value>> {
    let Some(res) = store.registry().lookup("pods") else {
        return Vec::new();
    };
    store
        .list(res, Some(ns), &app_selector(app), &FieldSelector::default())
        .into_iter()
        .filter(|p| pod_ready(p) && !deleting(p))
        .collect()
}

/// A pod chosen at random among `pods` (what a Service's load balancing does).
pub fn pick(rng: &mut ChaCha8Rng, pods: &[(Arc<Value>, f64)]) -> Option<(Arc<Value>, f64)> {
    if pods.is_empty() {
        return None;
    }
    pods.get(rng.random_range(0..pods.len())).cloned()
}

/// A count drawn around `rate` per second (its integer part, plus one with the fraction's
/// probability).
fn count(rng: &mut ChaCha8Rng, rate: f64) -> u64 {
    let whole = rate.max(0.0).floor();
    let extra = u64::from(rng.random::<f64>() < rate - whole);
    whole as u64 + extra
}

/// The annotation `key` of a pod.
fn ann<'a>(pod: &'a Value, key: &str) -> &'a str {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Writes a pod's base CPU use when it changed.
fn set_cpu(ctx: &mut Ctx<'_>, pod: &Value, milli: f64) {
    let q = format!("{}m", ((milli / 5.0).round() * 5.0).max(1.0) as i64);
    if ann(pod, model::CPU) == q {
        return;
    }
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let _ = ctx.patch(
        "pods",
        ns,
        name,
        &json!({"metadata": {"annotations": {model::CPU: q}}}),
    );
}

/// The label Argo puts on a workflow's pods, and the annotation naming the step.
pub const WORKFLOW_LABEL: &str = "workflows.argoproj.io/workflow";
pub const NODE_NAME: &str = "workflows.argoproj.io/node-name";
/// The step that logs metrics to MLflow while it runs.
pub const LOGGING_STEP: &str = "train";

/// The step pods running the logging step now.
fn logging_steps(store: &Store) -> Vec<Arc<Value>> {
    let Some(res) = store.registry().lookup("pods") else {
        return Vec::new();
    };
    let sel = LabelSelector {
        reqs: vec![Requirement::Exists(WORKFLOW_LABEL.into())],
    };
    store
        .list(res, Some(ARGO_NS), &sel, &FieldSelector::default())
        .into_iter()
        .filter(|p| {
            p["status"]["phase"] == "Running"
                && !deleting(p)
                && ann(p, NODE_NAME).ends_with(&format!(".{LOGGING_STEP}"))
                && ann(p, model::EXIT_CODE).is_empty()
        })
        .collect()
}

/// The traffic model's controller: one tick per simulated second.
pub struct Traffic {
    shared: SharedRef,
    next: Option<Timestamp>,
}

impl Traffic {
    /// A traffic model over `shared`.
    pub fn new(shared: SharedRef) -> Self {
        Traffic { shared, next: None }
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let shared = self.shared.clone();
        let mut sh = shared.lock().unwrap_or_else(|e| e.into_inner());
        let f = sh.figures.clone();
        let store = ctx.store();

        // Clients -> predictor.
        let preds = ready_pods(store, KSERVE_NS, &super::objects::raw_app_label(PREDICTOR));
        let sats: Vec<f64> = preds.iter().map(|p| saturation(p)).collect();
        let n = count(&mut sh.rng, f.inference_rps);
        for k in 0..n {
            let i = k as usize % sats.len().max(1);
            let (Some(s), Some(pod)) = (sats.get(i), preds.get(i)) else {
                sh.flows.entry("predictor").or_default().record(503, 0.001);
                continue;
            };
            // Clients outside the pod network, through the predictor's Service. The server
            // counts what reaches it, with its own latency (netem acts outside its clock).
            if refuses_connections(pod) {
                // pod-failure's pause image: connection refused, nothing served.
                continue;
            }
            let (mut code, secs) = sh.predict(*s);
            if !super::proxy::model_loaded(pod, now) {
                // Ready before its model loaded: ModelNotReady (see proxy.rs).
                code = 503;
            }
            let reached = match sh.call(store, None, pod, Via::Service, f.client_timeout_s) {
                Ok(_) => true,
                Err(g) => g.reached,
            };
            if reached {
                sh.flows.entry("predictor").or_default().record(code, secs);
            }
        }
        let per_pod = if preds.is_empty() {
            0.0
        } else {
            f.inference_rps / preds.len() as f64
        };
        let pred_cpu = f.predictor_idle_cpu_m + per_pod * f.inference_cpu_per_req_m;

        // Other clients -> MLflow (searches, one query each), and the pipelines' logging.
        let before = sh.flows.get("mlflow").map_or(0, |x| x.count);
        let view = sh.view(store);
        for _ in 0..count(&mut sh.rng, f.mlflow_background_rps) {
            sh.mlflow_call(store, &view, Caller::Outside, f.db_round_trips_search);
        }
        let runner = ready_pods(store, ARGO_NS, "pipeline-runner")
            .into_iter()
            .next();
        let steps = logging_steps(store);
        let mut fail_steps = Vec::new();
        for step in &steps {
            let run = step["metadata"]["labels"][WORKFLOW_LABEL]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for _ in 0..count(&mut sh.rng, f.log_calls_per_s) {
                if !log_metric(&mut sh, store, &view, runner.as_deref(), &run, now) {
                    fail_steps.push(step.clone());
                    break;
                }
            }
        }
        // An open breaker whose cool-down passed probes MLflow to flush the buffer.
        if steps.is_empty()
            && sh.buffer.metrics() > 0
            && sh
                .breaker
                .as_ref()
                .and_then(|b| b.next_probe())
                .is_some_and(|t| now >= t)
        {
            log_metric(&mut sh, store, &view, runner.as_deref(), "", now);
        }
        let finished = super::training::tick(&mut sh, store, &view, now);
        let arrivals = sh.flows.get("mlflow").map_or(0, |x| x.count) - before;
        let cap = view.capacity;
        sh.backlog = (sh.backlog + arrivals as f64 - cap)
            .max(0.0)
            .min(cap * f.mlflow_timeout_s);
        let mlflow_cpu = 60.0 + 6.0 * (f.mlflow_background_rps + steps.len() as f64);
        let pg_cpu = 30.0 + 3.0 * (f.mlflow_background_rps + 2.0 * steps.len() as f64);
        drop(sh);

        for p in &preds {
            set_cpu(ctx, p, pred_cpu);
        }
        for (p, _) in &view.mlflow {
            set_cpu(ctx, p, mlflow_cpu);
        }
        for (p, _) in &view.db {
            set_cpu(ctx, p, pg_cpu);
        }
        // Without a breaker and a fallback, a failed MLflow call fails the step (exit 1).
        for step in fail_steps {
            fail_step(ctx, &step, now);
        }
        if let Some(pod) = finished {
            super::training::finish(ctx, &pod, now);
        }
    }
}

/// One metric the pipeline runner logs for `run` (empty: a probe that only flushes). Returns
/// false when the step must fail (no breaker and the call failed).
fn log_metric(
    sh: &mut Shared,
    store: &Store,
    view: &View,
    runner: Option<&Value>,
    run: &str,
    now: Timestamp,
) -> bool {
    let trips = sh.figures.db_round_trips_log;
    let call = |sh: &mut Shared| -> bool {
        let Some(r) = runner else { return false };
        let (code, secs) = sh.mlflow_call(store, view, Caller::Pod(r), trips);
        sh.flows
            .entry("pipeline-runner")
            .or_default()
            .record(if code == 200 { 200 } else { 502 }, secs);
        code == 200
    };
    let Some(mut b) = sh.breaker.take() else {
        let ok = call(sh);
        if ok {
            sh.logged_metrics += 1;
        } else {
            sh.log_failures += 1;
        }
        return ok;
    };
    if b.allow(now) {
        let ok = call(sh);
        b.record(ok, now);
        if ok {
            if !run.is_empty() {
                sh.logged_metrics += 1;
            }
            if sh.buffer.metrics() > 0 {
                // One log-batch call per buffered run.
                for _ in 0..sh.buffer.runs.len() {
                    call(sh);
                }
                sh.logged_metrics += sh.buffer.flush();
            }
        } else {
            sh.log_failures += 1;
            if !run.is_empty() {
                sh.buffer.push(run, 1);
            }
        }
    } else if !run.is_empty() {
        sh.buffer.push(run, 1);
    }
    sh.breaker = Some(b);
    true
}

fn fail_step(ctx: &mut Ctx<'_>, pod: &Value, now: Timestamp) {
    stop_container(ctx, pod, now, 1);
}

/// Makes the pod's container exit now with `code` (its run time ends here).
pub(super) fn stop_container(ctx: &mut Ctx<'_>, pod: &Value, now: Timestamp, code: i32) {
    let started = pod
        .pointer("/status/containerStatuses/0/state/running/startedAt")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or(now);
    let ran = now.duration_since(started).as_secs().max(0) + 1;
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let _ = ctx.patch(
        "pods",
        ns,
        name,
        &json!({"metadata": {"annotations": {model::RUN_FOR: format!("{ran}s"), model::EXIT_CODE: code.to_string()}}}),
    );
}

impl Controller for Traffic {
    fn name(&self) -> &'static str {
        "mlops-traffic"
    }
    fn watches(&self) -> &'static [&'static str] {
        // Driven by its own 1 s timer only.
        &["namespaces"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let due = *self.next.get_or_insert(now);
        if now >= due {
            self.tick(ctx);
            self.next = Some(now + SignedDuration::from_secs(1));
        }
        if let Some(n) = self.next {
            ctx.wake_at(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::saturation;
    use crate::controllers::model::{CPU, STRESS_CPU};
    use serde_json::json;

    /// A one-container pod with a 1-CPU limit, its own use and a stress demand (millicores).
    fn pod(own: &str, stress: Option<&str>) -> serde_json::Value {
        let mut anns = json!({ CPU: own });
        if let Some(s) = stress {
            anns[STRESS_CPU] = json!(s);
        }
        json!({"metadata": {"annotations": anns},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}})
    }

    #[test]
    fn a_pod_queues_as_its_own_use_nears_its_limit() {
        assert_eq!(saturation(&pod("100m", None)), 1.0);
        let busy = saturation(&pod("900m", None));
        assert!((busy - 5.0).abs() < 1e-9, "{busy}");
        assert!(saturation(&pod("990m", None)) > 20.0);
    }

    #[test]
    fn stress_in_the_container_leaves_the_server_its_cfs_share() {
        // Two workers at 100% on a 1-CPU limit: the server keeps a third while it serves.
        let s = saturation(&pod("100m", Some("2000m")));
        assert!((s - 3.0).abs() < 1e-9, "{s}");
        // Half a core of stress leaves the server the other half of the limit (or its fair
        // share, two thirds, when that is more).
        let s = saturation(&pod("100m", Some("500m")));
        assert!((s - 1.5).abs() < 1e-9, "{s}");
        // A server busy with its own traffic on top of that share queues as well.
        assert!(saturation(&pod("300m", Some("2000m"))) > 3.0);
    }
}
