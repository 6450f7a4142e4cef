//! What every test area shares: the built binary, bounded processes that are killed when a test
//! fails (a guard that kills on drop), bounded waits for output lines, and scratch folders.
//! Nothing here waits without a limit.

#![allow(dead_code)] // each area uses its part

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long one `playbook` process may run in a test before it is killed and the test fails.
pub const PROCESS_LIMIT: Duration = Duration::from_secs(600);
/// How long a test waits for one line of output (generous: the machine may be loaded).
pub const LINE_LIMIT: Duration = Duration::from_secs(120);

/// The built `playbook`, run from the crate root, without the environment that changes it.
pub fn playbook_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_playbook"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLAYBOOK_STDLIB")
        .env_remove("RUST_BACKTRACE");
    cmd
}

/// A child process that is killed (and reaped) when dropped: a failing test never leaves one.
pub struct Proc {
    child: Child,
    what: String,
}

impl Proc {
    /// Spawns `cmd` with piped standard streams.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Proc { child, what }
    }

    /// Guards a child spawned with its own standard streams (e.g. sent to null).
    pub fn guard(child: Child, what: &str) -> Proc {
        Proc {
            child,
            what: what.to_string(),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The process itself (to take its pipes).
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Its standard output as lines, read on a thread (see [`Lines`]).
    pub fn lines(&mut self) -> Lines {
        Lines::of(self.child.stdout.take().expect("stdout is piped"))
    }

    /// Its standard error as lines, read on a thread.
    pub fn err_lines(&mut self) -> Lines {
        Lines::of(self.child.stderr.take().expect("stderr is piped"))
    }

    /// Sends `signal` (`INT`, `TERM`, `HUP`, `QUIT`, `KILL`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {}", self.id());
    }

    /// Waits for the exit, at most `limit`; past it the process is killed and the test fails.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("{} did not end within {limit:?}: killed", self.what);
                }
            }
        }
    }

    /// [`Proc::output`] when its standard output is read by `lines`: the exit code, all of
    /// standard output (joined lines) and standard error.
    pub fn finish(self, lines: Lines, limit: Duration) -> (Option<i32>, String, String) {
        let rest = std::thread::spawn(move || lines.rest());
        let out = self.output(limit);
        let stdout = rest.join().expect("stdout is read");
        (
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Closes standard input, waits (at most `limit`) and collects what is left of its output.
    pub fn output(mut self, limit: Duration) -> Output {
        drop(self.child.stdin.take());
        let stdout = self.child.stdout.take().map(drain);
        let stderr = self.child.stderr.take().map(drain);
        let status = self.wait(limit);
        let collect = |r: Option<Receiver<Vec<u8>>>| {
            r.and_then(|r| r.recv_timeout(Duration::from_secs(10)).ok())
                .unwrap_or_default()
        };
        Output {
            status,
            stdout: collect(stdout),
            stderr: collect(stderr),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` to its end (at most `limit`, then it is killed and the test fails) with standard
/// input closed; its output.
pub fn output(cmd: &mut Command, limit: Duration) -> Output {
    Proc::spawn(cmd).output(limit)
}

/// The lines of a child's standard output, read on a thread so waits are bounded.
pub struct Lines {
    rx: Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(stdout: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads until a line contains `marker` (at most [`LINE_LIMIT`]; then the test fails).
    pub fn wait_for(&mut self, marker: &str) -> &[String] {
        let start = Instant::now();
        while !self.seen.iter().any(|l| l.contains(marker)) {
            let left = LINE_LIMIT.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("never saw a line with {marker:?}; saw: {:#?}", self.seen),
            }
        }
        &self.seen
    }

    /// Every line up to the end of the output (at most [`LINE_LIMIT`] more), joined.
    pub fn rest(mut self) -> String {
        let start = Instant::now();
        while let Ok(line) = self
            .rx
            .recv_timeout(LINE_LIMIT.saturating_sub(start.elapsed()))
        {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// A fresh, empty folder for one test (under the target dir; unique per process and call).
pub fn scratch(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "t-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Standard output and standard error as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the built `playbook` with `args` from the crate root, standard input closed (at most
/// [`PROCESS_LIMIT`]).
pub fn playbook(args: &[&str]) -> Output {
    output(playbook_cmd().args(args), PROCESS_LIMIT)
}

/// A fresh folder under the target dir.
pub fn tempdir() -> PathBuf {
    scratch("tmp")
}

/// A statement that injects one pod-kill fault in `default` (the REPL prints `inject: ...`).
pub const INJECT: &[u8] =
    b"let f = chaos::pod_kill(#{ selector: #{ namespaces: [\"training\"], labelSelectors: #{ app: \"trainer\" } } });\n";

/// `playbook repl` against the cluster of `kubeconfig` (statements piped), with `INJECT`
/// already written; the process and its standard input.
pub fn repl_with_a_fault(kubeconfig: &Path, state: &Path) -> (Proc, std::process::ChildStdin) {
    use std::io::Write;
    let mut child = Proc::spawn(
        playbook_cmd()
            .args(["repl", "--cluster", "kube", "--kubeconfig"])
            .arg(kubeconfig)
            .arg("--state-dir")
            .arg(state),
    );
    let mut stdin = child.child().stdin.take().expect("stdin is piped");
    stdin.write_all(INJECT).expect("stdin is written");
    (child, stdin)
}
