//! A run's clock: wall time against a real cluster (or `sim serve`), where waits wake on watch
//! events; virtual time against the in-process simulator, where waiting advances the
//! simulation to its next event.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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
/// `cache`) report every event, so a condition is re-checked within milliseconds of a change.
/// A condition whose every read was answered by a cache cannot change until a cache does, so
/// it is re-checked on a change (and at least every [`REFLECTED_TICK`], since it may read the
/// time); any other (latencies, Prometheus, objects read from the API server) at least every
/// [`WALL_TICK`].
pub struct Changes {
    notify: tokio::sync::Notify,
    /// Events seen by the caches so far.
    generation: AtomicU64,
    /// Reads answered from a cache so far.
    served: AtomicU64,
    /// Times a script read the time so far (see [`Clock::time_read`]).
    timed: AtomicU64,
}

/// Wakes the waits that may last long (see [`Clock::step_after`]) when a run must stop.
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A signal or a halt (the cluster frozen, the lease lost) has set a stop flag: the long waits
/// wake to see it.
pub fn wake_waits() {
    WAKE.notify_waiters();
}

/// Where a run stood before it evaluated a condition (see [`Clock::step_after`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    generation: u64,
    served: u64,
    waited: u64,
    timed: u64,
}

impl Mark {
    /// Whether what was read between this mark and `now` was all answered from a cache, at
    /// once: at least one cache read, no call that waited for an answer, and no reading of
    /// the time through a host function.
    fn only_cached_until(&self, now: &Mark) -> bool {
        now.served > self.served && now.waited == self.waited && now.timed == self.timed
    }
}

impl Changes {
    pub fn new() -> Arc<Self> {
        Arc::new(Changes {
            notify: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            served: AtomicU64::new(0),
            timed: AtomicU64::new(0),
        })
    }

    /// A cache saw an event: wakes the waits.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// A cache answered a read.
    pub fn served(&self) {
        self.served.fetch_add(1, Ordering::AcqRel);
    }

    /// Waits until something changes after `since` (a generation; `None`: from now), or
    /// `at_most`, or `stop` has a reason to stop (woken by [`wake_waits`]); true if something
    /// changed.
    fn wait(&self, since: Option<u64>, at_most: Duration, stop: Option<&Stop>) -> bool {
        let Some(rt) = super::Rt::try_current() else {
            std::thread::sleep(at_most);
            return false;
        };
        rt.block_on(async {
            let changed = self.notify.notified();
            let mut changed = std::pin::pin!(changed);
            let woken = WAKE.notified();
            let mut woken = std::pin::pin!(woken);
            // Registered before the generation and the stop are read, so nothing that happens
            // in between is missed.
            changed.as_mut().enable();
            woken.as_mut().enable();
            if since.is_some_and(|g| g != self.generation.load(Ordering::Acquire)) {
                return true;
            }
            if stop.is_some_and(|s| s.check().is_some()) {
                return false;
            }
            tokio::select! {
                () = changed => true,
                () = woken, if stop.is_some() => false,
                () = tokio::time::sleep(at_most) => false,
            }
        })
    }
}

/// How often a wall-clock wait re-checks its condition when nothing wakes it earlier.
pub const WALL_TICK: Duration = Duration::from_millis(250);

/// How often a condition read only from watch-driven caches is re-checked with no change.
pub const REFLECTED_TICK: Duration = Duration::from_secs(2);

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

    /// Taken before a condition is evaluated, for [`Clock::step_after`].
    pub fn mark(&self) -> Mark {
        match self {
            Clock::Wall(c) => Mark {
                generation: c.generation.load(Ordering::Acquire),
                served: c.served.load(Ordering::Acquire),
                waited: super::Rt::try_current().map_or(u64::MAX, |rt| rt.waited()),
                timed: c.timed.load(Ordering::Acquire),
            },
            Clock::Virtual(_) => Mark {
                generation: 0,
                served: 0,
                waited: 0,
                timed: 0,
            },
        }
    }

    /// The time now, read by a host function for the script (`clock_ms`, ages): a condition
    /// that reads it can change with no cache changing, so it keeps the short steps. (Rhai's
    /// own `timestamp()` is not seen: such a condition is re-checked every [`REFLECTED_TICK`].)
    pub fn time_read(&self) -> Timestamp {
        if let Clock::Wall(c) = self {
            c.timed.fetch_add(1, Ordering::AcqRel);
        }
        self.now()
    }

    /// One step towards `limit` after a condition evaluated since `mark` did not hold. In wall
    /// time, if it read something and every read was answered by a cache at once (nothing
    /// waited for an answer: no request, no probe, no Prometheus), it is re-checked when a
    /// cache changes (at once if one changed while it was evaluated), or after
    /// [`REFLECTED_TICK`]; otherwise as [`Clock::step`].
    pub fn step_after(&self, mark: Mark, limit: Timestamp, stop: &Stop) -> Result<(), StopReason> {
        match self {
            Clock::Wall(changes) if mark.only_cached_until(&self.mark()) => {
                let until = limit.min(Timestamp::now() + REFLECTED_TICK);
                // A signal or a halt wakes the wait (`wake_waits`), and the run's deadline
                // bounds it, so it ends as soon as any other wait would.
                loop {
                    if let Some(r) = stop.check() {
                        return Err(r);
                    }
                    let due = stop
                        .due()
                        .saturating_duration_since(std::time::Instant::now());
                    let nap = nap(until, REFLECTED_TICK).min(due.max(Duration::from_millis(1)));
                    if changes.wait(Some(mark.generation), nap, Some(stop))
                        || Timestamp::now() >= until
                    {
                        return Ok(());
                    }
                }
            }
            _ => self.step(limit, stop),
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
                changes.wait(None, nap(limit, WALL_TICK), None);
            }
        }
        Ok(())
    }
}

/// The time to the `limit`, at most `tick`, at least 1 ms.
fn nap(limit: Timestamp, tick: Duration) -> Duration {
    let left = limit.duration_since(Timestamp::now());
    left.clamp(
        SignedDuration::ZERO,
        SignedDuration::try_from(tick).unwrap_or_default(),
    )
    .unsigned_abs()
    .max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Rt;

    /// A wall clock, its changes, and a runtime entered on this thread.
    fn wall() -> (Clock, Arc<Changes>, Rt) {
        let changes = Changes::new();
        (Clock::Wall(changes.clone()), changes, Rt::new().unwrap())
    }

    fn far() -> Timestamp {
        Timestamp::now() + SignedDuration::from_secs(3600)
    }

    #[test]
    fn a_change_during_the_evaluation_ends_the_next_step_at_once() {
        let (clock, changes, rt) = wall();
        let _in = rt.enter();
        let stop = Stop::new(Duration::from_secs(3600));
        let mark = clock.mark();
        changes.served(); // the condition read a cache...
        changes.changed(); // ...and an event came meanwhile
        let started = std::time::Instant::now();
        clock.step_after(mark, far(), &stop).unwrap();
        // Without the change it would wait REFLECTED_TICK (2 s); the bound is generous.
        assert!(started.elapsed() < REFLECTED_TICK / 2);
    }

    #[test]
    fn a_change_from_another_task_wakes_a_reflected_step() {
        let (clock, changes, rt) = wall();
        let _in = rt.enter();
        let stop = Stop::new(Duration::from_secs(3600));
        let mark = clock.mark();
        changes.served();
        let c = changes.clone();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c.changed();
        });
        let started = std::time::Instant::now();
        clock.step_after(mark, far(), &stop).unwrap();
        assert!(started.elapsed() < REFLECTED_TICK / 2);
    }

    #[test]
    fn a_reflected_step_still_sees_the_deadline() {
        let (clock, changes, rt) = wall();
        let _in = rt.enter();
        // The run's time ends long before REFLECTED_TICK: the step ends with it, not after.
        let stop = Stop::new(Duration::from_millis(300));
        let mark = clock.mark();
        changes.served();
        let ended = clock.step_after(mark, far(), &stop);
        assert!(matches!(ended, Err(StopReason::Timeout(_))), "{ended:?}");
    }

    #[test]
    fn only_conditions_read_from_caches_alone_wait_for_a_change() {
        let (clock, changes, rt) = wall();
        let _in = rt.enter();
        let reflected = |before: Mark| before.only_cached_until(&clock.mark());
        // Nothing read (a condition on the time alone): not reflected.
        let m = clock.mark();
        assert!(!reflected(m));
        // Read from a cache only: reflected.
        let m = clock.mark();
        changes.served();
        assert!(reflected(m));
        // A cache read and a request that waited for its answer: not reflected.
        let m = clock.mark();
        changes.served();
        rt.block_on(tokio::time::sleep(Duration::from_millis(1)));
        assert!(!reflected(m));
        // A cache read and the time (`clock_ms()`): not reflected.
        let m = clock.mark();
        changes.served();
        clock.time_read();
        assert!(!reflected(m));
    }
}
