//! Kinds as kubectl resolves them — plural, singular, kind, short name (`po`, `deploy`, `sts`,
//! `svc`, `hpa`, `isvc`), or `name.group` / `name.version.group` — by discovery per API group,
//! on demand, cached for the target's life. The order is deterministic: the core group, then
//! `apps`, then the groups in the order the server lists them (its priority order, as
//! kubectl's RESTMapper takes it: staging/src/k8s.io/client-go/restmapper/discovery.go), with
//! aggregated metrics APIs last. Where the server serves aggregated discovery
//! (apidiscovery.k8s.io/v2, as kubectl reads it: staging/src/k8s.io/client-go/discovery/
//! aggregated_discovery.go), `/api` and `/apis` give every group, version and resource in two
//! requests, read on first use; a version it marks `Stale` (its API service unreachable) counts
//! as unavailable. Otherwise each group's list is read when a search reaches it. A group whose
//! resource list cannot be read (an aggregated API answering 503) is reported once and skipped.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::core::GroupVersionKind;
use kube::core::discovery::v2::{APIGroupDiscoveryList, APIResourceDiscovery};
use kube::discovery::ApiResource;

use super::request;

/// How long one group's resource list may take (retries included) before it is skipped.
const GROUP_WINDOW: Duration = Duration::from_secs(5);

/// A resolved kind: its API resource and whether it lives in namespaces.
#[derive(Debug, Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Why a kind could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error("the cluster has no kind {0:?}{1}")]
    Unknown(String, String),
    #[error("discovering the cluster's kinds: {0}")]
    Api(#[from] kube::Error),
}

/// The discovery cache of one target.
#[derive(Default)]
pub struct Kinds {
    /// `/apis`: (group, preferred group/version), in the server's order; read once.
    groups: Mutex<Option<Vec<(String, String)>>>,
    /// Resource lists by group/version ("v1" for core).
    lists: Mutex<HashMap<String, Arc<Vec<APIResource>>>>,
    /// Kinds resolved so far, by the text that named them.
    resolved: Mutex<HashMap<String, Kind>>,
    /// Whether aggregated discovery was asked for (once).
    aggregated: AtomicBool,
    /// Groups whose list could not be read (not asked again), with why.
    broken: Mutex<HashMap<String, String>>,
    warned: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Aggregated APIs that are often unavailable on real clusters: asked last.
fn aggregated_last(group: &str) -> bool {
    group.ends_with("metrics.k8s.io")
}

fn matches(r: &APIResource, name: &str) -> bool {
    !r.name.contains('/')
        && (r.name == name
            || r.singular_name == name
            || r.kind.to_ascii_lowercase() == name
            || r.short_names
                .as_ref()
                .is_some_and(|s| s.iter().any(|x| x == name)))
}

/// A resource of aggregated discovery as legacy discovery lists it.
fn resource(r: &APIResourceDiscovery) -> APIResource {
    APIResource {
        name: r.resource.clone().unwrap_or_default(),
        singular_name: r.singular_resource.clone().unwrap_or_default(),
        kind: r
            .response_kind
            .as_ref()
            .and_then(|k| k.kind.clone())
            .unwrap_or_default(),
        namespaced: r.scope.as_deref() == Some("Namespaced"),
        short_names: Some(r.short_names.clone()),
        categories: Some(r.categories.clone()),
        verbs: r.verbs.clone(),
        ..Default::default()
    }
}

fn kind_of(gv: &str, r: &APIResource) -> Kind {
    let (group, version) = gv.split_once('/').unwrap_or(("", gv));
    Kind {
        resource: ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: gv.into(),
            kind: r.kind.clone(),
            plural: r.name.clone(),
        },
        namespaced: r.namespaced,
    }
}

impl Kinds {
    /// The preferred group/versions to search, in order; `only` restricts to one group.
    async fn order(
        &self,
        client: &kube::Client,
        only: Option<&str>,
    ) -> Result<Vec<String>, kube::Error> {
        let mut out = Vec::new();
        if only.is_none_or(|g| g.is_empty() || g == "core") {
            out.push("v1".to_string());
        }
        if only == Some("") || only == Some("core") {
            return Ok(out);
        }
        if only.is_none() {
            out.push("apps/v1".to_string());
        }
        self.read_aggregated(client).await;
        let known = lock(&self.groups).clone();
        let groups = match known {
            Some(g) => g,
            None => {
                let list = client.list_api_groups().await?;
                let g: Vec<(String, String)> = list
                    .groups
                    .iter()
                    .filter_map(|g| {
                        let gv = g
                            .preferred_version
                            .as_ref()
                            .or(g.versions.first())?
                            .group_version
                            .clone();
                        Some((g.name.clone(), gv))
                    })
                    .collect();
                *lock(&self.groups) = Some(g.clone());
                g
            }
        };
        let (mut first, last): (Vec<_>, Vec<_>) = groups
            .into_iter()
            .filter(|(g, _)| only.is_none_or(|o| o == g))
            .partition(|(g, _)| !aggregated_last(g));
        first.extend(last);
        for (_, gv) in first {
            if !out.contains(&gv) {
                out.push(gv);
            }
        }
        Ok(out)
    }

    /// The resource list of `gv`, read once; `None` when its group is unavailable.
    async fn list(
        &self,
        client: &kube::Client,
        gv: &str,
    ) -> Result<Option<Arc<Vec<APIResource>>>, kube::Error> {
        self.read_aggregated(client).await;
        if let Some(l) = lock(&self.lists).get(gv) {
            return Ok(Some(l.clone()));
        }
        if let Some(why) = lock(&self.broken).get(gv) {
            self.warn(gv, why);
            return Ok(None);
        }
        let fetched = if gv == "v1" {
            client.list_core_api_resources("v1").await
        } else {
            let budget = request::narrowed(GROUP_WINDOW);
            request::scoped(budget, client.list_api_group_resources(gv)).await
        };
        match fetched {
            Ok(l) => {
                let l = Arc::new(l.resources);
                lock(&self.lists).insert(gv.to_string(), l.clone());
                Ok(Some(l))
            }
            // The core group and apps must answer; any other group may be broken.
            Err(e) if gv == "v1" || gv == "apps/v1" => Err(e),
            Err(e) => {
                let why = e.to_string();
                self.warn(gv, &why);
                lock(&self.broken).insert(gv.to_string(), why);
                Ok(None)
            }
        }
    }

    /// Says once that `gv` is unavailable and why.
    fn warn(&self, gv: &str, why: &str) {
        if lock(&self.warned).insert(gv.to_string()) {
            eprintln!("warning: API group {gv} is unavailable ({why}); its kinds are skipped");
        }
    }

    /// Reads aggregated discovery once (see the module documentation): the group order and
    /// every version's resource list. A server that does not serve it (an error, or an answer
    /// without the core group) leaves everything to the per-group reads.
    async fn read_aggregated(&self, client: &kube::Client) {
        if self.aggregated.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(core) = client.list_core_api_versions_aggregated().await else {
            return;
        };
        if !core.items.iter().any(|g| {
            g.versions
                .iter()
                .any(|v| v.version.as_deref() == Some("v1"))
        }) {
            return;
        }
        let Ok(groups) = client.list_api_groups_aggregated().await else {
            return;
        };
        self.absorb(&core, &groups);
    }

    /// Takes in aggregated discovery: `core` from `/api`, `groups` from `/apis`.
    fn absorb(&self, core: &APIGroupDiscoveryList, groups: &APIGroupDiscoveryList) {
        let mut order = Vec::new();
        let mut lists = lock(&self.lists);
        let mut broken = lock(&self.broken);
        for (group, core) in core
            .items
            .iter()
            .map(|g| (g, true))
            .chain(groups.items.iter().map(|g| (g, false)))
        {
            let name = group
                .metadata
                .as_ref()
                .and_then(|m| m.name.clone())
                .unwrap_or_default();
            for (i, v) in group.versions.iter().enumerate() {
                let Some(version) = v.version.as_deref() else {
                    continue;
                };
                let gv = if core {
                    version.to_string()
                } else {
                    format!("{name}/{version}")
                };
                // Versions come in the server's order of preference.
                if i == 0 && !core {
                    order.push((name.clone(), gv.clone()));
                }
                if v.freshness.as_deref() == Some("Stale") {
                    broken.insert(
                        gv,
                        "stale in aggregated discovery: its API service is unavailable".into(),
                    );
                } else {
                    lists
                        .entry(gv)
                        .or_insert_with(|| Arc::new(v.resources.iter().map(resource).collect()));
                }
            }
        }
        *lock(&self.groups) = Some(order);
    }

    /// Resolves `text` as kubectl does (see the module documentation).
    pub async fn resolve(&self, client: &kube::Client, text: &str) -> Result<Kind, KindError> {
        if let Some(k) = lock(&self.resolved).get(text) {
            return Ok(k.clone());
        }
        let kind = self.search(client, text).await?;
        lock(&self.resolved).insert(text.to_string(), kind.clone());
        Ok(kind)
    }

    async fn search(&self, client: &kube::Client, text: &str) -> Result<Kind, KindError> {
        let lower = text.to_ascii_lowercase();
        let (name, group, version) = match lower.split_once('.') {
            None => (lower.as_str(), None, None),
            Some((name, rest)) => match rest.split_once('.') {
                // `name.version.group` when the second part looks like a version.
                Some((v, g))
                    if v.starts_with('v') && v[1..].starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    (name, Some(g), Some(v))
                }
                _ => (name, Some(rest), None),
            },
        };
        let order: Vec<String> = match (group, version) {
            (Some(g), Some(v)) => vec![format!("{g}/{v}")],
            _ => self.order(client, group).await?,
        };
        let mut skipped = Vec::new();
        for gv in &order {
            match self.list(client, gv).await? {
                Some(list) => {
                    if let Some(r) = list.iter().find(|r| matches(r, name)) {
                        return Ok(kind_of(gv, r));
                    }
                }
                None => skipped.push(gv.clone()),
            }
        }
        let note = if skipped.is_empty() {
            String::new()
        } else {
            format!(
                " (unavailable API groups not searched: {})",
                skipped.join(", ")
            )
        };
        Err(KindError::Unknown(text.to_string(), note))
    }

    /// The resource of an exact group/version/kind (one resource list, read once).
    pub async fn resource(
        &self,
        client: &kube::Client,
        gvk: &GroupVersionKind,
    ) -> Result<Kind, KindError> {
        let gv = if gvk.group.is_empty() {
            gvk.version.clone()
        } else {
            format!("{}/{}", gvk.group, gvk.version)
        };
        let list = match self.list(client, &gv).await? {
            Some(l) => l,
            None => {
                let why = lock(&self.broken).get(&gv).cloned().unwrap_or_default();
                return Err(KindError::Unknown(
                    format!("{gv} {}", gvk.kind),
                    format!(" (API group unavailable: {why})"),
                ));
            }
        };
        list.iter()
            .find(|r| !r.name.contains('/') && r.kind == gvk.kind)
            .map(|r| kind_of(&gv, r))
            .ok_or_else(|| KindError::Unknown(format!("{gv} {}", gvk.kind), String::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aggregated discovery as `/api` and `/apis` answer it, with serving.kserve.io `Stale`.
    fn aggregated(stale: &str) -> (APIGroupDiscoveryList, APIGroupDiscoveryList) {
        let group = |name: Option<&str>,
                     version: &str,
                     freshness: &str,
                     kind: &str,
                     plural: &str| {
            serde_json::json!({
                "metadata": name.map(|n| serde_json::json!({"name": n})),
                "versions": [{"version": version, "freshness": freshness, "resources": [{
                    "resource": plural, "scope": "Namespaced", "singularResource": kind.to_lowercase(),
                    "responseKind": {"group": name.unwrap_or(""), "version": version, "kind": kind},
                    "verbs": ["get", "list"], "shortNames": [],
                }]}],
            })
        };
        let list = |items: Vec<serde_json::Value>| {
            serde_json::from_value(serde_json::json!({"items": items})).unwrap()
        };
        (
            list(vec![group(None, "v1", "Current", "Pod", "pods")]),
            list(vec![
                group(Some("apps"), "v1", "Current", "Deployment", "deployments"),
                group(
                    Some("serving.kserve.io"),
                    "v1beta1",
                    stale,
                    "InferenceService",
                    "inferenceservices",
                ),
            ]),
        )
    }

    #[test]
    fn aggregated_discovery_resolves_and_a_stale_group_is_unavailable() {
        let rt = crate::connection::Rt::new().unwrap();
        let _in = rt.enter();
        // A client that is never asked: everything comes from the aggregated documents.
        let client =
            crate::connection::simulated(1, playbook_sim::platform::Scenario::Empty).client;
        for (freshness, found) in [("Current", true), ("Stale", false)] {
            let kinds = Kinds::default();
            kinds.aggregated.store(true, Ordering::Release);
            let (core, groups) = aggregated(freshness);
            kinds.absorb(&core, &groups);
            let isvc = rt.block_on(kinds.resolve(&client, "inferenceservice"));
            match isvc {
                Ok(k) => {
                    assert!(found, "a stale group was searched");
                    assert_eq!(k.resource.api_version, "serving.kserve.io/v1beta1");
                    assert!(k.namespaced);
                }
                Err(e) => {
                    assert!(!found, "{e}");
                    let said = e.to_string();
                    assert!(
                        said.contains("not searched: serving.kserve.io/v1beta1"),
                        "{said}"
                    );
                }
            }
            let deploy = rt.block_on(kinds.resolve(&client, "deployment")).unwrap();
            assert_eq!(deploy.resource.kind, "Deployment");
        }
    }

    fn res(name: &str, singular: &str, kind: &str, short: &[&str]) -> APIResource {
        APIResource {
            name: name.into(),
            singular_name: singular.into(),
            kind: kind.into(),
            namespaced: true,
            short_names: Some(short.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn a_kind_matches_by_plural_singular_kind_and_short_name_never_a_subresource() {
        let pods = res("pods", "pod", "Pod", &["po"]);
        for n in ["pods", "pod", "po"] {
            assert!(matches(&pods, n), "{n}");
        }
        assert!(!matches(&pods, "deploy"));
        let status = res("pods/status", "", "Pod", &[]);
        assert!(!matches(&status, "pod"));
        let no_singular = res("inferenceservices", "", "InferenceService", &["isvc"]);
        assert!(matches(&no_singular, "inferenceservice"));
        assert!(matches(&no_singular, "isvc"));
    }

    #[test]
    fn aggregated_metrics_apis_go_last() {
        assert!(aggregated_last("metrics.k8s.io"));
        assert!(aggregated_last("custom.metrics.k8s.io"));
        assert!(!aggregated_last("apps"));
    }
}
