//! Host functions tested in process: a playbook source run by `playbook::run::play_source`
//! against the in-process simulator (the same lifecycle as `playbook run`, no binary spawned),
//! asserting on its report.

use playbook::report::{PlaybookReport, Status};
use playbook::session::Status as Check;
use playbook_sim::platform::Scenario;

/// Runs `source` against the simulated MLOps platform (seed 1); its report and printed lines.
fn play(source: &str) -> (PlaybookReport, Vec<String>) {
    play_on(Scenario::Mlops, source)
}

fn play_on(scenario: Scenario, source: &str) -> (PlaybookReport, Vec<String>) {
    let played = playbook::run::play_source("t.rhai", source, 1, scenario, &[("who", "tester")])
        .unwrap_or_else(|e| panic!("the playbook compiles and checks:\n{e}"));
    (played.report, played.lines)
}

#[test]
fn expect_measures_on_the_virtual_clock_and_passes() {
    let (r, _) = play(
        r#"let t0 = clock_ms();
sleep("5s");
let ms = expect("five seconds passed", "10s", || clock_ms() - t0 >= 5000.0);
record("waited_ms", clock_ms() - t0);"#,
    );
    assert_eq!(r.status, Status::Passed, "{r:#?}");
    assert_eq!(r.expectations.len(), 1);
    assert_eq!(r.expectations[0].kind, "expect");
    assert_eq!(r.expectations[0].status, Check::Passed);
    assert_eq!(
        r.expectations[0].took_s, 0.0,
        "true at once after the sleep"
    );
    let waited = r.records.0.iter().find(|(k, _)| k == "waited_ms");
    assert_eq!(
        waited.map(|(_, v)| v.as_f64()),
        Some(Some(5000.0)),
        "{r:#?}"
    );
}

#[test]
fn an_expectation_that_never_holds_fails_the_playbook_with_what_it_observed() {
    let (r, _) = play(r#"expect("never", "3s", || #{ ok: false, seen: 42 });"#);
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    let e = &r.expectations[0];
    assert_eq!(e.status, Check::Failed);
    assert_eq!(e.timeout_s, 3.0);
    assert!(e.took_s >= 3.0, "{e:?}");
    assert!(e.observed.contains("seen: 42"), "{e:?}");
    assert_eq!(r.error.as_ref().map(|e| e.kind.as_str()), Some("failure"));
}

#[test]
fn always_fails_as_soon_as_its_condition_breaks() {
    let (r, _) = play(
        r#"let t0 = clock_ms();
always("under two seconds", "10s", || clock_ms() - t0 < 2000.0);"#,
    );
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert_eq!(r.expectations[0].kind, "always");
    assert!(r.expectations[0].took_s < 10.0, "{:?}", r.expectations[0]);
}

#[test]
fn a_fault_is_created_selected_and_removed_by_cleanup_after_the_closures_last_in_first_out() {
    let (r, lines) = play(
        r#"import "platform" as platform;
on_cleanup(|| print("first registered, runs last"));
let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: "one", duration: "30s" });
f.wait_injected("10s");
on_cleanup(|| print("last registered, runs first"));"#,
    );
    assert_eq!(r.status, Status::Passed, "{r:#?}\n{lines:#?}");
    assert_eq!(r.faults.len(), 1);
    assert_eq!(r.faults[0].kind, "PodChaos");
    assert_eq!(r.faults[0].selected.len(), 1, "mode one selects one pod");
    assert!(r.faults[0].removed_s.is_some(), "cleanup removed it");
    assert!(r.cleanup.ok);
    let steps: Vec<&str> = r.cleanup.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps[1].starts_with("delete PodChaos"), "{steps:?}");
    let first = lines
        .iter()
        .position(|l| l == "last registered, runs first");
    let last = lines
        .iter()
        .position(|l| l == "first registered, runs last");
    assert!(first.is_some() && first < last, "{lines:#?}");
}

#[test]
fn steady_states_are_checked_again_after_cleanup() {
    let (r, _) = play(
        r#"import "platform" as platform;
steady_state("inference ready", || platform::inference_ready());"#,
    );
    assert_eq!(r.status, Status::Passed, "{r:#?}");
    let kinds: Vec<&str> = r.expectations.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["steady_state", "steady_state (after cleanup)"]);
}

#[test]
fn param_reads_vars_and_a_missing_one_is_a_script_error_naming_it() {
    let (r, lines) = play(r#"print(`hello ${param("who")}`); param("nope");"#);
    assert!(lines.iter().any(|l| l == "hello tester"), "{lines:#?}");
    assert_eq!(r.status, Status::Error, "{r:#?}");
    let error = r.error.expect("an error");
    assert_eq!(error.kind, "script");
    assert!(error.message.contains("nope"), "{error:?}");
    assert_eq!(error.at.as_deref(), Some("t.rhai:1:33"), "{error:?}");
}

#[test]
fn cluster_functions_read_the_simulated_platform() {
    let (r, _) = play(
        r#"let pods = cluster::pods("kserve-inference", "");
record("pods", pods.len());
if pods.len() == 0 { fail("no pods"); }"#,
    );
    assert_eq!(r.status, Status::Passed, "{r:#?}");
}

#[test]
fn a_playbook_that_does_not_check_is_refused_with_its_diagnostics() {
    let err = playbook::run::play_source("bad.rhai", "let x = ;", 1, Scenario::Mlops, &[])
        .err()
        .expect("refused");
    assert!(err.contains("bad.rhai:1:"), "{err}");
}
