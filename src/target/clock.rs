//! A run's clock: wall time against a real cluster (or `sim serve`), virtual time against the
//! in-process simulator, where waiting advances the simulation to its next event.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::session::{Stop, StopReason};
use crate::sim::Sim;

/// The clock of a run.
#[derive(Clone)]
pub enum Clock {
    /// Real time.
    Wall,
    /// The simulator's virtual time: moves only when the run waits.
    Virtual(Sim),
}

/// How often a wall-clock wait re-checks its condition when nothing wakes it earlier.
pub const WALL_TICK: Duration = Duration::from_millis(500);

/// The longest virtual step: conditions that depend on time alone are measured to this.
pub const VIRTUAL_TICK: SignedDuration = SignedDuration::from_secs(1);

impl Clock {
    /// The time now.
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => Timestamp::now(),
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
            Clock::Wall => {
                let left = limit.duration_since(Timestamp::now());
                let nap = left
                    .clamp(
                        SignedDuration::ZERO,
                        SignedDuration::try_from(WALL_TICK).unwrap_or_default(),
                    )
                    .unsigned_abs();
                std::thread::sleep(nap.max(Duration::from_millis(1)));
            }
        }
        Ok(())
    }
}
