//! The registry of kinds the simulator serves: group, version, kind, plural, verbs, subresources.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use playbook_model::crds::{self, CrdHandle, CrdSummary};

/// Index of a resource in the [`Registry`].
pub type ResId = usize;

/// A resource the simulator serves, named by its registry key (`plural` or `plural.group`):
/// the typed name controllers use instead of a string, so that a typo does not compile
/// (client-go's `testing/fixture.go` ObjectTracker keys objects by GroupVersionResource the
/// same way). The constants of [`res`] are checked against [`Registry::standard`] by a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Res(&'static str);

impl Res {
    /// A resource by its registry key (for kinds [`res`] does not list).
    pub const fn new(key: &'static str) -> Res {
        Res(key)
    }

    /// The registry key, as [`Registry::lookup`] takes it.
    pub const fn key(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for Res {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Something that names a resource: a [`Res`] or, for code written before it, its key as a
/// string. An unknown string is a bug: [`crate::Ctx`] panics on one in debug builds (tests).
pub trait ResourceName {
    /// The registry key.
    fn resource_key(&self) -> &str;
}

impl ResourceName for Res {
    fn resource_key(&self) -> &str {
        self.0
    }
}

impl ResourceName for &str {
    fn resource_key(&self) -> &str {
        self
    }
}

impl ResourceName for String {
    fn resource_key(&self) -> &str {
        self
    }
}

/// The resources the controllers use, typed.
pub mod res {
    use super::Res;

    /// core/v1 Namespace.
    pub const NAMESPACES: Res = Res("namespaces");
    /// core/v1 Node.
    pub const NODES: Res = Res("nodes");
    /// core/v1 Pod.
    pub const PODS: Res = Res("pods");
    /// core/v1 Service.
    pub const SERVICES: Res = Res("services");
    /// core/v1 Endpoints.
    pub const ENDPOINTS: Res = Res("endpoints");
    /// core/v1 Event.
    pub const EVENTS: Res = Res("events");
    /// apps/v1 Deployment.
    pub const DEPLOYMENTS: Res = Res("deployments.apps");
    /// apps/v1 ReplicaSet.
    pub const REPLICASETS: Res = Res("replicasets.apps");
    /// apps/v1 StatefulSet.
    pub const STATEFULSETS: Res = Res("statefulsets.apps");
    /// autoscaling/v2 HorizontalPodAutoscaler.
    pub const HPAS: Res = Res("horizontalpodautoscalers.autoscaling");
    /// apiextensions.k8s.io/v1 CustomResourceDefinition.
    pub const CRDS: Res = Res("customresourcedefinitions.apiextensions.k8s.io");
    /// metrics.k8s.io/v1beta1 PodMetrics.
    pub const POD_METRICS: Res = Res("pods.metrics.k8s.io");
    /// metrics.k8s.io/v1beta1 NodeMetrics.
    pub const NODE_METRICS: Res = Res("nodes.metrics.k8s.io");
    /// serving.kserve.io/v1beta1 InferenceService.
    pub const INFERENCE_SERVICES: Res = Res("inferenceservices.serving.kserve.io");
    /// argoproj.io/v1alpha1 Workflow.
    pub const WORKFLOWS: Res = Res("workflows.argoproj.io");
    /// batch/v1 Job.
    pub const JOBS: Res = Res("jobs.batch");
    /// policy/v1 PodDisruptionBudget.
    pub const PDBS: Res = Res("poddisruptionbudgets.policy");

    /// Every constant above (checked by a test).
    pub const ALL: &[Res] = &[
        NAMESPACES,
        NODES,
        PODS,
        SERVICES,
        ENDPOINTS,
        EVENTS,
        DEPLOYMENTS,
        REPLICASETS,
        STATEFULSETS,
        HPAS,
        CRDS,
        POD_METRICS,
        NODE_METRICS,
        INFERENCE_SERVICES,
        WORKFLOWS,
        JOBS,
        PDBS,
    ];
}

/// The verbs of an ordinary read-write resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One kind the API serves.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Version served.
    pub version: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
    /// Singular name, e.g. `pod`.
    pub singular: String,
    /// Short names, e.g. `po`.
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Verbs served.
    pub verbs: Vec<String>,
    /// Has a `status` subresource (main-resource writes keep status; `/status` writes only status).
    pub status: bool,
    /// Has a `scale` subresource (autoscaling/v1 Scale over `spec.replicas`).
    pub scale: bool,
    /// Serves `pods/NAME/log`.
    pub log: bool,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// `metadata.generation` is maintained (bumped on spec change).
    pub generation: bool,
    /// The CRD behind a custom kind.
    pub crd: Option<Arc<CrdHandle>>,
    /// The CRD's `additionalPrinterColumns` (custom kinds).
    pub printer_columns: Value,
}

impl ResourceDef {
    /// `plural` for core, `plural.group` otherwise: how kubectl and [`Registry::lookup`] name it.
    pub fn key(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Does it serve `verb`?
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// True for custom kinds (backed by a CRD).
    pub fn is_custom(&self) -> bool {
        self.crd.is_some()
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    short: &'static [&'static str],
    namespaced: bool,
    status: bool,
    scale: bool,
    all: bool,
    generation: bool,
}

const fn b(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
) -> Builtin {
    Builtin {
        group,
        version,
        kind,
        plural,
        short: &[],
        namespaced: true,
        status: false,
        scale: false,
        all: false,
        generation: false,
    }
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        short: &["ns"],
        namespaced: false,
        status: true,
        ..b("", "v1", "Namespace", "namespaces")
    },
    Builtin {
        short: &["no"],
        namespaced: false,
        status: true,
        ..b("", "v1", "Node", "nodes")
    },
    Builtin {
        short: &["po"],
        status: true,
        all: true,
        ..b("", "v1", "Pod", "pods")
    },
    Builtin {
        short: &["svc"],
        status: true,
        all: true,
        ..b("", "v1", "Service", "services")
    },
    Builtin {
        short: &["ep"],
        ..b("", "v1", "Endpoints", "endpoints")
    },
    Builtin {
        short: &["cm"],
        ..b("", "v1", "ConfigMap", "configmaps")
    },
    // Identities and their permissions, for the RBAC the simulator enforces (api/rbac.rs).
    b("", "v1", "Secret", "secrets"),
    Builtin {
        short: &["sa"],
        ..b("", "v1", "ServiceAccount", "serviceaccounts")
    },
    b("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
    Builtin {
        namespaced: false,
        ..b(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
        )
    },
    Builtin {
        namespaced: false,
        ..b(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
        )
    },
    Builtin {
        short: &["ev"],
        ..b("", "v1", "Event", "events")
    },
    Builtin {
        short: &["deploy"],
        status: true,
        scale: true,
        all: true,
        generation: true,
        ..b("apps", "v1", "Deployment", "deployments")
    },
    Builtin {
        short: &["rs"],
        status: true,
        scale: true,
        all: true,
        generation: true,
        ..b("apps", "v1", "ReplicaSet", "replicasets")
    },
    Builtin {
        short: &["sts"],
        status: true,
        scale: true,
        all: true,
        generation: true,
        ..b("apps", "v1", "StatefulSet", "statefulsets")
    },
    Builtin {
        status: true,
        all: true,
        generation: true,
        ..b("batch", "v1", "Job", "jobs")
    },
    Builtin {
        short: &["pdb"],
        status: true,
        generation: true,
        ..b(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
        )
    },
    Builtin {
        short: &["hpa"],
        status: true,
        all: true,
        generation: true,
        ..b(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
        )
    },
    Builtin {
        short: &["crd", "crds"],
        namespaced: false,
        status: true,
        generation: true,
        ..b(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
        )
    },
    // Held by `playbook run` so that two runs never inject on one cluster at once
    // (client-go tools/leaderelection/resourcelock/leaselock.go).
    b("coordination.k8s.io", "v1", "Lease", "leases"),
    // Stored, defaulted, validated and discovered (what `playbook deploy` renders); no CronJob
    // controller runs, so a CronJob never creates its Jobs here (Jobs run: controllers/job.rs).
    Builtin {
        short: &["cj"],
        status: true,
        all: true,
        generation: true,
        ..b("batch", "v1", "CronJob", "cronjobs")
    },
    b("metrics.k8s.io", "v1beta1", "PodMetrics", "pods"),
    Builtin {
        namespaced: false,
        ..b("metrics.k8s.io", "v1beta1", "NodeMetrics", "nodes")
    },
];

/// How objects of another served version map to the stored ones: the API server keeps each
/// object once, in its storage version, and converts on every read and write
/// (staging/src/k8s.io/apiserver/pkg/endpoints/handlers: decode to the hub version, encode to
/// the request's). Storage versions as test/integration/etcd/data.go states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// autoscaling/v1 HorizontalPodAutoscaler; stored as autoscaling/v2
    /// (pkg/apis/autoscaling/v1/conversion.go).
    HpaV1,
    /// events.k8s.io/v1 Event; stored as a core v1 Event, the two cohabit under
    /// `/registry/events` (pkg/kubeapiserver/default_storage_factory_builder.go
    /// `AddCohabitatingResources`; pkg/apis/events/v1/conversion.go).
    EventsV1,
}

/// Index of a [`View`] in the [`Registry`].
pub type ViewId = usize;

/// Another group-version that serves a stored kind, converted on the way in and out.
#[derive(Debug, Clone)]
pub struct View {
    /// The kind as this group-version serves it (names, verbs, subresources).
    pub def: ResourceDef,
    /// The stored kind.
    pub storage: ResId,
    /// The conversion between the two.
    pub conversion: Conversion,
}

/// All kinds served, with lookups by key, by group/version/plural and by apiVersion/kind.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    defs: Vec<ResourceDef>,
    by_key: HashMap<String, ResId>,
    by_gvk: HashMap<(String, String), ResId>,
    views: Vec<View>,
}

/// What a (group, version, resource) of a request resolves to: the stored kind, and the view
/// through which it is served when that is not the storage version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The stored kind.
    pub res: ResId,
    /// The other version's view, if the request names one.
    pub view: Option<ViewId>,
}

impl Registry {
    /// The built-in kinds plus the custom kinds of the embedded CRDs (scanned cheaply, not parsed).
    pub fn standard() -> Self {
        let mut r = Registry::default();
        for bi in BUILTINS {
            let read_only = bi.group == "metrics.k8s.io";
            r.add(ResourceDef {
                group: bi.group.into(),
                version: bi.version.into(),
                kind: bi.kind.into(),
                plural: bi.plural.into(),
                singular: bi.kind.to_lowercase(),
                short_names: bi.short.iter().map(|s| s.to_string()).collect(),
                namespaced: bi.namespaced,
                verbs: if read_only {
                    vec!["get".into(), "list".into()]
                } else if bi.kind == "Namespace" {
                    ALL_VERBS
                        .iter()
                        .filter(|v| **v != "deletecollection")
                        .map(|s| s.to_string())
                        .collect()
                } else {
                    ALL_VERBS.iter().map(|s| s.to_string()).collect()
                },
                status: bi.status,
                scale: bi.scale,
                log: bi.kind == "Pod",
                categories: if bi.all { vec!["all".into()] } else { vec![] },
                generation: bi.generation,
                crd: None,
                printer_columns: Value::Array(vec![]),
            });
        }
        // A real v1.32 server serves these kinds in a second group-version too.
        for (storage, group, version, conversion) in [
            (
                "horizontalpodautoscalers.autoscaling",
                "autoscaling",
                "v1",
                Conversion::HpaV1,
            ),
            ("events", "events.k8s.io", "v1", Conversion::EventsV1),
        ] {
            if let Some(id) = r.by_key.get(storage).copied() {
                let mut def = r.defs[id].clone();
                def.group = group.into();
                def.version = version.into();
                r.views.push(View {
                    def,
                    storage: id,
                    conversion,
                });
            }
        }
        for (path, text) in crds::EMBEDDED {
            match crds::scan(text) {
                Ok(sum) => {
                    r.add_crd(&sum, Arc::new(CrdHandle::embedded(text)));
                }
                Err(e) => eprintln!("playbook sim: cannot read embedded CRD {path}: {e}"),
            }
        }
        r
    }

    /// Registers (or replaces) the kind a CRD defines; returns its id.
    pub fn add_crd(&mut self, sum: &CrdSummary, handle: Arc<CrdHandle>) -> ResId {
        let n = |k: &str| {
            sum.names
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let list = |k: &str| -> Vec<String> {
            sum.names
                .get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let kind = n("kind");
        let singular = if n("singular").is_empty() {
            kind.to_lowercase()
        } else {
            n("singular")
        };
        self.add(ResourceDef {
            group: sum.group.clone(),
            version: sum.version.clone(),
            kind,
            plural: n("plural"),
            singular,
            short_names: list("shortNames"),
            namespaced: sum.scope != "Cluster",
            verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
            status: sum.subresources.get("status").is_some(),
            scale: sum.subresources.get("scale").is_some(),
            log: false,
            categories: list("categories"),
            generation: true,
            crd: Some(handle),
            printer_columns: sum.printer_columns.clone(),
        })
    }

    /// Adds a kind, replacing one with the same key.
    pub fn add(&mut self, def: ResourceDef) -> ResId {
        let key = def.key();
        if let Some(&id) = self.by_key.get(&key) {
            self.by_gvk
                .insert((def.api_version(), def.kind.clone()), id);
            self.defs[id] = def;
            return id;
        }
        let id = self.defs.len();
        self.by_key.insert(key, id);
        self.by_gvk
            .insert((def.api_version(), def.kind.clone()), id);
        self.defs.push(def);
        id
    }

    /// The definition of `id`.
    pub fn def(&self, id: ResId) -> &ResourceDef {
        &self.defs[id]
    }

    /// All definitions, in registration order (their index is their [`ResId`]).
    pub fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    /// Finds a resource by key: `pods`, `deployments.apps`, `podchaos.chaos-mesh.org`; a bare
    /// plural of a non-core kind also works when only one group has it.
    pub fn lookup(&self, name: &str) -> Option<ResId> {
        if let Some(&id) = self.by_key.get(name) {
            return Some(id);
        }
        let mut found = self
            .defs
            .iter()
            .enumerate()
            .filter(|&(id, d)| d.plural == name && self.is_served(id));
        match (found.next(), found.next()) {
            (Some((id, _)), None) => Some(id),
            _ => None,
        }
    }

    /// Finds a typed resource (see [`Res`]).
    pub fn id(&self, r: Res) -> Option<ResId> {
        self.by_key.get(r.key()).copied()
    }

    /// Finds by URL parts: group ("" for core), version, plural.
    pub fn by_gvr(&self, group: &str, version: &str, plural: &str) -> Option<ResId> {
        let key = if group.is_empty() {
            plural.to_string()
        } else {
            format!("{plural}.{group}")
        };
        self.by_key
            .get(&key)
            .copied()
            .filter(|&id| self.defs[id].version == version)
    }

    /// The other group-versions serving stored kinds.
    pub fn views(&self) -> &[View] {
        &self.views
    }

    /// The view `id`.
    pub fn view(&self, id: ViewId) -> &View {
        &self.views[id]
    }

    /// Resolves URL parts (group, version, plural) to a stored kind, through a view when the
    /// group-version is not the kind's storage version.
    pub fn served(&self, group: &str, version: &str, plural: &str) -> Option<Served> {
        if let Some(res) = self.by_gvr(group, version, plural) {
            return Some(Served { res, view: None });
        }
        self.views
            .iter()
            .position(|v| {
                v.def.group == group && v.def.version == version && v.def.plural == plural
            })
            .map(|i| Served {
                res: self.views[i].storage,
                view: Some(i),
            })
    }

    /// Stops serving a kind (its CRD is gone): lookups no longer find it and discovery no
    /// longer lists it. Its id stays allocated (ids index the store's tables); a CRD created
    /// again registers the kind under a new id.
    pub fn withdraw(&mut self, id: ResId) {
        self.by_key.retain(|_, v| *v != id);
        self.by_gvk.retain(|_, v| *v != id);
    }

    /// Whether `id` is served (not withdrawn).
    fn is_served(&self, id: ResId) -> bool {
        self.by_key.get(&self.defs[id].key()) == Some(&id)
    }

    /// Every served (definition, view) pair: stored kinds first, in registration order, then
    /// the views.
    pub fn served_defs(&self) -> impl Iterator<Item = (&ResourceDef, Option<ViewId>)> {
        let served = (0..self.defs.len()).filter(|&id| self.is_served(id));
        served.map(|id| (&self.defs[id], None)).chain(
            self.views
                .iter()
                .enumerate()
                .map(|(i, v)| (&v.def, Some(i))),
        )
    }

    /// Finds by `apiVersion` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<ResId> {
        self.by_gvk
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_registry_has_builtins_and_crds() {
        let r = Registry::standard();
        let pods = r.lookup("pods").expect("pods");
        assert_eq!(r.def(pods).kind, "Pod");
        assert!(r.def(pods).status && r.def(pods).log);
        let d = r.lookup("deployments").expect("bare plural");
        assert_eq!(r.lookup("deployments.apps"), Some(d));
        assert!(r.def(d).scale);
        assert_eq!(r.by_gvr("apps", "v1", "deployments"), Some(d));
        let pc = r
            .by_kind("chaos-mesh.org/v1alpha1", "PodChaos")
            .expect("podchaos");
        assert_eq!(r.def(pc).plural, "podchaos");
        assert!(r.def(pc).is_custom());
        // two Workflow kinds: bare plural is ambiguous
        assert_eq!(r.lookup("workflows"), None);
        assert!(r.lookup("workflows.argoproj.io").is_some());
        let isvc = r
            .lookup("inferenceservices.serving.kserve.io")
            .expect("isvc");
        assert_eq!(r.def(isvc).short_names, vec!["isvc".to_string()]);
        assert!(r.def(isvc).status);
        assert_eq!(
            r.lookup("pods.metrics.k8s.io")
                .map(|i| r.def(i).kind.clone()),
            Some("PodMetrics".into())
        );
    }

    #[test]
    fn every_typed_resource_is_served() {
        let r = Registry::standard();
        for x in res::ALL {
            assert!(r.id(*x).is_some(), "{x} is not in the standard registry");
        }
    }
}
