//! A run's clock: wall time against a real cluster (or `sim serve`), where waits wake on watch
//! events; virtual time against the in-process simulator, where waiting advances the
//! simulation to its next event.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use std::sync::Arc;

use crate::stop::{Stop, StopReason};
use playbook_sim::Sim;

/// The clock of a run.
#[derive(Clone)]
pub enum Clock {
    /// Real time; waits wake up when the cluster changes (see [`Changes`]).
    Wall(Arc<Changes>),
    /// The simulator's virtual time: moves only when the run waits.
    Virtual(Sim),
}

/// Wakes wall-clock waits when the cluster changes: the target's watch-driven caches (see
/// `cache`) notify it on every event of a kind a condition has read, so a condition is re-checked
/// within milliseconds of a change, and at least every [`WALL_TICK`] for conditions no object
/// reflects (latencies, Prometheus).
pub struct Changes {
    notify: Arc<tokio::sync::Notify>,
}

impl Changes {
    pub fn new() -> Arc<Self> {
        Arc::new(Changes {
            notify: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// What the caches notify.
    pub fn notifier(&self) -> Arc<tokio::sync::Notify> {
        self.notify.clone()
    }

    /// Waits until something changes, or `at_most`.
    fn wait(&self, at_most: Duration) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            std::thread::sleep(at_most);
            return;
        };
        let notify = self.notify.clone();
        rt.block_on(async move {
            let _ = tokio::time::timeout(at_most, notify.notified()).await;
        });
    }
}

/// How often a wall-clock wait re-checks its condition when nothing wakes it earlier.
pub const WALL_TICK: Duration = Duration::from_millis(250);

/// The longest virtual step: conditions that depend on time alone are measured to this.
pub const VIRTUAL_TICK: SignedDuration = SignedDuration::from_secs(1);

impl Clock {
    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall(_) => Timestamp::now(),
            Clock::Virtual(sim) => sim.now(),
        }
    }

    /// Lets time pass until `until` (or until the run must stop).
    pub fn sleep_until(&self, until: Timestamp, stop: &Stop) -> Result<(), StopReason> {
        loop {
            if let Some(r) = stop.check() {
                return Err(r);
            }
            let now = self.now();
            if now >= until {
                return Ok(());
            }
            self.step(until, stop)?;
        }
    }

    /// One step towards `limit`: in virtual time, to the simulator's next event (or `limit`);
    /// in wall time, a short real sleep. Conditions are re-checked after each step.
    pub fn step(&self, limit: Timestamp, stop: &Stop) -> Result<(), StopReason> {
        if let Some(r) = stop.check() {
            return Err(r);
        }
        match self {
            Clock::Virtual(sim) => {
                let now = sim.now();
                let tick = now.checked_add(VIRTUAL_TICK).unwrap_or(now).min(limit);
                let next = sim.next_event_at().filter(|t| *t < tick).unwrap_or(tick);
                sim.advance_to(next);
            }
            Clock::Wall(changes) => {
                let left = limit.duration_since(Timestamp::now());
                let nap = left
                    .clamp(
                        SignedDuration::ZERO,
                        SignedDuration::try_from(WALL_TICK).unwrap_or_default(),
                    )
                    .unsigned_abs();
                changes.wait(nap.max(Duration::from_millis(1)));
            }
        }
        Ok(())
    }
}
