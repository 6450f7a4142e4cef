//! A run's clock: wall time against a real cluster (or `sim serve`), where waits wake on watch
//! events; virtual time against the in-process simulator, where waiting advances the
//! simulation to its next event.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;

use crate::stop::{Stop, StopReason};
use playbook_sim::Sim;

/// The clock of a run.
#[derive(Clone)]
pub enum Clock {
    /// Real time; waits wake up when the cluster changes (see [`Changes`]).
    Wall(Arc<Changes>),
    /// The simulator's virtual time: moves only when the run waits.
    Virtual(Sim),
}

/// Wakes wall-clock waits when the cluster changes: watches (started on the first wait) on
/// pods, deployments, statefulsets and Chaos Mesh objects in every namespace. A condition is
/// re-checked within milliseconds of a change, and at least every [`WALL_TICK`] for conditions
/// that no object reflects (latencies, Prometheus).
pub struct Changes {
    client: kube::Client,
    notify: Arc<tokio::sync::Notify>,
    started: OnceLock<()>,
}

impl Changes {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(Changes {
            client,
            notify: Arc::new(tokio::sync::Notify::new()),
            started: OnceLock::new(),
        })
    }

    fn start(&self, rt: &tokio::runtime::Handle) {
        self.started.get_or_init(|| {
            let c = &self.client;
            self.spawn(rt, Api::<Pod>::all(c.clone()));
            self.spawn(rt, Api::<Deployment>::all(c.clone()));
            self.spawn(rt, Api::<StatefulSet>::all(c.clone()));
            for kind in ["PodChaos", "NetworkChaos", "StressChaos"] {
                let ar = super::api_resource(
                    "chaos-mesh.org",
                    "v1alpha1",
                    kind,
                    &kind.to_ascii_lowercase(),
                );
                self.spawn(rt, Api::<DynamicObject>::all_with(c.clone(), &ar));
            }
        });
    }

    fn spawn<K>(&self, rt: &tokio::runtime::Handle, api: Api<K>)
    where
        K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    {
        use futures::StreamExt;
        let notify = self.notify.clone();
        rt.spawn(async move {
            let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
            while let Some(e) = events.next().await {
                match e {
                    Ok(_) => notify.notify_waiters(),
                    // A kind the cluster lacks (no Chaos Mesh) or a broken connection: the
                    // watcher retries; back off so it does not spin.
                    Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            }
        });
    }

    /// Waits until something changes, or `at_most`.
    fn wait(&self, at_most: Duration) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            std::thread::sleep(at_most);
            return;
        };
        self.start(&rt);
        let notify = self.notify.clone();
        rt.block_on(async move {
            let _ = tokio::time::timeout(at_most, notify.notified()).await;
        });
    }
}

/// How often a wall-clock wait re-checks its condition when nothing wakes it earlier.
pub const WALL_TICK: Duration = Duration::from_millis(250);

/// The longest virtual step: conditions that depend on time alone are measured to this.
pub const VIRTUAL_TICK: SignedDuration = SignedDuration::from_secs(1);

impl Clock {
    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall(_) => Timestamp::now(),
            Clock::Virtual(sim) => sim.now(),
        }
    }

    /// Lets time pass until `until` (or until the run must stop).
    pub fn sleep_until(&self, until: Timestamp, stop: &Stop) -> Result<(), StopReason> {
        loop {
            if let Some(r) = stop.check() {
                return Err(r);
            }
            let now = self.now();
            if now >= until {
                return Ok(());
            }
            self.step(until, stop)?;
        }
    }

    /// One step towards `limit`: in virtual time, to the simulator's next event (or `limit`);
    /// in wall time, a short real sleep. Conditions are re-checked after each step.
    pub fn step(&self, limit: Timestamp, stop: &Stop) -> Result<(), StopReason> {
        if let Some(r) = stop.check() {
            return Err(r);
        }
        match self {
            Clock::Virtual(sim) => {
                let now = sim.now();
                let tick = now.checked_add(VIRTUAL_TICK).unwrap_or(now).min(limit);
                let next = sim.next_event_at().filter(|t| *t < tick).unwrap_or(tick);
                sim.advance_to(next);
            }
            Clock::Wall(changes) => {
                let left = limit.duration_since(Timestamp::now());
                let nap = left
                    .clamp(
                        SignedDuration::ZERO,
                        SignedDuration::try_from(WALL_TICK).unwrap_or_default(),
                    )
                    .unsigned_abs();
                changes.wait(nap.max(Duration::from_millis(1)));
            }
        }
        Ok(())
    }
}
