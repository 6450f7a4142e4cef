//! Batch runs as CI sees them: console lines, exit codes, and the three reports (JSON journal,
//! JUnit XML, Markdown) parsed back, for passing, failing and broken playbooks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use playbook::report::{RunReport, SCHEMA, Status};
use serde_json::Value;

use crate::support::{playbook, tempdir};

mod html;
mod junit;
use junit::attr;

const FIXTURES: &str = "tests/fixtures/report";

/// The files of one run's reports.
struct Reports {
    json: PathBuf,
    junit: PathBuf,
    markdown: PathBuf,
}

impl Reports {
    fn new() -> Self {
        let dir = tempdir();
        Reports {
            json: dir.join("run.json"),
            junit: dir.join("run.xml"),
            markdown: dir.join("run.md"),
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--report".into(),
            self.json.display().to_string(),
            "--junit".into(),
            self.junit.display().to_string(),
            "--markdown".into(),
            self.markdown.display().to_string(),
        ]
    }

    fn json(&self) -> (RunReport, Value) {
        let text = std::fs::read_to_string(&self.json).unwrap();
        let typed: RunReport = serde_json::from_str(&text).unwrap();
        (typed, serde_json::from_str(&text).unwrap())
    }

    fn junit(&self) -> String {
        std::fs::read_to_string(&self.junit).unwrap()
    }

    fn markdown(&self) -> String {
        std::fs::read_to_string(&self.markdown).unwrap()
    }
}

/// Runs `playbook run --cluster sim ARGS`, asserts the exit code; (stdout, stderr).
fn run(args: &[&str], code: i32) -> (String, String) {
    let mut all = vec!["run", "--cluster", "sim"];
    all.extend_from_slice(args);
    let out = playbook(&all);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "playbook {all:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn run_with_reports(r: &Reports, args: &[&str], code: i32) -> (String, String) {
    let extra = r.args();
    let mut all: Vec<&str> = extra.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    run(&all, code)
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}.rhai")
}

fn statuses(report: &RunReport) -> Vec<(String, Status)> {
    report
        .playbooks
        .iter()
        .map(|p| {
            let file = Path::new(&p.name).file_stem().unwrap().to_string_lossy();
            (file.into_owned(), p.status)
        })
        .collect()
}

#[test]
fn a_batch_journal_has_every_figure_and_round_trips_through_serde() {
    let r = Reports::new();
    let (stdout, _) = run_with_reports(&r, &[FIXTURES], 3);
    let (report, raw) = r.json();
    assert!(
        stdout.contains(&format!("report: {}", r.json.display())),
        "{stdout}"
    );
    assert_eq!(report.schema, SCHEMA);
    assert!(report.complete && report.finished_at.is_some());
    assert_eq!(report.exit_code, 3);
    assert_eq!(report.status, Status::Error);
    assert_eq!(report.target.kind, "sim");
    assert_eq!(report.seed, 1);
    assert!(report.run_id.starts_with("pb-"), "{}", report.run_id);
    assert_eq!(
        statuses(&report),
        [
            ("expect_fails".to_string(), Status::Failed),
            ("fail_called".into(), Status::Failed),
            ("pod_kill_passes".into(), Status::Passed),
            ("script_error".into(), Status::Error),
        ]
    );
    // Round trip: typed and back gives the same JSON.
    assert_eq!(serde_json::to_value(&report).unwrap(), raw);

    let pass = &report.playbooks[2];
    assert_eq!(pass.tags, ["pods", "smoke"]);
    assert_eq!(pass.sha256.len(), 64);
    // About 0.5 s to injection, the 5.5 s expect and 10 s always on the virtual clock, then the
    // removal, which waits for the simulated chaos-controller-manager's informer and work
    // queue (50..300 ms) to see the deletion and drop its finalizer.
    assert!(
        (16.0..=17.5).contains(&pass.run_s),
        "injection + 5.5s expect + 10s always + the removal: {}",
        pass.run_s
    );
    let kinds: Vec<(&str, &str, f64)> = pass
        .expectations
        .iter()
        .map(|e| (e.kind.as_str(), e.name.as_str(), e.took_s))
        .collect();
    assert_eq!(
        kinds,
        [
            ("steady_state", "the API answers", 0.0),
            ("expect", "pods ready again", 5.444),
            ("always", "no error budget burnt", 10.0),
            ("steady_state (after cleanup)", "the API answers", 0.0),
        ]
    );
    assert_eq!(pass.expectations[1].timeout_s, 30.0);
    assert!(pass.expectations[1].observed.contains("waited_ms: 5444"));
    let keys: Vec<&str> = pass.records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["recovery_ms", "p99_before_ms", "p99_during_ms"]);
    let recovery = pass.records.get("recovery_ms").and_then(|v| v.as_f64());
    assert!(
        recovery.is_some_and(|ms| (ms - 5444.83).abs() < 0.01),
        "{recovery:?}"
    );
    let fault = &pass.faults[0];
    assert_eq!(
        (fault.kind.as_str(), fault.namespace.as_str()),
        ("PodChaos", "training")
    );
    assert!(
        fault.removed_s.is_some_and(|s| (16.0..=17.5).contains(&s)),
        "{:?}",
        fault.removed_s
    );
    let steps: Vec<&str> = pass.cleanup.steps.iter().map(|s| s.step.as_str()).collect();
    assert!(pass.cleanup.ok);
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0].starts_with("on_cleanup closure") && steps[1].starts_with("delete PodChaos"));
    assert!(
        pass.log
            .iter()
            .any(|l| l.text == "restoring the <test> & \"quoted\" state" && l.at_s == 16.0),
        "{:?}",
        pass.log
    );

    let failed = &report.playbooks[0];
    let err = failed.error.as_ref().unwrap();
    assert_eq!(err.kind, "failure");
    assert_eq!(
        err.at.as_deref(),
        Some("tests/fixtures/report/expect_fails.rhai:7:1")
    );
    assert!(failed.expectations[0].observed.contains("p99_ms: 512"));
    assert!(failed.cleanup.ok, "cleanup ran after the failure");
    assert!(failed.log.iter().any(|l| l.text == "cleanup closure ran"));
    assert!(!failed.log.iter().any(|l| l.text == "never printed"));

    let broken = &report.playbooks[3];
    assert_eq!(broken.error.as_ref().unwrap().kind, "script");
    assert!(broken.cleanup.ok && broken.faults[0].removed_s.is_some());
}

/// The sections of docs/report-schema.md: (path, fields), from headings ending in a
/// backticked path and the backticked first column of their tables.
fn documented() -> Vec<(String, Vec<String>)> {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-schema.md"),
    )
    .unwrap();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in doc.lines() {
        if line.starts_with("##") {
            if let Some(path) = line.rsplit('`').nth(1).filter(|_| line.ends_with('`')) {
                out.push((path.to_string(), Vec::new()));
            }
        } else if let (Some(rest), Some(section)) = (line.strip_prefix("| `"), out.last_mut()) {
            section.1.push(rest.split('`').next().unwrap().to_string());
        }
    }
    out
}

/// The JSON objects at a documented path such as `playbooks[].cleanup.steps[]`.
fn objects_at<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut at = vec![root];
    if path == "(top level)" {
        return at;
    }
    for part in path.split('.') {
        let (name, many) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        at = at
            .into_iter()
            .filter_map(|v| v.get(name))
            .flat_map(|v| match (many, v) {
                (true, Value::Array(items)) => items.iter().collect(),
                (_, Value::Null) => Vec::new(),
                (_, v) => vec![v],
            })
            .collect();
    }
    at
}

#[test]
fn the_journal_has_exactly_the_documented_fields() {
    let r = Reports::new();
    run_with_reports(&r, &[FIXTURES], 3);
    let (_, raw) = r.json();
    let sections = documented();
    assert!(sections.len() >= 10, "{sections:?}");
    for (path, fields) in sections {
        let objects = objects_at(&raw, &path);
        assert!(!objects.is_empty(), "no object at {path} in the report");
        let want: BTreeSet<&str> = fields.iter().map(String::as_str).collect();
        for o in objects {
            let have: BTreeSet<&str> = o
                .as_object()
                .unwrap_or_else(|| panic!("{path} is not an object"))
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                have, want,
                "fields at {path}: report vs docs/report-schema.md"
            );
        }
    }
}

#[test]
fn markdown_has_the_table_and_the_failed_expectations() {
    let r = Reports::new();
    run_with_reports(&r, &[FIXTURES], 3);
    let md = r.markdown();
    assert!(md.contains("| playbook | verdict | run clock |"), "{md}");
    assert!(md.contains("|---|"), "{md}");
    let row = md
        .lines()
        .find(|l| l.contains("pod_kill_passes"))
        .unwrap_or_else(|| panic!("{md}"));
    // About 16.5 s of run clock, with the controllers' lag (see the JSON test).
    let total = regex::Regex::new(r"\| 1[67]\.[0-9]s \|").unwrap();
    assert!(row.contains("✅ passed") && total.is_match(row), "{row}");
    assert!(
        regex::Regex::new(r"recovery_ms: \*\*5444\.8\*\*")
            .unwrap()
            .is_match(row)
            && regex::Regex::new(r"PodChaos active 1[56]\.[0-9]s")
                .unwrap()
                .is_match(row),
        "{row}"
    );
    let row = md
        .lines()
        .find(|l| l.contains("| `tests/fixtures/report/expect_fails"))
        .unwrap();
    assert!(row.contains("❌ failed") && row.contains("0/1"), "{row}");
    assert!(md.contains("### Failed expectations"), "{md}");
    assert!(
        md.contains("**latency back under 200ms** after 5.0s (limit 5.0s): observed `note: a <b> & \"c\", p99_ms: 512`"),
        "{md}"
    );
    assert!(
        md.contains("### Errors") && md.contains("array index 5 out of bounds"),
        "{md}"
    );
    assert!(md.starts_with("## Chaos playbooks: 💥 error"), "{md}");
}

#[test]
fn console_lines_are_timestamped_and_end_with_the_summary_table() {
    let (stdout, _) = run(&[&fixture("pod_kill_passes")], 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("target: simulated cluster"),
        "{stdout}"
    );
    let stamped = regex::Regex::new(r"^\d\d:\d\d:\d\d +\+\d+\.\ds (.*)$").unwrap();
    let inside: Vec<&str> = lines
        .iter()
        .filter_map(|l| stamped.captures(l).map(|c| c.get(1).unwrap().as_str()))
        .collect();
    assert!(
        inside.contains(&"== tests/fixtures/report/pod_kill_passes.rhai"),
        "{stdout}"
    );
    assert!(
        inside.contains(&"waiting: expect \"pods ready again\" (up to 30s)"),
        "{stdout}"
    );
    // About 16.5 s of run clock, with the controllers' lag (see the JSON test).
    let done = regex::Regex::new(
        r"\+1[67]\.[0-9]s == tests/fixtures/report/pod_kill_passes\.rhai: passed in 1[67]\.[0-9]s \(run clock\)",
    )
    .unwrap();
    assert!(done.is_match(&stdout), "{stdout}");
    let header = lines
        .iter()
        .position(|l| l.starts_with("playbook ") && l.contains("verdict"))
        .unwrap();
    assert!(lines[header].contains("run clock") && lines[header].contains("figures"));
    assert!(
        lines[header + 1].contains("passed")
            && lines[header + 1].contains("recovery_ms=5444.8  p99_before_ms=120.5"),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"1 passed"));
    // No wait steps without -v.
    assert!(!stdout.contains("3s/30s"), "{stdout}");
}

#[test]
fn quiet_prints_only_the_summary_and_verbose_every_wait_step() {
    let (stdout, stderr) = run(&["-q", &fixture("expect_fails")], 1);
    assert!(!stdout.contains("=="), "{stdout}");
    assert!(!stdout.contains("target:"), "{stdout}");
    assert!(stdout.contains("expect_fails.rhai  failed"), "{stdout}");
    assert!(stderr.contains("not met within 5s"), "{stderr}");

    let dir = tempdir();
    let file = dir.join("debug.rhai");
    std::fs::write(
        &file,
        "debug(\"a debug line\");\nsleep(\"2s\");\nexpect(\"x\", \"4s\", || clock_ms() >= 5000);\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let (stdout, _) = run(&[&file], 0);
    assert!(
        !stdout.contains("a debug line") && !stdout.contains("2s/4s"),
        "{stdout}"
    );
    let (stdout, _) = run(&["-v", &file], 0);
    assert!(
        stdout.contains("[debug]") && stdout.contains("a debug line"),
        "{stdout}"
    );
    assert!(stdout.contains("sleep 0s/2s"), "{stdout}");
    for step in [
        "expect \"x\" 0s/4s",
        "expect \"x\" 1s/4s",
        "expect \"x\" 2s/4s",
        "expect \"x\" 3s/4s",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
}

#[test]
fn fail_fast_skips_the_rest_and_reports_them_skipped() {
    let r = Reports::new();
    let (stdout, _) = run_with_reports(&r, &["--fail-fast", FIXTURES], 1);
    let (report, _) = r.json();
    assert_eq!(
        statuses(&report),
        [
            ("expect_fails".to_string(), Status::Failed),
            ("fail_called".into(), Status::Skipped),
            ("pod_kill_passes".into(), Status::Skipped),
            ("script_error".into(), Status::Skipped),
        ]
    );
    assert!(report.options.fail_fast);
    assert_eq!(
        report.playbooks[1].skip_reason.as_deref(),
        Some("--fail-fast: tests/fixtures/report/expect_fails.rhai did not pass")
    );
    assert!(stdout.contains("1 failed, 3 skipped"), "{stdout}");
    assert!(
        !stdout.contains("record: recovery_ms"),
        "a skipped playbook ran:\n{stdout}"
    );
    let junit = r.junit();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    assert_eq!(attr(doc.root_element(), "skipped"), "3");
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("skipped"))
            .count(),
        3
    );
    assert!(r.markdown().contains("⏭️ skipped"));
}

#[test]
fn filter_selects_by_name_glob_and_tag() {
    let names = |args: &[&str], code: i32| {
        let r = Reports::new();
        let mut all = args.to_vec();
        all.push(FIXTURES);
        run_with_reports(&r, &all, code);
        let (report, _) = r.json();
        assert_eq!(
            report.options.filter.len(),
            args.iter().filter(|a| **a == "--filter").count()
        );
        statuses(&report)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["--filter", "pod_kill"], 0), ["pod_kill_passes"]);
    assert_eq!(names(&["--filter", "*_fail?.rhai"], 1), ["expect_fails"]);
    assert_eq!(
        names(&["--filter", "tag:smoke"], 1),
        ["fail_called", "pod_kill_passes"]
    );
    assert_eq!(
        names(&["--filter", "network"], 3),
        ["expect_fails", "script_error"]
    );
    assert_eq!(
        names(&["--filter", "pod_kill", "--filter", "tag:broken"], 3),
        ["pod_kill_passes", "script_error"]
    );
    let (_, stderr) = run(&["--filter", "no-such-playbook", FIXTURES], 2);
    assert!(
        stderr.contains("--filter no-such-playbook matches none of the 4 playbook(s)"),
        "{stderr}"
    );
}

#[test]
fn a_report_that_cannot_be_written_names_the_path_before_anything_runs() {
    let dir = tempdir();
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let bad = blocker.join("run.json").display().to_string();
    let (stdout, stderr) = run(&["--report", &bad, &fixture("pod_kill_passes")], 2);
    assert!(
        stderr.contains(&format!("cannot write report {bad}")),
        "{stderr}"
    );
    assert!(!stdout.contains("inject:"), "{stdout}");
}
