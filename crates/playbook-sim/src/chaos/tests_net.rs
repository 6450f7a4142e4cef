//! Tests of selection (modes, phases, seeds) and of the network faults as the traffic model sees them.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::effects::PAUSE_ANNOTATION;
use super::tests::*;
use super::*;
use crate::world::World;

fn names(pods: &[std::sync::Arc<Value>]) -> Vec<String> {
    pods.iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

fn ten_pods(seed: u64) -> World {
    let mut w = world(seed);
    for i in 0..10 {
        pod(&mut w, &format!("w-{i}"), "w", "Running");
    }
    w
}

#[test]
fn each_mode_selects_the_right_number_of_pods() {
    let w = ten_pods(1);
    let sel = json!({"labelSelectors": {"app": "w"}});
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut count = |mode: &str, value: &str| {
        select_pods(w.store(), &sel, mode, value, NS, &mut rng).map(|p| {
            let mut n = names(&p);
            n.sort();
            n.dedup();
            assert_eq!(n.len(), p.len(), "no pod twice");
            p.len()
        })
    };
    assert_eq!(count("one", ""), Ok(1));
    assert_eq!(count("all", ""), Ok(10));
    assert_eq!(count("fixed", "3"), Ok(3));
    assert_eq!(count("fixed", "30"), Ok(10));
    assert_eq!(count("fixed-percent", "50"), Ok(5));
    // pkg/selector/generic/mode.go: math.Floor.
    assert_eq!(count("fixed-percent", "25"), Ok(2), "rounds down");
    assert_eq!(count("fixed-percent", "5"), Ok(0), "may select none");
    for _ in 0..20 {
        let n = count("random-max-percent", "30").expect("ok");
        assert!(n <= 3, "{n}");
    }
    assert!(count("fixed", "0").is_err());
    assert!(count("fixed-percent", "101").is_err());
    assert!(count("fixed-percent", "-5").is_err());
    assert!(count("random-max-percent", "y").is_err());
}

#[test]
fn selection_is_deterministic_per_seed_and_varies_across_seeds() {
    let w = ten_pods(1);
    let sel = json!({"labelSelectors": {"app": "w"}});
    let pick = |seed: u64| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        names(&select_pods(w.store(), &sel, "fixed", "3", NS, &mut rng).expect("ok"))
    };
    assert_eq!(pick(5), pick(5));
    let distinct: std::collections::BTreeSet<_> = (0..20).map(pick).collect();
    assert!(distinct.len() > 5, "{distinct:?}");
    // Through the controller: same world seed, same victim; other seeds, other victims.
    let victim = |seed: u64| {
        let mut w = ten_pods(seed);
        let name = create(&mut w, example("pod-failure-example", "w"));
        advance_ms(&mut w, 500);
        records(&get(&w, "podchaos", &name).expect("c"))[0]["id"].clone()
    };
    assert_eq!(victim(11), victim(11));
    let ids: std::collections::BTreeSet<String> = (0..8).map(|s| victim(s).to_string()).collect();
    assert!(ids.len() > 2, "{ids:?}");
}

/// pkg/selector/pod/selector.go: no phase filter unless `podPhaseSelectors` (phase_selector.go);
/// pods being deleted are listed like any other.
#[test]
fn pods_in_every_phase_and_being_deleted_are_selected() {
    let mut w = world(2);
    pod(&mut w, "step-done", "argo", "Succeeded");
    pod(&mut w, "step-pending", "argo", "Pending");
    pod(&mut w, "step-failed", "argo", "Failed");
    pod(&mut w, "step-run", "argo", "Running");
    pod(&mut w, "step-going", "argo", "Running");
    let pods = res(&w, "pods");
    let mut p = (*get(&w, "pods", "step-going").expect("p")).clone();
    p["metadata"]["finalizers"] = json!(["test/hold"]);
    p["metadata"]["resourceVersion"] = json!("");
    w.store_mut()
        .update(pods, NS, "step-going", p, false)
        .expect("update");
    w.store_mut()
        .delete(pods, NS, "step-going", &Default::default())
        .expect("delete");
    let sel = json!({"labelSelectors": {"app": "argo"}});
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..10 {
        let got = select_pods(w.store(), &sel, "all", "", NS, &mut rng).expect("ok");
        assert_eq!(
            names(&got),
            [
                "step-done",
                "step-failed",
                "step-going",
                "step-pending",
                "step-run"
            ]
        );
    }
    let running = json!({"labelSelectors": {"app": "argo"}, "podPhaseSelectors": ["Running"]});
    assert_eq!(
        names(&candidates(w.store(), &running, NS).expect("ok")),
        ["step-going", "step-run"]
    );
    let phases =
        json!({"labelSelectors": {"app": "argo"}, "podPhaseSelectors": ["Pending", "Succeeded"]});
    let got = candidates(w.store(), &phases, NS).expect("ok");
    assert_eq!(names(&got), ["step-done", "step-pending"]);
    // Other selector fields; `pods` names pods in any phase (selectSpecifiedPods).
    let by_pods = json!({"pods": {NS: ["step-run", "step-done", "ghost"]}});
    assert_eq!(
        names(&candidates(w.store(), &by_pods, NS).expect("ok")),
        ["step-done", "step-run"]
    );
    let exprs = json!({"expressionSelectors": [{"key": "app", "operator": "In", "values": ["argo"]}],
        "fieldSelectors": {"metadata.name": "step-run"}});
    assert_eq!(
        names(&candidates(w.store(), &exprs, NS).expect("ok")),
        ["step-run"]
    );
    // node_selector.go Gets each named node: one that does not exist is an error.
    let no_node = json!({"labelSelectors": {"app": "argo"}, "nodes": ["node-2"]});
    assert_eq!(
        candidates(w.store(), &no_node, NS).map(|p| p.len()),
        Err("nodes \"node-2\" not found".to_string())
    );
    let other_ns = json!({"namespaces": ["default"], "labelSelectors": {"app": "argo"}});
    assert!(candidates(w.store(), &other_ns, NS).expect("ok").is_empty());
}

/// A NetworkChaos on pods `src-*` (all), with optional target pods `dst-*` (all).
fn net(name: &str, action: &str, direction: &str, target: bool) -> Value {
    let mut spec = json!({
        "action": action, "mode": "all", "direction": direction,
        "selector": {"labelSelectors": {"app": "src"}},
        "delay": {"latency": "100ms"},
        "loss": {"loss": "100"},
    });
    if target {
        spec["target"] = json!({"mode": "all", "selector": {"labelSelectors": {"app": "dst"}}});
    }
    json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
        "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

fn net_world() -> World {
    let mut w = world(3);
    pod(&mut w, "src-0", "src", "Running");
    pod(&mut w, "dst-0", "dst", "Running");
    pod(&mut w, "other-0", "other", "Running");
    w
}

fn fx(w: &World, faults: &mut NetFaults, from: &str, to: &str) -> NetEffect {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let a = get(w, "pods", from).expect("from");
    let b = get(w, "pods", to).expect("to");
    network_effect(faults, w.store(), &a, &b, &mut rng)
}

/// (from, to, partitioned?)
type Check = (&'static str, &'static str, bool);

#[test]
fn partition_follows_direction_and_target() {
    // (direction, target?, [(from, to, partitioned)])
    let cases: &[(&str, bool, &[Check])] = &[
        (
            "to",
            true,
            &[
                ("src-0", "dst-0", true),
                ("dst-0", "src-0", false),
                ("src-0", "other-0", false),
                ("other-0", "dst-0", false),
            ],
        ),
        (
            "from",
            true,
            &[
                ("src-0", "dst-0", false),
                ("dst-0", "src-0", true),
                ("other-0", "src-0", false),
            ],
        ),
        (
            "both",
            true,
            &[
                ("src-0", "dst-0", true),
                ("dst-0", "src-0", true),
                ("src-0", "other-0", false),
                ("other-0", "src-0", false),
            ],
        ),
        (
            "to",
            false,
            &[
                ("src-0", "dst-0", true),
                ("src-0", "other-0", true),
                ("dst-0", "src-0", false),
                ("dst-0", "other-0", false),
            ],
        ),
        (
            "from",
            false,
            &[
                ("dst-0", "src-0", true),
                ("other-0", "src-0", true),
                ("src-0", "dst-0", false),
            ],
        ),
        (
            "both",
            false,
            &[
                ("src-0", "other-0", true),
                ("other-0", "src-0", true),
                ("dst-0", "other-0", false),
            ],
        ),
    ];
    for (i, (dir, target, checks)) in cases.iter().enumerate() {
        let mut w = net_world();
        let mut faults = NetFaults::new();
        let name = format!("p{i}");
        create(&mut w, net(&name, "partition", dir, *target));
        assert!(
            fx(&w, &mut faults, "src-0", "dst-0").is_clear(),
            "not before injection"
        );
        advance_ms(&mut w, 500);
        for (from, to, want) in checks.iter() {
            let e = fx(&w, &mut faults, from, to);
            assert_eq!(
                e.partitioned, *want,
                "{dir} target={target}: {from} -> {to}"
            );
            assert!(!e.lost && e.extra_latency.is_zero());
        }
        // Paused: recovered, so no effect.
        let r = res(&w, "networkchaos");
        let mut o = (*get(&w, "networkchaos", &name).expect("c")).clone();
        o["metadata"]["annotations"] = json!({PAUSE_ANNOTATION: "true"});
        o["metadata"]["resourceVersion"] = json!("");
        w.store_mut().update(r, NS, &name, o, false).expect("pause");
        w.settle();
        advance_ms(&mut w, 500);
        for (from, to, _) in checks.iter() {
            assert!(
                fx(&w, &mut faults, from, to).is_clear(),
                "paused: {from} -> {to}"
            );
        }
    }
}

#[test]
fn delay_and_loss_examples_and_their_recovery() {
    let mut w = net_world();
    let mut faults = NetFaults::new();
    let mut ex = example("network-delay-example", "src");
    ex["spec"]["mode"] = json!("all");
    let name = create(&mut w, ex);
    advance_ms(&mut w, 500);
    let c = get(&w, "networkchaos", &name).expect("c");
    assert_eq!(records(&c).len(), 1);
    assert_eq!(cond(&c, "AllInjected"), "True");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (a, b) = (
        get(&w, "pods", "src-0").expect("a"),
        get(&w, "pods", "other-0").expect("b"),
    );
    let n = 2000;
    let mut sum = Duration::ZERO;
    for _ in 0..n {
        let e = network_effect(&mut faults, w.store(), &a, &b, &mut rng);
        assert!(e.extra_latency <= Duration::from_millis(180) && !e.lost && !e.partitioned);
        sum += e.extra_latency;
    }
    let mean = sum.as_secs_f64() / n as f64;
    assert!((0.080..0.100).contains(&mean), "mean delay {mean}");
    assert!(
        network_effect(&mut faults, w.store(), &b, &a, &mut rng).is_clear(),
        "direction to only"
    );
    advance_ms(&mut w, 10_000);
    assert_eq!(phase(&get(&w, "networkchaos", &name).expect("c")), "Stop");
    assert!(
        network_effect(&mut faults, w.store(), &a, &b, &mut rng).is_clear(),
        "recovered"
    );

    // The partition example: source one tikv pod, target one tikv pod.
    let mut ex = example("network-partition-example", "src");
    ex["spec"]["target"]["selector"] = json!({"labelSelectors": {"app": "dst"}});
    let name = create(&mut w, ex);
    advance_ms(&mut w, 500);
    let c = get(&w, "networkchaos", &name).expect("c");
    let keys: Vec<_> = records(&c)
        .iter()
        .map(|r| r["selectorKey"].clone())
        .collect();
    assert_eq!(keys, [json!("."), json!(".Target")]);
    assert!(fx(&w, &mut faults, "src-0", "dst-0").partitioned);
    assert!(!fx(&w, &mut faults, "dst-0", "src-0").partitioned);

    // A full loss drops every packet.
    create(&mut w, net("lossy", "loss", "to", false));
    advance_ms(&mut w, 500);
    assert!(fx(&w, &mut faults, "src-0", "other-0").lost);
    assert!(!fx(&w, &mut faults, "other-0", "src-0").lost);
}

#[test]
fn network_effect_is_cheap_with_the_cache() {
    let mut w = net_world();
    for i in 0..200 {
        pod(&mut w, &format!("bulk-{i}"), "bulk", "Running");
    }
    let mut faults = NetFaults::new();
    create(&mut w, net("d", "delay", "both", true));
    create(&mut w, net("l", "netem", "to", false));
    advance_ms(&mut w, 500);
    let (a, b) = (
        get(&w, "pods", "src-0").expect("a"),
        get(&w, "pods", "dst-0").expect("b"),
    );
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    network_effect(&mut faults, w.store(), &a, &b, &mut rng);
    assert_eq!(faults.len(), 2);
    let n = 200_000u32;
    let t = Instant::now();
    let mut hits = 0u32;
    for _ in 0..n {
        hits += u32::from(!network_effect(&mut faults, w.store(), &a, &b, &mut rng).is_clear());
    }
    let per = t.elapsed() / n;
    eprintln!("network_effect: {per:?} per call (2 active faults, 203 pods)");
    assert_eq!(hits, n);
    let bound = if cfg!(debug_assertions) {
        20_000
    } else {
        1_000
    };
    assert!(per < Duration::from_nanos(bound), "{per:?}");
}

/// A packet from `from` to `to` as the traffic model sends it: through a ClusterIP Service
/// (`via_service`) or to the pod IP; `answer` for the server's answer back to its client.
fn through(
    w: &World,
    faults: &mut NetFaults,
    from: &str,
    to: &str,
    via_service: bool,
    answer: bool,
) -> NetEffect {
    faults.sync(w.store());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let p = Packet {
        from: Some((NS, from)),
        to: Some((NS, to)),
        // A request through a Service is addressed to the ClusterIP; an answer to the client's
        // pod IP, and its client sees it coming from the ClusterIP.
        dst_is_pod_ip: answer || !via_service,
        src_is_pod_ip: !(answer && via_service),
        bytes: network::SEGMENT_BYTES,
    };
    faults.packet(&p, &mut rng)
}

/// tc filters on the target pods' IPs inside the source pod's netns, before kube-proxy's DNAT
/// (pkg/chaosdaemon/tc_server.go `setFilterTcs`: `-m set --match-set X dst`); partition drops
/// on the target side by the source pod IP (controllers/chaosimpl/networkchaos/partition/impl.go,
/// pkg/chaosdaemon/iptables_server.go INPUT `src`).
#[test]
fn rules_see_cluster_ips_not_the_backend_pod_ips() {
    let mut w = net_world();
    let mut faults = NetFaults::new();
    create(&mut w, net("d", "delay", "to", true));
    advance_ms(&mut w, 500);
    // To the target's pod IP: delayed; to its Service: not.
    assert!(!through(&w, &mut faults, "src-0", "dst-0", false, false).is_clear());
    assert!(through(&w, &mut faults, "src-0", "dst-0", true, false).is_clear());
    // The target's answers are not the source's packets.
    assert!(through(&w, &mut faults, "dst-0", "src-0", true, true).is_clear());

    let mut w = net_world();
    let mut faults = NetFaults::new();
    create(&mut w, net("p", "partition", "to", true));
    advance_ms(&mut w, 500);
    // The target drops what comes from the source's pod IP, Service or not.
    assert!(through(&w, &mut faults, "src-0", "dst-0", true, false).partitioned);
    assert!(!through(&w, &mut faults, "other-0", "dst-0", true, false).partitioned);

    // `from` with a target: the qdisc sits on the target, filtered on the source pods' IPs,
    // which the target's answers carry even when the source came through a Service.
    let mut w = net_world();
    let mut faults = NetFaults::new();
    create(&mut w, net("f", "delay", "from", true));
    advance_ms(&mut w, 500);
    assert!(!through(&w, &mut faults, "dst-0", "src-0", true, true).is_clear());
    assert!(through(&w, &mut faults, "src-0", "dst-0", true, false).is_clear());
}

/// trafficcontrol/impl.go: `from` without a target has no `.Target` record to put a qdisc on,
/// so it installs nothing; `duplicate` changes no TCP exchange; `bandwidth` (tbf) and netem's
/// `rate` add the segment's serialisation time (pkg/chaosdaemon/netem/utils.go `parseRate`).
#[test]
fn from_without_target_duplicate_and_bandwidth() {
    let mut w = net_world();
    let mut faults = NetFaults::new();
    create(&mut w, net("f", "delay", "from", false));
    advance_ms(&mut w, 500);
    for (a, b) in [("src-0", "dst-0"), ("dst-0", "src-0")] {
        assert!(fx(&w, &mut faults, a, b).is_clear(), "{a} -> {b}");
    }
    let mut w = net_world();
    let mut faults = NetFaults::new();
    let mut dup = net("dup", "duplicate", "to", false);
    dup["spec"] = json!({"action": "duplicate", "mode": "all", "selector": {"labelSelectors": {"app": "src"}},
        "duplicate": {"duplicate": "100"}});
    create(&mut w, dup);
    let mut bw = net("bw", "bandwidth", "to", false);
    bw["spec"] = json!({"action": "bandwidth", "mode": "all", "selector": {"labelSelectors": {"app": "dst"}},
        "bandwidth": {"rate": "1mbit", "limit": 100, "buffer": 10000}});
    create(&mut w, bw);
    advance_ms(&mut w, 500);
    assert!(fx(&w, &mut faults, "src-0", "other-0").is_clear());
    let e = fx(&w, &mut faults, "dst-0", "other-0");
    // 1460 bytes at 125000 bytes/s.
    assert!(
        (e.extra_latency.as_secs_f64() - 0.01168).abs() < 1e-6,
        "{e:?}"
    );
    assert_eq!(network::parse_rate("1mbps"), Some(1024.0 * 1024.0));
}

/// A TCP exchange retransmits a lost segment after its RTO (1 s for a SYN, 200 ms for data),
/// doubling, until the client gives up.
#[test]
fn exchanges_retransmit_and_give_up() {
    let mut w = net_world();
    let mut faults = NetFaults::new();
    create(&mut w, net("l", "loss", "to", false));
    advance_ms(&mut w, 500);
    faults.sync(w.store());
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Exchange {
        client: None,
        server: (NS, "src-0"),
        via_service: false,
        handshake: true,
        give_up_s: 30.0,
    };
    let r = faults.exchange(&x, &mut rng);
    assert_eq!(
        r,
        Err(GaveUp {
            waited_s: 30.0,
            reached: false
        })
    );
    let x = Exchange {
        server: (NS, "other-0"),
        ..x
    };
    assert_eq!(faults.exchange(&x, &mut rng), Ok(0.0));
}
