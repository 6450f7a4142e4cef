//! What a run talks to: a real cluster (kubeconfig or in-cluster config) or the built-in
//! simulator in process — always through a `kube::Client` — and the clock that goes with it.

mod clock;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

pub use clock::{Changes, Clock};

use playbook_sim::platform::Scenario;

/// Which kind of cluster a run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// The built-in simulated cluster, in process.
    Sim,
    /// A real cluster, through kubeconfig or in-cluster configuration.
    Kube,
}

impl TargetKind {
    /// The name reports use: `sim` or `kube`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Sim => "sim",
            TargetKind::Kube => "kube",
        }
    }
}

/// Where the cluster is: the connection's own form of the command line's target options
/// (made once by the front end).
#[derive(Debug, Clone)]
pub struct TargetChoice {
    /// The kind asked for; `None` picks one (see [`choose`]).
    pub cluster: Option<TargetKind>,
    /// The kubeconfig context (kube only).
    pub context: Option<String>,
    /// The kubeconfig file (kube only).
    pub kubeconfig: Option<PathBuf>,
    /// The simulator's seed.
    pub seed: u64,
    /// The simulator's platform.
    pub scenario: Scenario,
}
use playbook_sim::{ClockMode, Sim, SimConfig};

/// A cluster a run talks to.
#[derive(Clone)]
pub struct Target {
    pub client: kube::Client,
    pub clock: Clock,
    /// Which target this is, in one line (the first line of a run's output).
    pub description: String,
    /// For journals: the kubeconfig context, if any (absent for in-cluster and the simulator).
    pub context: Option<String>,
    /// Kinds already resolved by discovery (they do not change while a run lasts).
    kinds: KindCache,
}

/// Discovered API resources by group/version/kind, shared by the clones of a target.
type KindCache = Arc<Mutex<HashMap<GroupVersionKind, ApiResource>>>;

impl Target {
    /// The API resource of a kind (its plural and scope), by discovery once per target.
    pub async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, kube::Error> {
        if let Some(ar) = self.kinds.lock().ok().and_then(|k| k.get(gvk).cloned()) {
            return Ok(ar);
        }
        let (ar, _caps) = kube::discovery::pinned_kind(&self.client, gvk).await?;
        if let Ok(mut k) = self.kinds.lock() {
            k.insert(gvk.clone(), ar.clone());
        }
        Ok(ar)
    }

    /// Whether this target is the in-process simulator (nothing survives the process).
    pub fn is_simulated(&self) -> bool {
        matches!(self.clock, Clock::Virtual(_))
    }
}

/// Why a target could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The kubeconfig could not be read or has no usable context.
    #[error("cannot use kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// In-cluster configuration was found but is broken.
    #[error("cannot use the in-cluster configuration: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    /// `--cluster kube` with nothing to connect to.
    #[error(
        "--cluster kube: no kubeconfig ($KUBECONFIG, ~/.kube/config, --kubeconfig) and no in-cluster configuration"
    )]
    NoCluster,
    /// The client could not be built from the configuration.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The kubeconfig file that would be used: `--kubeconfig`, else the first of `$KUBECONFIG`,
/// else `~/.kube/config`, if it exists.
fn kubeconfig_path(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let from_env =
        std::env::var_os("KUBECONFIG").and_then(|v| std::env::split_paths(&v).find(|p| p.exists()));
    from_env.or_else(|| {
        let home = std::env::var_os("HOME")?;
        let p = Path::new(&home).join(".kube/config");
        p.exists().then_some(p)
    })
}

fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// The cluster kind `--cluster` asks for, or the default: kube when a kubeconfig or in-cluster
/// configuration is found, else the simulator.
pub fn choose(args: &TargetChoice) -> TargetKind {
    args.cluster.unwrap_or_else(|| {
        if kubeconfig_path(args.kubeconfig.as_deref()).is_some() || in_cluster() {
            TargetKind::Kube
        } else {
            TargetKind::Sim
        }
    })
}

/// Connects to the chosen target. Must be called inside a tokio runtime.
pub async fn connect(args: &TargetChoice) -> Result<Target, TargetError> {
    match choose(args) {
        TargetKind::Sim => Ok(simulated(args.seed, args.scenario)),
        TargetKind::Kube => real(args).await,
    }
}

/// The built-in simulated cluster with `scenario` installed, in process, in virtual time.
pub fn simulated(seed: u64, scenario: Scenario) -> Target {
    let sim = Sim::new(SimConfig {
        seed,
        clock: ClockMode::Virtual,
        scenario,
        ..Default::default()
    });
    Target {
        client: sim.client(),
        description: format!(
            "target: simulated cluster, scenario {} (in process, virtual time, seed {seed})",
            scenario.name()
        ),
        clock: Clock::Virtual(sim),
        kinds: KindCache::default(),
        context: None,
    }
}

async fn real(args: &TargetChoice) -> Result<Target, TargetError> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    let (config, context, source) = match kubeconfig_path(args.kubeconfig.as_deref()) {
        Some(path) => {
            let shown = path.display().to_string();
            let wrap = |source| TargetError::Kubeconfig {
                path: shown.clone(),
                source,
            };
            let kc = Kubeconfig::read_from(&path).map_err(wrap)?;
            let context = args.context.clone().or_else(|| kc.current_context.clone());
            let config = Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(wrap)?;
            (config, context, shown)
        }
        None if in_cluster() => (Config::incluster()?, None, "in-cluster config".to_string()),
        None => return Err(TargetError::NoCluster),
    };
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)?;
    Ok(Target {
        clock: Clock::Wall(clock::Changes::new(client.clone())),
        kinds: KindCache::default(),
        client,
        description: format!(
            "target: cluster {} at {server} ({source})",
            context.as_deref().unwrap_or("(in-cluster)")
        ),
        context,
    })
}

/// The API resource of a kind, for `Api::*_with` (for kinds the client has no types for).
pub fn api_resource(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.into(),
        plural: plural.into(),
    }
}
