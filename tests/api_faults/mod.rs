//! API faults in front of `sim serve`, through a kubeconfig (the real code path): transient
//! answers are retried inside the caller's time, a probe's 503 counts at once, a lost create is
//! adopted, a stall or Ctrl-C ends a request in flight, cleanup outlasts an outage and names
//! what it could not remove, and `cleanup --all` sweeps kind by kind. Each test asserts the exit
//! code, the message, the time taken and that nothing is left.

mod proxy;
mod rbac;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy::{Fault, Proxy, Rule};

use crate::cli::tempdir;
use crate::sim_api::Server;

/// Kills a child process when dropped (a failed assertion never leaves one running).
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills one predictor pod, waits for the injection, expects the InferenceService Ready, then
/// holds for `--var hold=...` (so a test can break the API during cleanup).
const PLAYBOOK: &str = r#"
import "platform" as platform;
let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: "one", duration: "5m" });
f.wait_injected("30s");
print("injected");
expect("InferenceService Ready", "60s", || platform::inference_ready());
let hold = param("hold", "");
if hold != "" { print("holding"); sleep(hold); }
"#;

fn setup() -> (Server, Proxy, PathBuf, PathBuf) {
    let server = Server::start_with(&["--seed", "5"]);
    let proxy = Proxy::start(server.url.trim_start_matches("http://"));
    let kubeconfig = proxy.kubeconfig(&server.kubeconfig);
    let dir = tempdir();
    let file = dir.join("p.rhai");
    std::fs::write(&file, PLAYBOOK).unwrap();
    (server, proxy, kubeconfig, file)
}

fn start(kubeconfig: &Path, file: &Path, extra: &[&str]) -> Run {
    let state = tempdir();
    let child = Command::new(env!("CARGO_BIN_EXE_playbook"))
        .args(["run", "--kubeconfig"])
        .arg(kubeconfig)
        .arg("--state-dir")
        .arg(&state)
        .args(extra)
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLAYBOOK_STDLIB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Run(child)
}

/// Reads the child's stdout until a line contains `what` (or it ends); what was read.
fn until(run: &mut Run, what: &str) -> String {
    let out = run.0.stdout.as_mut().unwrap();
    let mut reader = BufReader::new(out);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.contains(what) {
            seen += &line;
            return seen;
        }
        seen += &line;
    }
}

/// Waits (at most `within`) for the run to end: its exit code and all its output.
fn finish(mut run: Run, within: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = run.0.try_wait().unwrap() {
            let mut all = String::new();
            let _ = run.0.stdout.take().unwrap().read_to_string(&mut all);
            let _ = run.0.stderr.take().unwrap().read_to_string(&mut all);
            return (status.code(), all);
        }
        assert!(
            start.elapsed() < within,
            "the run did not end within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// PodChaos objects left on the server (asked directly, not through the proxy).
fn leftovers(server: &Server) -> Vec<String> {
    server
        .ok(&[
            "get",
            "podchaos,networkchaos,stresschaos",
            "-A",
            "-o",
            "name",
        ])
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn transient_answers_are_retried_inside_the_callers_time() {
    let (server, proxy, kc, file) = setup();
    // On what the run reads: the caches' first LISTs (deployments, InferenceServices, pods,
    // podchaos), the PodChaos read by name when its removal is confirmed, and aggregated
    // discovery (`/apis`, the first GET under /apis).
    proxy.add(Rule::new(
        "GET",
        "/deployments",
        Fault::Status(500, None),
        3,
    ));
    proxy.add(Rule::new(
        "GET",
        "/inferenceservices",
        Fault::Status(503, None),
        2,
    ));
    proxy.add(Rule::new("GET", "/pods", Fault::Reset, 2));
    proxy.add(Rule::new(
        "GET",
        "/podchaos/",
        Fault::Status(429, Some(1)),
        1,
    ));
    proxy.add(Rule::new("GET", "/apis", Fault::Status(502, None), 1));
    proxy.add(Rule::new(
        "GET",
        "kserve-inference/podchaos",
        Fault::Status(504, None),
        1,
    ));
    let t0 = Instant::now();
    let (code, all) = finish(
        start(&kc, &file, &["--timeout", "3m"]),
        Duration::from_secs(200),
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(
        proxy.injected() == 10,
        "every fault was met: {}",
        proxy.injected()
    );
    assert!(
        t0.elapsed() < Duration::from_secs(120),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn a_probe_counts_a_503_at_once() {
    let (_server, proxy, kc, _) = setup();
    proxy.add(Rule::new("GET", "/proxy/", Fault::Status(503, None), 0));
    let dir = tempdir();
    let file = dir.join("probe.rhai");
    std::fs::write(
        &file,
        r#"let s = metrics::probe("mlflow", "mlflow:5000", "/health", 20);
           print(`ok=${s.ok} count=${s.count} last=${s.last_error}`);"#,
    )
    .unwrap();
    let t0 = Instant::now();
    let (code, all) = finish(
        start(&kc, &file, &["--timeout", "1m"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("ok=0 count=20") && all.contains("503"),
        "{all}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "20 failed probes took {:?}",
        t0.elapsed()
    );
}

#[test]
fn a_create_whose_answer_is_lost_is_adopted() {
    let (server, proxy, kc, file) = setup();
    proxy.add(Rule::new("POST", "/podchaos", Fault::Lost, 1));
    let (code, all) = finish(
        start(&kc, &file, &["--timeout", "3m"]),
        Duration::from_secs(200),
    );
    assert_eq!(proxy.injected(), 1);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("removed PodChaos"), "{all}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn a_stalled_api_is_bounded_by_the_timeout_and_ctrl_c() {
    let (server, proxy, kc, file) = setup();
    proxy.add(Rule::new("GET", "", Fault::Stall, 0));
    let t0 = Instant::now();
    let (code, all) = finish(
        start(&kc, &file, &["--timeout", "8s"]),
        Duration::from_secs(40),
    );
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("timed out"), "{all}");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    // Ctrl-C ends a request in flight too.
    let run = start(&kc, &file, &["--timeout", "10m"]);
    std::thread::sleep(Duration::from_secs(2));
    let t1 = Instant::now();
    Command::new("kill")
        .args(["-INT", &run.0.id().to_string()])
        .status()
        .unwrap();
    let (code, all) = finish(run, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{all}");
    assert!(t1.elapsed() < Duration::from_secs(5), "{:?}", t1.elapsed());
    proxy.clear();
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn cleanup_outlasts_an_api_outage() {
    let (server, proxy, kc, file) = setup();
    let mut run = start(&kc, &file, &["--timeout", "5m", "--var", "hold=2s"]);
    let seen = until(&mut run, "holding");
    assert!(seen.contains("injected"), "{seen}");
    // The API answers 503 or nothing for 15 s from now: all of cleanup's first attempts.
    proxy.add(Rule::outage(Fault::Status(503, None), 8));
    proxy.add(Rule::outage(Fault::Reset, 15));
    let t0 = Instant::now();
    let (code, all) = finish(run, Duration::from_secs(120));
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("removed PodChaos"), "{all}");
    assert!(
        t0.elapsed() >= Duration::from_secs(12),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn cleanup_all_sweeps_kind_by_kind_past_a_forbidden_kind() {
    let server = Server::start();
    let proxy = Proxy::start(server.url.trim_start_matches("http://"));
    let kc = proxy.kubeconfig(&server.kubeconfig);
    let label = "app.kubernetes.io/managed-by: playbook";
    for (kind, name, spec) in [
        ("PodChaos", "left-pod", "action: pod-kill\n  mode: one"),
        (
            "NetworkChaos",
            "left-net",
            "action: delay\n  mode: one\n  delay: {latency: 10ms}",
        ),
    ] {
        let manifest = format!(
            "apiVersion: chaos-mesh.org/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: default\n  labels:\n    {label}\nspec:\n  {spec}\n  selector: {{namespaces: [default]}}\n  duration: 10m\n"
        );
        server.ok_stdin(&["apply", "-f", "-"], &manifest);
    }
    proxy.add(Rule::new(
        "GET",
        "/apis/chaos-mesh.org/v1alpha1/podchaos",
        Fault::Status(403, None),
        0,
    ));
    let state = tempdir();
    let out = Command::new(env!("CARGO_BIN_EXE_playbook"))
        .args(["cleanup", "--all", "--kubeconfig"])
        .arg(&kc)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(4), "{all}");
    assert!(all.contains("listing podchaos"), "{all}");
    assert!(all.contains("could not sweep kind(s) PodChaos"), "{all}");
    assert!(
        all.contains("removed NetworkChaos default/left-net"),
        "{all}"
    );
    assert_eq!(leftovers(&server), vec!["podchaos.chaos-mesh.org/left-pod"]);
}

/// Kinds as kubectl names them, resolved the same way every time (core before metrics.k8s.io's
/// PodMetrics), and whether an object exists, without an error.
const KINDS: &str = r#"
let ns = "kserve-inference";
let p = cluster::pods(ns, "")[0].name;
for k in ["pod", "pods", "po", "Pod"] {
    let o = cluster::get(ns, `${k}/${p}`);
    if o.kind != "Pod" { fail(`${k} resolved to ${o.kind}`); }
}
for k in ["deploy", "deployment.apps", "deployments"] {
    if cluster::get(ns, `${k}/sklearn-iris-predictor`).kind != "Deployment" { fail(k); }
}
for k in ["isvc", "inferenceservice.serving.kserve.io", "InferenceService"] {
    if cluster::get(ns, `${k}/sklearn-iris`).kind != "InferenceService" { fail(k); }
}
if cluster::exists(ns, "po/no-such-pod") { fail("a missing pod exists"); }
if !cluster::exists(ns, `po/${p}`) { fail("an existing pod does not"); }
print("kinds ok");
"#;

#[test]
fn kinds_resolve_as_kubectl_does_past_a_broken_aggregated_api() {
    let dir = tempdir();
    let file = dir.join("kinds.rhai");
    std::fs::write(&file, KINDS).unwrap();
    // In process, several times: the order never depends on a hash map.
    for _ in 0..3 {
        let out = crate::cli::playbook(&["run", "--cluster", "sim", file.to_str().unwrap()]);
        let all = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(all.contains("kinds ok"), "{all}");
    }
    // Through a kubeconfig, with metrics.k8s.io answering 503 (a broken aggregated API).
    let (server, proxy, kc, _) = setup();
    proxy.add(Rule::new(
        "GET",
        "/apis/metrics.k8s.io",
        Fault::Status(503, None),
        0,
    ));
    let t0 = Instant::now();
    let (code, all) = finish(
        start(&kc, &file, &["--timeout", "1m"]),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("kinds ok"), "{all}");
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    assert_eq!(leftovers(&server), Vec::<String>::new());
}
