//! Every figure of the simulated MLOps platform, in one place: edit this file to model your own platform.
//!
//! Two variants share the same objects: [`Figures::mlops`] (built as a platform team would:
//! replicas, headroom, autoscaling, a circuit breaker) and [`Figures::fragile`] (the same
//! platform built badly, so each of the five seed experiments fails on it). Durations are in
//! seconds, latencies in milliseconds, rates per second, quantities as Kubernetes writes them.

/// Which platform [`crate::Sim::new`] installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scenario {
    /// No platform: the bare cluster (nodes and the default namespaces).
    #[default]
    Empty,
    /// The MLOps platform (KServe, MLflow, Argo, training, Chaos Mesh), built to be resilient.
    Mlops,
    /// The same platform built badly: each seed experiment fails on it.
    MlopsFragile,
}

impl Scenario {
    /// The figures of this scenario (None for `Empty`).
    pub fn figures(self) -> Option<Figures> {
        match self {
            Scenario::Empty => None,
            Scenario::Mlops => Some(Figures::mlops()),
            Scenario::MlopsFragile => Some(Figures::fragile()),
        }
    }

    /// Every scenario, in the order the command line lists them.
    pub const ALL: [Scenario; 3] = [Scenario::Empty, Scenario::Mlops, Scenario::MlopsFragile];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Empty => "empty",
            Scenario::Mlops => "mlops",
            Scenario::MlopsFragile => "mlops-fragile",
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;

    /// Parses a scenario's command-line name (`mlops`, `mlops-fragile`, `empty`).
    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scenario {s:?} (one of: {})", names.join(", "))
            })
    }
}

/// A lognormal latency: median and the sigma of its logarithm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    /// Median, in milliseconds.
    pub median_ms: f64,
    /// Standard deviation of ln(latency).
    pub sigma: f64,
}

/// The figures of one variant of the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    /// Virtual time simulated before a run starts, so that everything is Ready (seconds).
    pub warmup_s: i64,

    // --- KServe: the sklearn-iris InferenceService (RawDeployment mode) ---
    /// Predictor replicas (`minReplicas`).
    pub predictor_min_replicas: i64,
    /// Predictor `maxReplicas`; equal to min: no HPA.
    pub predictor_max_replicas: i64,
    /// HPA target CPU utilization of the predictor (`scaleTarget`, %).
    pub predictor_cpu_target: i64,
    /// Predictor CPU request.
    pub predictor_cpu_request: &'static str,
    /// Predictor CPU limit.
    pub predictor_cpu_limit: &'static str,
    /// Predictor memory request.
    pub predictor_mem_request: &'static str,
    /// Predictor memory limit.
    pub predictor_mem_limit: &'static str,
    /// Working set of a predictor once the model is loaded.
    pub predictor_mem_use: &'static str,
    /// Model download and load: container start to Ready (seconds).
    pub predictor_startup_s: i64,
    /// Inference requests per second from clients (all replicas together).
    pub inference_rps: f64,
    /// Latency of one prediction on an idle replica.
    pub inference_latency: Latency,
    /// CPU one prediction costs (milli-core-seconds).
    pub inference_cpu_per_req_m: f64,
    /// A predictor replica's idle CPU (millicores).
    pub predictor_idle_cpu_m: f64,

    // --- MLflow tracking server and its PostgreSQL ---
    /// MLflow replicas.
    pub mlflow_replicas: i64,
    /// Server-side processing of one tracking call, without the database.
    pub mlflow_latency: Latency,
    /// One PostgreSQL query as MLflow sees it (network round trip plus execution, no fault).
    pub db_query: Latency,
    /// Database round trips of `experiments/search` and `runs/search` (one query each);
    /// `runs/log-metric` inserts the metric and updates latest_metrics.
    pub db_round_trips_search: u32,
    /// Database round trips of `runs/log-metric`.
    pub db_round_trips_log: u32,
    /// Extra round trips per call to set up a database connection (0 with a connection pool;
    /// the fragile MLflow opens one per request: TCP, TLS and authentication, 3 round trips).
    pub db_connect_round_trips: u32,
    /// Concurrent requests MLflow serves (gunicorn workers x pooled connections); more queue.
    pub mlflow_workers: f64,
    /// Background tracking calls per second (UI, notebooks), besides the pipelines'.
    pub mlflow_background_rps: f64,
    /// A call that would take longer than this fails with 504 (gunicorn timeout, seconds).
    pub mlflow_timeout_s: f64,
    /// A database query that gets no answer fails after this (psycopg2 connect timeout, s).
    pub db_timeout_s: f64,
    /// A client whose packets to MLflow are dropped gives up after this (seconds).
    pub client_timeout_s: f64,
    /// MLflow CPU request.
    pub mlflow_cpu_request: &'static str,
    /// MLflow memory request.
    pub mlflow_mem_request: &'static str,
    /// MLflow memory limit.
    pub mlflow_mem_limit: &'static str,
    /// PostgreSQL CPU request.
    pub postgres_cpu_request: &'static str,
    /// PostgreSQL memory request.
    pub postgres_mem_request: &'static str,
    /// PostgreSQL memory limit.
    pub postgres_mem_limit: &'static str,
    /// MLflow start-up (seconds).
    pub mlflow_startup_s: i64,
    /// PostgreSQL start-up (seconds).
    pub postgres_startup_s: i64,

    // --- Argo: the training pipeline and its MLflow client ---
    /// A `training-pipeline` Workflow starts every this many seconds (like a CronWorkflow).
    pub pipeline_every_s: i64,
    /// The pipeline's steps, in order: (template name, run time in seconds).
    pub pipeline_steps: &'static [(&'static str, i64)],
    /// Finished Workflows kept (older ones are deleted with their pods).
    pub pipeline_history: usize,
    /// Metrics the `train` step logs to MLflow per second it runs (through the pipeline runner).
    pub log_calls_per_s: f64,
    /// The pipeline runner's MLflow client has a circuit breaker and a fallback buffer.
    pub breaker: bool,
    /// Consecutive failed calls that open the breaker.
    pub breaker_failures: u32,
    /// Time the breaker stays open before a half-open probe (seconds).
    pub breaker_cooldown_s: i64,
    /// Largest number of buffered runs the fallback keeps.
    pub buffer_max_runs: usize,

    // --- training ---
    /// Trainer replicas at start.
    pub trainer_replicas: i64,
    /// The trainer's HPA: (min, max, target CPU %), None: no HPA.
    pub trainer_hpa: Option<(i64, i64, i64)>,
    /// Trainer CPU request.
    pub trainer_cpu_request: &'static str,
    /// Trainer CPU limit.
    pub trainer_cpu_limit: &'static str,
    /// Trainer CPU use while training.
    pub trainer_cpu_use: &'static str,
    /// Trainer memory request.
    pub trainer_mem_request: &'static str,
    /// Trainer memory limit.
    pub trainer_mem_limit: &'static str,

    // --- KServe model load (issue 18) ---
    /// The predictor reports Ready when its server process is up, before the model loaded
    /// (a TCP readiness probe), instead of when the model answers `/v1/models/NAME`.
    pub predictor_ready_before_load: bool,
    /// Server process start-up, before the model load begins (seconds).
    pub predictor_server_start_s: i64,

    // --- GPU node pool ---
    /// GPU nodes `sim-gpu-1..N` (tainted `nvidia.com/gpu=present:NoSchedule`).
    pub gpu_nodes: usize,
    /// `nvidia.com/gpu` capacity of each GPU node.
    pub gpus_per_node: i64,
    /// Taints (key, effect) the chaos-daemon DaemonSet tolerates besides the DaemonSet
    /// controller's own (the Helm chart's default `chaosDaemon.tolerations: []` is empty).
    pub chaos_daemon_tolerations: &'static [(&'static str, &'static str)],

    // --- The `finetune` training Job ---
    /// Steps of the whole run.
    pub training_total_steps: u64,
    /// Steps per second on an unloaded GPU.
    pub training_steps_per_s: f64,
    /// Samples per step (the batch size).
    pub training_batch_size: u64,
    /// Checkpoint every this many steps (0: no checkpoint, a restart starts over).
    pub training_checkpoint_every: u64,
    /// Container start to the first step: image, data loader, model to GPU, checkpoint
    /// restore (seconds).
    pub training_startup_s: i64,
    /// Log the loss to MLflow every this many steps.
    pub training_log_every: u64,
    /// The training loop's MLflow client buffers metrics while MLflow is unreachable
    /// (false: they are dropped and counted).
    pub training_buffer_metrics: bool,
    /// The Job's `backoffLimit`.
    pub training_backoff_limit: i64,

    // --- PodDisruptionBudgets ---
    /// PDBs for the predictor (minAvailable 1) and MLflow (maxUnavailable 1).
    pub pdbs: bool,
}

impl Figures {
    /// The resilient platform.
    pub fn mlops() -> Figures {
        Figures {
            warmup_s: 300,
            predictor_min_replicas: 3,
            predictor_max_replicas: 6,
            predictor_cpu_target: 80,
            predictor_cpu_request: "500m",
            predictor_cpu_limit: "1",
            predictor_mem_request: "512Mi",
            predictor_mem_limit: "1Gi",
            predictor_mem_use: "420Mi",
            predictor_startup_s: 20,
            inference_rps: 30.0,
            inference_latency: Latency {
                median_ms: 18.0,
                sigma: 0.3,
            },
            inference_cpu_per_req_m: 8.0,
            predictor_idle_cpu_m: 40.0,
            mlflow_replicas: 1,
            mlflow_latency: Latency {
                median_ms: 12.0,
                sigma: 0.25,
            },
            db_query: Latency {
                median_ms: 2.0,
                sigma: 0.3,
            },
            db_round_trips_search: 1,
            db_round_trips_log: 2,
            db_connect_round_trips: 0,
            mlflow_workers: 8.0,
            mlflow_background_rps: 4.0,
            mlflow_timeout_s: 30.0,
            db_timeout_s: 3.0,
            client_timeout_s: 5.0,
            mlflow_cpu_request: "250m",
            mlflow_mem_request: "512Mi",
            mlflow_mem_limit: "1Gi",
            postgres_cpu_request: "250m",
            postgres_mem_request: "256Mi",
            postgres_mem_limit: "1Gi",
            mlflow_startup_s: 8,
            postgres_startup_s: 5,
            pipeline_every_s: 60,
            pipeline_steps: &[("prepare-data", 8), ("train", 20), ("evaluate", 6)],
            pipeline_history: 5,
            log_calls_per_s: 1.0,
            breaker: true,
            breaker_failures: 5,
            breaker_cooldown_s: 15,
            buffer_max_runs: 100,
            trainer_replicas: 1,
            trainer_hpa: Some((1, 5, 70)),
            trainer_cpu_request: "1",
            trainer_cpu_limit: "2",
            trainer_cpu_use: "550m",
            trainer_mem_request: "1Gi",
            trainer_mem_limit: "2Gi",
            predictor_ready_before_load: false,
            predictor_server_start_s: 3,
            gpu_nodes: 2,
            gpus_per_node: 4,
            chaos_daemon_tolerations: &[("nvidia.com/gpu", "NoSchedule")],
            training_total_steps: 3000,
            training_steps_per_s: 1.0,
            training_batch_size: 32,
            training_checkpoint_every: 100,
            training_startup_s: 30,
            training_log_every: 10,
            training_buffer_metrics: true,
            training_backoff_limit: 6,
            pdbs: true,
        }
    }

    /// The same platform built badly.
    pub fn fragile() -> Figures {
        Figures {
            // One replica, no headroom, a slow model load, no HPA.
            predictor_min_replicas: 1,
            predictor_max_replicas: 1,
            predictor_mem_request: "512Mi",
            predictor_mem_limit: "512Mi",
            predictor_mem_use: "490Mi",
            predictor_startup_s: 45,
            // One sync gunicorn worker, a new database connection per request.
            mlflow_workers: 1.0,
            db_connect_round_trips: 3,
            mlflow_timeout_s: 10.0,
            // No circuit breaker, no fallback: a failed MLflow call fails the step.
            breaker: false,
            // No HPA on the trainer.
            trainer_hpa: None,
            // Ready when the server is up, before the model loaded.
            predictor_ready_before_load: true,
            // The chaos-daemon installed with the Helm chart's defaults: not on GPU nodes.
            chaos_daemon_tolerations: &[],
            // No checkpoint, metrics dropped while MLflow is unreachable.
            training_checkpoint_every: 0,
            training_buffer_metrics: false,
            // No PodDisruptionBudgets.
            pdbs: false,
            ..Figures::mlops()
        }
    }
}
