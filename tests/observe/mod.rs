//! Seen by everyone: after a seed playbook against `sim serve`, `kubectl get events` shows each
//! phase (events.k8s.io/v1, regarding the chaos object, related to its Deployment); a real
//! Pushgateway scraped by a real Prometheus answers a PromQL query for the recovery time; a
//! loopback webhook receives the summary; `--summary-configmap` holds the verdicts. A webhook
//! or Pushgateway that fails, and Events the run may not post, are said and change no verdict.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::Value;

use crate::host::{free_port, ready};
use crate::sim_api::Server;
use crate::support::{Proc, playbook, tempdir, text};

/// A loopback webhook answering every request with `status`: each request's body, as it came.
struct Webhook {
    url: String,
    bodies: Receiver<(String, String)>,
}

impl Webhook {
    fn start(status: u16) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}/hooks/abc", listener.local_addr().unwrap());
        let (tx, bodies) = channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                if let Some(got) = read_request(&mut conn) {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    if tx.send(got).is_err() {
                        return;
                    }
                }
            }
        });
        Webhook { url, bodies }
    }

    /// The next request (head, body) it received, waiting at most 10 s.
    fn next(&self) -> (String, String) {
        self.bodies
            .recv_timeout(Duration::from_secs(10))
            .expect("the webhook received a request")
    }
}

/// One HTTP/1.1 request: its head and its body (by content-length).
fn read_request(conn: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = conn.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
        return Some((head, body));
    }
}

/// GET `path` from the HTTP server on `port`; the body.
fn http_get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Percent-encoding of a query parameter's value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Starts `bin` with `args` on its own port (stdout and stderr to null), ready on `/-/ready`.
fn daemon(bin: &str, args: &[String], port: u16) -> Proc {
    assert!(
        Path::new(bin).exists(),
        "{bin} is required for this test (tests/support/setup.sh installs it)"
    );
    let child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"));
    let child = Proc::guard(child, bin);
    assert!(ready(port), "{bin} did not become ready on port {port}");
    child
}

#[test]
fn a_seed_playbook_is_seen_in_events_prometheus_a_webhook_and_a_configmap() {
    let server = Server::start_with(&["--seed", "7"]);
    let dir = tempdir();
    let pgw_port = free_port();
    let _pushgateway = daemon(
        "/usr/bin/prometheus-pushgateway",
        &[format!("--web.listen-address=127.0.0.1:{pgw_port}")],
        pgw_port,
    );
    // Prometheus scrapes the Pushgateway keeping the pushed job/instance (honor_labels, as
    // the Pushgateway's README says).
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\n\
             scrape_configs:\n\
             - job_name: pushgateway\n  honor_labels: true\n  static_configs: [{{ targets: ['127.0.0.1:{pgw_port}'] }}]\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prometheus = daemon(
        "/usr/bin/prometheus",
        &[
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        prom_port,
    );
    let hook = Webhook::start(200);
    let report = dir.join("report.json");
    let state = dir.join("state");
    let out = playbook(&[
        "run",
        "--kubeconfig",
        server.kubeconfig.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--pushgateway",
        &format!("http://127.0.0.1:{pgw_port}"),
        "--notify",
        &hook.url,
        "--summary-configmap",
        "default/playbook-summary",
        "playbooks/pod-failure.rhai",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let journal: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let recovery = journal["playbooks"][0]["records"]["recovery_ms"]
        .as_f64()
        .expect("a recovery time");

    // Events: every phase, regarding the PodChaos, related to the predictor's Deployment.
    let events: Value = serde_json::from_str(&server.ok(&[
        "get",
        "events.v1.events.k8s.io",
        "-n",
        "kserve-inference",
        "-l",
        "app.kubernetes.io/managed-by=playbook",
        "-o",
        "json",
    ]))
    .unwrap();
    let items = events["items"].as_array().unwrap();
    let reasons: Vec<&str> = items.iter().filter_map(|e| e["reason"].as_str()).collect();
    for r in [
        "ExpectationPassed",
        "FaultInjected",
        "FaultRemoved",
        "Passed",
    ] {
        assert!(reasons.contains(&r), "{r} in {reasons:?}");
    }
    for e in items {
        assert_eq!(e["reportingController"], "playbook", "{e}");
        assert!(
            e["reportingInstance"]
                .as_str()
                .unwrap()
                .ends_with(journal["run_id"].as_str().unwrap()),
            "{e}"
        );
        assert_eq!(e["regarding"]["kind"], "PodChaos", "{e}");
        assert_eq!(e["related"]["kind"], "Deployment", "{e}");
        assert_eq!(e["related"]["name"], "sklearn-iris-predictor", "{e}");
        assert!(e["eventTime"].is_string(), "{e}");
    }
    let recovered = items
        .iter()
        .find(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.contains("expect_recovery"))
        })
        .expect("the recovery expectation's event");
    assert!(
        recovered["note"].as_str().unwrap().contains("passed after"),
        "{recovered}"
    );
    // kubectl's own table shows them.
    let table = server.ok(&["get", "events", "-n", "kserve-inference"]);
    assert!(
        table.contains("FaultInjected") && table.contains("podchaos/"),
        "{table}"
    );

    // The ConfigMap holds the report, the verdicts readable as JSON.
    let cm = server.ok(&[
        "get",
        "configmap",
        "playbook-summary",
        "-o",
        "jsonpath={.data.summary\\.json}",
    ]);
    let summary: Value = serde_json::from_str(&cm).expect("summary.json is JSON");
    assert_eq!(summary["status"], "passed");
    assert_eq!(summary["playbooks"][0]["status"], "passed");
    assert_eq!(summary["run_id"], journal["run_id"]);

    // The webhook got the summary, with a text Slack and Mattermost display.
    let (head, body) = hook.next();
    assert!(head.starts_with("POST /hooks/abc"), "{head}");
    let sent: Value = serde_json::from_str(&body).expect("JSON");
    let shown = sent["text"].as_str().expect("a text field");
    assert!(
        shown.contains("passed")
            && shown.contains("pod-failure.rhai")
            && shown.contains("recovery_ms="),
        "{shown}"
    );
    assert_eq!(sent["playbooks"][0]["status"], "passed");

    // Prometheus, scraping the Pushgateway, answers for the recovery time.
    let query = format!(
        "/api/v1/query?query={}",
        encode("playbook_record{record=\"recovery_ms\",playbook=\"playbooks/pod-failure.rhai\"}")
    );
    let mut answer = Value::Null;
    for _ in 0..300 {
        answer = serde_json::from_str(&http_get(prom_port, &query)).unwrap_or(Value::Null);
        if answer["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let series = &answer["data"]["result"][0];
    assert_eq!(series["metric"]["job"], "playbook", "{answer}");
    assert_eq!(series["metric"]["run_id"], journal["run_id"], "{answer}");
    let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(value, recovery, "{answer}");
    let verdict = http_get(
        prom_port,
        &format!("/api/v1/query?query={}", encode("playbook_passed")),
    );
    assert!(verdict.contains("\"1\"]"), "{verdict}");
}

/// A playbook that passes (exit 0) or fails (exit 1) against the in-process simulator.
fn tiny(dir: &Path, pass: bool) -> String {
    let file = dir.join(if pass { "ok.rhai" } else { "fails.rhai" });
    std::fs::write(
        &file,
        format!("record(\"answer_ms\", 42);\nexpect(\"holds\", \"2s\", || {pass});\n"),
    )
    .unwrap();
    file.display().to_string()
}

#[test]
fn a_failing_webhook_or_pushgateway_is_said_and_leaves_the_verdict() {
    let dir = tempdir();
    let refused = format!("http://127.0.0.1:{}/hook", free_port());
    for (pass, code) in [(true, 0), (false, 1)] {
        let hook = Webhook::start(500);
        let pb = tiny(&dir, pass);
        let out = playbook(&[
            "run",
            "--cluster",
            "sim",
            "--timeout",
            "1m",
            "--notify",
            &hook.url,
            "--pushgateway",
            &refused,
            &pb,
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
        let (_, body) = hook.next();
        let sent: Value = serde_json::from_str(&body).unwrap();
        assert!(
            sent["text"].as_str().unwrap().contains("answer_ms=42"),
            "{sent}"
        );
        assert!(
            stderr.contains("--notify: could not post the run's summary")
                && stderr.contains("HTTP 500"),
            "{stderr}"
        );
        assert!(
            stderr.contains("--pushgateway: could not push the metrics"),
            "{stderr}"
        );
    }
    // A webhook that refuses the connection: said, with the error; the verdict stands.
    let pb = tiny(&dir, true);
    let out = playbook(&["run", "--cluster", "sim", "--notify", &refused, &pb]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("could not post the run's summary") && stderr.contains("refused"),
        "{stderr}"
    );
    // A bad URL is a usage error before anything runs; a ConfigMap needs a cluster.
    let out = playbook(&["run", "--cluster", "sim", "--notify", "ftp://x", &pb]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    let out = playbook(&["run", "--cluster", "sim", "--summary-configmap", "a/b", &pb]);
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
}
