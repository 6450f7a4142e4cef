//! The simulated MLOps platform: KServe inference, MLflow and PostgreSQL, Argo pipelines with a circuit-breaking MLflow client, training with an HPA, and Chaos Mesh — objects, controllers, traffic and the service proxy.
//!
//! # Layout
//! - [`scenario`]: [`Scenario`] and every figure of the platform ([`Figures`]), in one place.
//! - `objects`: the namespaces, workloads and Services a team would apply.
//! - `kserve`: the InferenceService controller (RawDeployment mode).
//! - `argo`: the pipeline schedule and the Workflow controller (steps as pods).
//! - `history`: what happened during the warm-up (a restarted MLflow, an old OOM kill).
//! - `breaker`: the pipeline runner's MLflow circuit breaker and fallback buffer.
//! - [`training`]: the `finetune` Job's training loop (steps, checkpoints, MLflow logging).
//! - `traffic`: requests every second, their latency and errors, the CPU they cost.
//! - `proxy`: answers through `services/NAME:PORT/proxy/PATH`; `exposition`: `/metrics`.
//!
//! [`install`] puts a scenario into a fresh world; [`crate::Sim::new`] then simulates
//! [`Figures::warmup_s`] of virtual time so that a run starts in steady state.

mod argo;
mod breaker;
mod exposition;
mod history;
mod kserve;
pub mod objects;
mod proxy;
pub mod scenario;
mod traffic;
pub mod training;

use std::sync::{Arc, Mutex};

pub use breaker::{Breaker, Buffer, State as BreakerState};
pub use scenario::{Figures, Latency, Scenario};
pub use traffic::{Shared, SharedRef};

use super::api::proxy::ServiceProxy;
use super::controllers::util::random_suffix;
use super::world::{Controller, Ctx, World};

/// The platform's node pool and DaemonSet: adds the GPU nodes once the workers exist, and
/// runs a chaos-daemon pod on every node whose taints the DaemonSet tolerates (its own
/// tolerations from [`Figures::chaos_daemon_tolerations`] plus the DaemonSet controller's,
/// pkg/controller/daemon/util/daemonset_util.go `AddOrUpdateDaemonPodTolerations`).
struct Daemons {
    figures: Figures,
    gpu_done: bool,
}

impl Controller for Daemons {
    fn name(&self) -> &'static str {
        "chaos-daemon"
    }
    fn watches(&self) -> &'static [&'static str] {
        &["nodes"]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let nodes = ctx.list("nodes", None);
        if nodes.is_empty() {
            return;
        }
        if !self.gpu_done {
            self.gpu_done = true;
            let now = crate::controllers::util::ts(ctx.now());
            for n in 1..=self.figures.gpu_nodes {
                let _ = ctx.create("nodes", objects::gpu_node(n, &self.figures, &now));
            }
        }
        let daemons = ctx.list("pods", Some(objects::CHAOS_NS));
        let tols = self.figures.chaos_daemon_tolerations;
        for n in ctx.list("nodes", None) {
            let name = n["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let has = daemons.iter().any(|p| {
                p["metadata"]["labels"]["app.kubernetes.io/component"] == "chaos-daemon"
                    && p["spec"]["nodeName"] == name.as_str()
            });
            if has || !crate::chaos::daemon::tolerated(&n, tols) {
                continue;
            }
            let suffix = random_suffix(ctx.rng());
            let _ = ctx.create("pods", objects::chaos_daemon(&name, &suffix, tols));
        }
    }
}

/// Installs `scenario` into `world`: its objects and controllers. Returns the proxy that
/// answers its Services and the shared state (None for [`Scenario::Empty`]).
pub fn install(
    world: &mut World,
    scenario: Scenario,
    seed: u64,
) -> Option<(Arc<dyn ServiceProxy>, SharedRef)> {
    let figures = scenario.figures()?;
    for obj in objects::all(&figures) {
        if let Err(e) = world.seed(obj) {
            eprintln!("playbook sim: cannot create a platform object: {e}");
        }
    }
    let shared = Arc::new(Mutex::new(Shared::new(figures.clone(), seed)));
    world.add_controller(Box::new(Daemons {
        figures: figures.clone(),
        gpu_done: false,
    }));
    world.add_controller(Box::new(crate::controllers::reconcile::Reconciler::new(
        kserve::KServe::new(figures.clone()),
    )));
    world.add_controller(Box::new(argo::Argo::new(figures.clone())));
    let start = world.now() + jiff::SignedDuration::from_secs(figures.warmup_s.max(0));
    world.add_controller(Box::new(history::History::new(start)));
    world.add_controller(Box::new(traffic::Traffic::new(shared.clone())));
    let proxy: Arc<dyn ServiceProxy> = Arc::new(proxy::PlatformProxy::new(shared.clone()));
    Some((proxy, shared))
}

#[cfg(test)]
mod tests;
