//! The pipeline runner's MLflow client: a circuit breaker (closed, open, half-open) and the fallback buffer of runs not yet logged.
//!
//! Closed: calls go through; `threshold` consecutive failures open it. Open: calls are not
//! attempted (the run's metrics go to the buffer) until `cooldown` has passed; then one call
//! is let through as a probe (half-open): success closes the breaker and flushes the buffer,
//! failure opens it again for another cool-down.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through; failures are counted.
    Closed,
    /// Calls are rejected until the cooldown ends.
    Open,
    /// One probe call decides: closed on success, open again on failure.
    HalfOpen,
}

impl State {
    /// As the health endpoint and the metrics write it.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
        }
    }

    /// The `mlflow_client_circuit_breaker_state` gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u8 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
        }
    }
}

/// A circuit breaker with its counters.
#[derive(Debug, Clone)]
pub struct Breaker {
    /// Consecutive failures that open it.
    pub threshold: u32,
    /// Time it stays open before a half-open probe.
    pub cooldown: SignedDuration,
    /// Its state now.
    pub state: State,
    /// Consecutive failures (reset by a success).
    pub consecutive: u32,
    /// Failed calls, in total.
    pub failures_total: u64,
    /// Successful calls, in total.
    pub successes_total: u64,
    /// Calls not attempted because the breaker was open.
    pub rejected_total: u64,
    /// Times it opened.
    pub opened_total: u64,
    /// When it last opened.
    pub opened_at: Option<Timestamp>,
    /// When its state last changed.
    pub last_transition: Option<Timestamp>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: SignedDuration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            state: State::Closed,
            consecutive: 0,
            failures_total: 0,
            successes_total: 0,
            rejected_total: 0,
            opened_total: 0,
            opened_at: None,
            last_transition: None,
        }
    }

    fn go(&mut self, s: State, now: Timestamp) {
        if self.state != s {
            self.state = s;
            self.last_transition = Some(now);
        }
    }

    /// May a call be made now? Moves open to half-open once the cool-down passed.
    pub fn allow(&mut self, now: Timestamp) -> bool {
        match self.state {
            State::Closed | State::HalfOpen => true,
            State::Open => {
                if self.opened_at.is_some_and(|t| now >= t + self.cooldown) {
                    self.go(State::HalfOpen, now);
                    true
                } else {
                    self.rejected_total += 1;
                    false
                }
            }
        }
    }

    /// Records the outcome of a call that was allowed.
    pub fn record(&mut self, ok: bool, now: Timestamp) {
        if ok {
            self.successes_total += 1;
            self.consecutive = 0;
            self.go(State::Closed, now);
            return;
        }
        self.failures_total += 1;
        self.consecutive += 1;
        if self.state == State::HalfOpen || self.consecutive >= self.threshold {
            if self.state != State::Open {
                self.opened_total += 1;
            }
            self.opened_at = Some(now);
            self.go(State::Open, now);
        }
    }

    /// When the breaker wants to probe (open: end of the cool-down).
    pub fn next_probe(&self) -> Option<Timestamp> {
        match self.state {
            State::Open => self.opened_at.map(|t| t + self.cooldown),
            _ => None,
        }
    }
}

/// Runs whose metrics wait for MLflow: run (workflow) name to buffered metric count.
#[derive(Debug, Clone, Default)]
pub struct Buffer {
    /// Largest number of runs kept; more are dropped.
    pub max_runs: usize,
    /// Buffered metric count by run (workflow) name.
    pub runs: BTreeMap<String, u64>,
    /// Runs dropped because the buffer was full.
    pub dropped_runs: u64,
    /// Runs flushed to MLflow once it answered again.
    pub flushed_runs: u64,
    /// Metrics flushed to MLflow.
    pub flushed_metrics: u64,
}

impl Buffer {
    /// Keeps `metrics` metrics of `run` for later (drops the run when the buffer is full).
    pub fn push(&mut self, run: &str, metrics: u64) {
        if !self.runs.contains_key(run) && self.runs.len() >= self.max_runs {
            self.dropped_runs += 1;
            return;
        }
        *self.runs.entry(run.to_string()).or_default() += metrics;
    }

    /// Metrics buffered in total.
    pub fn metrics(&self) -> u64 {
        self.runs.values().sum()
    }

    /// Empties the buffer (after a successful flush); returns the number of metrics.
    pub fn flush(&mut self) -> u64 {
        let m = self.metrics();
        self.flushed_runs += self.runs.len() as u64;
        self.flushed_metrics += m;
        self.runs.clear();
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_probes_after_cooldown_and_closes_on_success() {
        let t0 = crate::virtual_epoch();
        let s = |n| t0 + SignedDuration::from_secs(n);
        let mut b = Breaker::new(3, SignedDuration::from_secs(10));
        for i in 0..2 {
            assert!(b.allow(s(i)));
            b.record(false, s(i));
        }
        assert_eq!(b.state, State::Closed);
        b.record(false, s(2));
        assert_eq!(b.state, State::Open);
        assert!(!b.allow(s(5)));
        assert_eq!(b.next_probe(), Some(s(12)));
        assert!(b.allow(s(12)));
        assert_eq!(b.state, State::HalfOpen);
        b.record(false, s(12));
        assert_eq!(b.state, State::Open);
        assert!(b.allow(s(22)));
        b.record(true, s(22));
        assert_eq!(b.state, State::Closed);
        assert_eq!((b.opened_total, b.consecutive), (2, 0));
    }

    #[test]
    fn buffer_keeps_runs_until_flushed_and_is_bounded() {
        let mut f = Buffer {
            max_runs: 2,
            ..Buffer::default()
        };
        f.push("a", 3);
        f.push("b", 1);
        f.push("c", 1);
        f.push("a", 2);
        assert_eq!((f.runs.len(), f.metrics(), f.dropped_runs), (2, 6, 1));
        assert_eq!(f.flush(), 6);
        assert_eq!((f.flushed_runs, f.runs.len()), (2, 0));
    }
}
