//! Least privilege against `sim serve` enforcing RBAC for a ServiceAccount's token: the rules
//! `playbook rbac` generates suffice for the seed playbooks and a GPU node drain, one rule less gives an error that
//! names the missing permission, and `playbook preflight` tells a complete installation from a
//! broken one (a missing permission, no CRD, no chaos-daemon where a target pod runs).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::cli::playbook;
use crate::sim_api::Server;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Applies what `playbook rbac` prints for `paths` (minus `drop`, a line removed from it), and
/// a token Secret for its ServiceAccount; returns a kubeconfig that authenticates as it.
fn as_service_account(server: &Server, paths: &[&str], drop: Option<(&str, &str)>) -> PathBuf {
    let mut args = vec!["rbac"];
    args.extend_from_slice(paths);
    let out = playbook(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some((from, to)) = drop {
        assert!(yaml.contains(from), "{from} in {yaml}");
        yaml = yaml.replacen(from, to, 1);
    }
    server.ok_stdin(&["apply", "-f", "-"], &yaml);
    // A legacy ServiceAccount token Secret ("pb-token", base64 below).
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: playbook-token\n  namespace: default\n  annotations:\n    kubernetes.io/service-account.name: playbook\ntype: kubernetes.io/service-account-token\ndata:\n  token: cGItdG9rZW4=\n",
    );
    let kc = std::fs::read_to_string(&server.kubeconfig).unwrap();
    let out = server.kubeconfig.with_file_name("kubeconfig-sa");
    std::fs::write(&out, kc.replace("user: {}", "user: {token: pb-token}")).unwrap();
    out
}

/// The podchaos rule without `create`.
const DROP_CREATE: Option<(&str, &str)> = Some((
    "  - podchaos\n  verbs:\n  - create\n",
    "  - podchaos\n  verbs:\n",
));

fn run(kc: &Path, pb: &str) -> (Option<i32>, String) {
    let state = crate::cli::tempdir();
    let out = playbook(&[
        "run",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--timeout",
        "5m",
        pb,
    ]);
    (out.status.code(), text(&out))
}

#[test]
fn the_generated_rules_suffice_and_one_less_names_what_is_missing() {
    let server = Server::start_with(&["--seed", "7"]);
    let kc = as_service_account(&server, &["playbooks/"], None);
    // The token's user is held to its rules: it may not read secrets. (kubectl sends no
    // token over plain HTTP; the playbook binary does.)
    let dir = crate::cli::tempdir();
    let secret = dir.join("secret.rhai");
    std::fs::write(
        &secret,
        r#"print(cluster::get("default", "secret/playbook-token"));"#,
    )
    .unwrap();
    let (code, all) = run(&kc, secret.to_str().unwrap());
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("forbidden: get secrets in namespace default"),
        "{all}"
    );
    // gpu-node-drain: nodes, the Eviction API, a workload's /metrics, golden requests, a PDB.
    for pb in [
        "playbooks/pod-failure.rhai",
        "playbooks/network-delay.rhai",
        "playbooks/gpu-node-drain.rhai",
    ] {
        let (code, all) = run(&kc, pb);
        assert_eq!(code, Some(0), "{pb} with the generated rules:\n{all}");
        assert!(!all.contains("Kubernetes Event"), "{pb}: {all}");
    }
}

#[test]
fn one_rule_less_gives_the_clear_error() {
    let server = Server::start_with(&["--seed", "7"]);
    // The fault kinds' verbs lose `create`: the first fault is refused, by name.
    let kc = as_service_account(&server, &["playbooks/pod-failure.rhai"], DROP_CREATE);
    let (code, all) = run(&kc, "playbooks/pod-failure.rhai");
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("forbidden: create podchaos.chaos-mesh.org in namespace kserve-inference"),
        "{all}"
    );
    let out = playbook(&[
        "cleanup",
        "--all",
        "--kubeconfig",
        server.kubeconfig.to_str().unwrap(),
    ]);
    assert!(
        text(&out).contains("nothing created by playbook is left"),
        "{}",
        text(&out)
    );
}

fn preflight(kc: &Path) -> (Option<i32>, String) {
    let out = playbook(&[
        "preflight",
        "--kubeconfig",
        kc.to_str().unwrap(),
        "playbooks/pod-failure.rhai",
    ]);
    (out.status.code(), text(&out))
}

#[test]
fn preflight_tells_a_complete_installation_from_a_broken_one() {
    let server = Server::start_with(&["--seed", "7"]);
    // The platform comes up: every chaos-daemon Running.
    server.wait_for(Duration::from_secs(60), "chaos-daemons running", || {
        let phases = server.ok(&[
            "get",
            "pods",
            "-n",
            "chaos-testing",
            "-l",
            "app.kubernetes.io/component=chaos-daemon",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]);
        (!phases.is_empty() && phases.split_whitespace().all(|p| p == "Running")).then_some(())
    });
    let (code, all) = preflight(&server.kubeconfig);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("preflight: ready"), "{all}");
    let json = playbook(&[
        "preflight",
        "--json",
        "--kubeconfig",
        server.kubeconfig.to_str().unwrap(),
        "playbooks/pod-failure.rhai",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["ok"], true, "{v}");

    // A missing permission.
    let kc = as_service_account(&server, &["playbooks/pod-failure.rhai"], DROP_CREATE);
    let (code, all) = preflight(&kc);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("FAIL permissions"), "{all}");
    assert!(
        all.contains("create podchaos.chaos-mesh.org in namespace kserve-inference"),
        "{all}"
    );

    // No chaos-daemon on a node that holds a target pod.
    let pods = server.ok(&[
        "get",
        "pods",
        "-n",
        "kserve-inference",
        "-o",
        "jsonpath={.items[0].spec.nodeName}",
    ]);
    let daemon = server.ok(&[
        "get",
        "pods",
        "-n",
        "chaos-testing",
        "-l",
        "app.kubernetes.io/component=chaos-daemon",
        "--field-selector",
        &format!("spec.nodeName={pods}"),
        "-o",
        "name",
    ]);
    server.ok(&["delete", "-n", "chaos-testing", daemon.trim()]);
    let (code, all) = preflight(&server.kubeconfig);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains(&format!("none running on {pods}")), "{all}");

    // No CRD.
    server.ok(&["delete", "crd", "podchaos.chaos-mesh.org"]);
    std::thread::sleep(Duration::from_millis(200));
    let (code, all) = preflight(&server.kubeconfig);
    assert_eq!(code, Some(1), "{all}");
    assert!(all.contains("FAIL Chaos Mesh CRD podchaos"), "{all}");
}

/// The events rule without `create`.
const DROP_EVENTS: Option<(&str, &str)> = Some((
    "  - events.k8s.io\n  resources:\n  - events\n  verbs:\n  - create\n",
    "  - events.k8s.io\n  resources:\n  - events\n  verbs:\n",
));

#[test]
fn events_the_run_may_not_post_are_said_once_and_change_no_verdict() {
    let server = Server::start_with(&["--seed", "7"]);
    let dir = crate::cli::tempdir();
    let pb = dir.join("short.rhai");
    std::fs::write(
        &pb,
        r#"import "platform" as platform;
let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: "one", duration: "30s" });
f.wait_injected("10s");
expect("the fault is there", "5s", || true);
"#,
    )
    .unwrap();
    let pb = pb.to_str().unwrap();
    let kc = as_service_account(&server, &[pb], DROP_EVENTS);
    let (code, all) = run(&kc, pb);
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(
        all.matches("cannot post a Kubernetes Event").count(),
        1,
        "{all}"
    );
    assert!(
        all.contains("forbidden") && all.contains("playbook rbac"),
        "{all}"
    );
    // With every generated rule, the same playbook posts its Events without a word.
    let kc = as_service_account(&server, &[pb], None);
    let (code, all) = run(&kc, pb);
    assert_eq!(code, Some(0), "{all}");
    assert!(!all.contains("Kubernetes Event"), "{all}");
    let events = server.ok(&[
        "get",
        "events",
        "-n",
        "kserve-inference",
        "-l",
        "app.kubernetes.io/managed-by=playbook",
    ]);
    for reason in [
        "FaultInjected",
        "ExpectationPassed",
        "FaultRemoved",
        "Passed",
    ] {
        assert!(events.contains(reason), "{reason} in {events}");
    }
}
