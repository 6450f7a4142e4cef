//! Kinds as kubectl resolves them — plural, singular, kind, short name (`po`, `deploy`, `sts`,
//! `svc`, `hpa`, `isvc`), or `name.group` / `name.version.group` — by discovery per API group,
//! on demand, cached for the target's life. The order is deterministic: the core group, then
//! `apps`, then the groups in the order the server lists them (its priority order, as
//! kubectl's RESTMapper takes it: staging/src/k8s.io/client-go/restmapper/discovery.go), with
//! aggregated metrics APIs last. A group whose resource list cannot be read (an aggregated API
//! answering 503) is reported once and skipped; no request walks every group up front.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::core::GroupVersionKind;
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
        if let Some(l) = lock(&self.lists).get(gv) {
            return Ok(Some(l.clone()));
        }
        if lock(&self.broken).contains_key(gv) {
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
                if lock(&self.warned).insert(gv.to_string()) {
                    eprintln!(
                        "warning: API group {gv} is unavailable ({why}); its kinds are skipped"
                    );
                }
                lock(&self.broken).insert(gv.to_string(), why);
                Ok(None)
            }
        }
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
