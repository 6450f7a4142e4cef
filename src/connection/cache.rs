//! Watch-driven caches for a real cluster (and `sim serve`): the first read of a kind in a
//! namespace starts a reflector (kube-runtime: one LIST, then one long WATCH) scoped to that
//! namespace, and waits for its initial list; reads of that kind there are then answered from
//! its store instead of re-fetched, and its events wake waiting conditions at once. An object
//! the cache does not hold is confirmed by a GET (it may have been created a moment ago). A
//! watch that cannot be established is reported once as a warning, and reads go to the API
//! server meanwhile.
//!
//! Not used in virtual time: there the simulation moves only when the run waits, and a cache
//! fed by another task would lag it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;

use super::request;

/// One kind in one namespace (or cluster-wide).
type Key = (String, String, Option<String>);

struct Entry {
    store: Store<DynamicObject>,
    ready: Arc<AtomicBool>,
    /// Notified when the reflector has listed, or failed to.
    settled: Arc<Notify>,
}

/// How long the first read of a kind waits for its reflector's initial list before it reads
/// from the API server instead.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);

/// The caches of one target.
pub struct Caches {
    client: kube::Client,
    entries: Mutex<HashMap<Key, Arc<Entry>>>,
    changes: Arc<super::Changes>,
    warned: Arc<Mutex<HashSet<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn key(ar: &ApiResource, ns: Option<&str>) -> Key {
    (
        ar.api_version.clone(),
        ar.plural.clone(),
        ns.map(str::to_string),
    )
}

fn api(client: &kube::Client, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

impl Caches {
    /// Caches for `client`; they tell `changes` of every event and every read they answer.
    pub fn new(client: kube::Client, changes: Arc<super::Changes>) -> Caches {
        Caches {
            client,
            entries: Mutex::default(),
            changes,
            warned: Arc::default(),
        }
    }

    /// The synced store of (`ar`, `ns`). The first use starts its reflector and waits for its
    /// initial list (at most [`FIRST_LIST_WAIT`], within the caller's budget): that one LIST
    /// answers the read, with no request of its own.
    async fn synced(&self, ar: &ApiResource, ns: Option<&str>) -> Option<Arc<Entry>> {
        let k = key(ar, ns);
        if let Some(e) = lock(&self.entries).get(&k) {
            return e.ready.load(Ordering::Acquire).then(|| e.clone());
        }
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let writer = reflector::store::Writer::new(ar.clone());
        let entry = Arc::new(Entry {
            store: writer.as_reader(),
            ready: Arc::new(AtomicBool::new(false)),
            settled: Arc::new(Notify::new()),
        });
        lock(&self.entries).insert(k, entry.clone());
        let settled = entry.settled.clone();
        let listed = settled.notified();
        let mut listed = std::pin::pin!(listed);
        listed.as_mut().enable();
        let stream =
            watcher(api(&self.client, ar, ns), watcher::Config::default()).default_backoff();
        let ready = entry.ready.clone();
        let settled = settled.clone();
        let changes = self.changes.clone();
        let warned = self.warned.clone();
        let what = format!(
            "{}{}",
            ar.plural,
            ns.map(|n| format!(" in {n}")).unwrap_or_default()
        );
        rt.spawn(async move {
            let mut events = std::pin::pin!(reflector::reflector(writer, stream));
            while let Some(e) = events.next().await {
                match e {
                    Ok(watcher::Event::InitDone) => {
                        ready.store(true, Ordering::Release);
                        settled.notify_waiters();
                        changes.changed();
                    }
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                    Ok(_) => changes.changed(),
                    Err(e) => {
                        // Reads of this kind go to the API server until the watch is back.
                        ready.store(false, Ordering::Release);
                        settled.notify_waiters();
                        if lock(&warned).insert(what.clone()) {
                            eprintln!(
                                "warning: cannot watch {what} ({e}); reading it from the API server instead"
                            );
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        let budget = request::narrowed(FIRST_LIST_WAIT);
        tokio::select! {
            () = listed => {}
            () = tokio::time::sleep_until(budget.until.into()) => {}
            () = request::cancelled(&budget) => {}
        }
        entry.ready.load(Ordering::Acquire).then_some(entry)
    }

    /// One object, from the cache when it holds it, else by GET.
    pub async fn get_opt(
        &self,
        ar: &ApiResource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<DynamicObject>, kube::Error> {
        if let Some(e) = self.synced(ar, ns).await {
            let mut r = ObjectRef::new_with(name, ar.clone());
            if let Some(ns) = ns {
                r = r.within(ns);
            }
            if let Some(o) = e.store.get(&r) {
                self.changes.served();
                return Ok(Some((*o).clone()));
            }
        }
        api(&self.client, ar, ns).get_opt(name).await
    }

    /// The objects matching a label `selector`, from the cache when it has listed (and the
    /// selector is one it can evaluate), else by LIST.
    pub async fn list(
        &self,
        ar: &ApiResource,
        ns: Option<&str>,
        selector: &str,
    ) -> Result<Vec<DynamicObject>, kube::Error> {
        if let Some(reqs) = parse_selector(selector) {
            if let Some(e) = self.synced(ar, ns).await {
                let mut out: Vec<DynamicObject> = e
                    .store
                    .state()
                    .iter()
                    .filter(|o| matches(&reqs, o.metadata.labels.as_ref()))
                    .map(|o| (**o).clone())
                    .collect();
                out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                self.changes.served();
                return Ok(out);
            }
        }
        let lp = ListParams::default().labels(selector);
        Ok(api(&self.client, ar, ns).list(&lp).await?.items)
    }
}

/// One requirement of an equality-based label selector.
#[derive(Debug, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Has(String),
    Lacks(String),
}

/// Equality-based selectors (`a=b,c!=d,e,!f`); `None` for set-based ones (asked of the server).
fn parse_selector(s: &str) -> Option<Vec<Req>> {
    if s.contains('(') {
        return None;
    }
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if let Some((k, v)) = p.split_once("!=") {
                Some(Req::Ne(k.trim().into(), v.trim().into()))
            } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
                Some(Req::Eq(k.trim().into(), v.trim().into()))
            } else if let Some(k) = p.strip_prefix('!') {
                Some(Req::Lacks(k.trim().into()))
            } else if p.contains(' ') {
                None
            } else {
                Some(Req::Has(p.into()))
            }
        })
        .collect()
}

fn matches(reqs: &[Req], labels: Option<&std::collections::BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k) == Some(v),
        Req::Ne(k, v) => get(k) != Some(v),
        Req::Has(k) => get(k).is_some(),
        Req::Lacks(k) => get(k).is_none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_selectors_are_evaluated_set_based_ones_are_not() {
        let reqs = parse_selector("app=a, tier!=db,ready,!gone").unwrap();
        let labels: std::collections::BTreeMap<String, String> = [("app", "a"), ("ready", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(matches(&reqs, Some(&labels)));
        let reqs = parse_selector("app=b").unwrap();
        assert!(!matches(&reqs, Some(&labels)));
        assert!(matches(&parse_selector("").unwrap(), None));
        assert_eq!(parse_selector("env in (a,b)"), None);
    }
}
