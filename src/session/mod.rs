//! One run of one playbook: its id, parameters, target and clock, output, stop conditions,
//! cleanup ledger and journal, and the record of what it observed.

mod journal;
mod ledger;
mod phase;
mod record;
mod stop;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use jiff::Timestamp;

pub use journal::{Journal, state_dir};
pub use ledger::{Ledger, ObjectRef, REMOVE_TIMEOUT, Step, api_for, api_in, remove, retry};
pub use phase::{Phase, PhaseObserver};
pub use record::{CleanupStep, Expectation, Fault, LogLine, Record, Status};
pub use stop::{Stop, StopReason, interrupted};

use crate::connection::Target;

/// What a playbook says, routed to whoever shows it (console, REPL, report).
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `print(...)` and `log(...)`.
    Print(String),
    /// `debug(...)`, with where it was called.
    Debug(String),
}

/// Where a session's lines go.
pub type Output = Arc<dyn Fn(Line) + Send + Sync>;

/// Writes a line to standard output. A closed pipe (`playbook run ... | head`) is not an
/// error: the run goes on, and cleanup still runs.
pub fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// An output that writes lines to standard output.
pub fn stdout_output() -> Output {
    Arc::new(|line| match line {
        Line::Print(s) => say(&s),
        Line::Debug(s) => say(&format!("[debug] {s}")),
    })
}

/// A failed expectation: the playbook's verdict is "failed" (exit code 1), not "broken".
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
}

/// What a session is made from.
pub struct SessionConfig {
    pub run_id: String,
    pub playbook: String,
    pub vars: BTreeMap<String, String>,
    pub output: Output,
    pub stop: Stop,
    pub target: Target,
    pub rt: tokio::runtime::Handle,
    /// Where the journal goes; `None` for the in-process simulator (nothing outlives the process).
    pub journal: Option<Journal>,
    /// Create nothing: faults print the objects they would create; waits do not wait.
    pub dry_run: bool,
    /// The Prometheus that `metrics::prometheus` queries.
    pub prometheus: Option<String>,
}

/// The state one playbook run shares with its host functions (reached through the engine's tag).
pub struct Session {
    pub run_id: String,
    pub playbook: String,
    pub vars: BTreeMap<String, String>,
    pub output: Output,
    pub stop: Stop,
    pub target: Target,
    pub rt: tokio::runtime::Handle,
    pub dry_run: bool,
    pub prometheus: Option<String>,
    /// When the playbook started, on the run's clock.
    pub started: Timestamp,
    ledger: Mutex<Ledger>,
    journal: Mutex<Option<Journal>>,
    record: Mutex<Record>,
    /// `steady_state` conditions, re-checked after cleanup.
    steady: Mutex<Vec<(String, rhai::FnPtr, String)>>,
    /// The cluster's kinds, discovered once per session on first need.
    discovery: Mutex<Option<Arc<kube::Discovery>>>,
    /// Who is told each phase (progress displays); set once with [`Session::observe`].
    observer: OnceLock<PhaseObserver>,
    /// Continuous guards (`guard(name, condition)`), and the names of those violated.
    guards: Mutex<Guards>,
    /// Set while guards are being checked (a guard's condition does not check guards).
    pub checking_guards: std::sync::atomic::AtomicBool,
}

/// Guards declared (name, condition, where) and the names of those violated.
type Guards = (Vec<(String, rhai::FnPtr, String)>, Vec<String>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn new(c: SessionConfig) -> Arc<Self> {
        let started = c.target.clock.now();
        let deadline = started
            .checked_add(jiff::SignedDuration::try_from(c.stop.timeout()).unwrap_or_default())
            .unwrap_or(started);
        let clock = c.target.clock.clone();
        c.stop.set_clock(move |extra| {
            clock.now()
                >= deadline
                    .checked_add(jiff::SignedDuration::try_from(extra).unwrap_or_default())
                    .unwrap_or(deadline)
        });
        Arc::new(Session {
            run_id: c.run_id,
            playbook: c.playbook,
            vars: c.vars,
            output: c.output,
            stop: c.stop,
            target: c.target,
            rt: c.rt,
            dry_run: c.dry_run,
            prometheus: c.prometheus,
            started,
            ledger: Mutex::new(Ledger::default()),
            journal: Mutex::new(c.journal),
            record: Mutex::new(Record::default()),
            steady: Mutex::new(Vec::new()),
            discovery: Mutex::new(None),
            observer: OnceLock::new(),
            guards: Mutex::new((Vec::new(), Vec::new())),
            checking_guards: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Sends every phase of this session to `observer` (the first observer set stays).
    pub fn observe(&self, observer: PhaseObserver) {
        let _ = self.observer.set(observer);
    }

    /// Announces what the playbook is doing now (no-op without an observer). Never call it
    /// while holding the record's lock: the observer may read the record.
    pub fn phase(&self, phase: Phase) {
        if let Some(o) = self.observer.get() {
            o(&phase, self.elapsed_s());
        }
    }

    /// The run's clock now.
    pub fn now(&self) -> Timestamp {
        self.target.clock.now()
    }

    /// Seconds since the playbook started, on the run's clock.
    pub fn elapsed_s(&self) -> f64 {
        self.now().duration_since(self.started).as_secs_f64()
    }

    /// The cluster's kinds (discovered on first call, then cached for the session).
    pub fn discovery(&self) -> Result<Arc<kube::Discovery>, kube::Error> {
        let mut cached = lock(&self.discovery);
        if let Some(d) = cached.as_ref() {
            return Ok(d.clone());
        }
        let d = Arc::new(
            self.rt
                .block_on(kube::Discovery::new(self.target.client.clone()).run())?,
        );
        *cached = Some(d.clone());
        Ok(d)
    }

    /// The record of observations (locked).
    pub fn record(&self) -> MutexGuard<'_, Record> {
        lock(&self.record)
    }

    /// Writes `object` to the journal as intended, before it is created, and adds its removal
    /// to the ledger. Fails (and nothing should be created) if the journal cannot be written.
    pub fn will_create(&self, object: &ObjectRef) -> Result<(), String> {
        if let Some(j) = lock(&self.journal).as_mut() {
            j.mark(object, "intended")
                .map_err(|e| format!("cannot write the journal before creating {object}: {e}"))?;
        }
        lock(&self.ledger).push(Step::Delete(object.clone()));
        Ok(())
    }

    /// Marks `object` as removed in the journal and the ledger (its cleanup step will not run).
    pub fn removed(&self, object: &ObjectRef) {
        lock(&self.ledger).done(object);
        let at = self.elapsed_s();
        if let Some(f) = self.record().faults.iter_mut().find(|f| {
            f.name == object.name && Some(f.namespace.as_str()) == object.namespace.as_deref()
        }) {
            f.removed_s.get_or_insert(at);
        }
        if let Some(j) = lock(&self.journal).as_mut() {
            let _ = j.mark(object, "removed");
        }
    }

    /// Adds a playbook closure to the ledger.
    pub fn on_cleanup(&self, label: String, f: rhai::FnPtr) {
        lock(&self.ledger).push(Step::Script { label, f });
    }

    /// Objects created and not yet removed.
    pub fn live_objects(&self) -> Vec<ObjectRef> {
        lock(&self.ledger).live_objects()
    }

    /// Whether a fault (or any object) has been created yet.
    pub fn has_created(&self) -> bool {
        !self.record().faults.is_empty()
    }

    /// Registers a steady-state condition to check again after cleanup.
    pub fn add_steady_state(&self, name: String, f: rhai::FnPtr, at: String) {
        lock(&self.steady).push((name, f, at));
    }

    /// The steady-state conditions registered so far.
    pub fn steady_states(&self) -> Vec<(String, rhai::FnPtr, String)> {
        lock(&self.steady).clone()
    }

    /// Adds a continuous guard.
    pub fn add_guard(&self, name: String, f: rhai::FnPtr, at: String) {
        lock(&self.guards).0.push((name, f, at));
    }

    /// The guards declared so far, minus those already violated.
    pub fn guards(&self) -> Vec<(String, rhai::FnPtr, String)> {
        let g = lock(&self.guards);
        g.0.iter()
            .filter(|(n, ..)| !g.1.contains(n))
            .cloned()
            .collect()
    }

    /// Marks a guard violated (it is no longer checked).
    pub fn guard_violated(&self, name: &str) {
        lock(&self.guards).1.push(name.to_string());
    }

    /// Whether a guard was violated.
    pub fn guard_was_violated(&self, name: &str) -> bool {
        lock(&self.guards).1.iter().any(|n| n == name)
    }

    /// Runs every pending cleanup step, last-in first-out; `script` runs the closures. Returns
    /// true when everything was removed.
    pub fn cleanup(&self, mut script: impl FnMut(&rhai::FnPtr) -> Result<(), String>) -> bool {
        let steps = lock(&self.ledger).take();
        let mut all_ok = true;
        for step in steps {
            self.phase(Phase::Cleanup {
                step: step.describe(),
            });
            let t0 = self.now();
            let result = match &step {
                Step::Delete(o) => {
                    let r = remove(&self.target, &self.rt, o);
                    if r.is_ok() {
                        self.removed(o);
                    }
                    r
                }
                Step::Script { label, f } => script(f).map(|_| format!("ran {label}")),
            };
            all_ok &= result.is_ok();
            let (ok, detail) = match result {
                Ok(d) => (true, d),
                Err(e) => (false, e),
            };
            (self.output)(Line::Print(format!(
                "cleanup: {}{detail}",
                if ok { "" } else { "FAILED: " }
            )));
            let took_ms = self.now().duration_since(t0).unsigned_abs().as_millis() as u64;
            self.record().cleanup.push(CleanupStep {
                step: step.describe(),
                ok,
                detail,
                took_ms,
            });
        }
        if all_ok {
            if let Some(j) = lock(&self.journal).as_ref() {
                let _ = j.finish();
            }
        }
        all_ok
    }
}
