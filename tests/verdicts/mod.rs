//! Verdicts you can trust: each false pass is now inconclusive or an error with a clear message,
//! a recovery cannot be measured from a stale status, guards fail a playbook at once, a dry run
//! never says "passed", and the verdict reads the same in console, JSON, JUnit and Markdown.

use crate::cli::{playbook, tempdir};

/// Runs a playbook written inline against the in-process simulator; (exit code, all output,
/// the folder holding `run.json`, `run.xml` and `run.md`).
fn run(source: &str, extra: &[&str]) -> (Option<i32>, String, std::path::PathBuf) {
    let dir = tempdir();
    let file = dir.join("p.rhai");
    std::fs::write(&file, source).unwrap();
    let (json, xml, md) = (
        dir.join("run.json"),
        dir.join("run.xml"),
        dir.join("run.md"),
    );
    let mut args = vec![
        "run",
        "--cluster",
        "sim",
        "--report",
        json.to_str().unwrap(),
        "--junit",
        xml.to_str().unwrap(),
        "--markdown",
        md.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let out = playbook(&args);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), all, dir)
}

fn report(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

const PREDICTORS: &str = r#"#{ namespaces: ["kserve-inference"], labelSelectors: #{ "serving.kserve.io/inferenceservice": "sklearn-iris", component: "predictor" } }"#;

#[test]
fn a_fault_that_selects_no_pod_is_inconclusive_in_every_report() {
    let (code, all, dir) = run(
        r#"let f = chaos::pod_kill(#{ selector: #{ namespaces: ["kserve-inference"], labelSelectors: #{ app: "sklearn-iirs" } } });
f.wait_injected("10s");
expect("anything", "1s", || true);"#,
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(
        all.contains("would select no pod") && all.contains("nothing was injected"),
        "{all}"
    );
    let r = report(&dir);
    assert_eq!(r["status"], "inconclusive", "{r}");
    assert_eq!(r["exit_code"], 5);
    assert_eq!(r["playbooks"][0]["error"]["kind"], "inconclusive");
    assert!(
        r["playbooks"][0]["inconclusive"][0]
            .as_str()
            .unwrap()
            .contains("select no pod")
    );
    let xml = std::fs::read_to_string(dir.join("run.xml")).unwrap();
    assert!(
        xml.contains("<error") && xml.contains("inconclusive"),
        "{xml}"
    );
    let md = std::fs::read_to_string(dir.join("run.md")).unwrap();
    assert!(md.contains("inconclusive"), "{md}");
}

#[test]
fn a_fault_never_seen_injected_makes_a_passing_run_inconclusive() {
    // No wait_injected, and the playbook ends before Chaos Mesh could inject: not "passed".
    let (code, all, _) = run(
        &format!(
            r#"let f = chaos::memory_stress(#{{ selector: {PREDICTORS}, size: "64MB", mode: "one" }});
expect("trivially true", "1s", || true);"#
        ),
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(all.contains("was never seen injected"), "{all}");
}

#[test]
fn a_recovery_is_never_measured_from_a_stale_status() {
    // A status that lags the cluster by 5 s (what the last poll saw 5 s ago), as a real
    // Deployment or InferenceService status lags a kill.
    let src = format!(
        r#"import "platform" as platform;
steady_state("ready", || platform::inference_ready());
let history = [];
let delayed = || {{
    let now = clock_ms();
    history.push(#{{ at: now, v: platform::inference_ready() }});
    let old = history.filter(|h| h.at <= now - 5000.0);
    if old.is_empty() {{ #{{ ok: true, stale: true }} }} else {{ old[-1].v }}
}};
let f = chaos::pod_kill(#{{ selector: {PREDICTORS}, mode: "one" }});
f.wait_injected("10s");
record("naive_ms", expect("naive: ready", "30s", delayed));
record("recovery_ms", expect_recovery("ready again", "15s", "1m", delayed));
"#
    );
    let (code, all, dir) = run(&src, &[]);
    assert_eq!(code, Some(0), "{all}");
    let r = report(&dir);
    let records = &r["playbooks"][0]["records"];
    // The naive expect "recovers" in 0 ms from the stale status; expect_recovery first waits
    // for the status to show the kill (5 s later) and times the recovery from there.
    assert_eq!(records["naive_ms"].as_f64(), Some(0.0), "{records}");
    assert!(
        records["recovery_ms"].as_f64().unwrap() > 1000.0,
        "{records}"
    );
    assert!(
        all.contains("disruption observed for \"ready again\" after 5s"),
        "{all}"
    );
}

#[test]
fn a_recovery_whose_disruption_is_never_observed_is_inconclusive() {
    let (code, all, dir) = run(
        &format!(
            r#"let f = chaos::pod_kill(#{{ selector: {PREDICTORS}, mode: "one" }});
f.wait_injected("10s");
expect_recovery("ready again", "10s", "30s", || true);"#
        ),
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(
        all.contains("the disruption was never observed within 10s"),
        "{all}"
    );
    let r = report(&dir);
    assert_eq!(
        r["playbooks"][0]["expectations"][0]["status"],
        "inconclusive"
    );
    assert!(all.contains("cleanup: removed PodChaos"), "{all}");
}

#[test]
fn a_guard_fails_the_playbook_at_once_and_cleanup_runs() {
    let (code, all, _) = run(
        &format!(
            r#"import "platform" as platform;
let f = chaos::pod_kill(#{{ selector: {PREDICTORS}, mode: "one" }});
guard("every predictor ready", || {{ let r = cluster::readiness("kserve-inference", platform::predictor()); #{{ ok: r.ready == r.desired, ready: r.ready }} }});
sleep("5m");
log("never reached");"#
        ),
        &[],
    );
    assert_eq!(code, Some(1), "{all}");
    assert!(
        all.contains(
            "guard \"every predictor ready\" violated while a fault was active: observed ready: 2"
        ),
        "{all}"
    );
    assert!(!all.contains("never reached"), "{all}");
    assert!(all.contains("cleanup: removed PodChaos"), "{all}");
    // The run stopped at the violation, long before the 5 minute sleep ended.
    let held = run(
        &format!(
            r#"let f = chaos::pod_kill(#{{ selector: {PREDICTORS}, mode: "one" }});
f.wait_injected("10s");
guard("the namespace is there", || cluster::pods("kserve-inference", "").len() > 0);
sleep("20s");"#
        ),
        &[],
    );
    assert_eq!(held.0, Some(0), "{}", held.1);
    assert!(
        held.1.contains("ok: guard \"the namespace is there\""),
        "{}",
        held.1
    );
}

#[test]
fn escalation_reports_breaks_empty_steps_and_lets_script_errors_through() {
    let body = |closure: &str| {
        format!(
            r#"import "escalate" as escalate;
import "platform" as platform;
let r = escalate::run("predictors", |step| {{ {closure} }});
log(`result: ${{r}}`);"#
        )
    };
    // The doc example as written works, and a failed expectation is where it broke.
    let (code, all, _) = run(
        &body(
            r#"let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: step.mode, value: step.value });
        f.wait_injected("10s");
        expect("predictors ready", "1s", || false);"#,
        ),
        &[],
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("broke at one pod: expectation \"predictors ready\" not met"),
        "{all}"
    );
    // A typo in the user's closure is a script error, not "the predictors broke".
    let (code, all, _) = run(
        &body(
            r#"let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: step.mode, value: step.vlaue });"#,
        ),
        &[],
    );
    assert_eq!(code, Some(3), "{all}");
    assert!(!all.contains("broke at"), "{all}");
    // A first step that selects nothing proves nothing: inconclusive, not "broke at one pod".
    let (code, all, _) = run(
        &body(
            r#"chaos::pod_kill(#{ selector: #{ namespaces: ["kserve-inference"], labelSelectors: #{ app: "nope" } }, mode: step.mode, value: step.value });"#,
        ),
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(!all.contains("broke at"), "{all}");
    // Steps are the caller's to choose.
    let (code, all, _) = run(
        r#"import "escalate" as escalate;
import "platform" as platform;
let r = escalate::run_steps("p", [#{ mode: "one", value: "", label: "one" }, #{ mode: "fixed", value: "2", label: "two" }], |step| {
    let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: step.mode, value: step.value });
    f.wait_injected("10s");
    record("killed", f.selected().len());
    if step.label == "two" { fail("two is too many"); }
    f.delete();
});"#,
        &[],
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("killed = 2")
            && all.contains("p_held_up_to = \"one\"")
            && all.contains("broke at two: two is too many"),
        "{all}"
    );
}

#[test]
fn a_dry_run_says_what_it_would_select_and_never_passes_expectations() {
    let (code, all, dir) = run(
        &format!(
            r#"let f = chaos::pod_kill(#{{ selector: {PREDICTORS}, mode: "fixed-percent", value: "50" }});
let victims = f.selected();
log(`victims: ${{victims.len()}}`);
record("recovery_ms", expect("something that would fail", "1s", || false));"#
        ),
        &["--dry-run"],
    );
    assert_eq!(code, Some(0), "{all}");
    // 50% of 3 pods is 1: Chaos Mesh floors (pkg/selector/generic/mode.go).
    assert!(all.contains("selects 1 of 3 candidate pod(s)"), "{all}");
    assert!(all.contains("victims: 1"), "{all}");
    assert!(
        all.contains("dry run: would check expect \"something that would fail\""),
        "{all}"
    );
    let r = report(&dir);
    assert_eq!(r["playbooks"][0]["status"], "dry_run", "{r}");
    assert!(!all.contains(" passed"), "{all}");
    // A figure from a wait that did not wait is no measurement: said, and in no report.
    assert!(
        all.contains("dry run: would record recovery_ms (not evaluated"),
        "{all}"
    );
    assert!(!all.contains("recovery_ms="), "{all}");
    assert_eq!(r["playbooks"][0]["records"], serde_json::json!({}), "{r}");
    let xml = std::fs::read_to_string(dir.join("run.xml")).unwrap();
    assert!(!xml.contains("<property name=\"recovery_ms\""), "{xml}");
    let md = std::fs::read_to_string(dir.join("run.md")).unwrap();
    assert!(!md.contains("recovery_ms"), "{md}");
}

#[test]
fn the_seed_playbooks_give_the_same_figures_per_seed_and_fail_on_the_fragile_platform() {
    for p in ["playbooks/pod-failure.rhai", "playbooks/memory-stress.rhai"] {
        let figures = |scenario: &str| {
            let dir = tempdir();
            let json = dir.join("r.json");
            let out = playbook(&[
                "run",
                "--cluster",
                "sim",
                "--scenario",
                scenario,
                "--seed",
                "7",
                "--report",
                json.to_str().unwrap(),
                p,
            ]);
            let r: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            (
                out.status.code(),
                r["playbooks"][0]["records"].clone(),
                r["playbooks"][0]["error"]["message"].clone(),
            )
        };
        let (a, b) = (figures("mlops"), figures("mlops"));
        assert_eq!(a.0, Some(0), "{p}: {a:?}");
        assert_eq!(a.1, b.1, "{p}");
        let fragile = figures("mlops-fragile");
        assert_eq!(fragile.0, Some(1), "{p}: {fragile:?}");
        assert!(
            fragile.2.as_str().unwrap().contains("observed"),
            "{p}: {fragile:?}"
        );
    }
}

/// The console, JSON, JUnit and Markdown of one run say "timeout" at `at` the same way.
fn assert_timeout_everywhere(code: Option<i32>, all: &str, dir: &std::path::Path, at: &str) {
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("error (timeout) in"), "{all}");
    assert!(
        all.contains(&format!("--> {}", dir.join(at).display())),
        "{all}"
    );
    let r = report(dir);
    let p = &r["playbooks"][0];
    assert_eq!(p["status"], "error", "{r}");
    assert_eq!(p["error"]["kind"], "timeout", "{r}");
    assert!(
        p["error"]["at"].as_str().unwrap().ends_with(at),
        "{at}: {r}"
    );
    let xml = std::fs::read_to_string(dir.join("run.xml")).unwrap();
    assert!(
        xml.contains("<testcase name=\"timeout\"") && xml.contains("type=\"timeout\""),
        "{xml}"
    );
    let md = std::fs::read_to_string(dir.join("run.md")).unwrap();
    assert!(
        md.contains("(timeout): timed out") && md.contains(at),
        "{md}"
    );
}

#[test]
fn the_timeout_is_one_budget_with_the_recheck_after_cleanup_and_reads_alike_everywhere() {
    // The steady state comes back 200 s into the run: inside a 10m budget the re-check after
    // cleanup waits for it; with 1m it may use the budget and the 30 s grace, no more, and the
    // timeout points at the steady_state statement (not at the header).
    let source = "//! A steady state that is back late.\n//! tags: slow\nsteady_state(\"back late\", || clock_ms() < 1000.0 || clock_ms() > 200000.0);\nsleep(\"10s\");\n";
    let (code, all, _) = run(source, &["--timeout", "10m"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("ok: steady_state (after cleanup) \"back late\""),
        "{all}"
    );
    let (code, all, dir) = run(source, &["--timeout", "1m"]);
    assert_timeout_everywhere(code, &all, &dir, "p.rhai:3:1");
    assert!(
        all.contains("past its 1m (--timeout) and the 30s grace"),
        "{all}"
    );
    assert_eq!(
        report(&dir)["playbooks"][0]["run_s"],
        90.0,
        "1m + 30s grace"
    );

    // A probe inside the re-check stopped by the budget: the same timeout, at the same place.
    let (code, all, dir) = run(
        "//! A probe in the re-check.\nsteady_state(\"probing\", || {\n    let p = metrics::probe(\"mlflow\", \"mlflow:5000\", \"/health\", 50);\n    p.ok > 0 && clock_ms() < 1000.0\n});\nsleep(\"10s\");\n",
        &["--timeout", "1m"],
    );
    assert_timeout_everywhere(code, &all, &dir, "p.rhai:2:1");

    // Running out in the playbook itself: the statement running, reported the same way, and
    // cleanup still removes the fault.
    let (code, all, dir) = run(
        "//! Sleeps past its budget.\nlet f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\nsleep(\"1h\");\n",
        &["--timeout", "1m"],
    );
    assert_timeout_everywhere(code, &all, &dir, "p.rhai:3:1");
    assert!(all.contains("cleanup: removed PodChaos training/"), "{all}");
}

#[test]
fn chaos_apply_takes_every_embedded_chaos_mesh_kind_checked_labelled_and_bounded() {
    let target = "selector: { namespaces: [training], labelSelectors: { app: trainer } }";
    // A Schedule: its fault template gets the playbook's remaining time as duration, the
    // Schedule is labelled, journalled and removed at the end; the faults it creates are not
    // followed, so the verdict is inconclusive, never "passed".
    let (code, all, dir) = run(
        &format!(
            "let f = chaos::apply(`\napiVersion: chaos-mesh.org/v1alpha1\nkind: Schedule\nmetadata: {{ name: sched }}\nspec:\n  schedule: \"@every 1m\"\n  type: PodChaos\n  historyLimit: 2\n  concurrencyPolicy: Forbid\n  podChaos: {{ action: pod-kill, mode: one, {target} }}\n`);\nlet y = f.to_yaml();\nif !y.contains(\"app.kubernetes.io/managed-by: playbook\") || !y.contains(\"duration: 10m\") {{ throw y; }}\n"
        ),
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(
        all.contains("inject: Schedule training/sched (Schedule, mode one, each fault it creates lasts 10m; removed at the playbook's end"),
        "{all}"
    );
    assert!(
        all.contains("cleanup: removed Schedule training/sched"),
        "{all}"
    );
    assert!(
        all.contains("creates its own faults, which playbook does not follow"),
        "{all}"
    );
    assert_eq!(report(&dir)["status"], "inconclusive");

    // A Workflow: every template gets a deadline.
    let (code, all, _) = run(
        &format!(
            "let f = chaos::apply(`\napiVersion: chaos-mesh.org/v1alpha1\nkind: Workflow\nmetadata: {{ name: wf }}\nspec:\n  entry: entry\n  templates:\n    - {{ name: entry, templateType: Serial, children: [kill] }}\n    - {{ name: kill, templateType: PodChaos, podChaos: {{ action: pod-kill, mode: one, {target} }} }}\n`);\nlet y = f.to_yaml();\nif y.split(\"deadline: 10m\").len() != 3 {{ throw y; }}\n"
        ),
        &[],
    );
    assert_eq!(code, Some(5), "{all}");
    assert!(
        all.contains("every template has a deadline; removed at the playbook's end"),
        "{all}"
    );
    assert!(
        all.contains("cleanup: removed Workflow default/wf"),
        "{all}"
    );

    // Checked against the CRD, and a kind without an embedded CRD is named, not guessed.
    let (code, all, _) = run(
        &format!(
            "chaos::apply(`\napiVersion: chaos-mesh.org/v1alpha1\nkind: Schedule\nmetadata: {{ name: bad }}\nspec:\n  schedule: \"@every 1m\"\n  type: PodChaos\n  concurrencyPolicy: Sometimes\n  podChaos: {{ action: pod-kill, mode: one, {target} }}\n`);\n"
        ),
        &[],
    );
    assert!(matches!(code, Some(2 | 3)), "{all}");
    assert!(all.contains("concurrencyPolicy"), "{all}");
    let (code, all, _) = run(
        "chaos::apply(`\napiVersion: chaos-mesh.org/v1alpha1\nkind: IOChaos\nmetadata: { name: io }\nspec: { action: latency, mode: one, volumePath: /data, delay: 100ms, selector: { namespaces: [training] } }\n`);\n",
        &[],
    );
    assert!(matches!(code, Some(2 | 3)), "{all}");
    assert!(
        all.contains("\"IOChaos\": playbook has no Chaos Mesh v2.8.1 CRD for it")
            && all.contains("PodChaos, NetworkChaos, StressChaos, Schedule, Workflow, StatusCheck"),
        "{all}"
    );
}
