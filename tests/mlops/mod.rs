//! The ML platform's host API (issue 18): golden requests that check answers, time to serving,
//! a workload's own metrics as numbers, nodes by label, cordon and drain undone at cleanup
//! (after a failing playbook, a signal, a crash with `playbook cleanup`), and deleting a pod —
//! with their errors named at the playbook's line.

use crate::host::{run_inline, text};
use crate::sim_api::Server;
use crate::support::{PROCESS_LIMIT, Proc, playbook, playbook_cmd, tempdir};

const PREDICT: &str = r#"#{ path: "/v1/models/sklearn-iris:predict", body: #{ instances: [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]] }, expect: #{ predictions: [1, 1] } }"#;

#[test]
fn golden_requests_count_wrong_answers_apart_from_errors() {
    let source = format!(
        r#"let svc = "sklearn-iris-predictor:80";
let good = metrics::golden("kserve-inference", svc, {PREDICT}, 5);
if good.ok != 5 || good.wrong != 0 || good.errors != 0 {{ fail(`good: ${{good}}`); }}
let g = {PREDICT};
g.expect = #{{ predictions: [2, 2] }};
let bad = metrics::golden("kserve-inference", svc, g, 4);
if bad.wrong != 4 || bad.ok != 0 || bad.success_rate != 0.0 {{ fail(`bad: ${{bad}}`); }}
if !bad.last_wrong.contains("expected") {{ fail(bad.last_wrong); }}
let missing = metrics::golden("kserve-inference", "no-such-service:80", {PREDICT}, 2);
if missing.errors != 2 || missing.wrong != 0 {{ fail(`missing: ${{missing}}`); }}
print("golden ok");
"#
    );
    let (code, all) = run_inline(&source, &[]);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("golden ok"), "{all}");
    // A golden request without its expected answer is an error at its line.
    let (code, all) = run_inline(
        r#"let r = metrics::golden("kserve-inference", "sklearn-iris-predictor:80", #{ path: "/v1/models/sklearn-iris:predict" }, 1);"#,
        &[],
    );
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("p.rhai:1:") && all.contains("`expect`"),
        "{all}"
    );
}

#[test]
fn a_workload_metrics_are_numbers() {
    let (code, all) = run_inline(
        r#"let m = metrics::scrape("kserve-inference", "sklearn-iris-predictor:80", "/metrics");
if m.len() == 0 { fail("no series"); }
for k in m.keys() { if type_of(m[k]) != "f64" { fail(`${k} is a ${type_of(m[k])}`); } }
let x = metrics::scraped("kserve-inference", "sklearn-iris-predictor:80", "/metrics", "no_such_series");"#,
        &[],
    );
    assert_eq!(code, Some(3), "{all}");
    assert!(
        all.contains("p.rhai:4:") && all.contains("exposes no series \"no_such_series\""),
        "{all}"
    );
}

#[test]
fn node_functions_name_bad_input_at_the_line() {
    let cases: &[(&str, &str)] = &[
        (r#"cluster::cordon("Not A Node");"#, "is not a node name"),
        (
            r#"cluster::cordon("sim-node-404");"#,
            "node \"sim-node-404\" not found",
        ),
        (
            r#"cluster::drain("sim-node-404");"#,
            "node \"sim-node-404\" not found",
        ),
        (
            r#"cluster::drain("sim-worker-1", #{ timout: "1m" });"#,
            "unknown option `timout`",
        ),
        (
            r#"cluster::uncordon("sim-worker-1");"#,
            "this run did not cordon node",
        ),
        (
            r#"cluster::delete_pod("kserve-inference", "no-such-pod");"#,
            "pod \"no-such-pod\" not found",
        ),
        (
            r#"cluster::delete_pod("kube-system", "coredns");"#,
            "namespace \"kube-system\": it is protected",
        ),
    ];
    for (source, message) in cases {
        let (code, all) = run_inline(source, &[]);
        assert_eq!(code, Some(3), "{source}: {all}");
        assert!(all.contains("p.rhai:1:"), "{source}: {all}");
        assert!(all.contains(message), "{source}: no `{message}` in {all}");
    }
}

#[test]
fn a_cordon_is_undone_after_a_failing_playbook_and_deleted_pods_are_replaced() {
    let (code, all) = run_inline(
        r#"cluster::cordon("sim-worker-1");
cluster::cordon("sim-worker-1");
let n = cluster::nodes("kubernetes.io/hostname=sim-worker-1")[0];
if !n.unschedulable { fail("not cordoned"); }
let p = cluster::pods("kserve-inference", "component=predictor")[0];
cluster::delete_pod("kserve-inference", p.name);
expect("a replacement is ready", "2m", || cluster::pods("kserve-inference", "component=predictor").filter(|q| q.ready && q.name != p.name).len() >= 1);
fail("on purpose");"#,
        &[],
    );
    assert_eq!(code, Some(1), "{all}");
    assert_eq!(
        all.matches("cleanup: uncordoned node sim-worker-1").count(),
        1,
        "{all}"
    );
}

/// `spec.unschedulable` of a node on `server`, as kubectl shows it ("" when schedulable).
fn unschedulable(server: &Server, node: &str) -> String {
    server
        .ok(&["get", "node", node, "-o", "jsonpath={.spec.unschedulable}"])
        .trim()
        .to_string()
}

fn start_cordoning(server: &Server, state: &std::path::Path) -> Proc {
    let mut child = Proc::spawn(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(state)
            .arg("tests/fixtures/mlops/cordon_then_wait.rhai"),
    );
    let mut lines = child.lines();
    lines.wait_for("cordoned now");
    std::thread::spawn(move || lines.rest());
    child
}

#[test]
fn a_cordon_is_undone_after_sigterm_and_after_a_crash_by_playbook_cleanup() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let child = start_cordoning(&server, &state);
    assert_eq!(unschedulable(&server, "sim-worker-1"), "true");
    child.signal("TERM");
    let out = child.output(PROCESS_LIMIT);
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert_eq!(
        unschedulable(&server, "sim-worker-1"),
        "",
        "uncordoned at cleanup"
    );
    assert_eq!(crate::host::journals(&state), Vec::<String>::new());

    // Killed: nothing could run; the journal names the node, `playbook cleanup` uncordons it.
    let mut child = start_cordoning(&server, &state);
    child.signal("KILL");
    child.wait(PROCESS_LIMIT);
    assert_eq!(unschedulable(&server, "sim-worker-1"), "true");
    let kc = server.kubeconfig.to_str().unwrap().to_string();
    let st = state.to_str().unwrap().to_string();
    let out = playbook(&["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("1 node(s) to uncordon") && all.contains("uncordoned node sim-worker-1"),
        "{all}"
    );
    assert_eq!(unschedulable(&server, "sim-worker-1"), "");
    assert_eq!(crate::host::journals(&state), Vec::<String>::new());

    // A node someone cordoned (by hand) after the crash is theirs: cleanup leaves it alone.
    let child = start_cordoning(&server, &state);
    child.signal("KILL");
    let _ = child.output(PROCESS_LIMIT);
    server.ok(&[
        "annotate",
        "node",
        "sim-worker-1",
        "playbook.chaos/cordoned-by-",
    ]);
    let out = playbook(&["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("no longer carries run"), "{all}");
    assert_eq!(unschedulable(&server, "sim-worker-1"), "true");
    server.ok(&["uncordon", "sim-worker-1"]);
}

/// The five ML platform playbooks, what each must say on `mlops-fragile`: (playbook, exit code,
/// the expectation or reason named, the observed value named).
const ML_PLAYBOOKS: [(&str, i32, &str, &str); 5] = [
    (
        "model-cold-start",
        1,
        "Ready means serving",
        "failed_while_ready: ",
    ),
    (
        "training-resume",
        1,
        "steps lost at most one checkpoint interval",
        "lost_steps: ",
    ),
    // The partition needs the Chaos Mesh daemon on the training pod's GPU node: never injected,
    // with the daemon error Chaos Mesh records.
    (
        "mlflow-outage-training",
        5,
        "did not reach AllInjected",
        "cannot find daemonIP on node sim-gpu-",
    ),
    (
        "gpu-node-drain",
        1,
        "steps lost at most one checkpoint interval",
        "lost_steps: ",
    ),
    (
        "predictor-correctness-under-stress",
        1,
        "the HPA scaled up and p99 is back within 1 s",
        "desired: 1",
    ),
];

/// Runs one playbook on the in-process simulator; exit code, output, its records.
fn run_playbook(
    name: &str,
    scenario: &str,
    seed: &str,
) -> (Option<i32>, String, serde_json::Value) {
    let report = tempdir().join("report.json");
    let file = format!("playbooks/{name}.rhai");
    let out = playbook(&[
        "run",
        "--cluster",
        "sim",
        "--scenario",
        scenario,
        "--seed",
        seed,
        "--report",
        report.to_str().unwrap(),
        &file,
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
            .unwrap_or_default();
    (
        out.status.code(),
        text(&out),
        json["playbooks"][0]["records"].clone(),
    )
}

#[test]
fn each_ml_playbook_passes_on_mlops_and_repeats_its_figures_for_a_seed() {
    for (name, ..) in ML_PLAYBOOKS {
        let (code, all, records) = run_playbook(name, "mlops", "1");
        assert_eq!(code, Some(0), "{name} must pass on mlops:\n{all}");
        assert!(
            all.contains("cleanup:") || !all.contains("FAILED"),
            "{name}:\n{all}"
        );
        let (again, _, same) = run_playbook(name, "mlops", "1");
        assert_eq!(again, Some(0), "{name}");
        assert_eq!(records, same, "{name}: same seed, same figures");
        assert!(
            records.as_object().is_some_and(|r| !r.is_empty()),
            "{name}: no figures"
        );
    }
}

#[test]
fn each_ml_playbook_fails_on_the_fragile_platform_naming_what_it_saw() {
    for (name, code, expectation, observed) in ML_PLAYBOOKS {
        let (got, all, _) = run_playbook(name, "mlops-fragile", "1");
        assert_eq!(got, Some(code), "{name} on mlops-fragile:\n{all}");
        let err = all
            .lines()
            .filter(|l| l.starts_with("error: ") || l.contains("inconclusive"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            err.contains(expectation),
            "{name}: no `{expectation}` in\n{all}"
        );
        assert!(all.contains(observed), "{name}: no `{observed}` in\n{all}");
        assert!(!all.contains("cleanup: FAILED"), "{name}:\n{all}");
    }
}

#[test]
fn the_ml_playbooks_are_short_documented_and_tagged() {
    for (name, ..) in ML_PLAYBOOKS {
        let src = std::fs::read_to_string(format!("playbooks/{name}.rhai")).unwrap();
        assert!(src.starts_with("//! "), "{name} opens with a //! header");
        assert!(
            src.contains("Expects:") && src.contains("Records:"),
            "{name}"
        );
        assert!(src.contains("//! tags: ml,"), "{name} is tagged ml");
        assert!(
            src.lines().count() <= 40,
            "{name} is about 40 lines at most"
        );
    }
}

#[test]
fn a_drain_reports_evictions_a_disruption_budget_refuses_and_is_uncordoned() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    // The predictor's own budget (one PDB per pod: a second one makes eviction.go answer 500)
    // made to allow no disruption.
    server.ok(&[
        "patch",
        "pdb",
        "sklearn-iris-predictor",
        "-n",
        "kserve-inference",
        "--type",
        "merge",
        "-p",
        r#"{"spec": {"minAvailable": "100%"}}"#,
    ]);
    let dir = tempdir();
    let file = dir.join("drain.rhai");
    std::fs::write(
        &file,
        r#"let node = cluster::pods("kserve-inference", "component=predictor")[0].node;
let d = cluster::drain(node, #{ timeout: "6s", allow_large_blast_radius: true });
let refused = d.refused.filter(|r| r.pod.starts_with("kserve-inference/"));
print(`node ${node}: ${refused.len()} refused`);
if refused.len() == 0 { fail(`no eviction refused: ${d}`); }
if !cluster::nodes(`kubernetes.io/hostname=${node}`)[0].unschedulable { fail("not cordoned"); }"#,
    )
    .unwrap();
    let out = crate::support::output(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg(&file),
        PROCESS_LIMIT,
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("disruption budget"),
        "the PDB's reason is reported: {all}"
    );
    let node = all
        .split("node ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("the drained node is named")
        .to_string();
    assert!(
        all.contains(&format!("cleanup: uncordoned node {node}")),
        "{all}"
    );
    assert_eq!(unschedulable(&server, &node), "");
}
