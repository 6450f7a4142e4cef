//! One run at a time per cluster, and the kill switch, against `sim serve` through a
//! kubeconfig: two runs started at once take turns (or the second refuses, naming the holder);
//! a SIGKILLed holder's lease expires and the next run proceeds; a run frozen from another
//! process cleans up and ends within 5 s; a frozen cluster refuses new runs and the REPL until
//! `unfreeze`; `stop --all` removes the faults of a run in another process. Each test checks
//! with kubectl that nothing is left.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::leftovers;
use crate::sim_api::Server;
use crate::support::{PROCESS_LIMIT, Proc, output, playbook_cmd, scratch};

/// Kills one predictor pod, waits for the injection, then holds for `--var hold=...`.
const HOLD: &str = r#"
import "platform" as platform;
let f = chaos::pod_kill(#{ selector: platform::predictor_pods(), mode: "one", duration: "5m" });
f.wait_injected("30s");
print("injected");
sleep(param("hold", "2m"));
"#;

fn playbook_file() -> PathBuf {
    let file = scratch("coord").join("hold.rhai");
    std::fs::write(&file, HOLD).expect("the playbook is written");
    file
}

/// `playbook run FILE` against `server` with `extra` options.
fn run(server: &Server, file: &Path, extra: &[&str]) -> Proc {
    Proc::spawn(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(scratch("coord-state"))
            .args(extra)
            .arg(file),
    )
}

/// `playbook ARGS --kubeconfig ...` to its end: exit code, stdout and stderr together.
fn command(server: &Server, args: &[&str]) -> (Option<i32>, String) {
    let out = output(
        playbook_cmd()
            .args(args)
            .arg("--kubeconfig")
            .arg(&server.kubeconfig),
        PROCESS_LIMIT,
    );
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A server, the playbook, and a run of it holding its fault for 5 minutes (injected).
fn holding() -> (Server, PathBuf, Proc, crate::support::Lines) {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let file = playbook_file();
    let mut child = run(&server, &file, &["--var", "hold=5m"]);
    let mut lines = child.lines();
    lines.wait_for("injected");
    (server, file, child, lines)
}

fn holder(server: &Server) -> String {
    server.ok(&[
        "get",
        "lease",
        "-n",
        "chaos-testing",
        "playbook",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

#[test]
fn two_runs_at_once_take_turns_and_a_third_refuses_naming_the_holder() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let file = playbook_file();
    // Started at once: one takes the lease, the other waits for it and runs after.
    let a = run(&server, &file, &["--var", "hold=3s", "--lock-wait", "5m"]);
    let b = run(&server, &file, &["--var", "hold=3s", "--lock-wait", "5m"]);
    let (a, b) = (a.output(PROCESS_LIMIT), b.output(PROCESS_LIMIT));
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let (a, b) = ((a.status.code(), text(&a)), (b.status.code(), text(&b)));
    assert_eq!(a.0, Some(0), "{}", a.1);
    assert_eq!(b.0, Some(0), "{}", b.1);
    let waited: Vec<&String> = [&a.1, &b.1]
        .into_iter()
        .filter(|t| {
            t.contains(
                "waiting up to 5m (--lock-wait) for the lease chaos-testing/playbook, held by",
            )
        })
        .collect();
    assert_eq!(
        waited.len(),
        1,
        "exactly one waited:\n{}\n---\n{}",
        a.1,
        b.1
    );
    // Given back at the end: no holder.
    assert_eq!(holder(&server), "");
    assert_eq!(leftovers(&server), Vec::<String>::new());

    // While one holds it, another that may wait 2 s refuses (exit 6) naming the holder.
    let mut first = run(&server, &file, &["--var", "hold=2m"]);
    let mut lines = first.lines();
    lines.wait_for("injected");
    let held_by = holder(&server);
    assert!(held_by.contains(" run pb-"), "{held_by}");
    let t0 = Instant::now();
    let report = scratch("coord-report").join("r.json");
    let (code, all) = command(
        &server,
        &[
            "run",
            "--lock-wait",
            "2s",
            "--report",
            report.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(6), "{all}");
    // The report says so too: not a pass, every playbook skipped with the reason.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("a report")).unwrap();
    assert_eq!(json["exit_code"], 6, "{json}");
    assert_eq!(json["status"], "error", "{json}");
    assert_eq!(json["playbooks"][0]["status"], "skipped", "{json}");
    assert!(
        json["playbooks"][0]["skip_reason"]
            .as_str()
            .is_some_and(|r| r.contains("another run holds the lease")),
        "{json}"
    );
    assert!(
        all.contains(&format!(
            "refused: another run holds the lease chaos-testing/playbook: {held_by}, since "
        )),
        "{all}"
    );
    assert!(t0.elapsed() >= Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(!all.contains("inject:"), "nothing was injected: {all}");
    // --no-lock runs anyway.
    let (code, all) = command(
        &server,
        &[
            "run",
            "--no-lock",
            "--var",
            "hold=1s",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{all}");
    first.signal("TERM");
    let (code, _, err) = first.finish(lines, PROCESS_LIMIT);
    assert_eq!(code, Some(130), "{err}");
    assert_eq!(holder(&server), "");
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn a_killed_holders_lease_expires_and_the_next_run_proceeds() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let file = playbook_file();
    let state = scratch("coord-killed");
    let mut first = Proc::spawn(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(&state)
            .arg(&file),
    );
    let mut lines = first.lines();
    lines.wait_for("injected");
    let dead = holder(&server);
    first.signal("KILL");
    first.wait(PROCESS_LIMIT);
    // The next run waits for the lease to expire (30 s after it last saw it change), then runs.
    let t0 = Instant::now();
    let (code, all) = command(
        &server,
        &[
            "run",
            "--lock-wait",
            "3m",
            "--var",
            "hold=1s",
            file.to_str().unwrap(),
        ],
    );
    let waited = t0.elapsed();
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains(&format!("held by {dead}")), "{all}");
    assert!(
        (Duration::from_secs(15)..Duration::from_secs(120)).contains(&waited),
        "took over after {waited:?}"
    );
    // What the killed run left is removed by `cleanup`; then nothing is left.
    let out = output(
        playbook_cmd()
            .args(["cleanup", "--all", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(&state),
        PROCESS_LIMIT,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn a_frozen_run_cleans_up_within_5s_and_a_frozen_cluster_refuses_until_unfrozen() {
    let (server, file, mut child, lines) = holding();
    assert_eq!(leftovers(&server).len(), 1);
    let t0 = Instant::now();
    let (code, all) = command(&server, &["freeze", "--reason", "GameDay called off"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("frozen: ConfigMap chaos-testing/playbook-freeze"),
        "{all}"
    );
    let status = child.wait(Duration::from_secs(60));
    let took = t0.elapsed();
    let (code, stdout, stderr) = child.finish(lines, PROCESS_LIMIT);
    assert_eq!(code, status.code());
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    eprintln!("froze, cleaned up and ended {took:?} after `playbook freeze` started");
    assert!(
        took < Duration::from_secs(5),
        "froze, cleaned up and ended in {took:?}"
    );
    assert!(
        stderr.contains("the cluster was frozen by ") && stderr.contains("GameDay called off"),
        "{stderr}"
    );
    assert!(stdout.contains("cleanup: removed PodChaos"), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
    // Anyone sees it with kubectl.
    let mark = server.ok(&[
        "get",
        "configmap",
        "-n",
        "chaos-testing",
        "playbook-freeze",
        "-o",
        "jsonpath={.data.reason}",
    ]);
    assert_eq!(mark, "GameDay called off");

    // Frozen: a new run and the REPL are refused (exit 6), --no-lock too; nothing injected.
    for extra in [&[][..], &["--no-lock"][..]] {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        let (code, all) = command(&server, &args);
        assert_eq!(code, Some(6), "{all}");
        assert!(all.contains("refused: the cluster is frozen by "), "{all}");
        assert!(all.contains("GameDay called off"), "{all}");
        assert!(!all.contains("inject:"), "{all}");
    }
    let (code, all) = command(
        &server,
        &[
            "repl",
            "--state-dir",
            scratch("coord-repl").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(6), "{all}");
    assert!(all.contains("frozen"), "{all}");
    assert_eq!(leftovers(&server), Vec::<String>::new());

    // Unfrozen: runs go again.
    let (code, all) = command(&server, &["unfreeze"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("unfrozen"), "{all}");
    let (code, all) = command(
        &server,
        &["run", "--var", "hold=1s", file.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
}

#[test]
fn stop_all_removes_the_faults_of_a_run_in_another_process() {
    let (server, _, child, lines) = holding();
    // The run is stopped in its tracks (it cannot clean up itself): `stop --all` removes its fault.
    child.signal("STOP");
    let (code, all) = command(&server, &["stop", "--all"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("by label: removed PodChaos kserve-inference/pb-pod-kill-"),
        "{all}"
    );
    assert!(all.contains("the cluster stays frozen"), "{all}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
    // Let go, the run notices the freeze and ends (its fault already gone).
    child.signal("CONT");
    let (code, stdout, stderr) = child.finish(lines, PROCESS_LIMIT);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("playbook stop --all"), "{stderr}");
    assert_eq!(leftovers(&server), Vec::<String>::new());
    let (code, all) = command(&server, &["unfreeze"]);
    assert_eq!(code, Some(0), "{all}");
}

#[test]
fn the_simulator_serves_leases_as_the_api_server_validates_them() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let lease = |seconds: i64| {
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: l, namespace: default}}\nspec: {{holderIdentity: me, leaseDurationSeconds: {seconds}}}\n"
        )
    };
    let err = server.fails_stdin(&["apply", "-f", "-"], &lease(0));
    assert!(
        err.contains("spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"),
        "{err}"
    );
    server.ok_stdin(&["apply", "-f", "-"], &lease(15));
    let table = server.ok(&["get", "leases", "-n", "default"]);
    assert!(table.contains("HOLDER") && table.contains("me"), "{table}");
    let kinds = server.ok(&["api-resources", "--api-group", "coordination.k8s.io"]);
    assert!(kinds.contains("leases"), "{kinds}");
}
