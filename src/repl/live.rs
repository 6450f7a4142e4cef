//! Live names from the cluster for completion (namespaces, workloads, pods, services, pod
//! labels), read through the session's `kube::Client` with a short timeout and a short cache.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::api::{Api, ListParams};
use kube::core::NamespaceResourceScope;
use serde::de::DeserializeOwned;

/// How long names are kept before they are read again.
const FRESH: Duration = Duration::from_secs(10);
/// How long completion waits for the cluster.
const WAIT: Duration = Duration::from_millis(1500);

/// What kind of names an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Namespaces,
    /// `deployment/NAME`, `statefulset/NAME`.
    Workloads,
    /// Workloads and `pod/NAME`.
    Objects,
    Services,
    /// `key=value` of the pods' labels.
    Labels,
}

impl Kind {
    /// The names a parameter called `param` takes (from the function's signature).
    pub fn of_param(param: &str) -> Option<Kind> {
        Some(match param {
            "namespace" => Kind::Namespaces,
            "workload" => Kind::Workloads,
            "what" => Kind::Objects,
            "service" => Kind::Services,
            "selector" => Kind::Labels,
            _ => return None,
        })
    }
}

/// Names by kind and namespace, with when they were read.
type Cache = HashMap<(Kind, String), (Instant, Vec<String>)>;

/// The cluster's names, cached briefly.
pub(crate) struct Live {
    client: kube::Client,
    rt: crate::connection::Rt,
    cache: Mutex<Cache>,
}

impl Live {
    pub fn new(client: kube::Client, rt: crate::connection::Rt) -> Self {
        Live {
            client,
            rt,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The names of `kind` (in namespace `ns` where it applies); empty if the cluster does not
    /// answer in time.
    pub fn names(&self, kind: Kind, ns: &str) -> Vec<String> {
        let key = (kind, ns.to_string());
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, names)) = cache.get(&key) {
                if at.elapsed() < FRESH {
                    return names.clone();
                }
            }
        }
        let names = self.fetch(kind, ns);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, (Instant::now(), names.clone()));
        }
        names
    }

    fn fetch(&self, kind: Kind, ns: &str) -> Vec<String> {
        match kind {
            Kind::Namespaces => {
                let api: Api<Namespace> = Api::all(self.client.clone());
                self.list(&api, |n: &Namespace| n.metadata.name.clone())
            }
            Kind::Workloads => {
                let mut out = self.in_ns::<Deployment>(ns, "deployment");
                out.extend(self.in_ns::<StatefulSet>(ns, "statefulset"));
                out
            }
            Kind::Objects => {
                let mut out = self.names(Kind::Workloads, ns);
                out.extend(self.in_ns::<Pod>(ns, "pod"));
                out
            }
            Kind::Services => self.in_ns::<Service>(ns, ""),
            Kind::Labels => {
                let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                let labels: BTreeSet<String> = self
                    .list(&api, |p: &Pod| {
                        Some(
                            p.metadata
                                .labels
                                .iter()
                                .flatten()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join("\n"),
                        )
                    })
                    .iter()
                    .flat_map(|l| l.lines().map(str::to_string).collect::<Vec<_>>())
                    .collect();
                labels.into_iter().collect()
            }
        }
    }

    /// Names of `K` in `ns`, as `prefix/NAME` (or `NAME` for an empty prefix).
    fn in_ns<K>(&self, ns: &str, prefix: &str) -> Vec<String>
    where
        K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        if ns.is_empty() {
            return Vec::new();
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), ns);
        self.list(&api, |o: &K| {
            let name = o.meta().name.clone()?;
            Some(if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            })
        })
    }

    fn list<K>(&self, api: &Api<K>, name: impl Fn(&K) -> Option<String>) -> Vec<String>
    where
        K: Clone + DeserializeOwned + std::fmt::Debug,
    {
        let listed = self
            .rt
            .block_on(async { tokio::time::timeout(WAIT, api.list(&ListParams::default())).await });
        match listed {
            Ok(Ok(list)) => list.items.iter().filter_map(name).collect(),
            _ => Vec::new(),
        }
    }
}
