//! The five seed playbooks: they pass against the simulated platform, each fails with exit
//! code 1 naming its expectation and what it observed on the fragile variant, and their
//! figures are the same for a seed and differ across seeds.

use serde_json::Value;

use crate::support::{playbook, tempdir};

const SEEDS: [&str; 5] = [
    "pod-failure",
    "network-delay",
    "network-partition",
    "cpu-stress",
    "memory-stress",
];

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the folder with `--report`; the exit code, the output, the report.
fn run_folder(extra: &[&str]) -> (Option<i32>, String, Value) {
    let report = tempdir().join("report.json");
    let mut args = vec![
        "run",
        "--cluster",
        "sim",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push("playbooks/");
    let out = playbook(&args);
    let json = std::fs::read_to_string(&report).unwrap_or_default();
    (
        out.status.code(),
        text(&out),
        serde_json::from_str(&json).unwrap_or(Value::Null),
    )
}

/// Each playbook's records, by playbook file name.
fn figures(report: &Value) -> Vec<(String, Value)> {
    report["playbooks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_string(),
                p["records"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_seed_playbooks_pass_against_the_simulated_platform_and_end_with_a_table() {
    let (code, all, report) = run_folder(&["--seed", "1"]);
    assert_eq!(code, Some(0), "{all}");
    for name in SEEDS {
        assert!(
            all.contains(&format!("playbooks/{name}.rhai")),
            "{name} missing:\n{all}"
        );
    }
    // The closing table carries each playbook's measured figures.
    let table = &all[all.rfind("recovery_ms").expect("a table with recovery_ms")..];
    for figure in [
        "rise_ms",
        "breaker_opened_ms",
        "replicas_after",
        "oom_kill_ms",
    ] {
        assert!(all.contains(figure), "{figure} not reported:\n{all}");
    }
    assert!(!table.is_empty());
    let figs = figures(&report);
    // The five seeds and the five ML platform experiments (tests/mlops).
    assert_eq!(figs.len(), 10, "{report}");
    let pod = &figs
        .iter()
        .find(|(p, _)| p.contains("pod-failure"))
        .expect("pod-failure")
        .1;
    let recovery = pod["recovery_ms"].as_f64().expect("recovery_ms");
    assert!(
        (1000.0..=30000.0).contains(&recovery),
        "recovery {recovery} ms"
    );
    let delay = &figs
        .iter()
        .find(|(p, _)| p.contains("network-delay"))
        .expect("delay")
        .1;
    let rise = delay["rise_ms"].as_f64().expect("rise_ms");
    assert!(
        (80.0..=200.0).contains(&rise),
        "rise {rise} ms for a 100 ms delay"
    );
}

#[test]
fn each_seed_playbook_fails_on_the_fragile_platform_naming_what_it_saw() {
    let expected: [(&str, &str, &str); 5] = [
        // Ready before its model loaded (KServe issues 1859, 2037): Ready, not serving.
        (
            "pod-failure",
            "Ready means serving: every golden prediction answered correctly",
            "is not ready",
        ),
        (
            "network-delay",
            "MLflow still succeeds, slower by about the delay",
            "rise_ms",
        ),
        (
            "network-partition",
            "the circuit breaker opens",
            "state: disabled",
        ),
        ("cpu-stress", "the HPA scales the trainer up", "desired: 1"),
        (
            "memory-stress",
            "guard \"inference keeps being served\" violated while a fault was active",
            "success_rate: 0.8",
        ),
    ];
    for (name, expectation, observed) in expected {
        let file = format!("playbooks/{name}.rhai");
        let out = playbook(&[
            "run",
            "--cluster",
            "sim",
            "--scenario",
            "mlops-fragile",
            &file,
        ]);
        let all = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name} must fail on the fragile platform:\n{all}"
        );
        let err = all
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_default();
        assert!(err.contains(expectation), "{name}: {err}\n{all}");
        assert!(err.contains(observed), "{name}: no `{observed}` in {err}");
        // Cleanup still ran.
        assert!(all.contains("cleanup: removed"), "{name}:\n{all}");
    }
}

#[test]
fn figures_repeat_for_a_seed_and_vary_across_seeds() {
    let (a_code, a_out, a) = run_folder(&["--seed", "7", "-q"]);
    let (b_code, _, b) = run_folder(&["--seed", "7", "-q"]);
    let (c_code, _, c) = run_folder(&["--seed", "8", "-q"]);
    assert_eq!(
        (a_code, b_code, c_code),
        (Some(0), Some(0), Some(0)),
        "{a_out}"
    );
    assert_eq!(figures(&a), figures(&b), "same seed, same figures");
    assert_ne!(figures(&a), figures(&c), "another seed, other figures");
}

#[test]
fn the_seed_playbooks_are_short_documented_and_check_clean() {
    let out = playbook(&["check", "playbooks/"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for name in SEEDS {
        let src = std::fs::read_to_string(format!("playbooks/{name}.rhai")).unwrap();
        assert!(src.starts_with("//! "), "{name} opens with a //! header");
        assert!(src.contains("Expects:"), "{name} says what it expects");
        assert!(
            src.lines().count() <= 40,
            "{name} is about 40 lines at most"
        );
    }
}
