//! The run's async runtime: one current-thread tokio runtime, driven by the thread that waits on
//! it. A call from the run's thread (`Rt::block_on`) does its own I/O on that thread, so an API
//! call costs no hand-over to a worker thread and back (a third of the CPU time of a run, with a
//! two-worker runtime). Background tasks (watches, the lease's renewals, the freeze watch, the
//! events poster, the signal relay) run whenever some thread waits on the runtime; when none has
//! for [`KEEP_EVERY`] (a script computing, a REPL at its prompt, a pause between retries), a
//! keeper thread drives them briefly, so a lease is renewed and a freeze is seen all the same.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use super::request;

/// How long the runtime may go undriven before the keeper drives it.
pub const KEEP_EVERY: Duration = Duration::from_millis(500);

/// A handle on the run's runtime; clones share it.
#[derive(Clone)]
pub struct Rt {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: tokio::runtime::Runtime,
    /// Threads inside `block_on` now.
    driving: AtomicUsize,
    /// When a `block_on` last ended, in ms since `born`.
    last: AtomicU64,
    /// How many `block_on` calls had to wait (their future was not ready at once).
    waited: AtomicU64,
    born: Instant,
}

thread_local! {
    static CURRENT: RefCell<Option<Rt>> = const { RefCell::new(None) };
}

impl Rt {
    /// A new runtime (timers and I/O enabled) and its keeper thread, which ends when the last
    /// handle is dropped.
    pub fn new() -> std::io::Result<Rt> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let inner = Arc::new(Inner {
            runtime,
            driving: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            born: Instant::now(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("runtime-keeper".into())
            .spawn(move || keep(weak))?;
        Ok(Rt { inner })
    }

    /// Runs `future` to completion on this thread, driving the runtime's I/O, timers and tasks
    /// meanwhile. Not to be called from inside a task.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let inner = &self.inner;
        inner.driving.fetch_add(1, Ordering::AcqRel);
        let _done = Done(inner);
        let mut future = std::pin::pin!(future);
        let mut first = true;
        // The caller's request budget is the future's alone: background tasks that run
        // meanwhile on this thread (a watch's list, the events poster) keep their own.
        let budget = request::installed();
        request::with_opt(None, || {
            inner.runtime.block_on(std::future::poll_fn(|cx| {
                let polled = request::with_opt(budget.clone(), || future.as_mut().poll(cx));
                if first && polled.is_pending() {
                    inner.waited.fetch_add(1, Ordering::AcqRel);
                }
                first = false;
                polled
            }))
        })
    }

    /// How many [`Rt::block_on`] calls so far had to wait for something (I/O, a timer, another
    /// task): a read answered from memory (a watch-driven cache) does not.
    pub fn waited(&self) -> u64 {
        self.inner.waited.load(Ordering::Acquire)
    }

    /// Starts `future` as a background task (it runs whenever the runtime is driven).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.runtime.spawn(future)
    }

    /// Makes this runtime the current one on this thread (for [`Rt::current`], and for the
    /// libraries that spawn with `tokio::spawn`) until the guard is dropped.
    pub fn enter(&self) -> Entered<'_> {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        Entered {
            _tokio: self.inner.runtime.enter(),
            previous,
        }
    }

    /// The runtime entered on this thread, if any.
    pub fn try_current() -> Option<Rt> {
        CURRENT.with(|c| c.borrow().clone())
    }

    /// The runtime entered on this thread. Every front end runs inside [`Rt::enter`]
    /// (`run::start`); a call outside one is a bug in the caller.
    pub fn current() -> Rt {
        match Rt::try_current() {
            Some(rt) => rt,
            None => panic!("Rt::current called outside Rt::enter"),
        }
    }
}

/// While alive, [`Rt::current`] is this runtime on this thread.
pub struct Entered<'a> {
    _tokio: tokio::runtime::EnterGuard<'a>,
    previous: Option<Rt>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Marks the end of one `block_on`, also when its future panics.
struct Done<'a>(&'a Inner);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let since = self.0.born.elapsed().as_millis() as u64;
        self.0.last.store(since, Ordering::Release);
        self.0.driving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The keeper: every [`KEEP_EVERY`], if no thread is driving the runtime and none has for that
/// long, drives it until the tasks that are ready have run (and due timers have fired).
fn keep(weak: Weak<Inner>) {
    loop {
        std::thread::sleep(KEEP_EVERY);
        let Some(inner) = weak.upgrade() else { return };
        let idle = inner.born.elapsed().as_millis() as u64
            >= inner.last.load(Ordering::Acquire) + KEEP_EVERY.as_millis() as u64;
        if inner.driving.load(Ordering::Acquire) == 0 && idle {
            let rt = Rt { inner };
            rt.block_on(async {
                // Each yield lets the scheduler poll I/O and run the tasks it woke.
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_tasks_progress_with_nobody_waiting() {
        let rt = Rt::new().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(());
        });
        // Nobody calls block_on: only the keeper can fire the timer and run the task.
        assert!(rx.recv_timeout(KEEP_EVERY * 10).is_ok());
    }

    #[test]
    fn only_calls_that_wait_are_counted() {
        let rt = Rt::new().unwrap();
        rt.block_on(async { 1 });
        assert_eq!(rt.waited(), 0);
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
        assert_eq!(rt.waited(), 1);
    }

    #[test]
    fn the_callers_budget_is_not_lent_to_background_tasks() {
        let rt = Rt::new().unwrap();
        let _in = rt.enter();
        let long = Duration::from_secs(3600);
        request::install(request::Budget::window(long));
        let (main, task) = rt.block_on(async {
            let main = request::current().until;
            let task = tokio::spawn(async { request::current().until })
                .await
                .unwrap();
            (main, task)
        });
        // The task has the default window (30 s), not the caller's hour.
        assert!(main > task + long / 2);
        assert!(request::installed().is_some());
    }

    #[test]
    fn current_is_the_entered_runtime_and_is_restored() {
        assert!(Rt::try_current().is_none());
        let rt = Rt::new().unwrap();
        {
            let _in = rt.enter();
            let n = Rt::current().block_on(async { tokio::spawn(async { 7 }).await.unwrap() });
            assert_eq!(n, 7);
        }
        assert!(Rt::try_current().is_none());
    }
}
