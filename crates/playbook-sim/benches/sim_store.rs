//! Benchmark of the simulator's store and API: 10,000 pods in 100 namespaces, label-selector
//! list latency through the router, watch fan-out to 100 watchers, resident memory.
//! Run with `cargo bench --bench sim_store` (release).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use futures::StreamExt;
use http_body_util::BodyExt;
use playbook_sim::{ClockMode, Sim, SimConfig};
use serde_json::json;
use tower::ServiceExt;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pod(ns: usize, i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:05}"), "namespace": format!("ns-{ns:03}"),
            "labels": {"app": format!("app-{}", i % 50), "tier": if i % 2 == 0 { "web" } else { "db" }, "pod-template-hash": "5d8f7c9b4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "00000000-0000-4000-a000-000000000000", "controller": true}]},
        "spec": {"nodeName": format!("node-{}", i % 20), "containers": [{"name": "main", "image": "registry.example/app:1.2.3",
            "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
            "env": [{"name": "MODE", "value": "prod"}]}]},
        "status": {"phase": "Running", "podIP": format!("10.0.{}.{}", i / 250, i % 250), "hostIP": "192.168.0.1",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"},
                           {"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"}],
            "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "image": "registry.example/app:1.2.3",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    })
}

async fn get(router: &axum::Router, uri: &str) -> (u16, bytes::Bytes) {
    let req = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("response");
    let code = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (code, body)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rss0 = rss_mb();
    let t = Instant::now();
    let sim = Sim::new(SimConfig {
        seed: 1,
        clock: ClockMode::Virtual,
        ..Default::default() // the empty scenario: the store alone
    });
    println!(
        "startup: Sim::new {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let t = Instant::now();
    sim.with_world(|w| {
        for ns in 0..100 {
            w.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{ns:03}")}}))
                .expect("ns");
        }
        for i in 0..10_000 {
            w.seed(pod(i % 100, i)).expect("pod");
        }
    });
    println!(
        "seed: 10,000 pods in 100 namespaces in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "memory: RSS {:.1} MB (before seeding {:.1} MB)",
        rss_mb(),
        rss0
    );

    let router = sim.router();
    let n = 50;
    for (label, uri, expect) in [
        (
            "cluster-wide app=app-7 over 10,000 pods",
            "/api/v1/pods?labelSelector=app%3Dapp-7",
            200,
        ),
        (
            "cluster-wide app in (app-7),tier=db",
            "/api/v1/pods?labelSelector=app%20in%20(app-7),tier%3Ddb",
            200,
        ),
        (
            "one namespace of 100 pods, app=app-7",
            "/api/v1/namespaces/ns-007/pods?labelSelector=app%3Dapp-7",
            100,
        ),
        (
            "cluster-wide field selector spec.nodeName=node-3",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-3",
            500,
        ),
    ] {
        let mut times = Vec::new();
        let mut items = 0;
        for _ in 0..n {
            let t = Instant::now();
            let (code, body) = get(&router, uri).await;
            times.push(t.elapsed());
            assert_eq!(code, 200);
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            items = v["items"].as_array().map_or(0, Vec::len);
        }
        assert_eq!(items, expect, "{label}");
        println!(
            "list ({label}): {items} items, median {:.2} ms over {n}",
            median(times).as_secs_f64() * 1000.0
        );
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (_, body) = get(&router, "/api/v1/pods").await;
        times.push(t.elapsed());
        assert!(body.len() > 1_000_000);
    }
    println!(
        "list (all 10,000 pods, no selector): median {:.1} ms",
        median(times).as_secs_f64() * 1000.0
    );

    // Watch fan-out: 100 watchers on ns-000 pods, one change, time until all have it.
    let rv = sim.with_world(|w| w.store().resource_version());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for wi in 0..100 {
        let req = Request::builder()
            .uri(format!(
                "/api/v1/namespaces/ns-000/pods?watch=1&resourceVersion={rv}"
            ))
            .body(Body::empty())
            .expect("req");
        let resp = router.clone().oneshot(req).await.expect("watch");
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = resp.into_body().into_data_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                for _ in chunk.iter().filter(|b| **b == b'\n') {
                    let _ = tx.send((wi, Instant::now()));
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fanout = Vec::new();
    for k in 0..30 {
        let start = Instant::now();
        sim.with_world(|w| {
            let pods = w.store().registry().lookup("pods").expect("pods");
            let mut p = (**w.store().get(pods, "ns-000", "pod-00000").expect("pod")).clone();
            p["metadata"]["labels"]["bench"] = json!(k.to_string());
            w.store_mut()
                .update(pods, "ns-000", "pod-00000", p, false)
                .expect("update");
        });
        let mut got = 0;
        let mut last = start;
        while got < 100 {
            let (_, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("event")
                .expect("chan");
            got += 1;
            last = last.max(at);
        }
        fanout.push(last - start);
    }
    println!(
        "watch fan-out (1 change to 100 watchers, all received): median {:.2} ms, max {:.2} ms over 30",
        median(fanout.clone()).as_secs_f64() * 1000.0,
        fanout
            .iter()
            .max()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    println!("memory: RSS {:.1} MB after the lists and watches", rss_mb());
    // Churn: a status write to every pod, each settled as an API write is.
    let t = Instant::now();
    let pods = sim.with_world(|w| w.store().registry().lookup("pods").expect("pods"));
    for i in 0..10_000 {
        let (ns, name) = (format!("ns-{:03}", i % 100), format!("pod-{i:05}"));
        sim.with_world(|w| {
            let mut p = (**w.store().get(pods, &ns, &name).expect("pod")).clone();
            p["status"]["conditions"][0]["lastProbeTime"] = json!("2026-01-01T00:01:00Z");
            w.store_mut()
                .update(pods, &ns, &name, p, true)
                .expect("status");
        });
    }
    println!(
        "churn: 10,000 status updates in {:.0} ms; RSS {:.1} MB",
        t.elapsed().as_secs_f64() * 1000.0,
        rss_mb()
    );
}
