//! Coordination between runs on one cluster: the Lease that lets one run at a time inject
//! (`coordination.k8s.io/v1` `playbook` in the chaos namespace, taken and renewed as client-go's
//! leader election does) and the freeze mark (the kill switch: a ConfigMap `playbook-freeze`
//! beside it) that refuses new runs and stops the running ones. A run's [`Guard`] holds both:
//! a background task renews the lease and watches the freeze mark, and stops the run
//! ([`crate::stop::halt`]) when the cluster is frozen or the lease is lost.
//!
//! The scope of the lock is the cluster: one platform, one lease. The in-process simulator
//! takes neither: it is private to the run and new for each playbook, on virtual time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher;

use crate::connection::Target;
use crate::connection::request::{self, Budget, GaveUp};
use crate::faults::MANAGED_BY;
use crate::outcome::Verdict;

/// Where the lease and the freeze mark live: Chaos Mesh's namespace.
pub const NAMESPACE: &str = "chaos-testing";
/// The lease's name.
pub const LEASE: &str = "playbook";
/// The freeze mark's name (a ConfigMap).
pub const FREEZE: &str = "playbook-freeze";
/// How long a lease is good for without renewal (`leaseDurationSeconds`); a holder that died
/// is taken over this long after another run last saw its record change.
pub const LEASE_DURATION: Duration = Duration::from_secs(30);
/// How often the holder renews (a third of the duration: two renewals may fail in a row).
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a waiting run, or a failing renewal, tries again (client-go's `RetryPeriod`).
pub const RETRY_EVERY: Duration = Duration::from_secs(2);
/// The longest one renewal or freeze read may take.
const REQUEST_WINDOW: Duration = Duration::from_secs(5);

/// `user@host`: who froze the cluster, who holds the lease.
pub fn who() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(user_of_uid)
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host}")
}

/// The name of this process's user from /etc/passwd, else `uid N` (a pod often has no $USER).
fn user_of_uid() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2] == uid).then(|| f[0].to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

/// The lease's `holderIdentity` for run `run_id`: user, host, run id and process.
pub fn holder(run_id: &str) -> String {
    format!("{} run {run_id} pid {}", who(), std::process::id())
}

/// What a run asks of the lock.
#[derive(Debug, Clone)]
pub struct Options {
    /// Take the lease (false: `--no-lock`; the freeze mark is still obeyed).
    pub lock: bool,
    /// How long to wait for a lease another run holds (`--lock-wait`).
    pub wait: Duration,
    /// The longest the first requests may go unanswered (the run's `--timeout`).
    pub reach: Duration,
}

/// Why a run may not start.
#[derive(Debug)]
pub enum Refusal {
    /// Another run held the lease for all of `--lock-wait`, or the cluster is frozen.
    Refused(String),
    /// A signal arrived while waiting.
    Interrupted,
    /// The lease or the freeze mark could not be read or written.
    Error(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Refused(m) => write!(f, "refused: {m}"),
            Refusal::Interrupted => write!(f, "interrupted while waiting for the lease"),
            Refusal::Error(m) => write!(f, "not run: {m}"),
        }
    }
}

impl Refusal {
    /// Says why, on standard error; the verdict of the run that was not run.
    pub fn report(&self) -> Verdict {
        match self {
            Refusal::Refused(m) => {
                eprintln!("refused: {m}");
                Verdict::Refused
            }
            Refusal::Interrupted => {
                eprintln!("interrupted while waiting for the lease: nothing was run");
                Verdict::Interrupted
            }
            Refusal::Error(m) => {
                eprintln!("error: {m}");
                Verdict::Error
            }
        }
    }
}

/// The freeze mark, as `playbook freeze` writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Freeze {
    pub reason: String,
    pub by: String,
    pub at: String,
}

impl std::fmt::Display for Freeze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the cluster is frozen by {} since {}: {} (`playbook unfreeze` lifts it)",
            self.by, self.at, self.reason
        )
    }
}

impl Freeze {
    fn of(cm: &ConfigMap) -> Freeze {
        let data = cm.data.clone().unwrap_or_default();
        let field = |k: &str| data.get(k).cloned().unwrap_or_else(|| "?".into());
        Freeze {
            reason: field("reason"),
            by: field("by"),
            at: field("at"),
        }
    }
}

/// The metadata of `name` in [`NAMESPACE`], labelled as playbook's.
fn ours(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NAMESPACE.into()),
        labels: Some([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())].into()),
        ..Default::default()
    }
}

fn configmaps(target: &Target) -> Api<ConfigMap> {
    Api::namespaced(target.client.clone(), NAMESPACE)
}

fn leases(target: &Target) -> Api<Lease> {
    Api::namespaced(target.client.clone(), NAMESPACE)
}

/// An API error in words, with what to do when it is a missing namespace or a permission.
fn said(what: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if s.code == 404 && s.message.contains("namespaces") => format!(
            "{what}: namespace {NAMESPACE} not found (the lease and the freeze mark live in Chaos Mesh's namespace)"
        ),
        kube::Error::Api(s) if s.code == 403 => {
            format!("{what}: {}", crate::connection::forbidden(&s.message))
        }
        _ => {
            let gave_up = std::error::Error::source(e)
                .and_then(|s| s.downcast_ref::<GaveUp>())
                .is_some_and(|g| matches!(g, GaveUp::NoAnswer { .. }));
            let text = crate::session::describe(e);
            if gave_up {
                format!("{what}: timed out: {text}")
            } else {
                format!("{what}: {text}")
            }
        }
    }
}

/// The freeze mark, if the cluster is frozen.
pub async fn read_freeze(target: &Target) -> Result<Option<Freeze>, kube::Error> {
    Ok(configmaps(target)
        .get_opt(FREEZE)
        .await?
        .map(|cm| Freeze::of(&cm)))
}

/// Freezes the cluster for `reason`; the freeze mark now there (an earlier one stays, with its
/// reason) and whether this call made it.
pub async fn freeze(target: &Target, reason: &str) -> Result<(Freeze, bool), String> {
    let mark = Freeze {
        reason: reason.to_string(),
        by: who(),
        at: Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    };
    let cm = ConfigMap {
        metadata: ours(FREEZE),
        data: Some(
            [
                ("reason".to_string(), mark.reason.clone()),
                ("by".to_string(), mark.by.clone()),
                ("at".to_string(), mark.at.clone()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    match configmaps(target).create(&PostParams::default(), &cm).await {
        Ok(_) => Ok((mark, true)),
        Err(kube::Error::Api(s)) if s.code == 409 => match read_freeze(target).await {
            Ok(Some(there)) => Ok((there, false)),
            Ok(None) => Err("the freeze mark vanished while it was written: try again".into()),
            Err(e) => Err(said("reading the freeze mark", &e)),
        },
        Err(e) => Err(said("writing the freeze mark", &e)),
    }
}

/// Lifts the freeze; the mark that was there, if any.
pub async fn unfreeze(target: &Target) -> Result<Option<Freeze>, String> {
    let there = read_freeze(target)
        .await
        .map_err(|e| said("reading the freeze mark", &e))?;
    if there.is_none() {
        return Ok(None);
    }
    match configmaps(target)
        .delete(FREEZE, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(there),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(said("removing the freeze mark", &e)),
    }
}

/// What one try of [`try_acquire_or_renew`] found.
enum Try {
    /// The lease is ours now (as written).
    Held(Box<Lease>),
    /// Another run holds it: its holder and since when.
    Busy { holder: String, since: String },
}

/// The version of the lease record this client saw last, and when it first saw it: the
/// expiry of another's lease is judged on this client's own clock, from when the record last
/// changed, never from the holder's `renewTime` (clocks differ).
#[derive(Default)]
struct Observed {
    version: Option<String>,
    at: Option<Instant>,
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// One try to take or renew the lease for `me`, as client-go's `tryAcquireOrRenew`
/// (staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go): create it if it is
/// not there; leave it if another holds it and its record changed less than its duration ago
/// (as observed here); else write ourselves in, with the resourceVersion read (a conflict means
/// another run wrote first: busy).
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    me: &str,
    observed: &mut Observed,
) -> Result<Try, kube::Error> {
    let now = Timestamp::now();
    let Some(old) = api.get_opt(LEASE).await? else {
        let lease = Lease {
            metadata: ours(LEASE),
            spec: Some(LeaseSpec {
                holder_identity: Some(me.into()),
                lease_duration_seconds: Some(seconds(LEASE_DURATION)),
                acquire_time: Some(micro(now)),
                renew_time: Some(micro(now)),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(l) => Ok(Try::Held(Box::new(l))),
            // Another run created it first.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Try::Busy {
                holder: "another run".into(),
                since: "just now".into(),
            }),
            Err(e) => Err(e),
        };
    };
    let version = old.metadata.resource_version.clone();
    if observed.version != version || observed.at.is_none() {
        observed.version = version;
        observed.at = Some(Instant::now());
    }
    let spec = old.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let duration = Duration::from_secs(
        spec.lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(LEASE_DURATION.as_secs()),
    );
    let valid = observed.at.is_some_and(|at| at.elapsed() < duration);
    if !holder.is_empty() && holder != me && valid {
        let since = spec
            .acquire_time
            .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "(unknown)".into());
        return Ok(Try::Busy { holder, since });
    }
    let mut new = old.clone();
    let transitions = spec.lease_transitions.unwrap_or(0);
    new.spec = Some(LeaseSpec {
        holder_identity: Some(me.into()),
        lease_duration_seconds: Some(seconds(LEASE_DURATION)),
        renew_time: Some(micro(now)),
        acquire_time: if holder == me {
            spec.acquire_time.clone()
        } else {
            Some(micro(now))
        },
        lease_transitions: Some(if holder == me {
            transitions
        } else {
            transitions.saturating_add(1)
        }),
        ..spec.clone()
    });
    match api.replace(LEASE, &PostParams::default(), &new).await {
        Ok(l) => Ok(Try::Held(Box::new(l))),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Try::Busy {
            holder: if holder.is_empty() {
                "another run".into()
            } else {
                holder
            },
            since: "just now".into(),
        }),
        Err(e) => Err(e),
    }
}

/// Whether a signal arrived.
fn signalled() -> bool {
    crate::stop::interrupted().load(Ordering::SeqCst)
}

/// What the guard's task shares with the run.
struct Shared {
    /// The lease as last written by us (None: not held).
    lease: tokio::sync::Mutex<Option<Lease>>,
    me: String,
    stop: tokio::sync::Notify,
}

/// A run's hold on the cluster: the lease (unless `--no-lock`) and the watch on the freeze
/// mark, both kept by a background task until [`Guard::release`].
pub struct Guard {
    target: Option<Target>,
    rt: crate::connection::Rt,
    shared: Option<Arc<Shared>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Guard {
    /// Nothing held (the in-process simulator, a dry run).
    pub fn none(rt: &crate::connection::Rt) -> Guard {
        Guard {
            target: None,
            rt: rt.clone(),
            shared: None,
            task: None,
        }
    }

    /// Before run `run_id` may inject on `target`: refuses if the cluster is frozen; takes the
    /// lease (waiting up to `options.wait` for another holder), then watches the freeze mark
    /// and renews the lease until [`Guard::release`]. Called on the run's thread, inside the
    /// runtime's context; a signal ends the wait.
    pub fn enter(
        target: &Target,
        rt: &crate::connection::Rt,
        run_id: &str,
        options: &Options,
    ) -> Result<Guard, Refusal> {
        if target.is_simulated() {
            return Ok(Guard::none(rt));
        }
        let reach = options.reach.min(Duration::from_secs(60));
        let budget = move || Budget {
            until: Instant::now() + reach,
            cancelled: Some(Arc::new(signalled)),
        };
        let interrupted_or = |e: String| {
            if signalled() {
                Refusal::Interrupted
            } else {
                Refusal::Error(e)
            }
        };
        let me = holder(run_id);
        let mut held = None;
        if options.lock {
            let api = leases(target);
            let deadline = Instant::now() + options.wait;
            let mut observed = Observed::default();
            let mut said_waiting = false;
            loop {
                let tried = request::within(budget(), || {
                    rt.block_on(try_acquire_or_renew(&api, &me, &mut observed))
                });
                match tried {
                    Ok(Try::Held(l)) => {
                        held = Some(*l);
                        break;
                    }
                    Ok(Try::Busy { holder, since }) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(Refusal::Refused(format!(
                                "another run holds the lease {NAMESPACE}/{LEASE}: {holder}, since {since} (waited {}, --lock-wait; --no-lock runs anyway)",
                                crate::duration::format(options.wait)
                            )));
                        }
                        if !said_waiting {
                            said_waiting = true;
                            eprintln!(
                                "waiting up to {} (--lock-wait) for the lease {NAMESPACE}/{LEASE}, held by {holder} since {since}",
                                crate::duration::format(options.wait)
                            );
                        }
                        let until = Instant::now() + RETRY_EVERY.min(left);
                        while Instant::now() < until {
                            if signalled() {
                                return Err(Refusal::Interrupted);
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    Err(e) => {
                        return Err(interrupted_or(format!(
                            "{}; --no-lock runs without it",
                            said(&format!("taking the lease {NAMESPACE}/{LEASE}"), &e)
                        )));
                    }
                }
            }
        }
        let shared = Arc::new(Shared {
            lease: tokio::sync::Mutex::new(held),
            me,
            stop: tokio::sync::Notify::new(),
        });
        let (ready, first) = tokio::sync::oneshot::channel();
        let guard = Guard {
            target: Some(target.clone()),
            rt: rt.clone(),
            task: Some(rt.spawn(keep(target.clone(), shared.clone(), ready, reach))),
            shared: Some(shared),
        };
        // The watch's first list says whether the cluster is frozen (the lease is taken first,
        // so that a run that goes ahead reads the mark once); if it failed, the mark is read.
        let seen = match rt.block_on(first) {
            Ok(Ok(seen)) => Ok(seen),
            _ => request::within(budget(), || rt.block_on(read_freeze(target))).map_err(|e| {
                interrupted_or(format!(
                    "{}; --no-lock does not skip this check",
                    said("reading the freeze mark", &e)
                ))
            }),
        };
        match seen {
            Ok(None) => Ok(guard),
            Ok(Some(f)) => {
                guard.release();
                Err(Refusal::Refused(f.to_string()))
            }
            Err(refusal) => {
                guard.release();
                Err(refusal)
            }
        }
    }

    /// Stops the watch and the renewals, and gives the lease back (its holder cleared, as
    /// client-go's `ReleaseOnCancel`), unless another run took it meanwhile. After cleanup.
    pub fn release(mut self) {
        let (Some(target), Some(shared)) = (self.target.take(), self.shared.take()) else {
            return;
        };
        shared.stop.notify_one();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let api = leases(&target);
        let result = request::within(Budget::window(REQUEST_WINDOW * 2), || {
            self.rt.block_on(async {
                let Some(mut lease) = shared.lease.lock().await.take() else {
                    return Ok(());
                };
                for _ in 0..3 {
                    let spec = lease.spec.get_or_insert_with(Default::default);
                    if spec.holder_identity.as_deref() != Some(shared.me.as_str()) {
                        return Ok(());
                    }
                    let now = micro(Timestamp::now());
                    spec.holder_identity = None;
                    spec.lease_duration_seconds = Some(1);
                    spec.renew_time = Some(now.clone());
                    spec.acquire_time = Some(now);
                    match api.replace(LEASE, &PostParams::default(), &lease).await {
                        Ok(_) => return Ok(()),
                        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                            match api.get_opt(LEASE).await? {
                                Some(l) => lease = l,
                                None => return Ok(()),
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            })
        });
        if let Err(e) = result {
            eprintln!(
                "warning: {} (it expires by itself in {})",
                said(&format!("giving back the lease {NAMESPACE}/{LEASE}"), &e),
                crate::duration::format(LEASE_DURATION)
            );
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The guard's task: watches the freeze mark (one LIST, then one WATCH) and renews the lease
/// every [`RENEW_EVERY`]; halts the run when the cluster is frozen or the lease is lost.
/// `ready` gets what the watch's first list found (within `reach`), or why it failed.
async fn keep(
    target: Target,
    shared: Arc<Shared>,
    ready: tokio::sync::oneshot::Sender<Result<Option<Freeze>, String>>,
    reach: Duration,
) {
    let config = watcher::Config::default().fields(&format!("metadata.name={FREEZE}"));
    let stream = watcher(configmaps(&target), config);
    let mut stream = std::pin::pin!(stream);
    let api = leases(&target);
    let holds = shared.lease.lock().await.is_some();
    let mut renewed = Instant::now();
    let mut next_renew = tokio::time::Instant::now() + RENEW_EVERY;
    // Without a watch the mark is read at every retry period instead.
    let mut watching = true;
    let until = tokio::time::Instant::now() + reach.min(request::DEFAULT_WINDOW);
    let mut found = None;
    let first = loop {
        match tokio::time::timeout_at(until, stream.next()).await {
            Ok(Some(Ok(watcher::Event::InitApply(cm) | watcher::Event::Apply(cm)))) => {
                found = Some(Freeze::of(&cm));
            }
            Ok(Some(Ok(watcher::Event::InitDone))) => break Ok(found),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => break Err(e.to_string()),
            Ok(None) => break Err("the watch ended".into()),
            Err(_) => break Err("no answer".into()),
        }
    };
    let frozen_at_start = matches!(first, Ok(Some(_)));
    if let Err(e) = &first {
        eprintln!(
            "warning: cannot watch the freeze mark {NAMESPACE}/{FREEZE} ({e}); reading it every {} instead",
            crate::duration::format(RETRY_EVERY)
        );
        watching = false;
    }
    let _ = ready.send(first);
    if frozen_at_start {
        return;
    }
    let mut next_read = tokio::time::Instant::now() + RETRY_EVERY;
    loop {
        tokio::select! {
            _ = shared.stop.notified() => return,
            event = stream.next(), if watching => match event {
                Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                    frozen(Freeze::of(&cm));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    eprintln!(
                        "warning: cannot watch the freeze mark {NAMESPACE}/{FREEZE} ({e}); reading it every {} instead",
                        crate::duration::format(RETRY_EVERY)
                    );
                    watching = false;
                }
                None => watching = false,
            },
            _ = tokio::time::sleep_until(next_read), if !watching => {
                next_read = tokio::time::Instant::now() + RETRY_EVERY;
                if let Ok(Some(f)) = request::scoped(Budget::window(REQUEST_WINDOW), read_freeze(&target)).await {
                    frozen(f);
                    return;
                }
            }
            _ = tokio::time::sleep_until(next_renew), if holds => {
                match request::scoped(Budget::window(REQUEST_WINDOW), renew(&api, &shared)).await {
                    Ok(()) => {
                        renewed = Instant::now();
                        next_renew = tokio::time::Instant::now() + RENEW_EVERY;
                    }
                    Err(Lost::Taken(why)) => {
                        lost(why);
                        return;
                    }
                    Err(Lost::Unreachable(e)) => {
                        if renewed.elapsed() >= LEASE_DURATION {
                            lost(format!(
                                "the lease {NAMESPACE}/{LEASE} could not be renewed for {} (last error: {e}); another run may have taken it",
                                crate::duration::format(LEASE_DURATION)
                            ));
                            return;
                        }
                        next_renew = tokio::time::Instant::now() + RETRY_EVERY;
                    }
                }
            }
        }
    }
}

/// Why a renewal failed.
enum Lost {
    /// The lease is someone else's now, or gone.
    Taken(String),
    /// No answer, or an error: tried again until the lease's duration has passed.
    Unreachable(String),
}

/// Renews our lease: an update with the resourceVersion we last wrote (client-go's fast path
/// for a leader whose lease is valid); on a conflict, read it again: still ours (someone else
/// touched it), write again; another holder, or gone: lost.
async fn renew(api: &Api<Lease>, shared: &Shared) -> Result<(), Lost> {
    let mut slot = shared.lease.lock().await;
    let Some(mut lease) = slot.clone() else {
        return Ok(());
    };
    for _ in 0..2 {
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(micro(Timestamp::now()));
        }
        match api.replace(LEASE, &PostParams::default(), &lease).await {
            Ok(l) => {
                *slot = Some(l);
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => {
                let now = api
                    .get_opt(LEASE)
                    .await
                    .map_err(|e| Lost::Unreachable(crate::session::describe(&e)))?;
                let Some(now) = now else {
                    *slot = None;
                    return Err(Lost::Taken(format!(
                        "the lease {NAMESPACE}/{LEASE} was deleted by someone else"
                    )));
                };
                let holder = now
                    .spec
                    .as_ref()
                    .and_then(|s| s.holder_identity.clone())
                    .unwrap_or_default();
                if holder != shared.me {
                    *slot = None;
                    return Err(Lost::Taken(format!(
                        "the lease {NAMESPACE}/{LEASE} was taken by {}",
                        if holder.is_empty() {
                            "no one (it was given back by someone else)".to_string()
                        } else {
                            holder
                        }
                    )));
                }
                lease = now;
            }
            Err(e) => return Err(Lost::Unreachable(crate::session::describe(&e))),
        }
    }
    Err(Lost::Unreachable(
        "the lease kept changing under us".to_string(),
    ))
}

/// The cluster was frozen: the run stops, cleans up, and ends "interrupted".
fn frozen(f: Freeze) {
    let why = format!(
        "the cluster was frozen by {} at {}: {}",
        f.by, f.at, f.reason
    );
    if crate::stop::halt(why.clone()) {
        eprintln!("\n{why}: stopping and cleaning up");
    }
    crate::connection::wake_waits();
}

/// The lease was lost while the run could inject: it stops, cleans up, and ends "interrupted".
fn lost(why: String) {
    let why = format!("lost the lease: {why}");
    if crate::stop::halt(why.clone()) {
        eprintln!("\n{why}: stopping and cleaning up");
    }
    crate::connection::wake_waits();
}
