//! Hostile playbooks, crafted journals and report paths (issue 15): each case asserts the exit
//! code and the message, and — with kubectl against `playbook sim serve` — that no fault and
//! no journal is left and nothing outside the run's own objects changed. Every child process
//! is bounded in time and killed when a test fails.

mod fuzz;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::tempdir;
use crate::host::journals;
use crate::sim_api::Server;

const DIR: &str = "tests/fixtures/hostile";

/// A child process that is killed when dropped (a failing assertion leaves nothing running).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The outcome of one bounded `playbook` invocation.
struct Ran {
    code: Option<i32>,
    text: String,
}

/// Runs `playbook ARGS` from the repository root for at most `within` (killed after that,
/// which fails the test: nothing may hang).
fn playbook_within(args: &[&str], within: Duration) -> Ran {
    let child = Command::new(env!("CARGO_BIN_EXE_playbook"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLAYBOOK_STDLIB")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the playbook binary runs");
    finish(Proc(child), within, &format!("playbook {args:?}"))
}

/// Waits for `p` (reading its output), killing it after `within`.
fn finish(mut p: Proc, within: Duration, what: &str) -> Ran {
    let mut out = p.0.stdout.take().expect("stdout");
    let mut err = p.0.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = p.0.try_wait() {
            break st;
        }
        assert!(
            start.elapsed() < within,
            "{what} still running after {within:?}: it hangs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = format!(
        "{}{}",
        reader.join().unwrap_or_default(),
        err_reader.join().unwrap_or_default()
    );
    assert!(
        !text.contains("panicked") && !text.contains("internal error"),
        "{what}: a panic\n{text}"
    );
    Ran {
        code: status.code(),
        text,
    }
}

/// Runs `file` against `server` with journals in `state`.
fn run_on(server: &Server, state: &Path, file: &str, vars: &[&str]) -> Ran {
    let mut args = vec![
        "run",
        "--kubeconfig",
        server.kubeconfig.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--timeout",
        "2m",
    ];
    for v in vars {
        args.extend(["--var", v]);
    }
    args.push(file);
    playbook_within(&args, Duration::from_secs(120))
}

/// Every Chaos Mesh object on the server, as `kind/name` lines.
fn chaos_objects(server: &Server) -> Vec<String> {
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

/// What a playbook could change outside its own objects: each workload's replicas and
/// generation (but those an autoscaler moves), and every chaos object.
fn world(server: &Server) -> String {
    let autoscaled: Vec<String> = server
        .ok(&[
            "get",
            "hpa",
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace} {.spec.scaleTargetRef.name}{\"\\n\"}{end}",
        ])
        .lines()
        .map(str::to_string)
        .collect();
    let workloads = server.ok(&[
        "get",
        "deployments,statefulsets",
        "-A",
        "-o",
        "custom-columns=NS:.metadata.namespace,NAME:.metadata.name,REPLICAS:.spec.replicas,GEN:.metadata.generation",
    ]);
    let workloads: Vec<&str> = workloads
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            let key = format!("{} {}", w.next().unwrap_or(""), w.next().unwrap_or(""));
            !autoscaled.contains(&key)
        })
        .collect();
    format!(
        "{}\n{}",
        workloads.join("\n"),
        chaos_objects(server).join("\n")
    )
}

/// Starts `playbook run FILE` against `server` and returns once its output shows `marker`
/// (its further output is drained, so it never blocks on a full pipe).
fn start_until(server: &Server, state: &Path, file: &str, vars: &[&str], marker: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_playbook"));
    cmd.args(["run", "--kubeconfig", server.kubeconfig.to_str().unwrap()])
        .args(["--state-dir", state.to_str().unwrap(), "--timeout", "10m"]);
    for v in vars {
        cmd.args(["--var", v]);
    }
    let child = cmd
        .arg(file)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Proc(child);
    let mut out = std::io::BufReader::new(p.0.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(marker) {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
            break;
        }
        seen += &line;
    }
    assert!(seen.contains(marker), "no `{marker}` in\n{seen}");
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
    });
    p
}

/// Asserts the exit code and every needle, then that nothing is left and nothing changed.
fn assert_clean(
    server: &Server,
    state: &Path,
    before: &str,
    what: &str,
    ran: &Ran,
    code: i32,
    needles: &[&str],
) {
    assert_eq!(ran.code, Some(code), "{what}\n{}", ran.text);
    for n in needles {
        assert!(ran.text.contains(n), "{what}: no `{n}` in\n{}", ran.text);
    }
    assert_eq!(
        world(server),
        before,
        "{what}: the cluster changed\n{}",
        ran.text
    );
    assert_eq!(
        journals(state),
        Vec::<String>::new(),
        "{what}: journal left"
    );
}

/// Asserts the exit code and that the output says every needle.
fn expect(ran: &Ran, code: i32, needles: &[&str]) {
    assert_eq!(ran.code, Some(code), "{}", ran.text);
    for n in needles {
        assert!(ran.text.contains(n), "no `{n}` in\n{}", ran.text);
    }
}

fn fixture(name: &str) -> String {
    format!("{DIR}/{name}")
}

#[test]
fn imports_stay_in_the_tree_are_cycle_free_and_eval_is_off() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let before = world(&server);
    let cases: &[(&str, &[&str], i32, &[&str])] = &[
        (
            "self_import.rhai",
            &[],
            3,
            &[
                "import cycle: self_import.rhai imports self_import.rhai",
                "cleanup: removed PodChaos mlflow/",
            ],
        ),
        (
            // Found by the static check before anything runs (exit 2).
            "mutual_a.rhai",
            &[],
            2,
            &["import cycle: ", "mutual_a.rhai -> ", "mutual_b.rhai -> "],
        ),
        (
            "import_escape.rhai",
            &["module=/etc/passwd"],
            3,
            &["absolute paths are not importable", "cleanup: removed"],
        ),
        (
            "import_escape.rhai",
            &["module=../hostile/mutual_b"],
            3,
            &["`..` is not importable", "cleanup: removed"],
        ),
    ];
    for (file, vars, code, needles) in cases {
        let ran = run_on(&server, &state, &fixture(file), vars);
        assert_clean(&server, &state, &before, file, &ran, *code, needles);
        assert!(!ran.text.contains("root:"), "{file}: /etc/passwd leaked");
    }
    // Links out of the folder, a FIFO and /dev/zero, beside a copy of the playbook.
    let dir = tempdir();
    let copy = dir.join("import_escape.rhai");
    std::fs::copy(fixture("import_escape.rhai"), &copy).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd.rhai")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.rhai")).unwrap();
    let fifo = Command::new("mkfifo")
        .arg(dir.join("fifo.rhai"))
        .status()
        .unwrap();
    assert!(fifo.success(), "mkfifo");
    for (module, needle) in [
        ("passwd", "leads outside the playbook's folder"),
        ("zero", "leads outside the playbook's folder"),
        ("fifo", "is not a regular file"),
    ] {
        let var = format!("module={module}");
        let ran = run_on(&server, &state, copy.to_str().unwrap(), &[&var]);
        assert_clean(&server, &state, &before, module, &ran, 3, &[needle]);
        assert!(!ran.text.contains("root:"), "{module}: /etc/passwd leaked");
        // `check` reads the same files: it must not hang or leak either.
        let imp = dir.join(format!("check_{module}.rhai"));
        std::fs::write(&imp, format!("import \"{module}\" as m;\n")).unwrap();
        let checked = playbook_within(&["check", imp.to_str().unwrap()], Duration::from_secs(30));
        assert_eq!(checked.code, Some(2), "{}", checked.text);
        assert!(checked.text.contains(needle), "{}", checked.text);
        assert!(!checked.text.contains("root:"), "{}", checked.text);
    }
    let ran = playbook_within(&["check", &fixture("eval.rhai")], Duration::from_secs(30));
    expect(&ran, 2, &["reserved keyword 'eval' is disabled"]);
}

#[test]
fn memory_bombs_end_with_a_clear_error_and_cleanup() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let before = world(&server);
    let cases: &[(&str, &[&str])] = &[
        (
            "replace_bomb.rhai",
            &["length of string is larger than the limit"],
        ),
        (
            "record_bomb.rhai",
            &["record(\"big0\"): the value takes 2048 KiB as JSON, more than the 1024 KiB"],
        ),
        (
            "log_bomb.rhai",
            &[
                "the playbook wrote more than 16 MiB of output (print, log, debug): stopped",
                "the cleanup closure still runs",
            ],
        ),
    ];
    for (file, needles) in cases {
        let ran = run_on(&server, &state, &fixture(file), &[]);
        let mut all = needles.to_vec();
        all.push("cleanup: removed PodChaos mlflow/");
        assert_clean(&server, &state, &before, file, &ran, 3, &all);
        assert!(ran.text.len() < 20 << 20, "{file}: output bounded");
    }
}

#[test]
fn the_ledger_knows_each_object_by_its_identity() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let before = world(&server);
    let ran = run_on(&server, &state, &fixture("duplicate_name.rhai"), &[]);
    assert_clean(
        &server,
        &state,
        &before,
        "duplicate name",
        &ran,
        3,
        &[
            "refusing to create PodChaos mlflow/same-name: this run already created PodChaos mlflow/same-name",
            "cleanup: removed PodChaos mlflow/same-name",
        ],
    );
    // Faults created while cleaning up, or by a steady-state re-check: refused, never "passed".
    let ran = run_on(&server, &state, &fixture("fault_in_cleanup.rhai"), &[]);
    assert_clean(
        &server,
        &state,
        &before,
        "fault in on_cleanup",
        &ran,
        4,
        &["refusing to create PodChaos mlflow/late: cleanup has begun"],
    );
    let ran = run_on(&server, &state, &fixture("fault_in_recheck.rhai"), &[]);
    assert_clean(
        &server,
        &state,
        &before,
        "fault in the re-check",
        &ran,
        3,
        &["refusing to create PodChaos mlflow/recheck: cleanup has begun"],
    );
    // Someone else's object of the same name: the create's 409 is an error that removes
    // nothing of theirs.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata: { name: theirs, namespace: mlflow }\nspec: { action: pod-kill, mode: one, duration: 5m, selector: { namespaces: [mlflow] } }\n",
    );
    let their_uid = || {
        server.ok(&[
            "-n",
            "mlflow",
            "get",
            "podchaos",
            "theirs",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
    };
    let uid = their_uid();
    let with_theirs = world(&server);
    let dir = tempdir();
    let file = dir.join("theirs.rhai");
    std::fs::write(
        &file,
        "let f = chaos::pod_kill(#{ name: \"mine\", selector: #{ namespaces: [\"mlflow\"] }, duration: \"5m\" });\n\
         let g = chaos::pod_kill(#{ name: \"theirs\", selector: #{ namespaces: [\"mlflow\"] }, duration: \"5m\" });\n",
    )
    .unwrap();
    let ran = run_on(&server, &state, file.to_str().unwrap(), &[]);
    assert_clean(
        &server,
        &state,
        &with_theirs,
        "someone else's name",
        &ran,
        3,
        &["AlreadyExists", "cleanup: removed PodChaos mlflow/mine"],
    );
    assert!(!ran.text.contains("mlflow/theirs (gone"), "{}", ran.text);
    let still = their_uid();
    assert_eq!(still, uid, "their object is untouched");
}

#[test]
fn safety_rules_cover_every_reach_and_every_write() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    // Nine running MLflow pods (no autoscaler), so that every mode can reach more than five.
    server.ok(&[
        "-n",
        "mlflow",
        "scale",
        "deployment/mlflow",
        "--replicas",
        "9",
    ]);
    server.wait_for(Duration::from_secs(60), "nine running MLflow pods", || {
        let pods = server.ok(&[
            "-n",
            "mlflow",
            "-l",
            "app=mlflow",
            "get",
            "pods",
            "--field-selector",
            "status.phase=Running",
            "-o",
            "name",
        ]);
        (pods.lines().count() >= 9).then_some(())
    });
    let before = world(&server);
    let cases: &[(&str, &str)] = &[
        (
            "target-protected",
            "refusing to inject into namespace \"kube-system\"",
        ),
        (
            "object-protected",
            "refusing to inject into namespace \"kube-system\"",
        ),
        (
            "apply-chaos-testing",
            "refusing to inject into namespace \"chaos-testing\"",
        ),
        (
            "scale-protected",
            "refusing to scale deployment/chaos-controller-manager in namespace \"chaos-testing\"",
        ),
        (
            "restart-protected",
            "refusing to restart deployment/coredns in namespace \"kube-system\"",
        ),
        ("fixed-8", "mode \"fixed\" value 8 can hit 8 of 9 pods"),
        (
            "fixed-percent-100",
            "mode \"fixed-percent\" value 100 can hit 9 of 9 pods",
        ),
        (
            "random-max-percent-100",
            "mode \"random-max-percent\" value 100 can hit 9 of 9 pods",
        ),
        (
            "target-all",
            "refusing target: mode \"all\" can hit 9 of 9 pods",
        ),
    ];
    for (case, needle) in cases {
        let var = format!("case={case}");
        let ran = run_on(&server, &state, &fixture("safety.rhai"), &[&var]);
        assert_clean(&server, &state, &before, case, &ran, 3, &[needle]);
    }
}

/// Replicas of the two workloads `scale_restore.rhai` scales.
fn replicas(server: &Server) -> (String, String) {
    let get = |ns: &str, name: &str| {
        server.ok(&[
            "-n",
            ns,
            "get",
            "deployment",
            name,
            "-o",
            "jsonpath={.spec.replicas}",
        ])
    };
    (get("training", "trainer"), get("mlflow", "mlflow"))
}

#[test]
fn scaled_workloads_are_put_back_however_the_run_ends() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let original = replicas(&server);
    assert_eq!(original, ("1".to_string(), "1".to_string()));
    for (exit, code) in [("pass", 0), ("error", 3)] {
        let var = format!("exit={exit}");
        let ran = run_on(&server, &state, &fixture("scale_restore.rhai"), &[&var]);
        assert_eq!(ran.code, Some(code), "{exit}\n{}", ran.text);
        assert!(
            ran.text
                .contains("cleanup: scaled Deployment training/trainer back to 1")
                && ran
                    .text
                    .contains("cleanup: scaled Deployment mlflow/mlflow back to 1"),
            "{exit}\n{}",
            ran.text
        );
        assert_eq!(replicas(&server), original, "{exit}");
        assert_eq!(journals(&state), Vec::<String>::new(), "{exit}");
    }
    // Killed outright: the journal says what to put back, and `playbook cleanup` does.
    let mut p = start_until(
        &server,
        &state,
        &fixture("scale_restore.rhai"),
        &["exit=wait"],
        "scaled",
    );
    assert_ne!(replicas(&server), original);
    p.0.kill().unwrap();
    p.0.wait().unwrap();
    let kc = server.kubeconfig.to_str().unwrap();
    let ran = playbook_within(
        &[
            "cleanup",
            "--all",
            "--kubeconfig",
            kc,
            "--state-dir",
            state.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    expect(&ran, 0, &["2 workload(s) to scale back"]);
    assert_eq!(replicas(&server), original);
    assert_eq!(journals(&state), Vec::<String>::new());
}

/// Writes a journal for run `run_id` naming `objects` (JSON `ObjectRef`s), as a crafted file.
fn craft_journal(state: &Path, run_id: &str, pid: u32, objects: &str, extra: &str) -> PathBuf {
    let dir = state.join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{run_id}.json"));
    std::fs::write(
        &path,
        format!(
            "{{ \"run_id\": \"{run_id}\", \"pid\": {pid}, \"started\": \"2026-01-01T00:00:00Z\", \"context\": null{extra}, \"objects\": {objects} }}"
        ),
    )
    .unwrap();
    path
}

/// A pid that is surely not running (a child that has exited and been reaped).
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn cleanup_trusts_no_journal() {
    let server = Server::start_with(&["--scenario", "mlops"]);
    let state = tempdir();
    let kc = server.kubeconfig.to_str().unwrap().to_string();
    let st = state.to_str().unwrap().to_string();
    // Someone else's chaos object, unlabelled.
    server.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata: { name: theirs, namespace: mlflow }\nspec: { action: pod-kill, mode: one, duration: 5m, selector: { namespaces: [mlflow] } }\n",
    );
    let before = world(&server);
    let crafted = craft_journal(
        &state,
        "pb-crafted",
        dead_pid(),
        r#"[ { "object": { "api_version": "apps/v1", "kind": "Deployment", "namespace": "mlflow", "name": "mlflow" }, "state": "created" },
             { "object": { "api_version": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "namespace": "mlflow", "name": "theirs" }, "state": "created" } ]"#,
        "",
    );
    let ran = playbook_within(
        &["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st],
        Duration::from_secs(120),
    );
    expect(&ran, 4, &["refusing to delete Deployment mlflow/mlflow"]);
    assert!(
        ran.text.contains("not run pb-crafted's: not touched"),
        "{}",
        ran.text
    );
    assert_eq!(world(&server), before, "nothing of anyone else's removed");
    assert!(
        crafted.exists(),
        "the journal stays: it still names what could not be removed"
    );
    std::fs::remove_file(&crafted).unwrap();

    // A run still alive on this machine is left alone: its faults, its journal.
    let mut live = start_until(
        &server,
        &state,
        "tests/fixtures/host/all_faults.rhai",
        &["exit=wait"],
        "injected 8 faults",
    );
    let during = world(&server);
    let ran = playbook_within(
        &["cleanup", "--all", "--kubeconfig", &kc, "--state-dir", &st],
        Duration::from_secs(120),
    );
    expect(&ran, 0, &["still running (pid"]);
    assert_eq!(
        world(&server),
        during,
        "the live run's faults are untouched"
    );
    assert_eq!(journals(&state).len(), 1);
    Command::new("kill")
        .args(["-TERM", &live.0.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = live.0.try_wait() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(world(&server), before, "the run cleaned up after itself");
    assert_eq!(journals(&state), Vec::<String>::new());

    // A journal of another cluster: `cleanup --run ID` here does nothing and keeps it.
    let other = Server::start_with(&["--scenario", "mlops", "--seed", "2"]);
    let uid = other.ok(&[
        "get",
        "namespace",
        "kube-system",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let here = server.ok(&[
        "get",
        "namespace",
        "kube-system",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert_ne!(uid, here, "two clusters, two kube-system uids");
    let extra = format!(", \"cluster\": \"{uid}\"");
    let journal = craft_journal(
        &state,
        "pb-elsewhere",
        dead_pid(),
        r#"[ { "object": { "api_version": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "namespace": "mlflow", "name": "gone-here" }, "state": "created" } ]"#,
        &extra,
    );
    let ran = playbook_within(
        &[
            "cleanup",
            "--run",
            "pb-elsewhere",
            "--kubeconfig",
            &kc,
            "--state-dir",
            &st,
        ],
        Duration::from_secs(120),
    );
    expect(&ran, 4, &["its journal names another cluster"]);
    assert!(!ran.text.contains("already gone"), "{}", ran.text);
    assert!(journal.exists(), "the journal is kept for its own cluster");
    // Against its own cluster it is cleaned and dropped.
    let okc = other.kubeconfig.to_str().unwrap();
    let ran = playbook_within(
        &[
            "cleanup",
            "--run",
            "pb-elsewhere",
            "--kubeconfig",
            okc,
            "--state-dir",
            &st,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    assert!(!journal.exists(), "{}", ran.text);
}

#[test]
fn reports_never_replace_what_is_not_a_regular_file() {
    let dir = tempdir();
    let playbook_file = "tests/fixtures/ok/passes.rhai";
    let precious = dir.join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&precious, &link).unwrap();
    let fifo = dir.join("fifo.json");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (flag, path, needle) in [
        ("--report", &link, "it is a symbolic link"),
        ("--report", &fifo, "not a regular file"),
        ("--junit", &PathBuf::from("/dev/full"), "not a regular file"),
    ] {
        let ran = playbook_within(
            &[
                "run",
                "--cluster",
                "sim",
                flag,
                path.to_str().unwrap(),
                playbook_file,
            ],
            Duration::from_secs(60),
        );
        assert_eq!(ran.code, Some(2), "{path:?}\n{}", ran.text);
        assert!(ran.text.contains(needle), "{path:?}\n{}", ran.text);
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    {
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert!(
            std::fs::metadata("/dev/full")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    // A regular file is replaced atomically, and no temporary file is left beside it.
    let report = dir.join("report.json");
    std::fs::write(&report, "old").unwrap();
    let ran = playbook_within(
        &[
            "run",
            "--cluster",
            "sim",
            "--report",
            report.to_str().unwrap(),
            playbook_file,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(ran.code, Some(0), "{}", ran.text);
    assert!(std::fs::read_to_string(&report).unwrap().starts_with('{'));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn durations_have_a_checked_limit() {
    let ran = playbook_within(
        &[
            "run",
            "--cluster",
            "sim",
            "--timeout",
            "99999999999999999h",
            "tests/fixtures/ok/passes.rhai",
        ],
        Duration::from_secs(30),
    );
    expect(&ran, 2, &["longer than the longest accepted, 2562047h"]);
    let dir = tempdir();
    let file = dir.join("long.rhai");
    std::fs::write(
        &file,
        "chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] }, duration: \"2562048h\" });\n",
    )
    .unwrap();
    let ran = playbook_within(
        &["run", "--cluster", "sim", file.to_str().unwrap()],
        Duration::from_secs(30),
    );
    // A literal duration is checked before anything runs (exit 2).
    expect(&ran, 2, &["option `duration`"]);
}
