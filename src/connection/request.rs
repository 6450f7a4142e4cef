//! Every API request bounded by the time its caller has: a per-request timeout, retries of
//! transient answers (500, 502, 503, 504, 429 with `Retry-After`, resets, stalls) inside the
//! caller's [`Budget`] and never beyond it, and an interrupt (Ctrl-C, `--timeout`) that ends a
//! request in flight. It replaces kube-client's own retry layer (up to 15 retries of 429/503/504
//! with back-off, whatever the caller's deadline), which a real cluster's client is built without.
//!
//! The budget is the calling thread's: a run installs its own ([`install`]), an expectation or a
//! cleanup narrows or widens it for a while ([`within`]). A request made from a spawned task (a
//! watch's initial list) has [`DEFAULT_WINDOW`]. Watches pass through untouched (the watcher
//! re-establishes them); requests through a Service proxy are tried once, so a probe counts a
//! 503 from a service with no ready endpoint as a failed request at once, and so are evictions
//! (a 429 there is a PodDisruptionBudget refusing, retried by `cluster::drain` on its own clock).

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use kube::client::Body;
use tower::{BoxError, Layer, Service};

/// The longest one attempt may take before it counts as a stall (and is retried, if time is left).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The budget of a request made where no caller set one (a watch's initial list in its task).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// The first pause between attempts; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a request in flight checks whether its caller was interrupted.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Whether the caller has been told to stop (Ctrl-C, its `--timeout`).
pub type Cancelled = Arc<dyn Fn() -> bool + Send + Sync>;

/// The time a caller gives its requests, retries included.
#[derive(Clone)]
pub struct Budget {
    /// No attempt starts, and none runs, past this instant.
    pub until: Instant,
    /// Ends a request in flight when it returns true.
    pub cancelled: Option<Cancelled>,
}

impl Budget {
    /// `window` from now, uninterruptible (cleanup's removals).
    pub fn window(window: Duration) -> Budget {
        Budget {
            until: Instant::now() + window,
            cancelled: None,
        }
    }

    fn is_cancelled(&self) -> bool {
        self.cancelled.as_ref().is_some_and(|c| c())
    }
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Makes `budget` this thread's budget until another is installed (a run's own, at its start).
pub fn install(budget: Budget) {
    BUDGET.with(|b| *b.borrow_mut() = Some(budget));
}

/// Runs `f` with `budget` as this thread's budget, then restores the one before.
pub fn within<T>(budget: Budget, f: impl FnOnce() -> T) -> T {
    with_opt(Some(budget), f)
}

/// Runs `f` with `budget` (or none) as this thread's budget, then restores the one before.
pub(super) fn with_opt<T>(budget: Option<Budget>, f: impl FnOnce() -> T) -> T {
    let before = BUDGET.with(|b| std::mem::replace(&mut *b.borrow_mut(), budget));
    struct Restore(Option<Budget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            BUDGET.with(|b| *b.borrow_mut() = before);
        }
    }
    let _restore = Restore(before);
    f()
}

/// The budget installed on this thread, if any.
pub(super) fn installed() -> Option<Budget> {
    BUDGET.with(|b| b.borrow().clone())
}

/// Polls `fut` with `budget` as this thread's budget (the async form of [`within`]).
pub async fn scoped<F: std::future::Future>(budget: Budget, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    futures::future::poll_fn(|cx| within(budget.clone(), || fut.as_mut().poll(cx))).await
}

/// This thread's budget, cut to at most `max` from now (a request that may fail fast).
pub fn narrowed(max: Duration) -> Budget {
    let mut b = current();
    b.until = b.until.min(Instant::now() + max);
    b
}

/// This thread's budget (or [`DEFAULT_WINDOW`] from now where none was set).
pub fn current() -> Budget {
    BUDGET
        .with(|b| b.borrow().clone())
        .unwrap_or_else(|| Budget::window(DEFAULT_WINDOW))
}

/// Why a request gave up without an answer from the API server.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp {
    /// The caller was interrupted (Ctrl-C, SIGTERM, its `--timeout`).
    #[error("{method} {path}: interrupted")]
    Interrupted { method: String, path: String },
    /// No answer, or only transient ones, within the caller's time.
    #[error("{method} {path}: no answer within {waited:.1?} ({attempts} attempt(s); last: {last})")]
    NoAnswer {
        method: String,
        path: String,
        waited: Duration,
        attempts: u32,
        last: String,
    },
}

/// The layer a real cluster's client is built with (see the module documentation).
#[derive(Clone, Default)]
pub struct BoundedLayer;

impl<S> Layer<S> for BoundedLayer {
    type Service = Bounded<S>;
    fn layer(&self, inner: S) -> Bounded<S> {
        Bounded {
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

/// See [`BoundedLayer`].
pub struct Bounded<S> {
    inner: Arc<Mutex<S>>,
}

impl<S> Clone for Bounded<S> {
    fn clone(&self) -> Self {
        Bounded {
            inner: self.inner.clone(),
        }
    }
}

/// Whether an answer is worth another attempt.
fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// The server's `Retry-After` in seconds, if it sent one.
fn retry_after<B>(r: &Response<B>) -> Option<Duration> {
    let v = r.headers().get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn clone_request(req: &Request<Body>) -> Option<Request<Body>> {
    let mut out = Request::new(req.body().try_clone()?);
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    *out.extensions_mut() = req.extensions().clone();
    Some(out)
}

fn is_watch(req: &Request<Body>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

impl<S, B> Service<Request<Body>> for Bounded<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness is awaited per attempt, inside the request's own future.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> BoxFuture<'static, Result<Response<B>, BoxError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            // Read on the first poll, on the caller's thread (kube's buffer hands this future
            // back to the caller, which awaits it).
            let budget = current();
            if is_watch(&req) {
                return attempt(&inner, req).await;
            }
            // A Service proxy's answer is the workload's; an eviction's 429 is a
            // PodDisruptionBudget's "not now", which its caller retries on the run's clock.
            let path = req.uri().path();
            let once = path.contains("/proxy/") || path.ends_with("/eviction");
            bounded(&inner, req, &budget, once).await
        })
    }
}

async fn attempt<S, B>(inner: &Arc<Mutex<S>>, req: Request<Body>) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError>,
{
    futures::future::poll_fn(|cx| lock(inner).poll_ready(cx)).await?;
    let fut = lock(inner).call(req);
    fut.await
}

fn lock<S>(m: &Mutex<S>) -> std::sync::MutexGuard<'_, S> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves when `budget` is cancelled.
pub(super) async fn cancelled(budget: &Budget) {
    while !budget.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

async fn bounded<S, B>(
    inner: &Arc<Mutex<S>>,
    req: Request<Body>,
    budget: &Budget,
    once: bool,
) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError>,
{
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let interrupted = || GaveUp::Interrupted {
        method: method.clone(),
        path: path.clone(),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    let mut req = Some(req);
    loop {
        if budget.is_cancelled() {
            return Err(interrupted().into());
        }
        let left = budget.until.saturating_duration_since(Instant::now());
        let this = match req.as_ref().and_then(clone_request) {
            Some(r) => r,
            // A body that cannot be copied: this attempt is the last.
            None => match req.take() {
                Some(r) => r,
                None => unreachable!("a request is kept until its last attempt"),
            },
        };
        attempts += 1;
        // The first attempt always gets its full timeout-bounded chance, even on a spent budget.
        let limit = if attempts == 1 {
            REQUEST_TIMEOUT.min(left.max(Duration::from_secs(1)))
        } else {
            REQUEST_TIMEOUT.min(left)
        };
        let outcome = tokio::select! {
            r = tokio::time::timeout(limit, attempt(inner, this)) => r,
            () = cancelled(budget) => return Err(interrupted().into()),
        };
        let (pause, last) = match outcome {
            Ok(Ok(resp)) if !transient(resp.status()) => return Ok(resp),
            Ok(Ok(resp)) => {
                let pause = retry_after(&resp).unwrap_or(backoff);
                if once || req.is_none() || Instant::now() + pause >= budget.until {
                    // Out of time (or not to be retried): the caller sees the server's answer.
                    return Ok(resp);
                }
                (pause, format!("{}", resp.status()))
            }
            Ok(Err(e)) => {
                if once || req.is_none() || Instant::now() + backoff >= budget.until {
                    return Err(e);
                }
                (backoff, e.to_string())
            }
            Err(_elapsed) => {
                let last = format!("no answer within {limit:.1?}");
                if once || req.is_none() || Instant::now() + backoff >= budget.until {
                    return Err(GaveUp::NoAnswer {
                        method,
                        path,
                        waited: started.elapsed(),
                        attempts,
                        last,
                    }
                    .into());
                }
                (backoff, last)
            }
        };
        tracing_retry(&method, &path, attempts, &last);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = cancelled(budget) => return Err(interrupted().into()),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// With `PLAYBOOK_DEBUG_REQUESTS` set, each retry is shown on stderr.
fn tracing_retry(method: &str, path: &str, attempt: u32, last: &str) {
    if std::env::var_os("PLAYBOOK_DEBUG_REQUESTS").is_some() {
        eprintln!("retry {attempt}: {method} {path} ({last})");
    }
}

/// The request that gave up, if `e` is one of ours (interrupted or out of time).
pub fn gave_up(e: &kube::Error) -> Option<&GaveUp> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(g) = s.downcast_ref::<GaveUp>() {
            return Some(g);
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_nest_and_restore() {
        install(Budget::window(Duration::from_secs(100)));
        let outer = current().until;
        within(Budget::window(Duration::from_secs(1)), || {
            assert!(current().until < outer);
        });
        assert_eq!(current().until, outer);
    }

    #[test]
    fn only_transient_answers_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            assert!(transient(StatusCode::from_u16(code).unwrap()));
        }
        for code in [400, 401, 403, 404, 409, 422] {
            assert!(!transient(StatusCode::from_u16(code).unwrap()));
        }
    }
}
