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
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor, error::ReadlineError};

use crate::cli::{ClusterKind, ReplArgs};
use crate::connection;
use crate::engine::{self, Diagnostic, Doc, EngineConfig, Stdlib};
use crate::outcome::Verdict;
use crate::session::{self, Journal, Session, SessionConfig, Stop, interrupted, say};
use commands::Flow;
use complete::{Names, ReplHelper};

/// Runs `playbook repl` on a thread with a large stack inside a tokio runtime; Ctrl-C (each
/// time) sets the interrupt flag, which stops the evaluation under way.
pub fn main(args: ReplArgs) -> Verdict {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            warn!("error: cannot start the async runtime: {e}");
            return Verdict::Error;
        }
    };
    runtime.spawn(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut int) = signal(SignalKind::interrupt()) else {
                return;
            };
            while int.recv().await.is_some() {
                interrupted().store(true, Ordering::SeqCst);
            }
        }
        #[cfg(not(unix))]
        while tokio::signal::ctrl_c().await.is_ok() {
            interrupted().store(true, Ordering::SeqCst);
        }
    });
    let handle = runtime.handle().clone();
    let worker = std::thread::Builder::new()
        .name("playbook-repl".into())
        .stack_size(256 << 20)
        .spawn(move || {
            let _in_runtime = handle.enter();
            run(&args)
        });
    match worker.map(|w| w.join()) {
        Ok(Ok(verdict)) => verdict,
        _ => Verdict::Error,
    }
}

/// The REPL's state: the session, the engine, the scope and the functions defined so far.
pub(crate) struct Repl {
    session: Arc<Session>,
    engine: Engine,
    config: EngineConfig,
    scope: Scope<'static>,
    /// Functions defined so far (statements are dropped after each evaluation).
    ast: AST,
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
    let rt = tokio::runtime::Handle::current();
    let target = match connection::choose(&args.target) {
        ClusterKind::Kube => match rt.block_on(connection::connect(&args.target)) {
            Ok(t) => t,
            Err(e) => {
                warn!("error: {e}");
                return Verdict::Error;
            }
        },
        ClusterKind::Sim => connection::simulated(args.target.seed, args.target.scenario),
    };
    let tty = std::io::stdin().is_terminal();
    if tty {
        say(&target.description);
    } else {
        warn!("{}", target.description);
    }
    let state_dir = session::state_dir(args.state_dir.as_deref());
    let run_id = new_run_id();
    let journal =
        (!target.is_simulated()).then(|| Journal::new(&state_dir, &run_id, target.context.clone()));
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
    let engine = engine::build(&config, Some(session.clone()));
    let docs = engine::docs(&engine);
    let mut repl = Repl {
        session,
        engine,
        config,
        scope: Scope::new(),
        ast: AST::empty(),
        count: 0,
        saved: Vec::new(),
        defined_in: HashMap::new(),
        names: Arc::new(Mutex::new(Names::default())),
        docs,
        was_interrupted: false,
    };
    let interrupted_at_exit = if tty {
        repl.interactive(state_dir.join("repl_history"));
        false
    } else {
        repl.piped()
    };
    let verdict = if repl.cleanup() {
        Verdict::Passed
    } else {
        Verdict::CleanupIncomplete
    };
    if interrupted_at_exit {
        verdict.worst(Verdict::Interrupted)
    } else {
        verdict
    }
}

impl Repl {
    /// The line editor loop (stdin is a terminal).
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
        let live = live::Live::new(self.session.target.client.clone(), self.session.rt.clone());
        editor.set_helper(Some(ReplHelper::new(
            // Parsing only (is an input finished?): an engine without the session.
            Arc::new(engine::build(&self.config, None)),
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
        loop {
            match editor.readline("pb> ") {
                Ok(text) => {
                    let _ = editor.save_history(&history);
                    if self.input(&text) == Flow::Quit {
                        break;
                    }
                }
                // Ctrl-C at the prompt clears the line.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    warn!("error: reading input: {e}");
                    break;
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
                    if lex::is_complete(&self.engine, &buf) {
                        // A Ctrl-C between statements ends the REPL: the next evaluation
                        // clears the flag, so it is looked at before.
                        if interrupted().load(Ordering::SeqCst) {
                            return true;
                        }
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
                    if !buf.trim().is_empty() {
                        self.input(&buf);
                    }
                    return self.was_interrupted;
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
        self.config.sources.add(source, text);
        let mut ast = match self.engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => {
                warn_raw!(
                    "{}",
                    Diagnostic::from_parse(source, &e).render(&self.config.sources)
                );
                return false;
            }
        };
        ast.set_source(source);
        for f in ast.iter_functions() {
            self.defined_in
                .insert(f.name.to_string(), source.to_string());
        }
        self.ast.combine(ast);
        self.ast.set_source(source);
        self.reset_stop();
        let (engine, scope, ast) = (&self.engine, &mut self.scope, &self.ast);
        let result = catch_unwind(AssertUnwindSafe(|| {
            engine.eval_ast_with_scope::<Dynamic>(scope, ast)
        }));
        self.ast.clear_statements();
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
                    warn!(
                        "interrupted: stopped this evaluation (the session and its faults remain)"
                    );
                } else {
                    warn_raw!(
                        "{}",
                        self.diagnostic(source, &err).render(&self.config.sources)
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
            let resolved = self.engine.module_resolver().resolve(
                &self.engine,
                Some(source),
                &cap[1],
                rhai::Position::NONE,
            );
            match resolved {
                Ok(module) => {
                    self.engine.register_static_module(&cap[2], module);
                }
                Err(e) => warn!(
                    "warning: module {:?} stays for that input only: {e}",
                    &cap[1]
                ),
            }
        }
    }

    /// Clears Ctrl-C so the next evaluation runs.
    fn reset_stop(&self) {
        interrupted().store(false, Ordering::SeqCst);
        self.session.stop.clear();
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
    /// true if everything was removed.
    fn cleanup(&mut self) -> bool {
        self.reset_stop();
        let before = self.session.record().cleanup.len();
        let (engine, ast) = (&self.engine, &self.ast);
        let ok = catch_unwind(AssertUnwindSafe(|| {
            self.session.cleanup(|f| {
                f.call::<Dynamic>(engine, ast, ())
                    .map(|_| ())
                    .map_err(|e| Diagnostic::from_eval("repl", &e).message)
            })
        }))
        .unwrap_or(false);
        if self.session.record().cleanup.len() == before {
            say("cleanup: nothing to remove");
        }
        if !ok {
            // The steps that failed in this cleanup (the ledger has already taken them).
            let left: Vec<String> = self
                .session
                .record()
                .cleanup
                .iter()
                .skip(before)
                .filter(|c| !c.ok)
                .map(|c| {
                    c.step
                        .strip_prefix("delete ")
                        .unwrap_or(&c.step)
                        .to_string()
                })
                .collect();
            warn!(
                "error: cleanup could not remove everything; still there: {}",
                if left.is_empty() {
                    "(see the failed steps above)".to_string()
                } else {
                    left.join(", ")
                }
            );
        }
        ok
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

/// A run id that is unique on this machine and sorts by time: `pb-YYYYMMDD-HHMMSS-XXXX`.
fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let tag = (now.as_nanosecond() as u64 ^ (u64::from(std::process::id()) << 20)) & 0xffff;
    format!("pb-{}-{tag:04x}", now.strftime("%Y%m%d-%H%M%S"))
}
