//! What a run talks to: a real cluster (kubeconfig or in-cluster config) or the built-in
//! simulator in process — always through a `kube::Client` — and the clock that goes with it.

mod cache;
mod clock;
mod discovery;
pub mod request;
mod rt;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;

pub use clock::{Changes, Clock, Mark, wake_waits};
pub use discovery::{Kind, KindError, Kinds};
pub use rt::Rt;

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
    /// Kinds already resolved by discovery (they do not change while a run lasts), shared by
    /// the clones of a target.
    kinds: Arc<Kinds>,
    /// Watch-driven caches (wall time only; see `cache`).
    caches: Option<Arc<cache::Caches>>,
}

impl Target {
    /// The API resource of an exact group/version/kind (its plural and scope), by discovery
    /// of that one group, once per target.
    pub async fn resource(&self, gvk: &GroupVersionKind) -> Result<ApiResource, KindError> {
        Ok(self.kinds.resource(&self.client, gvk).await?.resource)
    }

    /// A kind as kubectl names it (`po`, `deploy`, `isvc`, `podchaos.chaos-mesh.org`, ...).
    pub async fn kind(&self, text: &str) -> Result<Kind, KindError> {
        self.kinds.resolve(&self.client, text).await
    }

    /// One object of a resource (`None` when absent): from the watch-driven cache when it holds
    /// it, else by GET.
    pub async fn get_opt(
        &self,
        ar: &ApiResource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<kube::api::DynamicObject>, kube::Error> {
        match &self.caches {
            Some(c) => c.get_opt(ar, ns, name).await,
            None => cache_less(&self.client, ar, ns).get_opt(name).await,
        }
    }

    /// The objects of a resource matching a label selector: from the watch-driven cache once
    /// it has listed, else by LIST.
    pub async fn list(
        &self,
        ar: &ApiResource,
        ns: Option<&str>,
        selector: &str,
    ) -> Result<Vec<kube::api::DynamicObject>, kube::Error> {
        match &self.caches {
            Some(c) => c.list(ar, ns, selector).await,
            None => Ok(cache_less(&self.client, ar, ns)
                .list(&kube::api::ListParams::default().labels(selector))
                .await?
                .items),
        }
    }

    /// Whether this target is the in-process simulator (nothing survives the process).
    pub fn is_simulated(&self) -> bool {
        matches!(self.clock, Clock::Virtual(_))
    }
}

fn cache_less(
    client: &kube::Client,
    ar: &ApiResource,
    ns: Option<&str>,
) -> kube::Api<kube::api::DynamicObject> {
    match ns {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, ar),
        None => kube::Api::all_with(client.clone(), ar),
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
        kinds: Arc::default(),
        caches: None,
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
        None if in_cluster() => {
            let config = Config::incluster()?;
            let account = service_account(&config.default_namespace);
            (
                config,
                None,
                format!("in-cluster, service account {account}"),
            )
        }
        None => return Err(TargetError::NoCluster),
    };
    let server = config.cluster_url.to_string();
    // Without kube-client's own retry layer: every request is bounded by its caller's time
    // instead (see `request`).
    let mut config = config;
    config.default_retry = false;
    // A plain-HTTP server (`sim serve`, `kubectl proxy`) needs no trust store: kube-client
    // would otherwise read the system's (every file in /etc/ssl/certs) for a connector unused.
    if config.cluster_url.scheme_str() == Some("http") && config.root_cert.is_none() {
        config.root_cert = Some(Vec::new());
    }
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&request::BoundedLayer)
        .build();
    let changes = clock::Changes::new();
    let caches = cache::Caches::new(client.clone(), changes.clone());
    let description = match &context {
        Some(c) => format!("target: cluster {c} at {server} ({source})"),
        None => format!("target: cluster ({source}) at {server}"),
    };
    Ok(Target {
        clock: Clock::Wall(changes),
        kinds: Arc::default(),
        caches: Some(Arc::new(caches)),
        client,
        description,
        context,
    })
}

/// The pod's service account token (client-go rest.InClusterConfig's tokenFile; kube's
/// `Config::incluster` reads and refreshes it from there).
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// `NAMESPACE/NAME` of the pod's service account, from its token's `sub` claim
/// (`system:serviceaccount:NS:NAME`, which both bound and legacy service account tokens carry:
/// pkg/serviceaccount/claims.go, legacy.go). The claim is only read, for the description: the
/// API server is what checks the token. A token that is not such a JWT gives `NAMESPACE/?`.
fn service_account(namespace: &str) -> String {
    std::fs::read_to_string(SERVICE_ACCOUNT_TOKEN)
        .ok()
        .and_then(|t| subject(t.trim()))
        .unwrap_or_else(|| format!("{namespace}/?"))
}

/// The service account a JWT's payload names in `sub`, as `NAMESPACE/NAME`.
fn subject(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    let (ns, name) = sub
        .strip_prefix("system:serviceaccount:")?
        .split_once(':')?;
    Some(format!("{ns}/{name}"))
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

/// The permission a Kubernetes "forbidden" message names, as `forbidden: VERB RESOURCE in
/// namespace NS` (the apiserver's wording is staging/src/k8s.io/apiserver/pkg/endpoints/
/// handlers/responsewriters/errors.go: `User "u" cannot VERB resource "R" in API group "G" in
/// the namespace "NS"`). A message in another form is kept as it is.
pub fn forbidden(message: &str) -> String {
    let Some(rest) = message.split_once(" cannot ").map(|(_, r)| r) else {
        return format!("forbidden: {message}");
    };
    let verb = rest.split_whitespace().next().unwrap_or_default();
    let quoted = |after: &str| -> Option<&str> {
        let tail = rest.split_once(after)?.1;
        let tail = tail.strip_prefix('"')?;
        tail.split_once('"').map(|(v, _)| v)
    };
    let Some(resource) = quoted("resource ") else {
        return format!("forbidden: {message}");
    };
    let group = quoted("in API group ").filter(|g| !g.is_empty());
    let mut out = format!("forbidden: {verb} {resource}");
    if let Some(g) = group {
        out += &format!(".{g}");
    }
    match quoted("in the namespace ") {
        Some(ns) => out += &format!(" in namespace {ns}"),
        None => out += " (cluster-wide)",
    }
    out
}

#[cfg(test)]
mod service_account_tests {
    use super::subject;

    #[test]
    fn a_token_names_its_service_account_in_sub() {
        // {"alg":"RS256"} . {"sub":"system:serviceaccount:chaos:playbook"} . signature
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2hhb3M6cGxheWJvb2sifQ.c2ln";
        assert_eq!(subject(jwt).as_deref(), Some("chaos/playbook"));
        assert_eq!(subject("pb-token"), None);
        // A user's token (not a service account's) names none.
        let user = "e30.eyJzdWIiOiJhbGljZSJ9.c2ln";
        assert_eq!(subject(user), None);
    }
}

#[cfg(test)]
mod forbidden_tests {
    use super::forbidden;

    #[test]
    fn a_forbidden_message_names_verb_resource_and_namespace() {
        let m = r#"podchaos.chaos-mesh.org "pb-1" is forbidden: User "system:serviceaccount:chaos:playbook" cannot create resource "podchaos" in API group "chaos-mesh.org" in the namespace "argo""#;
        assert_eq!(
            forbidden(m),
            "forbidden: create podchaos.chaos-mesh.org in namespace argo"
        );
        let m = r#"namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope"#;
        assert_eq!(forbidden(m), "forbidden: list namespaces (cluster-wide)");
        assert_eq!(forbidden("nope"), "forbidden: nope");
    }
}
