//! `playbook repl`: the interactive front end on the one engine constructor — one session for
//! the whole REPL (run id, ledger, journal), one engine, one scope and the functions defined
//! so far; a line editor with completion and history, or plain lines when stdin is not a
//! terminal; cleanup at exit.

/// Writes a line to standard error; a closed pipe is not an error (nor a panic).
macro_rules! warn {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Writes text to standard error, as `warn!` without the newline.
macro_rules! warn_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod commands;
mod complete;
mod lex;
mod live;
mod show;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, IsTerminal};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use regex::Regex;
use rhai::{Dynamic, EvalAltResult, Scope};
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor, error::ReadlineError};

use crate::cli::ReplArgs;
use crate::engine::{self, Diagnostic, Doc, EngineConfig, Stdlib};
use crate::outcome::Verdict;
use crate::run::{Run, Targets, journal_for, new_run_id};
use crate::session::{self, Session, SessionConfig, Stop, interrupted, say};
use crate::stop;
use commands::Flow;
use complete::{Names, ReplHelper};

/// The REPL's state: the session, the engine, the scope and the functions defined so far.
pub(crate) struct Repl {
    /// The session, its engine and the functions defined so far (statements are dropped
    /// after each evaluation).
    run: Run,
    scope: Scope<'static>,
    /// Standard input is a pipe: a signal ends the session, not just one evaluation.
    piped: bool,
    count: usize,
    /// Inputs that succeeded, for `:save`.
    saved: Vec<String>,
    /// Which input defined each function (errors inside it point there).
    defined_in: HashMap<String, String>,
    names: Arc<Mutex<Names>>,
    docs: Vec<Doc>,
    /// Ctrl-C stopped the last evaluation.
    was_interrupted: bool,
}

/// Connects, builds the session and runs the loop; cleans up at the end. Must run inside a
/// tokio runtime context.
pub fn run(args: &ReplArgs) -> Verdict {
    let rt = crate::connection::Rt::current();
    let target = match Targets::connect(&args.target.choice()) {
        Ok(t) => t.next(),
        Err(e) => {
            warn!("error: {e}");
            return Verdict::Error;
        }
    };
    let tty = std::io::stdin().is_terminal();
    if tty {
        say(&target.description);
    } else {
        warn!("{}", target.description);
    }
    let state_dir = session::state_dir(args.state_dir.as_deref());
    let run_id = new_run_id();
    // The lease is held from the start of the session to its end (after its cleanup).
    let options = crate::coord::Options {
        lock: !args.lock.no_lock,
        wait: args.lock.lock_wait,
        reach: args.timeout,
    };
    let guard = match crate::coord::Guard::enter(&target, &rt, &run_id, &options) {
        Ok(g) => g,
        // A signal while waiting ends the session as it would have ended it later (nothing
        // was created: its cleanup says so).
        Err(crate::coord::Refusal::Interrupted) => crate::coord::Guard::none(&rt),
        Err(refusal) => return refusal.report(),
    };
    let journal = journal_for(&target, &state_dir, &run_id);
    let stop = Stop::new(args.timeout);
    // The session's budget is wall time: against the simulator, virtual time runs ahead with
    // every sleep, and must not end the session (set before Session::new, which keeps the first).
    stop.set_clock(|_| false);
    let session = Session::new(SessionConfig {
        run_id,
        playbook: "repl".into(),
        vars: args.vars.iter().cloned().collect::<BTreeMap<_, _>>(),
        output: session::stdout_output(),
        stop,
        target,
        rt,
        journal,
        dry_run: false,
        prometheus: args.prometheus.clone(),
    });
    let config = EngineConfig {
        stdlib: Stdlib::from_option(args.stdlib.stdlib.clone()),
        ..Default::default()
    };
    let run = Run::new(config, session, Arc::new(|text: &str| warn_raw!("{text}")));
    let docs = engine::docs(&run.engine);
    let mut repl = Repl {
        run,
        scope: Scope::new(),
        piped: !tty,
        count: 0,
        saved: Vec::new(),
        defined_in: HashMap::new(),
        names: Arc::new(Mutex::new(Names::default())),
        docs,
        was_interrupted: false,
    };
    let interrupted_at_exit = if tty {
        repl.interactive(state_dir.join("repl_history"));
        // Ctrl-C stops one evaluation; another signal ended the session.
        stop::ending()
    } else {
        repl.piped()
    };
    let verdict = repl.finish(interrupted_at_exit);
    guard.release();
    verdict
}

impl Repl {
    /// The line editor loop (stdin is a terminal). The editor reads on its own thread, so a
    /// session-ending signal that arrives while the prompt waits ends the session at once.
    fn interactive(&mut self, history: PathBuf) {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .auto_add_history(true)
            .build();
        let mut editor: Editor<ReplHelper, DefaultHistory> = match Editor::with_config(config) {
            Ok(e) => e,
            Err(e) => {
                warn!("error: cannot start the line editor: {e}");
                return;
            }
        };
        let live = live::Live::new(
            self.run.session.target.client.clone(),
            self.run.session.rt.clone(),
        );
        editor.set_helper(Some(ReplHelper::new(
            // Parsing only (is an input finished?): an engine without the session.
            Arc::new(engine::build(&self.run.config, None)),
            self.docs.clone(),
            self.names.clone(),
            commands::names(),
            Some(live),
        )));
        if let Some(dir) = history.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(&history);
        say(
            "playbook repl: Tab completes, :help lists commands, Ctrl-C stops an evaluation, Ctrl-D or :quit cleans up and leaves",
        );
        // The terminal's settings, to restore if the session ends while the editor holds the
        // terminal in raw mode.
        let terminal = terminal_settings();
        let (lines, inputs) = mpsc::channel();
        let (next, wait_next) = mpsc::channel::<bool>();
        std::thread::spawn(move || {
            loop {
                let read = editor.readline("pb> ");
                if read.is_ok() {
                    let _ = editor.save_history(&history);
                }
                // After each input, the next prompt waits until the REPL says to go on.
                if lines.send(read).is_err() || wait_next.recv() != Ok(true) {
                    break;
                }
            }
        });
        loop {
            match inputs.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(text)) => {
                    let go_on = self.input(&text) != Flow::Quit && !stop::ending();
                    let _ = next.send(go_on);
                    if !go_on {
                        break;
                    }
                }
                // Ctrl-C at the prompt clears the line.
                Ok(Err(ReadlineError::Interrupted)) => {
                    let _ = next.send(true);
                }
                Ok(Err(ReadlineError::Eof)) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(Err(e)) => {
                    warn!("error: reading input: {e}");
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stop::ending() {
                        // The editor still waits in raw mode: give the terminal back first.
                        restore_terminal(terminal.as_deref());
                        warn!("");
                        break;
                    }
                }
            }
        }
    }

    /// Statements from a pipe, line by line (an unfinished statement continues on the next
    /// line); no prompt. Returns true if Ctrl-C ended it.
    fn piped(&mut self) -> bool {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut buf = String::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(line)) => {
                    buf.push_str(&line);
                    buf.push('\n');
                    // A signal between statements ends the session before the next one.
                    if interrupted().load(Ordering::SeqCst) {
                        return true;
                    }
                    if lex::is_complete(&self.run.engine, &buf) {
                        let text = std::mem::take(&mut buf);
                        if self.input(&text) == Flow::Quit {
                            return false;
                        }
                        if self.was_interrupted {
                            return true;
                        }
                    }
                }
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if interrupted().load(Ordering::SeqCst) {
                        return true;
                    }
                    if !buf.trim().is_empty() {
                        self.input(&buf);
                    }
                    return self.was_interrupted || interrupted().load(Ordering::SeqCst);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted().load(Ordering::SeqCst) {
                        return true;
                    }
                }
            }
        }
    }

    /// One input: a meta-command or statements.
    fn input(&mut self, text: &str) -> Flow {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Flow::Continue;
        }
        if trimmed.starts_with(':') {
            return commands::dispatch(self, trimmed);
        }
        self.count += 1;
        let name = format!("repl#{}", self.count);
        if self.evaluate(&name, text) {
            self.saved.push(as_statement(text));
        }
        Flow::Continue
    }

    /// Compiles `text` against the scope, keeps its functions, runs it, prints its value or
    /// its error; true if it succeeded.
    fn evaluate(&mut self, source: &str, text: &str) -> bool {
        self.run.config.sources.add(source, text);
        let mut ast = match self.run.engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => {
                warn_raw!(
                    "{}",
                    Diagnostic::from_parse(source, &e).render(&self.run.config.sources)
                );
                return false;
            }
        };
        ast.set_source(source);
        for f in ast.iter_functions() {
            self.defined_in
                .insert(f.name.to_string(), source.to_string());
        }
        self.run.ast.combine(ast);
        self.run.ast.set_source(source);
        self.reset_stop();
        let (engine, scope, ast) = (&self.run.engine, &mut self.scope, &self.run.ast);
        let result = catch_unwind(AssertUnwindSafe(|| {
            engine.eval_ast_with_scope::<Dynamic>(scope, ast)
        }));
        self.run.ast.clear_statements();
        self.was_interrupted = interrupted().load(Ordering::SeqCst);
        self.update_names();
        let ok = match result {
            Ok(Ok(value)) => {
                if let Some(text) = show::show(&value) {
                    say(&text);
                }
                self.keep_imports(source, text);
                true
            }
            Ok(Err(err)) => {
                if self.was_interrupted
                    && matches!(err.unwrap_inner(), EvalAltResult::ErrorTerminated(..))
                {
                    if !stop::ending() {
                        warn!(
                            "interrupted: stopped this evaluation (the session and its faults remain)"
                        );
                    }
                } else {
                    warn_raw!(
                        "{}",
                        self.diagnostic(source, &err)
                            .render(&self.run.config.sources)
                    );
                }
                false
            }
            Err(_) => {
                warn!("error: internal error in a host function (a bug in playbook)");
                false
            }
        };
        self.reset_stop();
        ok
    }

    /// Modules a successful input imported become static modules of the engine, so later
    /// inputs (each its own script) can still call them.
    fn keep_imports(&mut self, source: &str, text: &str) {
        static IMPORT: OnceLock<Regex> = OnceLock::new();
        let import = IMPORT.get_or_init(|| {
            Regex::new(r#"(?m)^\s*import\s+"([^"]+)"\s+as\s+([A-Za-z_][A-Za-z0-9_]*)\s*(?:;|$)"#)
                .expect("the import pattern is a valid regex")
        });
        for cap in import.captures_iter(text) {
            let resolved = self.run.engine.module_resolver().resolve(
                &self.run.engine,
                Some(source),
                &cap[1],
                rhai::Position::NONE,
            );
            match resolved {
                Ok(module) => {
                    self.run.engine.register_static_module(&cap[2], module);
                }
                Err(e) => warn!(
                    "warning: module {:?} stays for that input only: {e}",
                    &cap[1]
                ),
            }
        }
    }

    /// Clears Ctrl-C so the next evaluation runs (at a terminal; from a pipe, a signal ends
    /// the session, and a session-ending signal is never cleared).
    fn reset_stop(&self) {
        if !self.piped {
            stop::clear_interrupt();
        }
        self.run.session.stop.clear();
    }

    /// The diagnostic of a runtime error; an error inside a function defined by an earlier
    /// input points into that input.
    fn diagnostic(&self, source: &str, err: &EvalAltResult) -> Diagnostic {
        let mut d = Diagnostic::from_eval(source, err);
        let mut inner = err;
        let mut function = None;
        while let EvalAltResult::ErrorInFunctionCall(name, _, next, _) = inner {
            function = Some(name.clone());
            inner = next;
        }
        if let (Some(f), Some(at)) = (function, d.location.as_mut()) {
            if let Some(defined) = self.defined_in.get(&f) {
                if at.file == source {
                    at.file = defined.clone();
                }
            }
        }
        d
    }

    fn update_names(&self) {
        let variables = self
            .scope
            .iter_raw()
            .map(|(n, _, _)| n.to_string())
            .collect();
        let defined: Vec<_> = self
            .run
            .ast
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .collect();
        let functions = defined.iter().map(|f| f.name.to_string()).collect();
        let signatures = defined.iter().map(|f| f.to_string()).collect();
        if let Ok(mut names) = self.names.lock() {
            *names = Names {
                variables,
                functions,
                signatures,
            };
        }
    }

    /// Runs the cleanup ledger now (removing every fault, running `on_cleanup` closures);
    /// whether everything was removed, and how many steps ran.
    fn cleanup(&mut self) -> (bool, usize) {
        self.reset_stop();
        let (ok, steps) = self.run.cleanup("repl");
        // The REPL goes on after `:cleanup`: faults may be created again.
        self.run.session.reopen();
        if steps == 0 {
            say("cleanup: nothing to remove");
        }
        (ok, steps)
    }

    /// Leaves the session as `playbook run` ends a playbook: cleanup, then the steady states
    /// are checked again (unless a signal ended it); the session's verdict.
    fn finish(&mut self, interrupted_at_exit: bool) -> Verdict {
        self.reset_stop();
        let cleanup = self.cleanup();
        // A signal that ends the session counts even when it arrived as the session was
        // already ending (its input over, cleanup under way): the verdict is "interrupted".
        let signalled = stop::ending() || (self.piped && interrupted().load(Ordering::SeqCst));
        let verdict = if interrupted_at_exit || signalled {
            Verdict::Interrupted
        } else {
            Verdict::Passed
        };
        let outcome = self.run.conclude("repl", verdict, None, cleanup);
        self.run.announce("repl", &outcome);
        outcome.verdict
    }
}

/// The terminal's settings (`stty -g`), if standard input is one.
fn terminal_settings() -> Option<String> {
    let out = std::process::Command::new("stty")
        .arg("-g")
        .stdin(std::process::Stdio::inherit())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let saved = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !saved.trim().is_empty()).then(|| saved.trim().to_string())
}

/// Puts the terminal's settings back (from [`terminal_settings`]).
fn restore_terminal(saved: Option<&str>) {
    if let Some(saved) = saved {
        let _ = std::process::Command::new("stty")
            .arg(saved)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// An input as a playbook statement: a trailing expression gets its `;`.
fn as_statement(text: &str) -> String {
    let t = text.trim_end();
    if t.ends_with(';') || t.ends_with('}') {
        t.to_string()
    } else {
        format!("{t};")
    }
}
