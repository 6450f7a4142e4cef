//! The Chaos Mesh examples applied with kubectl to `playbook sim serve` (wall time) produce
//! their documented effect on the simulated MLOps platform.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sim_api::Server;

/// `playbook sim serve` with the default `mlops` platform (the shared harness).
struct Serve(Server);

fn serve() -> Serve {
    Serve(Server::start_with(&["--seed", "3"]))
}

impl Serve {
    fn kubectl(&self, args: &[&str]) -> (bool, String) {
        let out = self.0.kubectl(args);
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            text.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        (out.status.success(), text)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let (ok, text) = self.kubectl(&a);
        assert!(ok, "kubectl {args:?}: {text}");
        serde_json::from_str(&text).expect("json")
    }

    fn apply(&self, fixture: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/chaos")
            .join(fixture);
        let (ok, text) = self.kubectl(&["apply", "-f", path.to_str().unwrap_or_default()]);
        assert!(ok, "{fixture}: {text}");
    }

    /// Seconds a `kubectl get --raw PATH` takes (fastest of 3) and whether it succeeded.
    fn raw_time(&self, path: &str) -> (f64, bool) {
        let mut best = f64::MAX;
        let mut ok = true;
        for _ in 0..3 {
            let t = Instant::now();
            ok &= self.kubectl(&["get", "--raw", path]).0;
            best = best.min(t.elapsed().as_secs_f64());
        }
        (best, ok)
    }
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    false
}

fn names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

const SEARCH: &str =
    "/api/v1/namespaces/mlflow/services/mlflow:5000/proxy/api/2.0/mlflow/experiments/search";

#[test]
fn chaos_mesh_examples_applied_with_kubectl_have_their_effect() {
    let s = serve();

    // Steady state at once: three predictor pods Ready, the InferenceService Ready.
    let isvc = s.json(&["get", "isvc", "sklearn-iris", "-n", "kserve-inference"]);
    let ready = |o: &Value| {
        o["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    };
    assert!(ready(&isvc), "{isvc:#}");
    let before = names(&s.json(&["get", "pods", "-n", "kserve-inference"]));
    assert_eq!(before.len(), 3, "{before:?}");

    // StressChaos cpu: the trainer's CPU rises in metrics.k8s.io (refreshed every 15 s).
    let cpu = || {
        let (_, text) = s.kubectl(&[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/training/pods",
        ]);
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        // The trainer's pod, not the fine-tuning Job's beside it.
        let trainer = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("trainer-"))
            })
            .cloned()
            .unwrap_or_default();
        trainer["containers"][0]["usage"]["cpu"]
            .as_str()
            .and_then(|c| c.strip_suffix('n'))
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1e6
    };
    let cpu0 = cpu();
    assert!(cpu0 > 100.0 && cpu0 < 900.0, "{cpu0}");
    s.apply("burn-cpu.yaml");

    // PodChaos pod-kill: a predictor pod is replaced.
    s.apply("pod-kill.yaml");
    assert!(wait_for(Duration::from_secs(5), || {
        let now = names(&s.json(&["get", "pods", "-n", "kserve-inference"]));
        now.len() == 3 && now != before
    }));

    // StressChaos memory: one predictor container is OOMKilled (the platform starts with an old
    // OOM kill in one predictor's lastState, and a container that crashed before restarts
    // after a back-off: a new kill is a new lastState.terminated.finishedAt).
    let kills = || -> std::collections::BTreeMap<String, (String, bool)> {
        let pods = s.json(&["get", "pods", "-n", "kserve-inference"]);
        pods["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
                let at = last["finishedAt"].as_str().unwrap_or("").to_string();
                let name = p["metadata"]["name"].as_str().unwrap_or("").to_string();
                (name, (at, last["reason"] == "OOMKilled"))
            })
            .collect()
    };
    let before_oom = kills();
    s.apply("cause-pod-oom.yaml");
    assert!(wait_for(Duration::from_secs(5), || {
        kills()
            .iter()
            .any(|(name, (at, oom))| *oom && before_oom.get(name).is_none_or(|b| &b.0 != at))
    }));

    // PodChaos pod-failure: the trainer's container runs the pause image (restarted once); it
    // has no readiness probe, so it stays Ready, refusing connections (podfailure/impl.go).
    s.apply("pod-failure.yaml");
    assert!(wait_for(Duration::from_secs(5), || {
        let pods = s.json(&["get", "pods", "-n", "training"]);
        pods["items"].as_array().into_iter().flatten().any(|p| {
            let c = &p["status"]["containerStatuses"][0];
            c["image"] == "gcr.io/google-containers/pause:latest" && c["restartCount"] == 1
        })
    }));

    // NetworkChaos delay 300 ms between MLflow and PostgreSQL, `direction: both` (MLflow reaches
    // PostgreSQL by its ClusterIP, so only PostgreSQL's answers to MLflow's pod IPs match):
    // searches through the proxy are slower.
    let (base, ok) = s.raw_time(SEARCH);
    assert!(ok);
    s.apply("network-delay.yaml");
    std::thread::sleep(Duration::from_millis(800));
    let (slow, ok) = s.raw_time(SEARCH);
    assert!(ok);
    assert!(slow - base > 0.2, "before {base:.3}s during {slow:.3}s");
    let (ok, _) = s.kubectl(&[
        "delete",
        "networkchaos",
        "network-delay-example",
        "-n",
        "mlflow",
    ]);
    assert!(ok);

    // NetworkChaos partition MLflow -> PostgreSQL: searches fail.
    s.apply("network-partition.yaml");
    std::thread::sleep(Duration::from_millis(800));
    let (ok, text) = s.kubectl(&["get", "--raw", SEARCH]);
    assert!(!ok, "{text}");

    // Back to the trainer's CPU.
    assert!(wait_for(Duration::from_secs(20), || cpu() > cpu0 + 500.0));
}

mod ml;
