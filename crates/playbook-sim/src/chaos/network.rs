//! NetworkChaos effects on traffic: the injected faults, cached, and the per-packet query the traffic model makes ([`network_effect`]).
//!
//! A NetworkChaos changes no object: in a real cluster the chaos-daemon installs `tc netem`
//! and `iptables` rules in the pods' network namespaces. Here the traffic model asks, for
//! every simulated request (and, separately, every response), what the faults do to packets
//! going from one pod to another. A fault acts while its records are `Injected`: from
//! [`super::ACTION_LATENCY`] after creation (or resume) until recovery (pause, end of
//! `duration`, deletion).
//!
//! Semantics (Chaos Mesh's): the selected pods are `S` (`spec.selector`), the targets `T`
//! (`spec.target`; no target means every peer, unless `externalTargets` restrict the fault to
//! traffic leaving the cluster, which pod-to-pod traffic never does). `direction: to` (the
//! default) affects packets from `S` to `T`; `from` packets from `T` to `S`; `both` both.
//! `delay` adds `latency` plus a uniform jitter in `[-jitter, +jitter]` with netem's
//! correlation; `loss` drops packets with that probability (correlated); `corrupt` is counted
//! as loss (a corrupted segment is dropped and retransmitted); `partition` drops everything.
//! `netem` combines delay, loss and corrupt. `duplicate`, `bandwidth` and `rate` have no
//! modelled effect. Several faults add their latencies; any loss or partition wins.
//!
//! A request/response exchange fails when either direction is lost or partitioned: ask for
//! both (`from -> to` for the request, `to -> from` for the response).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use super::record::{INJECTED, records_of};
use crate::resources::ResId;
use crate::store::{Store, meta_str};
use playbook_model::chaosmesh::{NetworkChaosAction, NetworkChaosDirection, NetworkChaosSpec};
use playbook_model::units;

/// What the injected network faults do to one packet (or one message) between two pods.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetEffect {
    /// Extra one-way latency (delay plus jitter), zero when none.
    pub extra_latency: Duration,
    /// Dropped by `loss` (or `corrupt`): retransmit or time out.
    pub lost: bool,
    /// Dropped by a `partition`: nothing gets through while it lasts.
    pub partitioned: bool,
}

impl NetEffect {
    /// True when nothing is changed.
    pub fn is_clear(&self) -> bool {
        *self == NetEffect::default()
    }
}

type PodSet = HashMap<String, HashSet<String>>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    To,
    From,
    Both,
}

/// A correlated probability (netem's `get_crandom`).
#[derive(Debug, Clone)]
struct Correlated {
    rho: f64,
    last: f64,
}

impl Correlated {
    fn new(corr: Option<&str>) -> Self {
        Correlated {
            rho: corr.and_then(|c| units::percent(c).ok()).unwrap_or(0.0),
            last: 0.0,
        }
    }

    fn next(&mut self, rng: &mut impl Rng) -> f64 {
        let u: f64 = rng.random();
        let v = if self.rho == 0.0 {
            u
        } else {
            u * (1.0 - self.rho) + self.last * self.rho
        };
        self.last = v;
        v
    }
}

#[derive(Debug, Clone)]
struct Fault {
    dir: Dir,
    sources: PodSet,
    /// `None`: every peer.
    targets: Option<PodSet>,
    partition: bool,
    delay: Option<(f64, f64, Correlated)>,
    loss: Vec<(f64, Correlated)>,
}

/// The active network faults, rebuilt only when a NetworkChaos changes. Keep one per traffic
/// model and pass it to [`network_effect`] (or call [`NetFaults::sync`] then
/// [`NetFaults::effect`]).
#[derive(Debug, Default)]
pub struct NetFaults {
    rv: u64,
    built: bool,
    res: Option<ResId>,
    faults: Vec<Fault>,
    /// Per pod (namespace -> name): the faults it is a source of, and a target of (bit sets).
    members: HashMap<String, HashMap<String, (Bits, Bits)>>,
    /// Faults with every peer as target; faults acting on `to` and on `from` packets.
    any_target: Bits,
    fwd: Bits,
    back: Bits,
}

/// A set of fault indexes.
type Bits = Box<[u64]>;

fn bit_set(bits: &mut Bits, i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

impl NetFaults {
    /// An empty cache (built on the first [`NetFaults::sync`]).
    pub fn new() -> Self {
        NetFaults::default()
    }

    /// Number of active faults.
    pub fn len(&self) -> usize {
        self.faults.len()
    }

    /// True when no fault is active.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Brings the cache up to date with the store: free when nothing changed, a scan of the
    /// new change events otherwise, a rebuild only when a NetworkChaos changed.
    pub fn sync(&mut self, store: &Store) {
        let head = store.resource_version();
        if self.built && head == self.rv {
            return;
        }
        if self.res.is_none() {
            self.res = store.registry().lookup("networkchaos.chaos-mesh.org");
        }
        let stale = !self.built
            || match store.events_since(self.rv) {
                Ok(mut it) => it.any(|e| Some(e.resource) == self.res),
                Err(_) => true,
            };
        self.rv = head;
        if stale {
            self.rebuild(store);
        }
    }

    fn rebuild(&mut self, store: &Store) {
        self.built = true;
        self.faults.clear();
        let Some(res) = self.res else { return };
        let all = store.list(res, None, &Default::default(), &Default::default());
        for chaos in all {
            if let Some(f) = fault_of(&chaos) {
                self.faults.push(f);
            }
        }
        let words = self.faults.len().div_ceil(64);
        let empty = || vec![0u64; words].into_boxed_slice();
        self.members.clear();
        (self.any_target, self.fwd, self.back) = (empty(), empty(), empty());
        let none = PodSet::new();
        for (i, f) in self.faults.iter().enumerate() {
            if f.targets.is_none() {
                bit_set(&mut self.any_target, i);
            }
            if f.dir != Dir::From {
                bit_set(&mut self.fwd, i);
            }
            if f.dir != Dir::To {
                bit_set(&mut self.back, i);
            }
            let sets = [(&f.sources, 0), (f.targets.as_ref().unwrap_or(&none), 1)];
            for (set, side) in sets {
                for (ns, names) in set {
                    for name in names {
                        let entry = self
                            .members
                            .entry(ns.clone())
                            .or_default()
                            .entry(name.clone())
                            .or_insert_with(|| (empty(), empty()));
                        bit_set(
                            if side == 0 {
                                &mut entry.0
                            } else {
                                &mut entry.1
                            },
                            i,
                        );
                    }
                }
            }
        }
    }

    /// The effect on a packet from pod `from` to pod `to` (pod objects; only their namespace
    /// and name are read). Draws jitter and loss from `rng`.
    pub fn effect(&mut self, from: &Value, to: &Value, rng: &mut impl Rng) -> NetEffect {
        self.effect_between(
            (meta_str(from, "namespace"), meta_str(from, "name")),
            (meta_str(to, "namespace"), meta_str(to, "name")),
            rng,
        )
    }

    /// [`NetFaults::effect`] with pods given as `(namespace, name)`.
    pub fn effect_between(
        &mut self,
        from: (&str, &str),
        to: (&str, &str),
        rng: &mut impl Rng,
    ) -> NetEffect {
        let mut out = NetEffect::default();
        if self.faults.is_empty() {
            return out;
        }
        let look = |p: (&str, &str)| self.members.get(p.0).and_then(|m| m.get(p.1));
        let (a, b) = (look(from), look(to));
        if a.is_none() && b.is_none() {
            return out;
        }
        let word = |x: Option<&(Bits, Bits)>, side: usize, w: usize| {
            x.and_then(|x| if side == 0 { &x.0 } else { &x.1 }.get(w).copied())
                .unwrap_or(0)
        };
        for w in 0..self.any_target.len() {
            let all = self.any_target[w];
            let fwd = word(a, 0, w) & (word(b, 1, w) | all) & self.fwd[w];
            let back = (word(a, 1, w) | all) & word(b, 0, w) & self.back[w];
            let mut hit = fwd | back;
            while hit != 0 {
                let i = w * 64 + hit.trailing_zeros() as usize;
                hit &= hit - 1;
                let Some(f) = self.faults.get_mut(i) else {
                    continue;
                };
                if f.partition {
                    out.partitioned = true;
                    continue;
                }
                if let Some((latency, jitter, corr)) = &mut f.delay {
                    let u = corr.next(rng);
                    let d = (*latency + (2.0 * u - 1.0) * *jitter).max(0.0);
                    out.extra_latency += Duration::from_secs_f64(d);
                }
                for (p, corr) in f.loss.iter_mut() {
                    if corr.next(rng) < *p {
                        out.lost = true;
                    }
                }
            }
        }
        out
    }
}

/// What the injected, not paused NetworkChaos experiments do to a packet from pod `from` to
/// pod `to`: syncs `faults` with `store` (cheap when nothing changed), then asks it.
pub fn network_effect(
    faults: &mut NetFaults,
    store: &Store,
    from: &Value,
    to: &Value,
    rng: &mut impl Rng,
) -> NetEffect {
    faults.sync(store);
    faults.effect(from, to, rng)
}

fn fault_of(chaos: &Value) -> Option<Fault> {
    let spec: NetworkChaosSpec =
        serde_json::from_value(chaos.get("spec").cloned().unwrap_or(Value::Null)).ok()?;
    let records = records_of(chaos)?;
    let mut sources = PodSet::new();
    let mut targets = PodSet::new();
    for r in records.iter().filter(|r| r.phase == INJECTED) {
        let mut it = r.id.splitn(2, '/');
        let (Some(ns), Some(name)) = (it.next(), it.next()) else {
            continue;
        };
        let set = if r.selector_key == ".Target" {
            &mut targets
        } else {
            &mut sources
        };
        set.entry(ns.to_string())
            .or_default()
            .insert(name.to_string());
    }
    if sources.is_empty() {
        return None;
    }
    let targets = if spec.target.is_some() {
        if targets.is_empty() {
            return None;
        }
        Some(targets)
    } else if spec
        .external_targets
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        Some(PodSet::new())
    } else {
        None
    };
    let dir = match spec.direction {
        Some(NetworkChaosDirection::From) => Dir::From,
        Some(NetworkChaosDirection::Both) => Dir::Both,
        _ => Dir::To,
    };
    let secs = |s: &str| {
        units::go_duration(s)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let delay = spec.delay.as_ref().map(|d| {
        (
            secs(&d.latency),
            d.jitter.as_deref().map(secs).unwrap_or(0.0),
            Correlated::new(d.correlation.as_deref()),
        )
    });
    let loss = spec
        .loss
        .as_ref()
        .map(|l| (l.loss.as_str(), l.correlation.as_deref()));
    let corrupt = spec
        .corrupt
        .as_ref()
        .map(|c| (c.corrupt.as_str(), c.correlation.as_deref()));
    let prob = |(p, c): (&str, Option<&str>)| Some((units::percent(p).ok()?, Correlated::new(c)));
    let mut f = Fault {
        dir,
        sources,
        targets,
        partition: false,
        delay: None,
        loss: Vec::new(),
    };
    match spec.action {
        NetworkChaosAction::Partition => f.partition = true,
        NetworkChaosAction::Delay => f.delay = delay,
        NetworkChaosAction::Loss => f.loss.extend(loss.and_then(prob)),
        NetworkChaosAction::Corrupt => f.loss.extend(corrupt.and_then(prob)),
        NetworkChaosAction::Netem => {
            f.delay = delay;
            f.loss.extend(loss.and_then(prob));
            f.loss.extend(corrupt.and_then(prob));
        }
        _ => return None,
    }
    Some(f)
}
