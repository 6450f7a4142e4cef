//! One run of one playbook: its id, parameters, target and clock, output, stop conditions,
//! cleanup ledger and journal, and the record of what it observed.

pub mod events;
mod journal;
mod ledger;
pub mod limits;
mod phase;
mod record;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use jiff::Timestamp;

pub use crate::stop::{Stop, StopReason, interrupted};
pub use journal::{EntryState, Journal, RestoreEntry, state_dir};
pub use ledger::{
    Ledger, OUTAGE_WINDOW, ObjectRef, REMOVE_TIMEOUT, Restore, Step, Uncordon, api_for, api_in,
    cluster_id, create_adopting, describe, remove, resource_for, restore, transient, uncordon,
};
pub use phase::{Phase, PhaseObserver};
pub use record::{
    CleanupStep, Event, Expectation, Fault, LogLine, MAX_EVENTS, MAX_POINTS, MAX_SERIES, Record,
    Series, Status, evaluated, expectation_done, figure, mark, recorded, sample_map,
};

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
    pub rt: crate::connection::Rt,
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
    pub rt: crate::connection::Rt,
    pub dry_run: bool,
    pub prometheus: Option<String>,
    /// When the playbook started, on the run's clock.
    pub started: Timestamp,
    ledger: Mutex<Ledger>,
    journal: Mutex<Option<Journal>>,
    record: Mutex<Record>,
    /// `steady_state` conditions, re-checked after cleanup.
    steady: Mutex<Vec<(String, rhai::FnPtr, String)>>,
    /// Who is told each phase (progress displays); set once with [`Session::observe`].
    observer: OnceLock<PhaseObserver>,
    /// Cleanup has begun: no fault may be created until [`Session::reopen`].
    closing: AtomicBool,
    /// Bytes the playbook has printed, and whether it went over the limit.
    printed: AtomicUsize,
    print_exhausted: AtomicBool,
    /// Bytes of the values the playbook has recorded (last value per key).
    recorded: Mutex<BTreeMap<String, usize>>,
    /// Continuous guards (`guard(name, condition)`), and the names of those violated.
    guards: Mutex<Guards>,
    /// Set while guards are being checked (a guard's condition does not check guards).
    pub checking_guards: std::sync::atomic::AtomicBool,
    /// Kubernetes Events for the run's phases (a real cluster, not a dry run).
    events: Option<events::Recorder>,
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
        let wall_deadline = c.stop.wall_deadline();
        let events = (!c.target.is_simulated() && !c.dry_run)
            .then(|| events::Recorder::start(c.target.client.clone(), &c.rt, &c.run_id));
        Arc::new_cyclic(|me: &std::sync::Weak<Session>| {
            // This thread's API requests end with the run: at its deadline, or on Ctrl-C.
            let me = me.clone();
            crate::connection::request::install(crate::connection::request::Budget {
                until: wall_deadline,
                cancelled: Some(Arc::new(move || {
                    me.upgrade().is_some_and(|s| s.stop.check().is_some())
                })),
            });
            Session {
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
                observer: OnceLock::new(),
                closing: AtomicBool::new(false),
                printed: AtomicUsize::new(0),
                print_exhausted: AtomicBool::new(false),
                recorded: Mutex::new(BTreeMap::new()),
                guards: Mutex::new((Vec::new(), Vec::new())),
                checking_guards: std::sync::atomic::AtomicBool::new(false),
                events,
            }
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

    /// Posts a Kubernetes Event about a fault's phase (`object`: the chaos object; `selected`:
    /// the pods it reached, `ns/name`, when known). Never waits for the post.
    pub fn tell_fault(&self, object: &ObjectRef, selected: Vec<String>, told: events::Told) {
        if let Some(e) = &self.events {
            e.fault(object, selected, told);
        }
    }

    /// Whether the run posts Kubernetes Events (a cluster, not a dry run).
    pub fn posts_events(&self) -> bool {
        self.events.is_some()
    }

    /// A fault was created; `owner` is the controller of a pod it may select (or that pod),
    /// the `related` workload of its Events. Never waits.
    pub fn fault_created(&self, object: &ObjectRef, owner: ObjectRef) {
        if let Some(e) = &self.events {
            e.created(object, owner);
        }
    }

    /// Posts a Kubernetes Event about the run (an expectation, the verdict), regarding its
    /// latest fault. Never waits for the post.
    pub fn tell(&self, told: events::Told) {
        if let Some(e) = &self.events {
            e.run(told);
        }
    }

    /// Waits (bounded) for the Events still queued; no Event is posted after it.
    pub fn flush_events(&self) {
        if let Some(e) = &self.events {
            e.flush();
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

    /// The record of observations (locked).
    pub fn record(&self) -> MutexGuard<'_, Record> {
        lock(&self.record)
    }

    /// Writes `object` to the journal as intended, before it is created, and adds its removal
    /// to the ledger; the ledger step's id. Fails (and nothing may be created) if the journal
    /// cannot be written, if cleanup has begun, or if the run already has a live object of
    /// that kind, namespace and name (the create could only fail, or worse, be confused with it).
    pub fn will_create(&self, object: &ObjectRef) -> Result<usize, String> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(format!(
                "refusing to create {object}: cleanup has begun (no fault may be created in an on_cleanup step or a steady-state re-check)"
            ));
        }
        // The cluster frozen, or the lease lost: nothing more is injected (cleanup goes on).
        if let Some(why) = crate::stop::halted() {
            return Err(format!("refusing to create {object}: {why}"));
        }
        if let Some(live) = lock(&self.ledger).live_named(object) {
            return Err(format!(
                "refusing to create {object}: this run already created {live} and it is still there (give each fault its own `name`, or delete the first one before)"
            ));
        }
        if let Some(j) = lock(&self.journal).as_mut() {
            if j.cluster.is_none() {
                j.cluster = cluster_id(&self.target, &self.rt);
            }
            j.mark(object, EntryState::Intended)
                .map_err(|e| format!("cannot write the journal before creating {object}: {e}"))?;
        }
        Ok(lock(&self.ledger).push(Step::Delete(object.clone())))
    }

    /// The object of ledger step `id` was created with `uid`: the ledger and the journal
    /// know it by that uid from now on. The object as it is known now.
    pub fn created(&self, id: usize, intended: &ObjectRef, uid: Option<String>) -> ObjectRef {
        let known = lock(&self.ledger).set_uid(id, uid.clone());
        if let Some(j) = lock(&self.journal).as_mut() {
            let _ = j.created(intended, uid.clone());
        }
        known.unwrap_or_else(|| ObjectRef {
            uid,
            ..intended.clone()
        })
    }

    /// The create of ledger step `id` failed: its step and journal entry are dropped, and
    /// nothing else (an object of the same name belongs to someone else).
    pub fn abandon(&self, id: usize, intended: &ObjectRef) {
        lock(&self.ledger).abandon(id);
        if let Some(j) = lock(&self.journal).as_mut() {
            let _ = j.forget(intended);
        }
    }

    /// Before the playbook first scales `workload`: the replicas to put back at cleanup.
    pub fn will_scale(&self, restore: Restore) -> Result<(), String> {
        if self.closing.load(Ordering::SeqCst) || lock(&self.ledger).restores(&restore.workload) {
            return Ok(());
        }
        if let Some(j) = lock(&self.journal).as_mut() {
            if j.cluster.is_none() {
                j.cluster = cluster_id(&self.target, &self.rt);
            }
            j.mark_restore(&restore, "pending").map_err(|e| {
                format!(
                    "cannot write the journal before scaling {}: {e}",
                    restore.workload
                )
            })?;
        }
        lock(&self.ledger).push(Step::Restore(restore));
        Ok(())
    }

    /// Before the playbook cordons a node that was schedulable: the uncordon to run at cleanup,
    /// written to the journal first. Refused once cleanup has begun (a cordon is a fault);
    /// `Ok(false)` when an uncordon of that node is already pending (nothing more to undo).
    pub fn will_cordon(&self, u: Uncordon) -> Result<bool, String> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(format!(
                "refusing to cordon node {}: cleanup has begun (no fault may be made in an on_cleanup step or a steady-state re-check)",
                u.node
            ));
        }
        if lock(&self.ledger).uncordons(&u.node) {
            return Ok(false);
        }
        if let Some(j) = lock(&self.journal).as_mut() {
            if j.cluster.is_none() {
                j.cluster = cluster_id(&self.target, &self.rt);
            }
            j.mark_uncordon(&u, "pending").map_err(|e| {
                format!(
                    "cannot write the journal before cordoning node {}: {e}",
                    u.node
                )
            })?;
        }
        lock(&self.ledger).push(Step::Uncordon(u));
        Ok(true)
    }

    /// Whether a cordon of `node` by this run is waiting to be undone.
    pub fn cordoned(&self, node: &str) -> bool {
        lock(&self.ledger).uncordons(node)
    }

    /// This run's cordon of `node` still to undo, if any.
    pub fn pending_uncordon(&self, node: &str) -> Option<Uncordon> {
        lock(&self.ledger).pending_uncordon(node)
    }

    /// The cordon `u` was undone before cleanup (ledger and journal know it).
    pub fn uncordoned(&self, u: &Uncordon) {
        lock(&self.ledger).uncordoned(u);
        if let Some(j) = lock(&self.journal).as_mut() {
            let _ = j.mark_uncordon(u, "done");
        }
    }

    /// Marks `object` as removed in the journal and the ledger (its cleanup step will not run).
    pub fn removed(&self, object: &ObjectRef) {
        lock(&self.ledger).done(object);
        let at = self.elapsed_s();
        let first_removal = self
            .record()
            .faults
            .iter_mut()
            .find(|f| {
                f.name == object.name && Some(f.namespace.as_str()) == object.namespace.as_deref()
            })
            .is_some_and(|f| f.removed_s.replace(f.removed_s.unwrap_or(at)).is_none());
        if first_removal {
            self.tell_fault(
                object,
                Vec::new(),
                events::Told {
                    warning: false,
                    action: "Remove".into(),
                    reason: "FaultRemoved".into(),
                    note: format!(
                        "{object} removed by run {} ({})",
                        self.run_id, self.playbook
                    ),
                },
            );
        }
        if let Some(j) = lock(&self.journal).as_mut() {
            let _ = j.mark(object, EntryState::Removed);
        }
    }

    /// Whether cleanup has begun (no new fault may be created).
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// After a cleanup the session may create faults again (the REPL goes on after `:cleanup`).
    pub fn reopen(&self) {
        self.closing.store(false, Ordering::SeqCst);
    }

    /// Counts `bytes` of playbook output; false (and the playbook is to stop) once the
    /// output went over [`limits::OUTPUT`].
    pub fn allow_output(&self, bytes: usize) -> bool {
        let before = self.printed.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > limits::OUTPUT {
            if !self.print_exhausted.swap(true, Ordering::Relaxed) {
                (self.output)(Line::Print(limits::output_limit_message()));
            }
            return false;
        }
        true
    }

    /// Whether the playbook wrote more output than allowed.
    pub fn output_exhausted(&self) -> bool {
        self.print_exhausted.load(Ordering::Relaxed)
    }

    /// Checks that recording `bytes` under `key` keeps the record within its limits.
    pub fn allow_record(&self, key: &str, bytes: usize) -> Result<(), String> {
        use limits::{RECORD_VALUE, RECORDS};
        if bytes > RECORD_VALUE {
            return Err(format!(
                "record(\"{key}\"): the value takes {} KiB as JSON, more than the {} KiB a record may hold",
                bytes >> 10,
                RECORD_VALUE >> 10
            ));
        }
        let mut recorded = lock(&self.recorded);
        let total: usize = recorded
            .iter()
            .filter(|(k, _)| k.as_str() != key)
            .map(|(k, v)| k.len() + v)
            .sum::<usize>()
            + key.len()
            + bytes;
        if total > RECORDS {
            return Err(format!(
                "record(\"{key}\"): the playbook's records would take more than {} MiB",
                RECORDS >> 20
            ));
        }
        recorded.insert(key.to_string(), bytes);
        Ok(())
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

    /// Runs every pending cleanup step, last-in first-out; `script` runs the closures. Steps
    /// added while cleaning (an `on_cleanup` step registering another) run in a further
    /// round; from the start of cleanup no fault may be created. Returns true when
    /// everything was removed.
    pub fn cleanup(&self, mut script: impl FnMut(&rhai::FnPtr) -> Result<(), String>) -> bool {
        self.closing.store(true, Ordering::SeqCst);
        // Cleanup closures get an output budget of their own: a playbook stopped for printing
        // too much must still be able to run them.
        self.printed.store(0, Ordering::Relaxed);
        self.print_exhausted.store(false, Ordering::Relaxed);
        let mut all_ok = true;
        for _round in 0..CLEANUP_ROUNDS {
            let steps = lock(&self.ledger).take();
            if steps.is_empty() {
                break;
            }
            all_ok &= self.run_steps(steps, &mut script);
        }
        if lock(&self.ledger).pending() > 0 {
            (self.output)(Line::Print(format!(
                "cleanup: FAILED: on_cleanup steps kept adding steps ({CLEANUP_ROUNDS} rounds)"
            )));
            all_ok = false;
        }
        all_ok &= self.live_objects().is_empty();
        // The journal goes once nothing it names is left (a failed on_cleanup closure leaves
        // nothing `playbook cleanup` could remove).
        if let Some(j) = lock(&self.journal).as_ref() {
            if j.settled() {
                let _ = j.finish();
            }
        }
        all_ok
    }

    fn run_steps(
        &self,
        steps: Vec<Step>,
        script: &mut impl FnMut(&rhai::FnPtr) -> Result<(), String>,
    ) -> bool {
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
                // A closure's requests get cleanup's own time, not the (spent) run's.
                Step::Script { label, f } => crate::connection::request::within(
                    crate::connection::request::Budget::window(OUTAGE_WINDOW),
                    || script(f).map(|_| format!("ran {label}")),
                ),
                Step::Restore(r) => {
                    let done = restore(&self.target, &self.rt, r);
                    if done.is_ok() {
                        if let Some(j) = lock(&self.journal).as_mut() {
                            let _ = j.mark_restore(r, "done");
                        }
                    }
                    done
                }
                Step::Uncordon(u) => {
                    let done = uncordon(&self.target, &self.rt, u);
                    if done.is_ok() {
                        if let Some(j) = lock(&self.journal).as_mut() {
                            let _ = j.mark_uncordon(u, "done");
                        }
                    }
                    done
                }
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
            mark(
                self,
                "cleanup",
                &step.describe(),
                if ok { "ok" } else { &detail },
            );
            self.record().cleanup.push(CleanupStep {
                step: step.describe(),
                ok,
                detail,
                took_ms,
            });
        }
        all_ok
    }
}

/// Rounds of cleanup before giving up on steps that add steps.
const CLEANUP_ROUNDS: usize = 8;
