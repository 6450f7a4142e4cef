//! Every terminating signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) stops `run` and the REPL, which
//! clean up and exit 130, whenever it arrives: at start-up, between statements, during a wait,
//! during cleanup (a second signal is reported and cleanup goes on). Each test signals only
//! after a marker line (robust on a loaded machine) and checks with kubectl that nothing is left.
//! (Signals during a wait of `run` with every fault kind: `host::every_exit_path_...`.)

use std::io::Write;

use crate::host::leftovers;
use crate::sim_api::Server;
use crate::support::{PROCESS_LIMIT, Proc, playbook_cmd, repl_with_a_fault, scratch};

const SIGNALS: [&str; 4] = ["INT", "TERM", "HUP", "QUIT"];

/// `playbook run FILE` against `server`.
fn run(server: &Server, file: &str) -> Proc {
    let state = scratch("signals-run");
    Proc::spawn(
        playbook_cmd()
            .args(["run", "--kubeconfig"])
            .arg(&server.kubeconfig)
            .arg("--state-dir")
            .arg(&state)
            .arg(file),
    )
}

/// `playbook repl` against `server` with one fault injected (statements piped).
fn repl(server: &Server) -> (Proc, std::process::ChildStdin) {
    repl_with_a_fault(&server.kubeconfig, &scratch("signals-repl"))
}

#[test]
fn a_signal_at_start_up_stops_run_and_the_repl_with_130() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    for signal in SIGNALS {
        // run: signalled as soon as it names its target, before the playbook's first statement
        // (or during it, on a fast machine): either way it stops, cleans up, exits 130.
        let mut child = run(&server, "tests/fixtures/signals/slow_cleanup.rhai");
        let mut lines = child.lines();
        lines.wait_for("target: cluster");
        child.signal(signal);
        let (code, stdout, stderr) = child.finish(lines, PROCESS_LIMIT);
        assert_eq!(code, Some(130), "run {signal}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("interrupted by SIG{signal}")),
            "run {signal}: {stderr}"
        );
        assert_eq!(leftovers(&server), Vec::<String>::new(), "run {signal}");

        // The REPL: signalled once it has connected, before any statement.
        let mut child = Proc::spawn(
            playbook_cmd()
                .args(["repl", "--kubeconfig"])
                .arg(&server.kubeconfig)
                .arg("--state-dir")
                .arg(scratch("signals-repl")),
        );
        let mut err = child.err_lines();
        err.wait_for("target: cluster");
        child.signal(signal);
        let out = child.output(PROCESS_LIMIT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(130), "repl {signal}: {stdout}");
        assert!(
            stdout.contains("cleanup: nothing to remove"),
            "repl {signal}: {stdout}"
        );
        assert_eq!(leftovers(&server), Vec::<String>::new(), "repl {signal}");
    }
}

#[test]
fn a_signal_between_repl_statements_ends_the_session_before_the_next_one() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    for signal in SIGNALS {
        let (mut child, mut stdin) = repl(&server);
        let mut lines = child.lines();
        let mut errors = child.err_lines();
        lines.wait_for("inject: PodChaos training/");
        // The REPL now waits for its next input: the signal arrives between statements. The
        // next statement is written once the REPL has said it saw the signal (a signal is
        // delivered asynchronously: written at once, the statement could overtake it).
        child.signal(signal);
        errors.wait_for(&format!("interrupted by SIG{signal}"));
        let _ = stdin.write_all(b"print(\"after the signal\");\n");
        drop(stdin);
        let code = child.wait(PROCESS_LIMIT).code();
        let (stdout, stderr) = (lines.rest(), errors.rest());
        assert_eq!(code, Some(130), "{signal}: {stdout}\n{stderr}");
        assert!(!stdout.contains("after the signal"), "{signal}: {stdout}");
        assert!(
            stdout.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
            "{signal}: {stdout}"
        );
        assert_eq!(leftovers(&server), Vec::<String>::new(), "{signal}");
    }
}

#[test]
fn a_signal_during_a_repl_wait_stops_it_cleans_up_and_exits_130() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    for signal in SIGNALS {
        let (mut child, mut stdin) = repl(&server);
        stdin
            // Read from a cache only: the wait sleeps until a change, and the signal wakes it.
            .write_all(b"expect(\"never\", \"100000h\", || { print(\"waiting now\"); cluster::pods(\"training\", \"\").len() < 0 })\n")
            .expect("stdin is written");
        let mut lines = child.lines();
        lines.wait_for("waiting now");
        child.signal(signal);
        let (code, stdout, stderr) = child.finish(lines, PROCESS_LIMIT);
        drop(stdin);
        assert_eq!(code, Some(130), "{signal}: {stdout}\n{stderr}");
        assert!(stderr.contains("interrupted"), "{signal}: {stderr}");
        assert!(
            stdout.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
            "{signal}: {stdout}"
        );
        assert_eq!(leftovers(&server), Vec::<String>::new(), "{signal}");
    }
}

#[test]
fn a_second_signal_during_cleanup_is_reported_and_cleanup_goes_on() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    for (first, second) in [("TERM", "INT"), ("INT", "QUIT"), ("HUP", "TERM")] {
        let mut child = run(&server, "tests/fixtures/signals/slow_cleanup.rhai");
        let mut lines = child.lines();
        let mut errors = child.err_lines();
        lines.wait_for("waiting now");
        child.signal(first);
        errors.wait_for(&format!("interrupted by SIG{first}"));
        lines.wait_for("slow cleanup started");
        child.signal(second);
        let code = child.wait(PROCESS_LIMIT).code();
        let (stdout, stderr) = (lines.rest(), errors.rest());
        let what = format!("{first} then {second}: {stdout}\n{stderr}");
        assert_eq!(code, Some(130), "{what}");
        assert!(
            stderr.contains(&format!(
                "SIG{second} during cleanup: cleanup goes on until every fault is removed"
            )),
            "{what}"
        );
        assert!(stdout.contains("slow cleanup done"), "{what}");
        assert!(
            stdout.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
            "{what}"
        );
        assert_eq!(leftovers(&server), Vec::<String>::new(), "{what}");
    }
}
