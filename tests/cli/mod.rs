//! The command line's contract: exit codes, diagnostics of broken playbooks, check, doc.

use std::process::Output;

use crate::support::{PROCESS_LIMIT, Proc, playbook_cmd};

pub use crate::support::{playbook, tempdir};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts the exit code and returns (stdout, stderr).
pub fn expect_exit(args: &[&str], code: i32) -> (String, String) {
    let out = playbook(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "playbook {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// Every broken playbook in the corpus: its exit code, where the error is, and what it says.
#[test]
fn broken_playbooks_exit_2_or_3_with_file_line_col_and_a_caret() {
    let cases: &[(&str, i32, &str, &str)] = &[
        (
            "syntax_error",
            2,
            "syntax_error.rhai:2:14",
            "unexpected ';'",
        ),
        (
            "unterminated_string",
            2,
            "unterminated_string.rhai:2:16",
            "string is not terminated",
        ),
        (
            "undefined_variable",
            2,
            "undefined_variable.rhai:3:13",
            "undefined variable `missing`",
        ),
        (
            "unknown_host_function",
            2,
            "unknown_host_function.rhai:2:1",
            "no function `lgo`; did you mean `log`?",
        ),
        (
            "missing_import",
            2,
            "missing_import.rhai:2:1",
            "module \"no_such_module\" not found",
        ),
        ("infinite_loop", 3, "infinite_loop.rhai:3:", "timed out"),
        (
            "unbounded_recursion",
            3,
            "unbounded_recursion.rhai:",
            "endless recursion",
        ),
        (
            "huge_string",
            3,
            "huge_string.rhai:3:",
            "larger than the limit",
        ),
        (
            "error_in_module",
            3,
            "modules/faulty.rhai:6:11",
            "array index 3 out of bounds",
        ),
        (
            "error_in_closure",
            3,
            "error_in_closure.rhai:2:32",
            "array index 1 out of bounds",
        ),
    ];
    for (name, code, at, message) in cases {
        let file = format!("tests/fixtures/broken/{name}.rhai");
        let (stdout, stderr) = expect_exit(&["run", "--timeout", "2s", &file], *code);
        let all = format!("{stdout}{stderr}");
        assert!(all.contains(at), "{name}: no `{at}` in\n{all}");
        assert!(all.contains(message), "{name}: no `{message}` in\n{all}");
        assert!(
            all.lines()
                .any(|l| l.trim_end().ends_with('^') && l.contains(" | ")),
            "{name}: no caret line in\n{all}"
        );
        assert!(
            !all.contains("panicked") && !all.contains("RUST_BACKTRACE"),
            "{name}:\n{all}"
        );
    }
}

#[test]
fn errors_inside_modules_and_closures_show_the_call_chain() {
    let (_, stderr) = expect_exit(&["run", "tests/fixtures/broken/error_in_module.rhai"], 3);
    assert!(
        stderr.contains(
            "in function `explode` called at tests/fixtures/broken/error_in_module.rhai:3:9"
        ),
        "{stderr}"
    );
    let (_, stderr) = expect_exit(&["run", "tests/fixtures/broken/error_in_closure.rhai"], 3);
    assert!(stderr.contains("in closure called at"), "{stderr}");
}

#[test]
fn check_reports_every_problem_without_running_anything() {
    let (_, stderr) = expect_exit(
        &["check", "tests/fixtures/broken/unknown_host_function.rhai"],
        2,
    );
    assert!(
        stderr.contains("unknown_host_function.rhai:3:1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`fail` takes 1 argument, not 2"),
        "{stderr}"
    );
    let (stdout, _) = expect_exit(&["check", "tests/fixtures/ok"], 0);
    assert!(stdout.contains("2 playbook(s) ok"), "{stdout}");
    // The endless loop is valid code: check does not run it.
    expect_exit(&["check", "tests/fixtures/broken/infinite_loop.rhai"], 0);
}

#[test]
fn run_compiles_every_playbook_before_running_any() {
    // ok/passes.rhai would print its line if it ran; the broken one stops the whole batch.
    let (stdout, stderr) = expect_exit(
        &[
            "run",
            "tests/fixtures/ok/passes.rhai",
            "tests/fixtures/broken/syntax_error.rhai",
        ],
        2,
    );
    assert!(!stdout.contains("namespace"), "{stdout}");
    assert!(stderr.contains("nothing was run"), "{stderr}");
}

#[test]
fn exit_codes_follow_the_readme() {
    let (stdout, _) = expect_exit(
        &[
            "run",
            "--var",
            "namespace=mlflow",
            "tests/fixtures/ok/passes.rhai",
        ],
        0,
    );
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("target: ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("namespace mlflow, 1.23s, 99.5%"),
        "{stdout}"
    );
    let (_, stderr) = expect_exit(&["run", "tests/fixtures/ok/fails.rhai"], 1);
    assert!(
        stderr.contains("only 1 replica, expected at least 2"),
        "{stderr}"
    );
    // A folder runs in name order; the most severe verdict wins (3 over 1 over 0).
    let (stdout, _) = expect_exit(
        &[
            "run",
            "--timeout",
            "2s",
            "tests/fixtures/ok",
            "tests/fixtures/broken/huge_string.rhai",
        ],
        3,
    );
    let fails = stdout
        .find("== tests/fixtures/ok/fails.rhai")
        .expect("fails ran");
    let passes = stdout
        .find("== tests/fixtures/ok/passes.rhai")
        .expect("passes ran");
    assert!(fails < passes, "{stdout}");
    assert!(stdout.contains("1 error, 1 failed, 1 passed"), "{stdout}");
}

#[test]
fn usage_errors_name_the_argument_and_exit_2() {
    let (_, stderr) = expect_exit(&["run", "--timeout", "3x", "tests/fixtures/ok"], 2);
    assert!(
        stderr.contains("--timeout") && stderr.contains("unknown unit \"x\""),
        "{stderr}"
    );
    let (_, stderr) = expect_exit(&["run", "--var", "novalue", "tests/fixtures/ok"], 2);
    assert!(
        stderr.contains("--var") && stderr.contains("KEY=VALUE"),
        "{stderr}"
    );
    let (_, stderr) = expect_exit(&["run", "no/such/file.rhai"], 2);
    assert!(
        stderr.contains("no such playbook file or folder: no/such/file.rhai"),
        "{stderr}"
    );
    let (_, stderr) = expect_exit(&["run", "--cluster", "moon", "tests/fixtures/ok"], 2);
    assert!(stderr.contains("--cluster"), "{stderr}");
    let (_, stderr) = expect_exit(
        &[
            "run",
            "tests/fixtures/ok/fails.rhai",
            "--var",
            "x=1",
            "--param",
        ],
        2,
    );
    assert!(stderr.contains("--param"), "{stderr}");
}

#[test]
fn a_missing_param_names_the_option() {
    let dir = tempdir();
    let file = dir.join("p.rhai");
    std::fs::write(&file, "let ns = param(\"namespace\");\n").unwrap();
    let (_, stderr) = expect_exit(&["run", file.to_str().unwrap()], 3);
    assert!(stderr.contains("pass --var namespace=VALUE"), "{stderr}");
}

#[test]
fn doc_prints_the_reference_and_rejects_unknown_names() {
    let (stdout, _) = expect_exit(&["doc"], 0);
    for f in [
        "fail(message: string)",
        "log(message: string)",
        "param(name: string) -> String",
    ] {
        assert!(stdout.contains(f), "{f} missing from\n{stdout}");
    }
    let (stdout, _) = expect_exit(&["doc", "param"], 0);
    assert!(
        stdout.contains("```rhai") && !stdout.contains("fail("),
        "{stdout}"
    );
    let (_, stderr) = expect_exit(&["doc", "nope"], 2);
    assert!(
        stderr.contains("no host function or namespace named `nope`"),
        "{stderr}"
    );
}

#[test]
fn the_stdlib_can_be_read_from_a_folder() {
    let dir = tempdir();
    std::fs::write(
        dir.join("fmt.rhai"),
        "fn ms(v) { \"overridden\" }\nfn pct(v) { \"\" }\n",
    )
    .unwrap();
    let out = crate::support::output(
        playbook_cmd()
            .args(["run", "tests/fixtures/ok/passes.rhai"])
            .env("PLAYBOOK_STDLIB", &dir),
        PROCESS_LIMIT,
    );
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("overridden"), "{stdout}{stderr}");
}

#[test]
fn ctrl_c_and_sigterm_stop_the_run_with_130() {
    for signal in ["INT", "TERM", "HUP", "QUIT"] {
        let mut child = Proc::spawn(playbook_cmd().args([
            "run",
            "--timeout",
            "60s",
            "tests/fixtures/broken/infinite_loop.rhai",
        ]));
        // Wait until the playbook is running (its header is printed) before signalling.
        let mut lines = child.lines();
        lines.wait_for("== tests/");
        child.signal(signal);
        let out = child.output(PROCESS_LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("interrupted"), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal}")),
            "{signal}: {stderr}"
        );
    }
}
