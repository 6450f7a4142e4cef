//! The simulated Kubernetes cluster: a store and controllers behind the real HTTP API.
//!
//! [`Sim`] is a cheap-to-clone handle on one simulated world. [`Sim::router`] is the HTTP
//! API (an axum `Router`, so a `tower::Service`), [`Sim::client`] a `kube::Client` over it
//! in process; [`serve`] serves the same router on loopback (`playbook sim serve`).
//! Any Rust program can use it as an in-process fake Kubernetes API with controllers.
//!
//! ```
//! use playbook_sim::{ClockMode, Sim, SimConfig};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube::api::{Api, PostParams};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> anyhow::Result<()> {
//! // The bare cluster (no platform scenario), in virtual time.
//! let sim = Sim::new(SimConfig { seed: 42, clock: ClockMode::Virtual, ..Default::default() });
//! let pods: Api<Pod> = Api::namespaced(sim.client(), "default");
//! let pod = serde_json::from_value(serde_json::json!({
//!     "metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}))?;
//! pods.create(&PostParams::default(), &pod).await?;
//! // Virtual time moves only when asked: to the next timer a controller set, or any instant.
//! if let Some(t) = sim.next_event_at() {
//!     sim.advance_to(t);
//! }
//! let before = sim.now();
//! sim.advance_by(jiff::SignedDuration::from_secs(30));
//! assert_eq!(sim.now(), before.checked_add(jiff::SignedDuration::from_secs(30))?);
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`store`]: objects, resourceVersion, watch history, finalizers and garbage collection.
//! - [`world`]: the [`World`] (store, clock, RNG, timers) and the [`Controller`] API.
//! - [`resources`]: the registry of kinds, built-in and from the CRDs of `playbook_model::crds`.
//! - [`selector`], [`patch`], `defaults`: label/field selectors, patch kinds, defaulting.
//! - [`api`]: the HTTP facade (discovery, legacy and aggregated; CRUD, watch, tables, openapi,
//!   service proxy; autoscaling/v1 and events.k8s.io/v1 served by conversion).
//! - [`controllers`]: the core controllers, run in a fixed order (with the CRD finalizer: a
//!   deleted CRD is emptied, then its kind is no longer served).
//! - [`chaos`]: the simulated Chaos Mesh (PodChaos, NetworkChaos, StressChaos), run after them.
//! - [`platform`]: the simulated MLOps platform (scenarios `mlops`, `mlops-fragile`).
//! - [`serve`]: the simulator in wall time on loopback, with a kubeconfig (`playbook sim serve`);
//!   [`tls`]: its HTTPS (`--tls`), with a CA made at start-up.
//!
//! What the product shares with the simulator (CRDs, schema validation, the Chaos Mesh types,
//! units) lives in `playbook-model`; this crate knows nothing of playbooks.

#![deny(missing_docs)]

pub mod api;
pub mod chaos;
pub mod controllers;
mod defaults;
pub mod error;
pub mod patch;
pub mod platform;
pub mod resources;
pub mod selector;
pub mod serve;
pub mod store;
pub mod tls;
pub mod world;

#[cfg(test)]
mod testkit;

use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

pub use api::proxy::{PodLogs, ProxyRequest, ProxyResponse, ServiceProxy};
pub use error::{ApiError, Reason};
pub use resources::{Registry, ResId, ResourceDef};
pub use selector::{FieldSelector, LabelSelector};
pub use store::{DeleteOptions, Event, EventKind, Propagation, Store};
pub use world::{Controller, Ctx, Lag, World, virtual_epoch};

/// How the simulator's clock moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// Starts at [`virtual_epoch`] and moves only through [`Sim::advance_to`] (deterministic).
    #[default]
    Virtual,
    /// Follows the wall clock; a background task fires timers as they fall due.
    Wall,
}

/// Whether controllers lag behind the writes they react to (see "Controller lag" in [`world`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ControllerLag {
    /// Each controller reacts after a seeded delay modelled on the real one (informer
    /// delivery and work queue; the kubelet on its 1 s PLEG relist): status lags and races
    /// exist, as on a real cluster. The default.
    #[default]
    Realistic,
    /// Every controller reacts in the same instant as the write (an instant world, for tests
    /// that check a controller's logic rather than its timing).
    Off,
}

/// How to build a [`Sim`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SimConfig {
    /// Seed of every random choice (uids, generated names, controllers' RNG).
    pub seed: u64,
    /// Virtual or wall clock.
    pub clock: ClockMode,
    /// The platform installed at start ([`platform::Scenario::Empty`] by default; the command
    /// line defaults to `mlops`).
    pub scenario: platform::Scenario,
    /// Controller lag ([`ControllerLag::Realistic`] by default; `Off` for an instant world).
    pub lag: ControllerLag,
}

pub(crate) struct Inner {
    world: Mutex<World>,
    config: SimConfig,
    pub(crate) proxy: RwLock<Option<Arc<dyn ServiceProxy>>>,
    pub(crate) logs: RwLock<Option<Arc<dyn PodLogs>>>,
    platform: Option<Arc<Mutex<platform::Shared>>>,
}

/// A handle on one simulated cluster (clone it freely; all clones share the world).
#[derive(Clone)]
pub struct Sim {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Sim {
    /// A new cluster with the standard kinds, the usual namespaces, the core controllers and
    /// the configured scenario's platform, already in steady state: the platform is installed
    /// [`platform::Figures::warmup_s`] before the start time ([`virtual_epoch`], or now under
    /// wall time) and simulated up to it.
    /// Under [`ClockMode::Wall`], if called inside a tokio runtime, a background task keeps
    /// the clock on wall time (otherwise call [`Sim::start_wall_clock`] later).
    pub fn new(config: SimConfig) -> Sim {
        let start = match config.clock {
            ClockMode::Virtual => virtual_epoch(),
            ClockMode::Wall => Timestamp::now(),
        };
        let warmup = config.scenario.figures().map_or(0, |f| f.warmup_s.max(0));
        let begin = start
            .checked_sub(SignedDuration::from_secs(warmup))
            .unwrap_or(start);
        let mut world = World::new(config.seed, begin);
        world.set_controller_lag(config.lag == ControllerLag::Realistic);
        for c in controllers::core() {
            world.add_controller(c);
        }
        for c in chaos::controllers() {
            world.add_controller(c);
        }
        let proxy = platform::install(&mut world, config.scenario, config.seed);
        world.settle();
        if begin < start {
            world.advance_to(start);
        }
        let sim = Sim {
            inner: Arc::new(Inner {
                world: Mutex::new(world),
                config,
                proxy: RwLock::new(proxy.as_ref().map(|(p, _)| p.clone())),
                logs: RwLock::new(None),
                platform: proxy.map(|(_, s)| s),
            }),
        };
        if config.clock == ClockMode::Wall && tokio::runtime::Handle::try_current().is_ok() {
            sim.start_wall_clock();
        }
        sim
    }

    /// The configuration it was built with.
    pub fn config(&self) -> SimConfig {
        self.inner.config
    }

    /// The platform's traffic state (breaker, buffer, request counters), if a scenario is
    /// installed. Lock it after the world, never before.
    pub fn platform(&self) -> Option<&Arc<Mutex<platform::Shared>>> {
        self.inner.platform.as_ref()
    }

    /// Locks the world (under wall time, first brings the clock to now).
    pub fn lock(&self) -> MutexGuard<'_, World> {
        let mut w = self.inner.world.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.config.clock == ClockMode::Wall {
            let now = Timestamp::now();
            if now > w.now() {
                w.advance_to(now);
            }
        }
        w
    }

    /// Runs `f` on the world, then lets controllers settle.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut w = self.lock();
        let r = f(&mut w);
        w.settle();
        r
    }

    /// The HTTP API as an axum `Router` (a `tower::Service`).
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// A `kube::Client` that talks to this simulator in process (default namespace `default`).
    /// Must be called inside a tokio runtime.
    pub fn client(&self) -> kube::Client {
        kube::Client::new(self.router(), "default")
    }

    /// The simulated time.
    pub fn now(&self) -> Timestamp {
        self.lock().now()
    }

    /// Moves virtual time to `t`, firing every timer due on the way, in order.
    pub fn advance_to(&self, t: Timestamp) {
        self.lock().advance_to(t);
    }

    /// Moves virtual time forward by `d`.
    pub fn advance_by(&self, d: SignedDuration) {
        let mut w = self.lock();
        let t = w.now().checked_add(d).unwrap_or(w.now());
        w.advance_to(t);
    }

    /// When the next timer is due, if any.
    pub fn next_event_at(&self) -> Option<Timestamp> {
        self.lock().next_event_at()
    }

    /// Stores an object as is (kind from `apiVersion`/`kind`, status kept), then settles.
    pub fn seed(&self, obj: Value) -> Result<Arc<Value>, ApiError> {
        self.with_world(|w| w.seed(obj))
    }

    /// Adds a controller (runs after the core ones), then settles.
    pub fn add_controller(&self, c: Box<dyn Controller>) {
        self.with_world(|w| w.add_controller(c));
    }

    /// Sets the handler of `/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/...`.
    pub fn set_service_proxy(&self, h: Arc<dyn ServiceProxy>) {
        *self.inner.proxy.write().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Sets the source of `pods/NAME/log`.
    pub fn set_pod_logs(&self, h: Arc<dyn PodLogs>) {
        *self.inner.logs.write().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Starts the task that keeps a wall-clock sim on time (fires timers when due). Needs a
    /// tokio runtime; stops when every handle on the sim is dropped.
    pub fn start_wall_clock(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let wait = {
                    let Some(inner) = weak.upgrade() else { return };
                    let sim = Sim { inner };
                    let mut w = sim.lock();
                    w.advance_to(Timestamp::now());
                    w.next_event_at()
                        .map(|t| t.duration_since(Timestamp::now()))
                        .unwrap_or(SignedDuration::from_secs(1))
                        .clamp(SignedDuration::from_millis(1), SignedDuration::from_secs(1))
                };
                tokio::time::sleep(wait.unsigned_abs()).await;
            }
        });
    }
}
