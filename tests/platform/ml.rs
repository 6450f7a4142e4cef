//! kubectl against `playbook sim serve` shows the ML platform of issue 18 as a real cluster
//! would: GPU nodes with their taint and capacity, PodDisruptionBudgets with status, the
//! `finetune` Job, and a drain through the Eviction API that the Job survives.

use std::time::Duration;

use super::{serve, wait_for};

#[test]
fn kubectl_shows_gpu_nodes_budgets_and_the_training_job_and_drains_a_gpu_node() {
    let s = serve();
    let (ok, text) = s.kubectl(&["get", "nodes"]);
    assert!(
        ok && text.contains("sim-gpu-1") && text.contains("sim-gpu-2"),
        "{text}"
    );
    let node = s.json(&["get", "node", "sim-gpu-1"]);
    assert_eq!(node["status"]["capacity"]["nvidia.com/gpu"], "4");
    assert_eq!(node["spec"]["taints"][0]["key"], "nvidia.com/gpu");
    assert_eq!(node["spec"]["taints"][0]["effect"], "NoSchedule");

    let (ok, text) = s.kubectl(&["get", "pdb", "-A"]);
    assert!(ok, "{text}");
    let header = text.lines().next().unwrap_or_default();
    for col in ["MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS"] {
        assert!(header.contains(col), "{text}");
    }
    let pred = text
        .lines()
        .find(|l| l.contains("sklearn-iris-predictor"))
        .unwrap_or_default();
    let cells: Vec<&str> = pred.split_whitespace().collect();
    assert_eq!(&cells[2..5], ["1", "N/A", "2"], "{text}");
    let pdb = s.json(&["get", "pdb", "mlflow", "-n", "mlflow"]);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
    assert_eq!(pdb["status"]["expectedPods"], 1);

    let (ok, text) = s.kubectl(&["get", "jobs", "-n", "training"]);
    assert!(ok, "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("finetune"))
        .unwrap_or_default();
    assert!(row.contains("Running") && row.contains("0/1"), "{text}");
    let pods = s.json(&["get", "pods", "-n", "training", "-l", "job-name=finetune"]);
    let node = pods["items"][0]["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(node.starts_with("sim-gpu-"), "{pods}");

    // kubectl drain: cordon (the lifecycle taint follows), then evict through pods/eviction.
    // The chaos-daemon pods have no DaemonSet owner here, hence --force.
    let (ok, text) = s.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--force",
        "--delete-emptydir-data",
        "--timeout=60s",
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("evicting pod training/finetune-"), "{text}");
    let n = s.json(&["get", "node", &node]);
    assert_eq!(n["spec"]["unschedulable"], true);
    let other = if node == "sim-gpu-1" {
        "sim-gpu-2"
    } else {
        "sim-gpu-1"
    };
    // The Job replaces its pod (after its failure back-off) on the other GPU node.
    assert!(
        wait_for(Duration::from_secs(40), || {
            let p = s.json(&["get", "pods", "-n", "training", "-l", "job-name=finetune"]);
            p["items"].as_array().into_iter().flatten().any(|p| {
                p["spec"]["nodeName"] == other && p["metadata"]["deletionTimestamp"].is_null()
            })
        }),
        "no replacement on {other}"
    );
    let job = s.json(&["get", "job", "finetune", "-n", "training"]);
    assert_eq!(job["status"]["failed"], 1, "{}", job["status"]);
    let (ok, _) = s.kubectl(&["uncordon", &node]);
    assert!(ok);
    let n = s.json(&["get", "node", &node]);
    assert!(n["spec"]["unschedulable"].is_null());
}
