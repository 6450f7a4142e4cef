//! The host API: every namespace against the in-process simulator (with its errors), and the
//! cleanup promise — each exit path leaves no chaos object and no pending journal, and a
//! killed run's leftovers are found and removed by `playbook cleanup` — checked with kubectl.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::sim_api::Server;
use crate::support::{PROCESS_LIMIT, Proc, playbook, playbook_cmd, tempdir};

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a playbook written inline against the in-process simulator.
pub(crate) fn run_inline(source: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempdir();
    let file = dir.join("p.rhai");
    std::fs::write(&file, source).unwrap();
    let mut args = vec!["run", "--cluster", "sim"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let out = playbook(&args);
    (out.status.code(), text(&out))
}

#[test]
fn every_namespace_works_against_the_in_process_simulator() {
    let out = playbook(&[
        "run",
        "--cluster",
        "sim",
        "tests/fixtures/host/functions.rhai",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("all host checks passed"), "{all}");
    // on_cleanup closures run last-in first-out, after the playbook.
    let first = all.find("first cleanup step").expect("first step ran");
    let second = all.find("second cleanup step").expect("second step ran");
    assert!(first < second, "{all}");
    assert!(all.contains("removed PodChaos training/from-yaml"), "{all}");
    assert!(
        all.contains("ok: steady_state (after cleanup) \"default exists\""),
        "{all}"
    );
}

#[test]
fn host_errors_name_the_problem_and_the_line() {
    let cases: &[(&str, i32, &[&str])] = &[
        (
            "let f = chaos::network_delay(#{ selector: #{ namespaces: [\"default\"] }, laency: \"100ms\" });",
            2,
            &["p.rhai:1:", "option `laency`", "did you mean `latency`?"],
        ),
        (
            "chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] }, mode: \"fixed-percent\" });",
            2,
            &["option `value`", "needs a value"],
        ),
        (
            "chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] }, duration: \"30x\" });",
            2,
            &["option `duration`", "unknown unit"],
        ),
        (
            "chaos::pod_kill(#{ selector: #{ namespaces: [\"kube-system\"] } });",
            3,
            &[
                "refusing to inject into namespace \"kube-system\"",
                "allow_protected_namespaces",
            ],
        ),
        (
            "cluster::readiness(\"default\", \"deployment/nope\");",
            3,
            &["deployments.apps \"nope\" not found", "NotFound"],
        ),
        (
            "cluster::readiness(\"default\", \"pod/nope\");",
            3,
            &["unknown kind \"pod\""],
        ),
        (
            "expect(\"never\", \"30s\", || #{ ok: false, replicas: 1 });",
            1,
            &[
                "expectation \"never\" not met within 30s",
                "last observed replicas: 1",
            ],
        ),
        (
            "always(\"breaks\", \"1m\", || clock_ms() < 20000.0);",
            1,
            &["\"breaks\" stopped holding after"],
        ),
        (
            "expect(\"bad\", \"1m\", || 42);",
            3,
            &["a condition must return true/false"],
        ),
        (
            "chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\nsteady_state(\"late\", || true);",
            3,
            &["p.rhai:2:", "must come before the first fault"],
        ),
        (
            "metrics::prometheus(\"up\");",
            3,
            &["no Prometheus configured: pass --prometheus URL"],
        ),
        ("sleep(\"soon\");", 2, &["sleep: invalid duration \"soon\""]),
    ];
    for (source, code, needles) in cases {
        let (got, all) = run_inline(source, &[]);
        assert_eq!(got, Some(*code), "{source}\n{all}");
        for n in *needles {
            assert!(all.contains(n), "{source}: no `{n}` in\n{all}");
        }
    }
}

#[test]
fn a_dry_run_creates_nothing_and_shows_the_objects() {
    let (code, all) = run_inline(
        "let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] }, duration: \"30s\" });\nexpect(\"x\", \"1s\", || false);",
        &["--dry-run"],
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("dry run: would create PodChaos default/"),
        "{all}"
    );
    assert!(
        all.contains("kind: PodChaos") && all.contains("duration: 30s"),
        "{all}"
    );
    assert!(all.contains("dry run: would check expect \"x\""), "{all}");
    assert!(!all.contains("cleanup:"), "nothing to clean up:\n{all}");
}

/// Chaos objects labelled as playbook's on the server, as `kind/name` lines.
pub(crate) fn leftovers(server: &Server) -> Vec<String> {
    let out = server.ok(&[
        "get",
        "podchaos,networkchaos,stresschaos",
        "-A",
        "-l",
        "app.kubernetes.io/managed-by=playbook",
        "-o",
        "name",
    ]);
    out.lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

pub(crate) fn journals(state: &Path) -> Vec<String> {
    std::fs::read_dir(state.join("journal"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Starts `playbook run` of the all-faults playbook against `server`; returns once it has injected.
fn start_run(server: &Server, state: &Path, exit: &str, timeout: &str) -> (Proc, String) {
    let mut child = Proc::spawn(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(state)
            .args(["--var", &format!("exit={exit}"), "--timeout", timeout])
            .arg("tests/fixtures/host/all_faults.rhai"),
    );
    let mut lines = child.lines();
    let seen = lines.wait_for("injected 8 faults").join("\n");
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.rest());
    (child, seen)
}

#[test]
fn every_exit_path_cleans_up_every_fault_kind() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let paths: &[(&str, &str, Option<&str>, i32)] = &[
        ("pass", "10m", None, 0),
        ("fail", "10m", None, 1),
        ("error", "10m", None, 3),
        ("timeout", "3s", None, 3),
        ("wait", "10m", Some("INT"), 130),
        ("wait", "10m", Some("TERM"), 130),
        ("wait", "10m", Some("HUP"), 130),
        ("wait", "10m", Some("QUIT"), 130),
    ];
    for (exit, timeout, signal, code) in paths {
        let state = tempdir();
        let (child, seen) = start_run(&server, &state, exit, timeout);
        assert!(seen.contains("injected 8 faults"), "{exit}: {seen}");
        if let Some(sig) = signal {
            assert_eq!(
                leftovers(&server).len(),
                8,
                "{exit}: all eight live before the signal"
            );
            child.signal(sig);
        }
        let out = child.output(PROCESS_LIMIT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{exit} {signal:?}: {err}");
        assert_eq!(
            leftovers(&server),
            Vec::<String>::new(),
            "{exit} {signal:?}: objects left"
        );
        assert_eq!(
            journals(&state),
            Vec::<String>::new(),
            "{exit} {signal:?}: journal left"
        );
    }
}

#[test]
fn a_killed_run_is_cleaned_up_by_playbook_cleanup() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let (mut child, seen) = start_run(&server, &state, "wait", "10m");
    assert!(seen.contains("injected 8 faults"), "{seen}");
    child.signal("KILL"); // no cleanup can run
    child.wait(PROCESS_LIMIT);
    assert_eq!(
        leftovers(&server).len(),
        8,
        "the killed run's faults are still there"
    );
    assert_eq!(journals(&state).len(), 1, "and its journal says so");
    let kc = server.kubeconfig.to_str().unwrap().to_string();
    let st = state.to_str().unwrap().to_string();
    let out = playbook(&["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("8 object(s) in its journal"), "{all}");
    assert_eq!(leftovers(&server), Vec::<String>::new(), "{all}");
    assert_eq!(journals(&state), Vec::<String>::new());
    // Twice is harmless.
    let again = playbook(&["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("removed 0 object(s)"));
    // Against the in-process simulator there is nothing to clean: a usage error.
    let sim = playbook(&["cleanup", "--all", "--cluster", "sim"]);
    assert_eq!(sim.status.code(), Some(2));
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits (up to 30 s) until the HTTP server on `port` answers `GET /-/ready` with 200.
pub fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    for _ in 0..300 {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = c.write_all(b"GET /-/ready HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn a_real_prometheus_scraping_sim_serve_answers_a_playbook() {
    let prometheus = "/usr/bin/prometheus";
    assert!(
        Path::new(prometheus).exists(),
        "Debian's prometheus is required for this test (.ci/run installs it)"
    );
    let server = Server::start_with(&["--scenario", "mlops"]);
    let dir = tempdir();
    let addr = server.url.trim_start_matches("http://");
    let config = format!(
        "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
         scrape_configs:\n\
         - job_name: mlflow\n  metrics_path: /api/v1/namespaces/mlflow/services/mlflow:5000/proxy/metrics\n  static_configs: [{{ targets: ['{addr}'] }}]\n\
         - job_name: pipeline-runner\n  metrics_path: /api/v1/namespaces/argo/services/pipeline-runner:8080/proxy/metrics\n  static_configs: [{{ targets: ['{addr}'] }}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let child = Proc::guard(child, "prometheus");
    assert!(
        ready(port),
        "prometheus did not become ready on port {port}"
    );
    let playbook_file = dir.join("prom.rhai");
    std::fs::write(
        &playbook_file,
        r#"
let up = expect("Prometheus scraped both jobs through the API server's proxy", "60s", || {
    let s = metrics::prometheus("up == 1");
    #{ ok: s.len() == 2, series: s.len() }
});
let breaker = metrics::prometheus_value("mlflow_client_circuit_breaker_state");
if breaker != 0.0 { fail(`breaker state ${breaker}, expected 0 (closed)`); }
let range = metrics::prometheus_range("up{job=\"pipeline-runner\"}", "1m", "1s");
if range.len() != 1 { fail(`range query gave ${range.len()} series`); }
print(`prometheus ok: breaker ${breaker}, ${range[0].values.len()} samples`);
"#,
    )
    .unwrap();
    let kc = server.kubeconfig.to_str().unwrap().to_string();
    let url = format!("http://127.0.0.1:{port}");
    let out = playbook(&[
        "run",
        "--kubeconfig",
        &kc,
        "--prometheus",
        &url,
        "--state-dir",
        dir.to_str().unwrap(),
        playbook_file.to_str().unwrap(),
    ]);
    let all = text(&out);
    // A query Prometheus rejects is a script error with Prometheus' own message.
    let bad = dir.join("bad.rhai");
    std::fs::write(&bad, "metrics::prometheus(\"sum(\");\n").unwrap();
    let rejected = playbook(&[
        "run",
        "--kubeconfig",
        &kc,
        "--prometheus",
        &url,
        bad.to_str().unwrap(),
    ]);
    drop(child);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("prometheus ok: breaker 0"), "{all}");
    assert_eq!(rejected.status.code(), Some(3), "{}", text(&rejected));
    assert!(
        text(&rejected).contains("Prometheus: "),
        "{}",
        text(&rejected)
    );
}

#[test]
fn workload_functions_work_against_the_simulated_platform() {
    let out = playbook(&[
        "run",
        "--cluster",
        "sim",
        "tests/fixtures/host/platform.rhai",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("platform host checks passed"), "{all}");
}
