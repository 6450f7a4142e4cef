//! Why a run must stop now: a terminating signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT), a halt
//! from outside (the cluster frozen, the run's lease lost), or the playbook's deadline on its
//! clock or the wall clock. A leaf of the core: the clock, the
//! session and the engine all check it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The process-wide interrupt flag, set by the signal handler (any [`Signal`]).
pub fn interrupted() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// The signals that stop a run (each runs cleanup before the process leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): in the REPL, stops one evaluation.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP (the terminal went away).
    Hangup,
    /// SIGQUIT (Ctrl-\\).
    Quit,
}

impl Signal {
    /// Every signal that stops a run.
    pub const ALL: [Signal; 4] = [
        Signal::Interrupt,
        Signal::Terminate,
        Signal::Hangup,
        Signal::Quit,
    ];

    /// Its conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
            Signal::Quit => "SIGQUIT",
        }
    }

    /// Whether it ends a whole session (everything but SIGINT, which in the REPL stops only
    /// the evaluation under way).
    pub fn ends_session(self) -> bool {
        self != Signal::Interrupt
    }

    /// Its code in [`last_signal_code`] (0 is none).
    pub fn code(self) -> usize {
        self as usize + 1
    }
}

/// The last signal received (0: none), kept apart from the flag so that clearing a Ctrl-C
/// never forgets a SIGTERM. Set by the signal handler itself (see `run::start`).
pub fn last_signal_code() -> &'static Arc<AtomicUsize> {
    static LAST: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    LAST.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// A session-ending signal was received: it is never cleared. Set by the signal handler itself.
pub fn ending_flag() -> &'static Arc<AtomicBool> {
    static ENDING: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    ENDING.get_or_init(|| Arc::new(AtomicBool::new(false)))
}
/// Why the run was stopped from outside the process (the cluster frozen, the lease lost), if
/// it was; set once, by [`halt`].
fn halt_note() -> &'static Mutex<Option<String>> {
    static NOTE: OnceLock<Mutex<Option<String>>> = OnceLock::new();
    NOTE.get_or_init(|| Mutex::new(None))
}

/// Stops the whole run from outside, as a session-ending signal does, for `why` (e.g. "the
/// cluster was frozen by ..."): every stop check from now on sees it, cleanup still runs, and
/// the verdict is "interrupted". The first reason stays. True if this call set it.
pub fn halt(why: String) -> bool {
    let mut note = halt_note().lock().unwrap_or_else(|e| e.into_inner());
    if note.is_some() {
        return false;
    }
    *note = Some(why);
    ending_flag().store(true, Ordering::SeqCst);
    interrupted().store(true, Ordering::SeqCst);
    true
}

/// Why the run was stopped from outside the process, if it was (see [`halt`]).
pub fn halted() -> Option<String> {
    halt_note()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Cleanup is under way: a signal now is reported and cleanup goes on.
static CLEANING: AtomicBool = AtomicBool::new(false);

/// Records that `signal` arrived: every stop check from now on sees it.
pub fn signalled(signal: Signal) {
    last_signal_code().store(signal.code(), Ordering::SeqCst);
    if signal.ends_session() {
        ending_flag().store(true, Ordering::SeqCst);
    }
    interrupted().store(true, Ordering::SeqCst);
}

/// The last signal received, if any.
pub fn last_signal() -> Option<Signal> {
    let code = last_signal_code().load(Ordering::SeqCst);
    Signal::ALL.into_iter().find(|s| s.code() == code)
}

/// Whether a session-ending signal (SIGTERM, SIGHUP, SIGQUIT) was received.
pub fn ending() -> bool {
    ending_flag().load(Ordering::SeqCst)
}

/// Forgets a Ctrl-C so the REPL's next evaluation runs; a session-ending signal stays.
pub fn clear_interrupt() {
    if !ending() {
        interrupted().store(false, Ordering::SeqCst);
    }
}

/// Marks cleanup as under way (or over).
pub fn set_cleaning(on: bool) {
    CLEANING.store(on, Ordering::SeqCst);
}

/// Whether cleanup is under way.
pub fn cleaning() -> bool {
    CLEANING.load(Ordering::SeqCst)
}

/// What a playbook may still do once its own statements are over and its `--timeout` is
/// spent: run its `on_cleanup` closures and re-check its steady states. Removing its faults is
/// never cut short (each removal has its own bound).
pub const AFTER_GRACE: Duration = Duration::from_secs(30);

/// Why a playbook was stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Its `--timeout` passed.
    Timeout(Duration),
    /// Its `--timeout` and the [`AFTER_GRACE`] after it passed, in cleanup or the re-check.
    TimeoutAfter(Duration),
    /// A signal (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT), or a [`halt`] (the cluster frozen, the
    /// lease lost).
    Interrupted,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Timeout(d) => write!(
                f,
                "timed out: the playbook ran longer than its {} (--timeout)",
                crate::duration::format(*d)
            ),
            StopReason::TimeoutAfter(d) => write!(
                f,
                "timed out: past its {} (--timeout) and the {} grace for cleanup closures and steady-state re-checks",
                crate::duration::format(*d),
                crate::duration::format(AFTER_GRACE)
            ),
            StopReason::Interrupted => match last_signal() {
                _ if halted().is_some() => {
                    write!(f, "stopped: {}", halted().unwrap_or_default())
                }
                Some(s) if s != Signal::Interrupt => write!(f, "interrupted ({})", s.name()),
                _ => write!(f, "interrupted (Ctrl-C or SIGTERM)"),
            },
        }
    }
}

/// A clock-based deadline check, installed by the session once it knows its clock: whether
/// the run's clock is past the deadline plus the given extra time.
type ClockCheck = Box<dyn Fn(Duration) -> bool + Send + Sync>;

/// The stop conditions of one playbook; checked by the engine's progress hook and by every wait.
pub struct Stop {
    timeout: Duration,
    /// Cleanup's stop ignores Ctrl-C: the run's promise is that cleanup finishes.
    interruptible: bool,
    wall_deadline: Instant,
    clock_passed: OnceLock<ClockCheck>,
    reason: Mutex<Option<StopReason>>,
    /// Set once the playbook's statements are over: the deadline moves on by [`AFTER_GRACE`].
    after: AtomicBool,
}

impl Stop {
    /// Stop after `timeout` of wall time (and of the run's clock, once [`Stop::set_clock`] is called).
    pub fn new(timeout: Duration) -> Self {
        Stop {
            timeout,
            interruptible: true,
            wall_deadline: Instant::now() + timeout,
            clock_passed: OnceLock::new(),
            reason: Mutex::new(None),
            after: AtomicBool::new(false),
        }
    }

    /// A stop that never fires (cleanup bounds its own waits).
    pub fn unbounded() -> Self {
        Stop {
            interruptible: false,
            ..Stop::new(Duration::from_secs(100 * 365 * 24 * 3600))
        }
    }

    /// When the playbook's time runs out on the wall clock.
    pub fn wall_deadline(&self) -> Instant {
        self.wall_deadline
    }

    /// The wall-clock instant at which this stop fires by itself: the deadline, plus the
    /// grace once the playbook's statements are over.
    pub fn due(&self) -> Instant {
        let extra = if self.after.load(Ordering::SeqCst) {
            AFTER_GRACE
        } else {
            Duration::ZERO
        };
        self.wall_deadline + extra
    }

    /// The playbook's time budget.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Also stop when `passed(extra)` says the run's own clock (virtual in the simulator) is
    /// past the deadline plus `extra`.
    pub fn set_clock(&self, passed: impl Fn(Duration) -> bool + Send + Sync + 'static) {
        let _ = self.clock_passed.set(Box::new(passed));
    }

    /// The reason to stop, if there is one now; the first reason found sticks.
    pub fn check(&self) -> Option<StopReason> {
        let mut reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if reason.is_none() {
            if self.interruptible && interrupted().load(Ordering::Relaxed) {
                *reason = Some(StopReason::Interrupted);
            } else {
                let after = self.after.load(Ordering::SeqCst);
                let extra = if after { AFTER_GRACE } else { Duration::ZERO };
                if Instant::now() >= self.wall_deadline + extra
                    || self.clock_passed.get().is_some_and(|passed| passed(extra))
                {
                    *reason = Some(if after {
                        StopReason::TimeoutAfter(self.timeout)
                    } else {
                        StopReason::Timeout(self.timeout)
                    });
                }
            }
        }
        *reason
    }

    /// The playbook's statements are over: its cleanup closures and steady-state re-checks
    /// may run until the deadline plus [`AFTER_GRACE`] (one budget: a playbook that used all of
    /// its `--timeout` gets only the grace). A timeout already reached is forgotten so that
    /// cleanup runs; Ctrl-C is not.
    pub fn after_playbook(&self) {
        self.after.store(true, Ordering::SeqCst);
        let mut reason = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*reason, Some(StopReason::Timeout(_))) {
            *reason = None;
        }
    }

    /// Forgets the reason to stop, so the next evaluation runs: the REPL goes on after Ctrl-C
    /// stopped one of its evaluations (the interrupt flag must be cleared too).
    pub fn clear(&self) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The reason the run stopped, if it was stopped.
    pub fn reason(&self) -> Option<StopReason> {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner())
    }
}
