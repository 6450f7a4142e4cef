//! The REPL on a terminal: each test runs it inside its own tmux server (a pseudo-terminal),
//! types keys, and reads the screen.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::scratch;

/// One REPL in a private tmux server; the server is killed when this is dropped.
struct Term {
    socket: String,
}

impl Term {
    /// Starts `playbook ARGS` in a 160x50 terminal; after it exits, the pane shows `EXIT=<code>`.
    fn start(name: &str, args: &[&str]) -> Term {
        let socket = format!("pb-repl-{}-{name}", std::process::id());
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let shell = format!(
            // The wrapping shell shares the REPL's process group: it must outlive Ctrl-C.
            "trap : INT; '{}' {}; echo EXIT=$?; sleep 600",
            env!("CARGO_BIN_EXE_playbook"),
            quoted.join(" ")
        );
        let term = Term { socket };
        let status = Command::new("tmux")
            .args(["-L", &term.socket, "-f", "/dev/null", "new-session", "-d"])
            .args([
                "-x",
                "160",
                "-y",
                "50",
                "-s",
                "t",
                "-c",
                env!("CARGO_MANIFEST_DIR"),
            ])
            .args(["sh", "-c", &shell])
            .env_remove("PLAYBOOK_STDLIB")
            .env_remove("TMUX")
            .status()
            .expect(
                "tmux is installed (the tty tests drive the REPL through it; .ci/run installs it)",
            );
        assert!(status.success(), "tmux could not start a session");
        term.wait_for("pb> ");
        term
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` literally (a trailing `;` escaped from tmux's command parser).
    fn type_text(&self, text: &str) {
        let text = match text.strip_suffix(';') {
            Some(head) => format!("{head}\\;"),
            None => text.to_string(),
        };
        self.tmux(&["send-keys", "-t", "t", "-l", &text]);
    }

    /// Presses keys by name: `Enter`, `Tab`, `C-c`, `C-d`, `C-u`.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "t", k]);
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Types a line and presses Enter.
    fn line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-200"])
    }

    /// Waits until the screen shows `needle`, `times` times; the screen.
    fn wait_for_n(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            if start.elapsed() > Duration::from_secs(60) {
                panic!("the screen never showed {needle:?} ({times}x):\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Sends `signal` to the REPL (the child of the pane's shell).
    fn signal(&self, signal: &str) {
        let shell = self.tmux(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let shell = shell.trim();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the pane's shell lists its children");
        let repl = children.split_whitespace().next().expect("the REPL runs");
        let status = Command::new("kill")
            .args([format!("-{signal}"), repl.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {repl}");
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

fn sim_repl(name: &str, state: &Path) -> Term {
    let state = state.display().to_string();
    Term::start(name, &["repl", "--cluster", "sim", "--state-dir", &state])
}

#[test]
fn tab_completes_functions_and_namespaces_inside_strings_with_a_signature_hint() {
    let dir = scratch("tty-complete");
    let t = sim_repl("complete", &dir);
    t.type_text("chaos::pod_k");
    t.keys(&["Tab"]);
    t.wait_for("pb> chaos::pod_kill");
    t.keys(&["C-u"]);
    t.type_text("cluster::pods(\"kube-s");
    t.keys(&["Tab"]);
    let screen = t.wait_for("pb> cluster::pods(\"kube-system");
    assert!(
        screen.contains("cluster::pods(namespace: string, selector: string) -> Array"),
        "no signature hint:\n{screen}"
    );
    t.type_text("\", \"\")");
    t.keys(&["Enter"]);
    t.wait_for("[]");
    // History is kept in the state folder.
    t.line(":quit");
    t.wait_for("EXIT=0");
    let history = std::fs::read_to_string(dir.join("repl_history")).unwrap_or_default();
    assert!(
        history.contains("cluster::pods(\"kube-system\", \"\")"),
        "{history}"
    );
}

#[test]
fn multi_line_function_definition_then_a_call() {
    let dir = scratch("tty-multiline");
    let t = sim_repl("multiline", &dir);
    t.line("fn twice(x) {");
    t.line("  x * 2");
    t.line("}");
    t.wait_for_n("pb> ", 2);
    t.line("twice(21)");
    let screen = t.wait_for("\n42\n");
    assert!(!screen.contains("error"), "{screen}");
}

#[test]
fn a_fault_is_listed_by_faults_and_removed_at_ctrl_d() {
    let dir = scratch("tty-faults");
    let t = sim_repl("faults", &dir);
    t.line("let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });");
    t.wait_for("inject: PodChaos training/pb-pod-kill-");
    t.line(":faults");
    let screen = t.wait_for("NAME ");
    let row = screen
        .lines()
        .find(|l| l.starts_with("pb-pod-kill-"))
        .unwrap_or_else(|| panic!("no fault row:\n{screen}"));
    assert!(row.contains("PodChaos") && row.contains("live"), "{row}");
    t.keys(&["C-d"]);
    let screen = t.wait_for("EXIT=0");
    assert!(
        screen.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
        "{screen}"
    );
}

#[test]
fn ctrl_c_stops_an_evaluation_and_clears_a_line_and_the_repl_goes_on() {
    let dir = scratch("tty-ctrl-c");
    let t = sim_repl("ctrlc", &dir);
    t.line("let n = 1;");
    t.line("expect(\"never\", \"100000h\", || false)");
    std::thread::sleep(Duration::from_millis(800));
    t.keys(&["C-c"]);
    t.wait_for("interrupted: stopped this evaluation");
    // Ctrl-C at the prompt drops what was typed.
    t.type_text("garbage_here");
    t.keys(&["C-c"]);
    t.line("n + 41");
    let screen = t.wait_for("\n42\n");
    assert!(
        !screen.contains("undefined variable `garbage_here`"),
        "{screen}"
    );
    t.line(":quit");
    t.wait_for("EXIT=0");
}

/// `playbook sim serve` in wall time, with a kubeconfig for kubectl and the REPL.
pub(super) struct Served {
    child: Child,
    pub kubeconfig: PathBuf,
}

impl Served {
    pub fn start(dir: &Path) -> Served {
        let kubeconfig = dir.join("kubeconfig");
        let child = Command::new(env!("CARGO_BIN_EXE_playbook"))
            .args(["sim", "serve", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sim serve starts");
        let start = Instant::now();
        while !kubeconfig.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sim serve wrote no kubeconfig"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        Served { child, kubeconfig }
    }

    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed");
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes()).expect("kubectl stdin");
        }
        let out = child.wait_with_output().expect("kubectl ends");
        assert!(out.status.success(), "kubectl {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Served {
    /// Stops the server (the cluster becomes unreachable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

const MLFLOW: &str = "apiVersion: v1
kind: Namespace
metadata: {name: mlflow}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow, namespace: mlflow, labels: {app: mlflow}}
spec:
  replicas: 1
  selector: {matchLabels: {app: mlflow}}
  template:
    metadata: {labels: {app: mlflow}}
    spec: {containers: [{name: mlflow, image: mlflow}]}
";

#[test]
fn against_sim_serve_completes_workloads_and_leaves_no_fault_behind() {
    let dir = scratch("tty-served");
    let served = Served::start(&dir);
    served.kubectl(&["apply", "-f", "-"], Some(MLFLOW));
    let kubeconfig = served.kubeconfig.display().to_string();
    let state = dir.join("state").display().to_string();
    let t = Term::start(
        "served",
        &[
            "repl",
            "--cluster",
            "kube",
            "--kubeconfig",
            &kubeconfig,
            "--state-dir",
            &state,
        ],
    );
    t.type_text("cluster::readiness(\"mlflow\", \"deployment/");
    t.keys(&["Tab"]);
    t.wait_for("pb> cluster::readiness(\"mlflow\", \"deployment/mlflow");
    t.line("\")");
    t.wait_for("desired    1");
    t.type_text("let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"mlf");
    t.keys(&["Tab"]);
    t.wait_for("namespaces: [\"mlflow");
    t.line("\"] } });");
    t.wait_for("inject: PodChaos mlflow/pb-pod-kill-");
    assert!(
        served
            .kubectl(&["get", "podchaos", "-A"], None)
            .contains("pb-pod-kill-")
    );
    // A real cluster's session is journaled while the fault lives.
    let journals = std::fs::read_dir(dir.join("state/journal"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journals, 1);
    // Ctrl-C during a wall-clock sleep returns to the prompt.
    t.line("sleep(\"10m\")");
    std::thread::sleep(Duration::from_millis(800));
    t.keys(&["C-c"]);
    t.wait_for("interrupted: stopped this evaluation");
    t.line("f.status().exists");
    t.wait_for("\ntrue\n");
    t.line(":quit");
    let screen = t.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains("cleanup: removed PodChaos mlflow/pb-pod-kill-"),
        "{screen}"
    );
    let left = served.kubectl(&["get", "podchaos", "-A", "-o", "name"], None);
    assert!(left.trim().is_empty(), "left behind: {left}");
    let journals = std::fs::read_dir(dir.join("state/journal"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(journals, 0, "the journal of a clean session is removed");
}

#[test]
fn a_terminating_signal_at_the_prompt_cleans_up_and_leaves_with_130() {
    for signal in ["TERM", "QUIT"] {
        let dir = scratch(&format!("tty-sig{signal}"));
        let t = sim_repl(&format!("sig{signal}"), &dir);
        t.line("let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });");
        t.wait_for("inject: PodChaos training/");
        t.wait_for_n("pb> ", 2);
        // The REPL waits at its prompt (the editor holds the terminal in raw mode).
        t.signal(signal);
        let screen = t.wait_for("EXIT=130");
        assert!(
            screen.contains(&format!("interrupted by SIG{signal}")),
            "{screen}"
        );
        assert!(
            screen.contains("cleanup: removed PodChaos training/pb-pod-kill-"),
            "{screen}"
        );
    }
}
