//! NetworkChaos effects on traffic: the `tc` and `iptables` rules the chaos-daemon would install in each pod's network namespace, and the per-packet query the traffic model makes ([`NetFaults::packet`]).
//!
//! A NetworkChaos changes no object: in a real cluster the chaos-daemon installs `tc netem`
//! / `tbf` qdiscs and `iptables` chains inside the selected pods' network namespaces. Here
//! the traffic model asks, for every simulated packet (each TCP segment and each of its
//! retransmissions), what the rules do to it. A rule acts while its record is `Injected`:
//! from [`super::ACTION_LATENCY`] after creation (or resume) until recovery.
//!
//! # Where the rules sit (Chaos Mesh v2.8.1)
//! `S` are the pods of `spec.selector`, `T` those of `spec.target`.
//! - Traffic control (`netem`, `delay`, `loss`, `duplicate`, `corrupt`, `bandwidth`;
//!   `controllers/chaosimpl/networkchaos/trafficcontrol/impl.go`): `direction: to`/`both`
//!   puts a qdisc on the egress of every `S` pod, filtered by an ipset of the `T` pods' IPs
//!   (no target and no `externalTargets`: no filter, every packet the pod sends);
//!   `from`/`both` with a target puts one on every `T` pod filtered by the `S` pods' IPs.
//!   `from` without a target installs nothing at all.
//! - Partition (`controllers/chaosimpl/networkchaos/partition/impl.go`,
//!   `pkg/chaosdaemon/iptables_server.go`): on `S`, `to`/`both` adds an OUTPUT rule dropping
//!   packets whose destination is a `T` IP, `from`/`both` an INPUT rule dropping packets whose
//!   source is a `T` IP; on `T`, `from`/`both` an OUTPUT rule on `S` IPs and `to`/`both` an
//!   INPUT rule on `S` IPs. Without a target the rules match every packet.
//! - The ipset filters (`pkg/chaosdaemon/tc_server.go`: `-m set --match-set X dst`) see the
//!   addresses **inside the pod's network namespace**, before kube-proxy's DNAT in the host
//!   namespace: a request a pod sends to a ClusterIP Service carries the ClusterIP, not the
//!   backend's pod IP, so a `to`+`target` filter never matches it; the answer to it reaches
//!   the pod with the ClusterIP as its source (conntrack un-DNAT), so an INPUT rule on the
//!   backend's IP does not match it either. The backend sees the client's real pod IP.
//!   [`Packet`] carries which addresses the two ends see.
//!
//! # What the rules do
//! `netem` merges every field the spec gives (`controllers/podnetworkchaos/controller.go`
//! `mergeNetem`, whatever the action): `delay` adds `latency` plus a uniform jitter in
//! `[-jitter, +jitter]` with netem's correlation; `loss` drops with that probability
//! (correlated); `corrupt` is a drop too (the receiver's checksum discards it); `duplicate`
//! sends a second copy, which TCP discards, so it changes no request's outcome; `rate` (netem)
//! and `bandwidth` (tbf) add the segment's serialisation time at that rate. Several unfiltered
//! qdiscs chain (delays add, each drops on its own); a partition drops everything it matches.
//! Reordering is not modelled (TCP hides it but for a little extra delay).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use super::record::{INJECTED, records_of};
use crate::resources::ResId;
use crate::store::{Store, meta_str};
use playbook_model::chaosmesh::{NetworkChaosAction, NetworkChaosDirection, NetworkChaosSpec};
use playbook_model::units;

/// The size of a full TCP segment on a 1500-byte MTU, bytes (what `rate`/`bandwidth` delay).
pub const SEGMENT_BYTES: u64 = 1460;

/// What the injected network faults do to one packet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetEffect {
    /// Extra one-way latency (delay, jitter, serialisation at a limited rate), zero when none.
    pub extra_latency: Duration,
    /// Dropped by `loss` (or `corrupt`): TCP retransmits it after its timeout.
    pub lost: bool,
    /// Dropped by a `partition` rule: every retransmission is dropped too while it lasts.
    pub partitioned: bool,
}

impl NetEffect {
    /// True when nothing is changed.
    pub fn is_clear(&self) -> bool {
        *self == NetEffect::default()
    }

    /// True when the packet does not arrive.
    pub fn dropped(&self) -> bool {
        self.lost || self.partitioned
    }
}

/// One packet, as the rules see it. A `None` end is outside the cluster's pod network (the
/// API server, a client outside the cluster): it has no rules of its own and no pod IP.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The sending pod, `(namespace, name)`.
    pub from: Option<(&'a str, &'a str)>,
    /// The receiving pod.
    pub to: Option<(&'a str, &'a str)>,
    /// The destination address inside the sender's netns is the receiver's pod IP (false: a
    /// ClusterIP, DNATed later by kube-proxy in the host netns, or an address outside).
    pub dst_is_pod_ip: bool,
    /// The source address inside the receiver's netns is the sender's pod IP (false: the
    /// ClusterIP of an answer that conntrack un-DNATed, or an address outside).
    pub src_is_pod_ip: bool,
    /// Bytes on the wire (for `rate` and `bandwidth`).
    pub bytes: u64,
}

impl<'a> Packet<'a> {
    /// A packet between two pods addressed by pod IP both ways (a headless Service, a pod IP).
    pub fn direct(from: (&'a str, &'a str), to: (&'a str, &'a str)) -> Self {
        Packet {
            from: Some(from),
            to: Some(to),
            dst_is_pod_ip: true,
            src_is_pod_ip: true,
            bytes: SEGMENT_BYTES,
        }
    }
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

/// What one NetworkChaos does to a packet its rules match.
#[derive(Debug, Clone, Default)]
struct Action {
    partition: bool,
    delay: Option<(f64, f64, Correlated)>,
    loss: Vec<(f64, Correlated)>,
    /// Bytes per second (`rate` of netem, `rate` of tbf), 0 when unlimited.
    rate: f64,
}

/// Which packets a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hook {
    /// The pod's egress: tc qdiscs, iptables OUTPUT; the filter is on the destination.
    Egress,
    /// iptables INPUT; the filter is on the source.
    Ingress,
}

/// One rule in one pod's netns.
#[derive(Debug, Clone)]
struct Rule {
    fault: usize,
    hook: Hook,
    /// Index into [`NetFaults::sets`] (the ipset of pod IPs); `None`: every packet.
    filter: Option<usize>,
}

type PodKey = (String, String);

/// FNV-1a: the rules are looked up for every simulated packet, with short keys.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Fast = std::hash::BuildHasherDefault<Fnv>;
type Map<K, V> = HashMap<K, V, Fast>;

/// The active network faults, rebuilt only when a NetworkChaos changes. Keep one per traffic
/// model and ask [`NetFaults::packet`] after [`NetFaults::sync`] (or use [`network_effect`]).
#[derive(Debug, Default)]
pub struct NetFaults {
    rv: u64,
    built: bool,
    res: Option<ResId>,
    actions: Vec<Action>,
    /// The ipsets: pod names by namespace.
    sets: Vec<Map<String, HashSet<String, Fast>>>,
    /// The rules each pod's netns holds.
    rules: Map<String, Map<String, Vec<Rule>>>,
}

/// Parses a tc rate as Chaos Mesh's `parseRate` (`pkg/chaosdaemon/netem/utils.go`) does:
/// `kbps`.. are bytes (x1024), `kbit`.. bits (x1000 / 8). Bytes per second.
pub fn parse_rate(text: &str) -> Option<f64> {
    let s = text.trim().to_ascii_lowercase();
    for (units, base, bits) in [
        (["tbps", "gbps", "mbps", "kbps", "bps"], 1024.0, false),
        (["tbit", "gbit", "mbit", "kbit", "bit"], 1000.0, true),
    ] {
        for (i, u) in units.iter().enumerate() {
            if let Some(n) = s.strip_suffix(u) {
                let n: u64 = n.trim().parse().ok()?;
                let mut v = n as f64 * f64::powi(base, 4 - i as i32);
                if bits {
                    v /= 8.0;
                }
                return Some(v);
            }
        }
    }
    None
}

impl NetFaults {
    /// An empty cache (built on the first [`NetFaults::sync`]).
    pub fn new() -> Self {
        NetFaults::default()
    }

    /// Number of active faults (NetworkChaos objects with installed rules).
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// True when no fault is active.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
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
        self.actions.clear();
        self.sets.clear();
        self.rules.clear();
        let Some(res) = self.res else { return };
        for chaos in store.list(res, None, &Default::default(), &Default::default()) {
            self.install(&chaos);
        }
    }

    fn add_rule(&mut self, pod: &PodKey, rule: Rule) {
        self.rules
            .entry(pod.0.clone())
            .or_default()
            .entry(pod.1.clone())
            .or_default()
            .push(rule);
    }

    /// Installs one NetworkChaos' rules, as its records say they are injected.
    fn install(&mut self, chaos: &Value) {
        let Ok(spec) = serde_json::from_value::<NetworkChaosSpec>(
            chaos.get("spec").cloned().unwrap_or(Value::Null),
        ) else {
            return;
        };
        let Some(records) = records_of(chaos) else {
            return;
        };
        let Some(action) = action_of(&spec) else {
            return;
        };
        let split = |id: &str| {
            let mut it = id.splitn(2, '/');
            Some((it.next()?.to_string(), it.next()?.to_string()))
        };
        // The ipsets hold every selected pod of a side (injected or not): the controller builds
        // them from all the records of the other side.
        let side = |key: &str| -> Vec<PodKey> {
            records
                .iter()
                .filter(|r| r.selector_key == key)
                .filter_map(|r| split(&r.id))
                .collect()
        };
        let injected = |key: &str| -> Vec<PodKey> {
            records
                .iter()
                .filter(|r| r.selector_key == key && r.phase == INJECTED)
                .filter_map(|r| split(&r.id))
                .collect()
        };
        let (sources, targets) = (side("."), side(".Target"));
        let (s_inj, t_inj) = (injected("."), injected(".Target"));
        if s_inj.is_empty() && t_inj.is_empty() {
            return;
        }
        let external = spec
            .external_targets
            .as_ref()
            .is_some_and(|e| !e.is_empty());
        let dir = spec.direction.clone().unwrap_or(NetworkChaosDirection::To);
        let to = matches!(dir, NetworkChaosDirection::To | NetworkChaosDirection::Both);
        let from = matches!(
            dir,
            NetworkChaosDirection::From | NetworkChaosDirection::Both
        );
        let fault = self.actions.len();
        self.actions.push(action.clone());
        // A filter: None (every packet) when the other side is empty and there are no external
        // targets; else an ipset of the other side's pods (external CIDRs never hold a pod).
        let filter_of = |this: &mut Self, other: &[PodKey]| -> Option<usize> {
            if other.is_empty() && !external {
                return None;
            }
            let mut set: Map<String, HashSet<String, Fast>> = Map::default();
            for (ns, name) in other {
                set.entry(ns.clone()).or_default().insert(name.clone());
            }
            this.sets.push(set);
            Some(this.sets.len() - 1)
        };
        let mut plan: Vec<(PodKey, Hook, Option<usize>)> = Vec::new();
        if action.partition {
            if !s_inj.is_empty() {
                let f = filter_of(self, &targets);
                for p in &s_inj {
                    if to {
                        plan.push((p.clone(), Hook::Egress, f));
                    }
                    if from {
                        plan.push((p.clone(), Hook::Ingress, f));
                    }
                }
            }
            if !t_inj.is_empty() {
                let f = filter_of(self, &sources);
                for p in &t_inj {
                    if from {
                        plan.push((p.clone(), Hook::Egress, f));
                    }
                    if to {
                        plan.push((p.clone(), Hook::Ingress, f));
                    }
                }
            }
        } else {
            if to && !s_inj.is_empty() {
                let f = filter_of(self, &targets);
                plan.extend(s_inj.iter().map(|p| (p.clone(), Hook::Egress, f)));
            }
            if from && !t_inj.is_empty() {
                let f = filter_of(self, &sources);
                plan.extend(t_inj.iter().map(|p| (p.clone(), Hook::Egress, f)));
            }
        }
        if plan.is_empty() {
            self.actions.pop();
            return;
        }
        for (pod, hook, filter) in plan {
            self.add_rule(
                &pod,
                Rule {
                    fault,
                    hook,
                    filter,
                },
            );
        }
    }

    /// What the rules do to `p`: the sender's egress rules (filtered on the destination it
    /// addresses), then the receiver's ingress rules (filtered on the source it sees). Draws
    /// jitter and loss from `rng`.
    pub fn packet(&mut self, p: &Packet<'_>, rng: &mut impl Rng) -> NetEffect {
        let mut out = NetEffect::default();
        let NetFaults {
            actions,
            sets,
            rules,
            ..
        } = self;
        if actions.is_empty() {
            return out;
        }
        let look = |pod: Option<(&str, &str)>| match pod {
            Some((ns, n)) => rules.get(ns).and_then(|m| m.get(n)),
            None => None,
        };
        let matches = |filter: Option<usize>, peer: Option<(&str, &str)>, is_ip: bool| {
            let Some(f) = filter else { return true };
            if !is_ip {
                return false;
            }
            match (sets.get(f), peer) {
                (Some(set), Some((ns, name))) => match set.get(ns) {
                    Some(names) => names.contains(name),
                    None => false,
                },
                _ => false,
            }
        };
        // At most a few rules apply; collected without allocating in the common case.
        let mut hits = [0usize; 16];
        let mut n = 0;
        let mut more: Vec<usize> = Vec::new();
        let mut hit = |i: usize| {
            if n < hits.len() {
                hits[n] = i;
                n += 1;
            } else {
                more.push(i);
            }
        };
        if let Some(rs) = look(p.from) {
            for r in rs {
                if r.hook == Hook::Egress && matches(r.filter, p.to, p.dst_is_pod_ip) {
                    hit(r.fault);
                }
            }
        }
        if let Some(rs) = look(p.to) {
            for r in rs {
                if r.hook == Hook::Ingress && matches(r.filter, p.from, p.src_is_pod_ip) {
                    hit(r.fault);
                }
            }
        }
        for i in hits[..n].iter().chain(more.iter()) {
            let Some(a) = actions.get_mut(*i) else {
                continue;
            };
            if a.partition {
                out.partitioned = true;
                continue;
            }
            if let Some((latency, jitter, corr)) = &mut a.delay {
                let u = corr.next(rng);
                let d = (*latency + (2.0 * u - 1.0) * *jitter).max(0.0);
                out.extra_latency += Duration::from_secs_f64(d);
            }
            if a.rate > 0.0 {
                out.extra_latency += Duration::from_secs_f64(p.bytes as f64 / a.rate);
            }
            for (prob, corr) in a.loss.iter_mut() {
                if corr.next(rng) < *prob {
                    out.lost = true;
                }
            }
        }
        out
    }

    /// [`NetFaults::packet`] for a packet between two pods addressed by pod IP (objects; only
    /// their namespace and name are read).
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
        self.packet(&Packet::direct(from, to), rng)
    }
}

/// The first retransmission timeout of a SYN (Linux `TCP_TIMEOUT_INIT`, RFC 6298), seconds.
pub const SYN_RTO_S: f64 = 1.0;
/// The least retransmission timeout of a data segment (Linux `TCP_RTO_MIN`), seconds.
pub const RTO_MIN_S: f64 = 0.2;

/// One request/response exchange over TCP between a client and a server pod.
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The client pod (None: outside the pod network, e.g. the API server or an outside client).
    pub client: Option<(&'a str, &'a str)>,
    /// The server pod.
    pub server: (&'a str, &'a str),
    /// The client addresses a ClusterIP Service (kube-proxy DNATs it to the server in the host
    /// netns); false: the server's pod IP (a headless Service, the API server's proxy).
    pub via_service: bool,
    /// A new connection (SYN, SYN-ACK first); false: a kept-alive connection.
    pub handshake: bool,
    /// Seconds after which the client gives up (its connect or read timeout).
    pub give_up_s: f64,
}

/// An exchange the client gave up on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaveUp {
    /// Seconds the client waited.
    pub waited_s: f64,
    /// The request reached the server (which served it; only its answer was lost).
    pub reached: bool,
}

/// How an exchange went: `Ok(extra seconds)` the faults added (delays and retransmissions),
/// or how the client gave up.
pub type Exchanged = Result<f64, GaveUp>;

impl NetFaults {
    /// Runs one exchange through the rules, segment by segment: a dropped segment is sent
    /// again after the retransmission timeout (1 s for a SYN, else 200 ms plus the round trip
    /// so far), doubling each time (`tcp_retransmit_timer`), until the client gives up.
    pub fn exchange(&mut self, x: &Exchange<'_>, rng: &mut impl Rng) -> Exchanged {
        if self.actions.is_empty() {
            return Ok(0.0);
        }
        let up = Packet {
            from: x.client,
            to: Some(x.server),
            dst_is_pod_ip: !x.via_service,
            src_is_pod_ip: x.client.is_some(),
            bytes: SEGMENT_BYTES,
        };
        // The answer goes to the client's real address; the client sees the ClusterIP as its
        // source when conntrack un-DNATs it.
        let down = Packet {
            from: Some(x.server),
            to: x.client,
            dst_is_pod_ip: x.client.is_some(),
            src_is_pod_ip: !x.via_service,
            bytes: SEGMENT_BYTES,
        };
        let mut t = 0.0;
        // The round trip the stack has measured (srtt), which sets the data RTO.
        let mut rtt = 0.0;
        let mut send = |this: &mut Self, p: &Packet<'_>, rto0: Option<f64>, t: &mut f64| -> bool {
            let mut rto = rto0.unwrap_or(RTO_MIN_S + rtt);
            loop {
                let e = this.packet(p, rng);
                if !e.dropped() {
                    let d = e.extra_latency.as_secs_f64();
                    *t += d;
                    rtt = (rtt + d).min(60.0);
                    return true;
                }
                *t += rto;
                rto *= 2.0;
                if *t >= x.give_up_s {
                    return false;
                }
            }
        };
        let gave_up = |reached| {
            Err(GaveUp {
                waited_s: x.give_up_s,
                reached,
            })
        };
        if x.handshake {
            for p in [&up, &down] {
                if !send(self, p, Some(SYN_RTO_S), &mut t) {
                    return gave_up(false);
                }
            }
        }
        if !send(self, &up, None, &mut t) {
            return gave_up(false);
        }
        if !send(self, &down, None, &mut t) || t >= x.give_up_s {
            return gave_up(true);
        }
        Ok(t)
    }
}

/// What the injected NetworkChaos rules do to a packet from pod `from` to pod `to`, both
/// addressed by pod IP: syncs `faults` with `store` (cheap when nothing changed), then asks it.
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

/// The action of a spec (None: an action with no effect on packets).
fn action_of(spec: &NetworkChaosSpec) -> Option<Action> {
    let secs = |s: &str| units::go_duration_secs(s).unwrap_or(0.0);
    let prob = |p: &str, c: Option<&str>| Some((units::percent(p).ok()?, Correlated::new(c)));
    let mut a = Action::default();
    match spec.action {
        NetworkChaosAction::Partition => a.partition = true,
        NetworkChaosAction::Bandwidth => {
            a.rate = spec
                .bandwidth
                .as_ref()
                .and_then(|b| parse_rate(&b.rate))
                .unwrap_or(0.0);
        }
        NetworkChaosAction::Netem
        | NetworkChaosAction::Delay
        | NetworkChaosAction::Loss
        | NetworkChaosAction::Duplicate
        | NetworkChaosAction::Corrupt => {
            // mergeNetem: every field the spec has, whatever the action.
            a.delay = spec.delay.as_ref().map(|d| {
                (
                    secs(&d.latency),
                    d.jitter.as_deref().map(secs).unwrap_or(0.0),
                    Correlated::new(d.correlation.as_deref()),
                )
            });
            a.loss.extend(
                spec.loss
                    .as_ref()
                    .and_then(|l| prob(&l.loss, l.correlation.as_deref())),
            );
            a.loss.extend(
                spec.corrupt
                    .as_ref()
                    .and_then(|c| prob(&c.corrupt, c.correlation.as_deref())),
            );
            a.rate = spec
                .rate
                .as_ref()
                .and_then(|r| parse_rate(&r.rate))
                .unwrap_or(0.0);
        }
    }
    Some(a)
}
