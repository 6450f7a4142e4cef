//! The official Python `kubernetes` client and Chaos Toolkit 1.19 (chaostoolkit-kubernetes)
//! against `playbook sim serve`, the packages installed by tests/support/setup-python.sh into a
//! venv under target/ (a test fails, never skips, when they cannot be installed). The expected
//! answers are a real API server's: see the upstream files named in tests/sim_api/python/.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::Server;

/// The venv's directory, installing it on first use (bounded: pip runs under `timeout 600`).
fn venv() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("timeout")
        .args([
            "900",
            "bash",
            &format!("{root}/tests/support/setup-python.sh"),
        ])
        .output()
        .expect("run tests/support/setup-python.sh");
    assert!(
        out.status.success(),
        "installing the Python test packages failed (PyPI needed):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

#[test]
fn python_kubernetes_client_crud_watch_patch_scale_and_invalid_writes() {
    let py = venv().join("bin/python");
    let s = Server::start();
    let out = Command::new("timeout")
        .arg("120")
        .arg(&py)
        .arg(format!(
            "{}/tests/sim_api/python/client.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(&s.kubeconfig)
        .output()
        .expect("run client.py");
    assert!(
        out.status.success(),
        "client.py failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}

#[test]
fn chaos_toolkit_stock_kubernetes_actions_and_probes() {
    let chaos = venv().join("bin/chaos");
    let s = Server::start();
    s.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {sim.playbook.dev/startup: "1s"}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]
"#,
    );
    s.wait_for(
        std::time::Duration::from_secs(30),
        "web pod Running",
        || {
            let phase = s.ok(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ]);
            phase.contains("Running").then_some(())
        },
    );
    let dir = s.kubeconfig.parent().expect("dir").to_path_buf();
    let journal = dir.join("journal.json");
    let out = Command::new("timeout")
        .arg("180")
        .arg(&chaos)
        .args(["--no-version-check", "run", "--journal-path"])
        .arg(&journal)
        .arg(format!(
            "{}/tests/sim_api/python/experiment.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .current_dir(&dir)
        .env("KUBECONFIG", &s.kubeconfig)
        .output()
        .expect("run chaos");
    let text = std::fs::read_to_string(&journal).unwrap_or_else(|_| {
        panic!(
            "no journal; chaos said:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let j: Value = serde_json::from_str(&text).expect("journal json");
    assert_eq!(
        j["status"],
        "completed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(j["deviated"], false);
    for r in j["run"].as_array().expect("run") {
        assert_eq!(
            r["status"], "succeeded",
            "{}: {}",
            r["activity"]["name"], r["exception"]
        );
    }
    let logs = j["run"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["activity"]["name"] == "logs"))
        .expect("the logs probe");
    let texts: Vec<&str> = logs["output"]
        .as_object()
        .expect("logs per pod")
        .values()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !texts.is_empty()
            && texts
                .iter()
                .all(|t| t.contains("starting web (nginx:1.27)")),
        "{logs}"
    );
    // The StressChaos objects it created kept no `containerNames: null` and were accepted.
    let stress = s.ok(&[
        "get",
        "stresschaos",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(stress.split_whitespace().count(), 2, "{stress}");
}
