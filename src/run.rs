//! The run lifecycle below both front ends (`playbook run` and `playbook repl`): start-up (async
//! runtime, signal handlers, a thread with a big stack), the target and the run id, the
//! session's engine and evaluation, and [`Run::finish`] — cleanup last-in first-out, then the
//! steady-state re-checks, then the verdict. What the front ends share is written here once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rhai::{AST, Engine, EvalAltResult};

use crate::connection::{self, Target, TargetChoice, TargetKind};
use crate::engine::{self, Diagnostic, EngineConfig};
use crate::outcome::Verdict;
use crate::report::{ErrorInfo, PlaybookReport};
use crate::session::{Journal, Session};
use crate::stop::{self, Signal};

/// What the signal handler says when a signal arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// A batch (also the REPL reading a pipe): the first signal stops the run, which cleans up
    /// and exits 130.
    Batch,
    /// The REPL at a terminal: Ctrl-C stops one evaluation (the REPL says so); other signals end the session.
    Repl,
}

/// Runs `work` on a thread with room for deep scripts, inside a tokio runtime, with SIGINT,
/// SIGTERM, SIGHUP and SIGQUIT caught before `work` starts: each sets the interrupt flag (the
/// run stops, cleans up, and exits 130); one that arrives during cleanup is reported and
/// cleanup goes on.
pub fn start(front: Front, work: impl FnOnce() -> Verdict + Send + 'static) -> Verdict {
    let runtime = match connection::Rt::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Verdict::Error;
        }
    };
    // Registered here, before the work starts, so no signal is ever lost to the default action;
    // the flags are set in the signal handler itself, so a statement that starts right after
    // a signal already sees it.
    if let Err(e) = set_flags_in_handler() {
        eprintln!("error: cannot catch signals: {e}");
        return Verdict::Error;
    }
    let signals = match runtime.block_on(async { listen() }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot catch signals: {e}");
            return Verdict::Error;
        }
    };
    runtime.spawn(relay(signals, front));
    let worker = std::thread::Builder::new()
        .name("playbook".into())
        .stack_size(256 << 20)
        .spawn(move || {
            let _in_runtime = runtime.enter();
            work()
        });
    let verdict = match worker.map(|w| w.join()) {
        Ok(Ok(verdict)) => verdict,
        _ => Verdict::Error,
    };
    // The relay task may not have been scheduled before the work saw the flag, cleaned up and
    // ended (a loaded machine): the signal is still announced before the process leaves.
    if let Some(signal) = stop::last_signal() {
        announce(signal, front);
    }
    verdict
}

/// Says, once per process, that `signal` stops the run (in the REPL at a terminal, Ctrl-C
/// stops one evaluation and the REPL says so itself); true if this call said it.
fn announce(signal: Signal, front: Front) -> bool {
    static ANNOUNCED: AtomicBool = AtomicBool::new(false);
    if !(front == Front::Batch || signal.ends_session()) || ANNOUNCED.swap(true, Ordering::SeqCst) {
        return false;
    }
    let leaving = if front == Front::Repl {
        ", cleaning up and leaving"
    } else {
        " and cleaning up"
    };
    eprintln!("\ninterrupted by {}: stopping{leaving}", signal.name());
    true
}

/// Makes the signal handler set the stop flags directly (async-signal-safe atomic stores).
#[cfg(unix)]
fn set_flags_in_handler() -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    use signal_hook::flag;
    for (number, signal) in [
        (SIGINT, Signal::Interrupt),
        (SIGTERM, Signal::Terminate),
        (SIGHUP, Signal::Hangup),
        (SIGQUIT, Signal::Quit),
    ] {
        flag::register_usize(number, stop::last_signal_code().clone(), signal.code())?;
        if signal.ends_session() {
            flag::register(number, stop::ending_flag().clone())?;
        }
        flag::register(number, stop::interrupted().clone())?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_flags_in_handler() -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
type Listeners = Vec<(Signal, tokio::signal::unix::Signal)>;
#[cfg(not(unix))]
type Listeners = ();

#[cfg(unix)]
fn listen() -> std::io::Result<Listeners> {
    use tokio::signal::unix::{SignalKind, signal};
    Signal::ALL
        .into_iter()
        .map(|s| {
            let kind = match s {
                Signal::Interrupt => SignalKind::interrupt(),
                Signal::Terminate => SignalKind::terminate(),
                Signal::Hangup => SignalKind::hangup(),
                Signal::Quit => SignalKind::quit(),
            };
            signal(kind).map(|l| (s, l))
        })
        .collect()
}

#[cfg(not(unix))]
fn listen() -> std::io::Result<Listeners> {
    Ok(())
}

/// Sets the flag for every signal (the handler has already), and says what happens: the
/// signal that stops the run is announced; a later one during cleanup is reported as such.
#[cfg(unix)]
async fn relay(mut listeners: Listeners, front: Front) {
    loop {
        let waits = listeners.iter_mut().map(|(s, l)| {
            let s = *s;
            Box::pin(async move { l.recv().await.map(|_| s) })
        });
        let (got, _, _) = futures::future::select_all(waits).await;
        let Some(signal) = got else { return };
        stop::signalled(signal);
        connection::wake_waits();
        if announce(signal, front) {
            continue;
        }
        if stop::cleaning() {
            eprintln!(
                "\n{} during cleanup: cleanup goes on until every fault is removed",
                signal.name()
            );
        }
    }
}

#[cfg(not(unix))]
async fn relay(_: Listeners, _front: Front) {
    while tokio::signal::ctrl_c().await.is_ok() {
        stop::signalled(Signal::Interrupt);
        connection::wake_waits();
    }
}

/// A run id that is unique on this machine and sorts by time: `pb-YYYYMMDD-HHMMSS-XXXX`.
pub fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let tag = (now.as_nanosecond() as u64 ^ (u64::from(std::process::id()) << 20)) & 0xffff;
    format!("pb-{}-{tag:04x}", now.strftime("%Y%m%d-%H%M%S"))
}

/// The targets of a run: a real cluster is connected once and shared; the simulator is made
/// new for each playbook, so a playbook's figures do not depend on what ran before it.
pub struct Targets {
    kind: TargetKind,
    choice: TargetChoice,
    real: Option<Target>,
}

impl Targets {
    /// Chooses the target (`--cluster`, else kube when a kubeconfig is found, else the
    /// simulator) and connects to a real one. Must be called inside a tokio runtime context.
    pub fn connect(choice: &TargetChoice) -> Result<Targets, String> {
        let kind = connection::choose(choice);
        let real = match kind {
            TargetKind::Kube => Some(
                connection::Rt::current()
                    .block_on(connection::connect(choice))
                    .map_err(|e| e.to_string())?,
            ),
            TargetKind::Sim => None,
        };
        Ok(Targets {
            kind,
            choice: choice.clone(),
            real,
        })
    }

    /// The kind chosen.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The target for the next playbook.
    pub fn next(&self) -> Target {
        self.real
            .clone()
            .unwrap_or_else(|| connection::simulated(self.choice.seed, self.choice.scenario))
    }
}

/// The journal of a run on `target`, kept in `state_dir`; none for the in-process simulator
/// (nothing it creates outlives the process).
pub fn journal_for(target: &Target, state_dir: &Path, run_id: &str) -> Option<Journal> {
    (!target.is_simulated()).then(|| Journal::new(state_dir, run_id, target.context.clone()))
}

/// How a run (a playbook, or a REPL session) ended.
pub struct Outcome {
    pub verdict: Verdict,
    /// What ended it early, if anything did.
    pub error: Option<ErrorInfo>,
    /// Cleanup removed everything.
    pub cleanup_ok: bool,
    /// Cleanup steps that ran (none: there was nothing to remove).
    pub cleanup_steps: usize,
}

/// One session with its engine: evaluation, then [`Run::finish`].
pub struct Run {
    pub session: Arc<Session>,
    pub engine: Engine,
    pub config: EngineConfig,
    /// The playbook's functions and imports, so closures can run after it ended (cleanup
    /// steps, steady-state re-checks); the REPL keeps the functions defined so far here.
    pub ast: AST,
    /// Where errors are shown (the console's error stream, or standard error).
    show_error: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Run {
    /// The engine for `session`; errors are shown with `show_error`.
    pub fn new(
        config: EngineConfig,
        session: Arc<Session>,
        show_error: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Run {
        let engine = engine::build(&config, Some(session.clone()));
        Run {
            session,
            engine,
            config,
            ast: AST::empty(),
            show_error,
        }
    }

    /// Runs a compiled playbook named `name`; its verdict so far and what ended it, if anything
    /// (shown as it happens).
    pub fn play(&mut self, name: &str, ast: &AST) -> (Verdict, Option<ErrorInfo>) {
        self.ast = ast.clone();
        let result = catch_unwind(AssertUnwindSafe(|| self.engine.run_ast(ast)));
        match result {
            Ok(Ok(())) => (Verdict::Passed, None),
            Ok(Err(err)) => {
                let d = Diagnostic::from_eval(name, &err);
                (self.show_error)(&d.render(&self.config.sources));
                let (verdict, kind) = classify(&err, &self.session);
                (verdict, Some(error_info(kind, &d)))
            }
            Err(panic) => {
                let what = panic_text(panic.as_ref());
                let message =
                    format!("internal error in a host function (a bug in playbook): {what}");
                (self.show_error)(&format!("error: {message}\n"));
                let error = ErrorInfo {
                    kind: ErrorKind::Internal.as_str().into(),
                    message,
                    at: None,
                    notes: Vec::new(),
                };
                (Verdict::Error, Some(error))
            }
        }
    }

    /// Runs every pending cleanup step now, last-in first-out (`on_cleanup` closures run on
    /// this engine); says what could not be removed. `(everything removed, steps that ran)`.
    /// A signal during cleanup is reported and does not stop it.
    pub fn cleanup(&mut self, name: &str) -> (bool, usize) {
        stop::set_cleaning(true);
        let before = self.session.record().cleanup.len();
        let (engine, ast, session) = (&self.engine, &self.ast, &self.session);
        let cleaned = catch_unwind(AssertUnwindSafe(|| {
            session.cleanup(|f| {
                engine::call_after(engine, ast, f)
                    .map(|_| ())
                    .map_err(|e| Diagnostic::from_eval(name, &e).message)
            })
        }))
        .unwrap_or(false);
        stop::set_cleaning(false);
        let record = self.session.record();
        let steps = &record.cleanup[before.min(record.cleanup.len())..];
        if !cleaned {
            // The steps that failed in this cleanup (the ledger has already taken them).
            let left: Vec<&str> = steps
                .iter()
                .filter(|c| !c.ok)
                .map(|c| c.step.strip_prefix("delete ").unwrap_or(&c.step))
                .collect();
            (self.show_error)(&format!(
                "error: cleanup could not remove everything; still there: {}\n",
                if left.is_empty() {
                    "(see the failed steps above)".to_string()
                } else {
                    left.join(", ")
                }
            ));
        }
        (cleaned, steps.len())
    }

    /// Ends the run whatever happened: [`Run::cleanup`], then [`Run::conclude`].
    pub fn finish(&mut self, name: &str, verdict: Verdict, error: Option<ErrorInfo>) -> Outcome {
        // The playbook's statements are over: what is left of its --timeout (and a grace) is
        // for its cleanup closures and re-checks; faults never seen injected are asked about
        // once more before they are removed.
        self.session.stop.after_playbook();
        crate::proof::confirm_injections(&self.session);
        let cleanup = self.cleanup(name);
        let mut outcome = self.conclude(name, verdict, error, cleanup);
        // A playbook's verdict needs proof that its faults took effect (the REPL's session,
        // whose faults come and go by hand, is not held to it).
        let (verdict, why) = crate::proof::settle(outcome.verdict, &self.session);
        if let Some(message) = why {
            outcome
                .error
                .get_or_insert_with(|| crate::proof::inconclusive_info(message));
        }
        outcome.verdict = verdict;
        self.announce(name, &outcome);
        outcome
    }

    /// Posts the verdict as a Kubernetes Event (regarding the run's latest fault), then waits,
    /// bounded, for the Events still queued. Never changes the verdict.
    pub fn announce(&self, name: &str, outcome: &Outcome) {
        let s = &self.session;
        let status = crate::report::Status::of(outcome.verdict);
        // `cleanup_incomplete` -> `CleanupIncomplete` (the JSON report's spelling, as a reason).
        let label = serde_json::to_value(status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let reason: String = label
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect();
        let why = outcome
            .error
            .as_ref()
            .map(|e| format!("; {}", e.message.lines().next().unwrap_or_default()))
            .unwrap_or_default();
        let records: Vec<String> = s
            .record()
            .records
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::session::figure(v)))
            .collect();
        let records = if records.is_empty() {
            String::new()
        } else {
            format!("; records: {}", records.join(", "))
        };
        s.tell(crate::session::events::Told {
            warning: outcome.verdict != Verdict::Passed,
            action: "Conclude".into(),
            reason,
            note: format!(
                "{name}: {} after {:.1}s (run {}){why}{records}",
                status.word(),
                s.elapsed_s(),
                s.run_id
            ),
        });
        s.flush_events();
    }

    /// After cleanup (`(everything removed, steps)` from [`Run::cleanup`]): if the run passed
    /// or failed, the steady-state re-checks; the verdict, worsened by what they found.
    pub fn conclude(
        &mut self,
        name: &str,
        verdict: Verdict,
        error: Option<ErrorInfo>,
        (cleaned, steps): (bool, usize),
    ) -> Outcome {
        let mut verdict = verdict;
        let mut error = error;
        if !cleaned {
            verdict = verdict.worst(Verdict::CleanupIncomplete);
        }
        if matches!(verdict, Verdict::Passed | Verdict::Failed) {
            let (engine, ast, session) = (&self.engine, &self.ast, &self.session);
            match crate::host::expect::recheck_steady_states(session, engine, ast) {
                Ok(true) => {}
                Ok(false) => verdict = verdict.worst(Verdict::Failed),
                Err(e) => {
                    let d = Diagnostic::from_eval(name, &e);
                    (self.show_error)(&d.render(&self.config.sources));
                    let (v, kind) = classify(&e, session);
                    error.get_or_insert_with(|| error_info(kind, &d));
                    verdict = verdict.worst(v);
                }
            }
        }
        Outcome {
            verdict,
            error,
            cleanup_ok: cleaned,
            cleanup_steps: steps,
        }
    }
}

pub use crate::proof::ErrorKind;

fn error_info(kind: ErrorKind, d: &Diagnostic) -> ErrorInfo {
    ErrorInfo {
        kind: kind.as_str().into(),
        message: d.message.clone(),
        at: d.location.as_ref().map(|l| l.to_string()),
        notes: d.notes.clone(),
    }
}

/// A failed expectation is "failed"; a signal is "interrupted"; anything else is "error". With
/// the kind of error the reports name: failure, timeout, interrupted or script.
pub fn classify(err: &EvalAltResult, session: &Session) -> (Verdict, ErrorKind) {
    crate::proof::classify(err, session.stop.reason())
}

/// The message of a panic's payload (a bug in playbook, reported in one line).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// A playbook's report (as `--report` writes it) from how it ended and its session's record;
/// `log` is the log the front end kept (the record's own otherwise).
pub fn report(
    meta: &crate::report::Meta,
    outcome: Outcome,
    started_at: jiff::Timestamp,
    session: &Session,
    log: Option<Vec<crate::session::LogLine>>,
) -> PlaybookReport {
    let timing = crate::report::Timing {
        started_at,
        finished_at: jiff::Timestamp::now(),
        run_started_at: session.started,
        run_s: session.elapsed_s(),
    };
    let mut record = session.record().clone();
    if let Some(log) = log {
        record.log = log;
    }
    PlaybookReport::ran(
        meta,
        outcome.verdict,
        outcome.error,
        outcome.cleanup_ok,
        &timing,
        &record,
    )
}

/// What [`play_source`] gives back: the playbook's report (as `playbook run --report` writes
/// it) and every line it printed, in order.
pub struct Played {
    pub report: PlaybookReport,
    pub lines: Vec<String>,
}

/// Runs playbook source `text`, named `name`, as `playbook run` runs one playbook — compile and
/// check, evaluate, [`Run::finish`] — against a new in-process simulator (`seed`, `scenario`),
/// with `vars` for `param`; no process is spawned and nothing is printed. A playbook that does
/// not compile or check is an `Err` with its diagnostics. For fast tests of host functions; must
/// not be called inside a tokio runtime (it makes its own).
pub fn play_source(
    name: &str,
    text: &str,
    seed: u64,
    scenario: playbook_sim::platform::Scenario,
    vars: &[(&str, &str)],
) -> Result<Played, String> {
    use crate::report::{Header, Meta};
    use crate::session::{Line, SessionConfig, Stop};
    use sha2::Digest;
    use std::sync::Mutex;

    let runtime =
        connection::Rt::new().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let _in_runtime = runtime.enter();
    let config = EngineConfig::default();
    let checker = engine::build(&config, None);
    let found = engine::check(&config, &checker, name, text);
    if !found.is_empty() {
        return Err(found.iter().map(|d| d.render(&config.sources)).collect());
    }
    let ast = engine::compile(&checker, &config.sources, name, text)
        .map_err(|d| d.render(&config.sources))?;
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = lines.clone();
    let session = Session::new(SessionConfig {
        run_id: new_run_id(),
        playbook: name.to_string(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        output: Arc::new(move |line| {
            let text = match line {
                Line::Print(s) => s,
                Line::Debug(s) => format!("[debug] {s}"),
            };
            if let Ok(mut l) = out.lock() {
                l.push(text);
            }
        }),
        stop: Stop::new(std::time::Duration::from_secs(600)),
        target: connection::simulated(seed, scenario),
        rt: runtime.clone(),
        journal: None,
        dry_run: false,
        prometheus: None,
    });
    let errors = lines.clone();
    let mut run = Run::new(
        config,
        session.clone(),
        Arc::new(move |text: &str| {
            if let Ok(mut l) = errors.lock() {
                l.extend(text.lines().map(str::to_string));
            }
        }),
    );
    let started_at = jiff::Timestamp::now();
    let (verdict, error) = run.play(name, &ast);
    let outcome = run.finish(name, verdict, error);
    let meta = Meta {
        name: name.to_string(),
        header: Header::parse(text),
        sha256: format!("{:x}", sha2::Sha256::digest(text.as_bytes())),
    };
    let report = report(&meta, outcome, started_at, &session, None);
    let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(Played { report, lines })
}
