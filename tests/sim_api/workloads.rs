//! Real kubectl against `playbook sim serve` with the controllers at work: rollouts, scaling,
//! replacement of deleted pods, metrics. The server's clock is the wall clock, so each wait is
//! a bounded poll.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

/// Pods Ready one second after their container starts, stopping in 3 s when deleted, with a
/// known use of CPU and memory.
const API: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, labels: {app: api}}
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  template:
    metadata:
      labels: {app: api}
      annotations:
        sim.playbook.dev/startup: "1s"
        sim.playbook.dev/shutdown: "3s"
        sim.playbook.dev/cpu: "250m"
        sim.playbook.dev/memory: "100Mi"
    spec:
      containers:
      - name: server
        image: api:1
        resources: {requests: {cpu: 500m, memory: 200Mi}, limits: {memory: 400Mi}}
"#;

/// The longest any wait here may take.
const WAIT: Duration = Duration::from_secs(30);

/// The Deployment's pods: (name, terminating, Ready).
fn pods(s: &Server) -> Vec<(String, bool, bool)> {
    let out = s.ok(&["get", "pods", "-l", "app=api", "-o", "json"]);
    let list: Value = serde_json::from_str(&out).expect("json");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["deletionTimestamp"].is_string(),
                ready,
            )
        })
        .collect()
}

/// Names of the Ready pods not being deleted.
fn ready(s: &Server) -> Vec<String> {
    pods(s)
        .into_iter()
        .filter(|(_, terminating, ready)| *ready && !terminating)
        .map(|(n, _, _)| n)
        .collect()
}

fn ready_replicas(s: &Server) -> String {
    s.ok(&[
        "get",
        "deploy",
        "api",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ])
}

/// Waits until the Deployment reports `n` ready replicas and `n` pods are Ready.
fn wait_ready(s: &Server, n: usize) -> Vec<String> {
    s.wait_for(WAIT, &format!("{n} Ready pods"), || {
        let names = ready(s);
        (names.len() == n && ready_replicas(s) == n.to_string()).then_some(names)
    })
}

#[test]
fn rollout_status_finishes_once_pods_are_ready() {
    let s = Server::start();
    let start = Instant::now();
    s.ok_stdin(&["apply", "-f", "-"], API);
    let out = s.ok(&["rollout", "status", "deployment/api", "--timeout=30s"]);
    assert!(
        out.contains("deployment \"api\" successfully rolled out"),
        "{out}"
    );
    // A container starts a second after binding, and is Ready a second later.
    assert!(
        start.elapsed() > Duration::from_secs(1),
        "rollout status waited for the pods: {:?}",
        start.elapsed()
    );
    assert_eq!(ready(&s).len(), 2, "{:?}", pods(&s));
    assert_eq!(ready_replicas(&s), "2");
    let get = s.ok(&["get", "deploy", "api", "--no-headers"]);
    assert_eq!(
        get.split_whitespace().take(4).collect::<Vec<_>>(),
        ["api", "2/2", "2", "2"],
        "{get}"
    );
}

#[test]
fn scale_leads_to_that_many_ready_pods() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], API);
    wait_ready(&s, 2);
    assert!(
        s.ok(&["scale", "deployment", "api", "--replicas=4"])
            .contains("deployment.apps/api scaled")
    );
    wait_ready(&s, 4);
    s.ok(&["scale", "deployment", "api", "--replicas=1"]);
    wait_ready(&s, 1);
    // The others terminate (3 s of shutdown), then go.
    s.wait_for(WAIT, "scaled-down pods gone", || {
        (pods(&s).len() == 1).then_some(())
    });
}

#[test]
fn deleted_pod_of_a_deployment_is_replaced() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], API);
    let before = wait_ready(&s, 2);
    let victim = &before[0];
    let out = s.ok(&["delete", "pod", victim, "--wait=false"]);
    assert!(out.contains(&format!("pod \"{victim}\" deleted")), "{out}");
    // As on a real cluster, it is Terminating while its container stops.
    let status = s.ok(&["get", "pod", victim, "--no-headers"]);
    assert!(status.contains("Terminating"), "{status}");
    let after = wait_ready(&s, 2);
    assert!(!after.contains(victim), "{after:?}");
    assert!(after.contains(&before[1]), "the other pod stays: {after:?}");
    s.wait_for(WAIT, "the deleted pod gone", || {
        (!pods(&s).iter().any(|(n, _, _)| n == victim)).then_some(())
    });
    let err = s.fails(&["get", "pod", victim]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn metrics_api_shows_pod_usage() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], API);
    let names = wait_ready(&s, 2);
    let path = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods";
    // metrics-server's resolution is 15 s: the first scrape that finds the pods Running.
    let items = s.wait_for(WAIT, "metrics of both pods", || {
        let raw = s.ok(&["get", "--raw", path]);
        let list: Value = serde_json::from_str(&raw).expect("json");
        assert_eq!(list["kind"], "PodMetricsList", "{raw}");
        let items: Vec<Value> = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|m| names.iter().any(|n| m["metadata"]["name"] == n.as_str()))
            .cloned()
            .collect();
        (items.len() == 2).then_some(items)
    });
    for m in &items {
        let usage = &m["containers"][0]["usage"];
        assert_eq!(m["containers"][0]["name"], "server", "{m}");
        // 250m and 100Mi, with metrics-server's ±3% noise; nanocores and KiB as it renders them.
        let cpu: f64 = usage["cpu"]
            .as_str()
            .and_then(|c| c.strip_suffix('n'))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("cpu in nanocores: {m}"));
        let mem: f64 = usage["memory"]
            .as_str()
            .and_then(|c| c.strip_suffix("Ki"))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("memory in KiB: {m}"));
        assert!((cpu / 250e6 - 1.0).abs() <= 0.031, "{m}");
        assert!((mem / (100.0 * 1024.0) - 1.0).abs() <= 0.031, "{m}");
    }
    let top = s.ok(&["top", "pod", "-l", "app=api", "--no-headers"]);
    assert_eq!(top.lines().count(), 2, "{top}");
    assert!(names.iter().all(|n| top.contains(n.as_str())), "{top}");
}
