//! `playbook repl`: piped statements (no terminal), and the line editor driven through a
//! pseudo-terminal (tmux): completion, hints, multi-line input, meta-commands, Ctrl-C, cleanup.

mod tty;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

pub use crate::support::scratch;
use crate::support::{Lines, PROCESS_LIMIT, Proc, playbook_cmd, repl_with_a_fault};

/// Runs `playbook repl --cluster sim` with `input` on standard input (bounded).
fn piped(input: &str, state: &Path) -> (Output, String, String) {
    let mut child = Proc::spawn(
        playbook_cmd()
            .args(["repl", "--cluster", "sim", "--state-dir"])
            .arg(state),
    );
    if let Some(mut stdin) = child.child().stdin.take() {
        stdin.write_all(input.as_bytes()).expect("stdin is written");
    }
    let out = child.output(PROCESS_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// Reads the child's standard output until a line starts with `prefix` (bounded); the lines
/// read, and the rest to read later.
fn wait_for_line(child: &mut Proc, prefix: &str) -> (Vec<String>, Lines) {
    let mut lines = child.lines();
    lines.wait_for(prefix);
    (lines.seen.clone(), lines)
}

#[test]
fn piped_statements_print_results_plainly_without_prompts() {
    let dir = scratch("plain");
    let (out, stdout, stderr) = piped(
        "cluster::namespaces()\nlet x = 40;\nx + 2\n\"text\"\n[#{ name: \"a\", phase: \"Running\" }, #{ name: \"bb\", phase: \"Pending\" }]\nlet unit = ();\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "argo",
            "chaos-testing",
            "default",
            "kserve-inference",
            "kube-node-lease",
            "kube-public",
            "kube-system",
            "mlflow",
            "training",
            "42",
            "text",
            "NAME  PHASE",
            "a     Running",
            "bb    Pending",
            "cleanup: nothing to remove",
        ],
        "stderr: {stderr}"
    );
    assert!(!stdout.contains("pb>"), "{stdout}");
}

#[test]
fn at_exit_the_repl_checks_its_steady_states_again_as_run_does() {
    // Holds again after cleanup: the session passes.
    let dir = scratch("steady-ok");
    let (out, stdout, stderr) = piped(
        "steady_state(\"always true\", || true);\nsleep(\"5s\");\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let cleanup = stdout.find("cleanup: nothing to remove");
    let again = stdout.find("ok: steady_state (after cleanup) \"always true\"");
    assert!(cleanup.is_some() && cleanup < again, "{stdout}");

    // True at first, false for good later: the session fails (exit 1), naming it.
    let dir = scratch("steady-fail");
    let (out, stdout, stderr) = piped(
        "let t0 = clock_ms();\nsteady_state(\"first ten ms\", || clock_ms() - t0 < 10.0);\nsleep(\"5s\");\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FAILED: steady_state (after cleanup) \"first ten ms\""),
        "{stdout}"
    );
}

#[test]
fn piped_multi_line_function_persists_and_errors_show_line_and_caret() {
    let dir = scratch("multiline");
    let (out, stdout, stderr) = piped(
        "fn add(a,\n       b) {\n  a + b\n}\nlet y = add(40, 2);\nlet z = nope + 1;\nfn broken() {\n  let a = 1;\n  a / 0\n}\nbroken()\ny\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("42\n"), "{stdout}");
    assert!(
        stderr.contains("error: undefined variable `nope`") && stderr.contains("--> repl#3:1:9"),
        "{stderr}"
    );
    // The error inside `broken` points into the input that defined it.
    assert!(stderr.contains("--> repl#4:3:5"), "{stderr}");
    assert!(stderr.contains("3 |   a / 0"), "{stderr}");
    assert!(
        stderr.contains("in function `broken` called at repl#5:1:1"),
        "{stderr}"
    );
}

#[test]
fn piped_faults_are_listed_removed_by_cleanup_and_saved_as_a_playbook() {
    let dir = scratch("faults");
    let saved = dir.join("saved.rhai");
    let input = format!(
        "let f = chaos::pod_kill(#{{ selector: #{{ namespaces: [\"training\"], labelSelectors: #{{ app: \"trainer\" }} }} }});\n:faults\nf.status().exists\n:cleanup\n:faults\nlet g = chaos::pod_failure(#{{ selector: #{{ namespaces: [\"training\"], labelSelectors: #{{ app: \"trainer\" }} }}, duration: \"30s\" }});\nf.name\n:save {}\n",
        saved.display()
    );
    let (out, stdout, stderr) = piped(&input, &dir);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let first = stdout
        .lines()
        .find(|l| l.starts_with("pb-pod-kill-"))
        .unwrap_or_else(|| panic!("no fault row in :faults\n{stdout}"));
    assert!(
        first.contains("PodChaos") && first.contains("live"),
        "{first}"
    );
    assert!(stdout.contains("\ntrue\n"), "{stdout}");
    let removed = stdout
        .matches("cleanup: removed PodChaos training/pb-pod-kill-")
        .count();
    assert_eq!(removed, 1, "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("pb-pod-kill-") && l.contains("removed")),
        "{stdout}"
    );
    // The second fault is removed at exit, after the save.
    let tail: Vec<&str> = stdout.lines().rev().take(2).collect();
    assert!(
        tail[0].starts_with("cleanup: removed PodChaos training/pb-pod-failure-"),
        "{stdout}"
    );
    assert!(tail[1].starts_with("saved 5 statement(s)"), "{stdout}");
    let text = std::fs::read_to_string(&saved).expect("the playbook was saved");
    assert!(text.starts_with("//! Saved from `playbook repl`"), "{text}");
    // `:cleanup` changed the cluster: the saved playbook does it too, between the two faults.
    let (cleanup, second) = (
        text.find("chaos::cleanup();").expect("cleanup is saved"),
        text.find("chaos::pod_failure").unwrap(),
    );
    assert!(cleanup < second, "{text}");
    assert!(text.contains("f.name;"), "{text}");
    let check = Command::new(env!("CARGO_BIN_EXE_playbook"))
        .args(["check"])
        .arg(&saved)
        .output()
        .expect("check runs");
    assert_eq!(check.status.code(), Some(0), "{text}\n{check:?}");
}

#[test]
fn piped_help_lists_commands_and_shows_a_function() {
    let dir = scratch("help");
    let (out, stdout, stderr) = piped(
        ":help\n:help chaos::pod_kill\n:hepl\n:doc nothing_here\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for c in [
        ":help [FN]",
        ":doc [NAME]",
        ":load FILE",
        ":faults",
        ":cleanup",
        ":save FILE",
        ":quit",
    ] {
        assert!(stdout.contains(c), "{c} missing from :help\n{stdout}");
    }
    assert!(
        stdout.contains("chaos::pod_kill(options: Map) -> FaultHandle"),
        "{stdout}"
    );
    assert!(stderr.contains("unknown command `:hepl`"), "{stderr}");
    assert!(
        stderr.contains("no host function or namespace named `nothing_here`"),
        "{stderr}"
    );
}

#[test]
fn piped_load_runs_a_playbook_into_the_session() {
    let dir = scratch("load");
    let file = dir.join("inject.rhai");
    std::fs::write(
        &file,
        "//! A fault and a helper.\nfn double(x) { x * 2 }\nlet fault = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\n",
    )
    .expect("fixture written");
    let (out, stdout, stderr) = piped(
        &format!(
            ":load {}\ndouble(21)\nfault.kind\n:quit\nnever_run()\n",
            file.display()
        ),
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("\n42\nPodChaos\n"), "{stdout}");
    assert!(
        stdout.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
        "{stdout}"
    );
    assert!(!stderr.contains("never_run"), "{stderr}");
}

#[test]
fn exit_code_4_and_a_journal_when_cleanup_at_exit_cannot_remove_a_fault() {
    let dir = scratch("exit4");
    let mut served = tty::Served::start(&dir);
    let state = dir.join("state");
    let (mut child, stdin) = repl_with_a_fault(&served.kubeconfig, &state);
    let (seen, rest) = wait_for_line(&mut child, "inject: PodChaos training/");
    std::thread::spawn(move || rest.rest());
    // The cluster goes away; leaving must say what is left and exit 4.
    served.stop();
    drop(stdin);
    let out = child.output(PROCESS_LIMIT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{seen:?}\n{stderr}");
    assert!(
        stderr.contains(
            "cleanup could not remove everything; still there: PodChaos training/pb-pod-kill-"
        ),
        "{stderr}"
    );
    let journals = std::fs::read_dir(state.join("journal"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journals, 1, "the journal stays for `playbook cleanup`");
}

#[test]
fn piped_ctrl_c_stops_the_evaluation_cleans_up_and_exits_130() {
    let dir = scratch("sigint");
    let mut child = Proc::spawn(
        playbook_cmd()
            .args(["repl", "--cluster", "sim", "--state-dir"])
            .arg(&dir),
    );
    let mut stdin = child.child().stdin.take().expect("stdin");
    stdin
        .write_all(b"let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\nlet t0 = clock_ms();\nexpect(\"never\", \"100000h\", || { if clock_ms() - t0 < 1.0 { print(\"waiting now\") } false })\n")
        .expect("stdin is written");
    // Signal once the REPL is in the endless wait (its condition says so on its first call).
    let (_, lines) = wait_for_line(&mut child, "waiting now");
    child.signal("INT");
    let (code, stdout, stderr) = child.finish(lines, PROCESS_LIMIT);
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted: stopped this evaluation"),
        "{stderr}"
    );
    assert!(
        stdout.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
        "{stdout}"
    );
    drop(stdin);
}

#[test]
fn a_killed_repl_leaves_a_journal_that_playbook_cleanup_handles() {
    let dir = scratch("killed");
    let served = tty::Served::start(&dir);
    let state = dir.join("state");
    let (mut child, stdin) = repl_with_a_fault(&served.kubeconfig, &state);
    wait_for_line(&mut child, "inject: PodChaos training/");
    child.signal("KILL");
    child.wait(PROCESS_LIMIT);
    drop(stdin);
    assert!(
        served
            .kubectl(&["get", "podchaos", "-A", "-o", "name"], None)
            .contains("pb-pod-kill-"),
        "the killed REPL's fault is still there"
    );
    let out = crate::support::output(
        playbook_cmd()
            .args(["cleanup", "--all", "--cluster", "kube", "--kubeconfig"])
            .arg(&served.kubeconfig)
            .arg("--state-dir")
            .arg(&state),
        PROCESS_LIMIT,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("removed PodChaos training/pb-pod-kill-"),
        "{text}"
    );
    let left = served.kubectl(&["get", "podchaos", "-A", "-o", "name"], None);
    assert!(left.trim().is_empty(), "left behind: {left}");
}

#[test]
fn piped_imported_modules_stay_for_later_inputs() {
    let dir = scratch("import");
    let (out, stdout, stderr) = piped(
        "import \"fmt\" as fmt;\nfmt::ms(1234.5)\nfn half(r) { fmt::pct(r / 2.0) }\nhalf(1.0)\n",
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("1.23s\n50.0%\n"), "{stdout}\n{stderr}");
}

#[test]
fn imports_without_semicolon_load_again_after_cleanup_and_save_what_changed_the_cluster() {
    let dir = scratch("item9");
    let fault = dir.join("kill.rhai");
    std::fs::write(
        &fault,
        "//! Kills the trainer.\nsteady_state(\"a trainer exists\", || cluster::pods(\"training\", \"app=trainer\").len() > 0);\nlet f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\nf.wait_injected(\"30s\");\n",
    )
    .unwrap();
    let saved = dir.join("saved.rhai");
    let (out, stdout, stderr) = piped(
        &format!(
            "import \"platform\" as platform\nplatform::inference_ns()\n:load {f}\n:cleanup\n:load {f}\n:lod {f}\n:save {s}\n",
            f = fault.display(),
            s = saved.display()
        ),
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // The import without `;` stays for the next input.
    assert!(
        stdout.lines().any(|l| l == "kserve-inference"),
        "{stdout}\n{stderr}"
    );
    // :load again once :cleanup removed the first fault.
    assert_eq!(
        stderr.matches("error").count(),
        1,
        "only :lod is an error: {stderr}"
    );
    assert_eq!(
        stdout.matches("inject: PodChaos training/").count(),
        2,
        "{stdout}"
    );
    assert!(stderr.contains("did you mean :doc, :load?"), "{stderr}");
    // The saved playbook does what the session did: two faults, the first removed in between.
    let text = std::fs::read_to_string(&saved).unwrap();
    assert_eq!(text.matches("chaos::cleanup();").count(), 1, "{text}");
    let run = Command::new(env!("CARGO_BIN_EXE_playbook"))
        .args(["run", "--cluster", "sim"])
        .arg(&saved)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the playbook binary runs");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(run.status.code(), Some(0), "{text}\n{all}");
    let removed: Vec<&str> = all
        .lines()
        .filter(|l| l.contains("cleanup: removed PodChaos training/"))
        .collect();
    assert_eq!(removed.len(), 2, "{all}");
    let second_inject = all.rfind("inject: PodChaos").unwrap();
    assert!(
        all.find("cleanup: removed PodChaos").unwrap() < second_inject,
        "{all}"
    );
}
