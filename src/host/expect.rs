//! Expectations, the heart of a playbook: `expect` (becomes true within a time), `always`
//! (holds for a whole window), `steady_state` (holds before the first fault and again after
//! cleanup). Each measures on the run's clock exactly when its condition changed.

use std::time::Duration;

use jiff::SignedDuration;
use rhai::{Dynamic, EvalAltResult, FnPtr, NativeCallContext, Position};

use crate::host::{RhaiResultOf, failure};
use crate::session::{Expectation, Line, Phase, Session, Status, Stop};

/// How long the steady state may take to return after cleanup.
pub const STEADY_RECOVERY: Duration = Duration::from_secs(300);

/// A condition's verdict and what it observed.
pub(crate) struct Observation {
    pub ok: bool,
    pub observed: String,
}

/// Reads a condition's return value: `true`/`false`, or a map with `ok` and what was observed.
pub(crate) fn observation(value: Dynamic, pos: Position) -> RhaiResultOf<Observation> {
    if let Some(ok) = value.clone().try_cast::<bool>() {
        return Ok(Observation {
            ok,
            observed: ok.to_string(),
        });
    }
    if let Some(mut map) = value.clone().try_cast::<rhai::Map>() {
        if let Some(ok) = map.remove("ok").and_then(|v| v.try_cast::<bool>()) {
            let observed = map
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            return Ok(Observation { ok, observed });
        }
    }
    Err(EvalAltResult::ErrorRuntime(
        format!(
            "a condition must return true/false or a map #{{ ok: true/false, ... }}, not {} ({value})",
            value.type_name()
        )
        .into(),
        pos,
    )
    .into())
}

/// Calls `f` with no arguments as a condition.
pub(crate) fn call_condition(ctx: &NativeCallContext, f: &FnPtr) -> RhaiResultOf<Observation> {
    let value: Dynamic = f.call_within_context(ctx, ())?;
    observation(value, ctx.call_position())
}

/// A duration argument, with an error naming the argument.
pub(crate) fn duration_arg(
    ctx: &NativeCallContext,
    what: &str,
    text: &str,
) -> RhaiResultOf<Duration> {
    crate::duration::parse(text).map_err(|e| crate::host::error(ctx, format!("{what}: {e}")))
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn millis(d: SignedDuration) -> u64 {
    d.unsigned_abs().as_millis() as u64
}

/// Waits until `eval` says ok, for at most `timeout` on the run's clock. `Ok((passed, took, last))`.
/// Each step is announced as [`Phase::Waiting`] for `what` (e.g. `expect "ready again"`).
pub(crate) fn wait_for(
    session: &Session,
    stop: &Stop,
    what: &str,
    timeout: Duration,
    pos: Position,
    mut eval: impl FnMut() -> RhaiResultOf<Observation>,
) -> RhaiResultOf<(bool, SignedDuration, String)> {
    let start = session.now();
    let limit = start.checked_add(signed(timeout)).unwrap_or(start);
    loop {
        session.phase(Phase::Waiting {
            what: what.to_string(),
            waited: session.now().duration_since(start).unsigned_abs(),
            limit: timeout,
        });
        let o = eval()?;
        crate::session::evaluated(session, what, &o.observed);
        let now = session.now();
        if o.ok {
            return Ok((true, now.duration_since(start), o.observed));
        }
        if now >= limit {
            return Ok((false, now.duration_since(start), o.observed));
        }
        session
            .target
            .clock
            .step(limit, stop)
            .map_err(|r| terminated(r, pos))?;
    }
}

/// The error that ends a script when the run must stop.
pub(crate) fn terminated(reason: crate::session::StopReason, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(reason.to_string()), pos).into()
}

/// Records an expectation's outcome and says it.
pub(crate) fn report(session: &Session, e: Expectation) {
    let mark = if e.status == Status::Passed {
        "ok"
    } else {
        "FAILED"
    };
    let timing = if e.kind == "always" {
        format!(
            "held for {}",
            crate::duration::format(Duration::from_millis(e.took_ms))
        )
    } else {
        format!(
            "after {}",
            crate::duration::format(Duration::from_millis(e.took_ms))
        )
    };
    (session.output)(Line::Print(format!(
        "{mark}: {} \"{}\" {timing} (observed {})",
        e.kind, e.name, e.observed
    )));
    crate::session::expectation_done(session, e);
}

/// In a dry run, expectations are named, not checked (nothing was injected to check).
fn dry_run_skip(session: &Session, kind: &str, name: &str) -> bool {
    if session.dry_run {
        (session.output)(Line::Print(format!(
            "dry run: would check {kind} \"{name}\""
        )));
    }
    session.dry_run
}

fn at(ctx: &NativeCallContext) -> String {
    let pos = ctx.call_position();
    format!(
        "{}:{}:{}",
        ctx.call_source().unwrap_or_default(),
        pos.line().unwrap_or(0),
        pos.position().unwrap_or(0)
    )
}

#[rhai::export_module]
pub mod api {
    use super::*;
    use crate::host::session;

    /// Waits until `condition` returns true, at most `timeout`; returns the time it took in
    /// milliseconds (measured on the run's clock). On timeout the playbook fails, naming the
    /// expectation and the last value observed. `condition` returns true/false, or a map
    /// `#{ ok: ..., what: ... }` whose other fields are reported as what was observed.
    ///
    /// ```rhai
    /// let ms = expect("predictor ready again", "30s", || {
    ///     let r = cluster::readiness("kserve-inference", "deployment/sklearn-iris-predictor");
    ///     #{ ok: r.ready == r.desired, ready: r.ready, desired: r.desired }
    /// });
    /// record("recovery_ms", ms);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn expect(
        ctx: NativeCallContext,
        name: &str,
        timeout: &str,
        condition: FnPtr,
    ) -> RhaiResultOf<f64> {
        let s = session(&ctx)?;
        let timeout = duration_arg(&ctx, "expect timeout", timeout)?;
        if dry_run_skip(&s, "expect", name) {
            return Ok(0.0);
        }
        let pos = ctx.call_position();
        let what = format!("expect \"{name}\"");
        let (ok, took, observed) = wait_for(&s, &s.stop, &what, timeout, pos, || {
            call_condition(&ctx, &condition)
        })?;
        s.phase(Phase::Running);
        report(
            &s,
            Expectation {
                name: name.to_string(),
                kind: "expect".into(),
                timeout_ms: timeout.as_millis() as u64,
                status: if ok { Status::Passed } else { Status::Failed },
                took_ms: millis(took),
                observed: observed.clone(),
                at: at(&ctx),
            },
        );
        if ok {
            Ok(took.as_secs_f64() * 1000.0)
        } else {
            Err(failure(
                format!(
                    "expectation \"{name}\" not met within {}: last observed {observed}",
                    crate::duration::format(timeout)
                ),
                pos,
            ))
        }
    }

    /// Checks that `condition` holds for the whole `window` (re-checked whenever something can
    /// change); the playbook fails at the first moment it does not.
    ///
    /// ```rhai
    /// always("MLflow keeps answering", "1m", || metrics::probe("mlflow", "mlflow:5000", "/health", 5).success_rate >= 0.99);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn always(
        ctx: NativeCallContext,
        name: &str,
        window: &str,
        condition: FnPtr,
    ) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        let window = duration_arg(&ctx, "always window", window)?;
        if dry_run_skip(&s, "always", name) {
            return Ok(());
        }
        let pos = ctx.call_position();
        // Wait for the condition to *fail*: if it never does within the window, it held.
        let what = format!("always \"{name}\"");
        let (broke, took, observed) = wait_for(&s, &s.stop, &what, window, pos, || {
            call_condition(&ctx, &condition).map(|o| Observation {
                ok: !o.ok,
                observed: o.observed,
            })
        })?;
        s.phase(Phase::Running);
        report(
            &s,
            Expectation {
                name: name.to_string(),
                kind: "always".into(),
                timeout_ms: window.as_millis() as u64,
                status: if broke {
                    Status::Failed
                } else {
                    Status::Passed
                },
                took_ms: millis(took),
                observed: observed.clone(),
                at: at(&ctx),
            },
        );
        if broke {
            Err(failure(
                format!(
                    "\"{name}\" stopped holding after {} of its {} window: observed {observed}",
                    crate::duration::format(took.unsigned_abs()),
                    crate::duration::format(window)
                ),
                pos,
            ))
        } else {
            Ok(())
        }
    }

    /// Defines what "normal" looks like: `condition` must hold now, before the first fault, and
    /// again after cleanup (within 5 minutes). Call it before injecting anything.
    ///
    /// ```rhai
    /// steady_state("all predictors ready", || cluster::readiness("kserve-inference", "deployment/sklearn-iris-predictor").ready == 3);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn steady_state(ctx: NativeCallContext, name: &str, condition: FnPtr) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        if s.has_created() {
            return Err(crate::host::error(
                &ctx,
                format!("steady_state(\"{name}\") must come before the first fault is injected"),
            ));
        }
        s.phase(Phase::SteadyState {
            name: name.to_string(),
        });
        let o = call_condition(&ctx, &condition)?;
        crate::session::evaluated(&s, &format!("steady_state \"{name}\""), &o.observed);
        s.phase(Phase::Running);
        report(
            &s,
            Expectation {
                name: name.to_string(),
                kind: "steady_state".into(),
                timeout_ms: 0,
                status: if o.ok { Status::Passed } else { Status::Failed },
                took_ms: 0,
                observed: o.observed.clone(),
                at: at(&ctx),
            },
        );
        if !o.ok {
            return Err(failure(
                format!(
                    "steady state \"{name}\" does not hold before any fault: observed {}",
                    o.observed
                ),
                ctx.call_position(),
            ));
        }
        s.add_steady_state(name.to_string(), condition, at(&ctx));
        Ok(())
    }
}

/// After cleanup: every steady state must hold again within [`STEADY_RECOVERY`]. Returns false
/// if one did not (each is recorded and said).
pub fn recheck_steady_states(
    session: &Session,
    engine: &rhai::Engine,
    ast: &rhai::AST,
) -> Result<bool, Box<EvalAltResult>> {
    let stop = Stop::new(STEADY_RECOVERY);
    let mut all = true;
    for (name, f, at) in session.steady_states() {
        let what = format!("steady state \"{name}\" again");
        let (ok, took, observed) = wait_for(
            session,
            &stop,
            &what,
            STEADY_RECOVERY,
            Position::NONE,
            || {
                let v: Dynamic = crate::host::call_after(engine, ast, &f)?;
                observation(v, Position::NONE)
            },
        )?;
        all &= ok;
        report(
            session,
            Expectation {
                name,
                kind: "steady_state (after cleanup)".into(),
                timeout_ms: STEADY_RECOVERY.as_millis() as u64,
                status: if ok { Status::Passed } else { Status::Failed },
                took_ms: millis(took),
                observed,
                at,
            },
        );
    }
    Ok(all)
}
