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
/// With `ctx` (a playbook's own wait), the continuous guards are checked at every step.
pub(crate) fn wait_for(
    session: &Session,
    stop: &Stop,
    what: &str,
    timeout: Duration,
    ctx: Option<&NativeCallContext>,
    mut eval: impl FnMut() -> RhaiResultOf<Observation>,
) -> RhaiResultOf<(bool, SignedDuration, String)> {
    let pos = ctx.map(|c| c.call_position()).unwrap_or(Position::NONE);
    let start = session.now();
    let limit = start.checked_add(signed(timeout)).unwrap_or(start);
    loop {
        session.phase(Phase::Waiting {
            what: what.to_string(),
            waited: session.now().duration_since(start).unsigned_abs(),
            limit: timeout,
        });
        let mark = session.target.clock.mark();
        let o = eval()?;
        crate::session::evaluated(session, what, &o.observed);
        let now = session.now();
        if o.ok {
            return Ok((true, now.duration_since(start), o.observed));
        }
        if now >= limit {
            return Ok((false, now.duration_since(start), o.observed));
        }
        let clock = &session.target.clock;
        let guarding = ctx.is_some() && guards_active(session);
        // Guards are checked at every step, so they keep the steps short.
        if guarding {
            clock.step(limit, stop)
        } else {
            clock.step_after(mark, limit, stop)
        }
        .map_err(|r| terminated(r, pos))?;
        if let Some(ctx) = ctx {
            check_guards(ctx, session)?;
        }
    }
}

/// Whether guards are checked now: some are set, a fault is active, and this is no dry run.
fn guards_active(session: &Session) -> bool {
    !session.guards().is_empty() && !session.live_objects().is_empty() && !session.dry_run
}

/// Checks every continuous guard (`guard(...)`) while a fault is active: the first one that
/// does not hold fails the playbook at once (cleanup then runs). Guards are not re-entered
/// from their own conditions.
pub(crate) fn check_guards(ctx: &NativeCallContext, session: &Session) -> RhaiResultOf<()> {
    use std::sync::atomic::Ordering;
    if !guards_active(session) {
        return Ok(());
    }
    let guards = session.guards();
    if session.checking_guards.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let result = (|| {
        for (name, f, at) in guards {
            let o = call_condition(ctx, &f)?;
            if !o.ok {
                session.guard_violated(&name);
                report(
                    session,
                    Expectation {
                        name: name.clone(),
                        kind: "guard".into(),
                        timeout_ms: 0,
                        status: Status::Failed,
                        took_ms: 0,
                        observed: o.observed.clone(),
                        at,
                    },
                );
                return Err(failure(
                    format!(
                        "guard \"{name}\" violated while a fault was active: observed {}",
                        o.observed
                    ),
                    ctx.call_position(),
                ));
            }
        }
        Ok(())
    })();
    session.checking_guards.store(false, Ordering::SeqCst);
    result
}

/// At the end of a run: every guard that was never violated is reported as held.
pub fn close_guards(session: &Session) {
    for (name, _, at) in session.guards() {
        if session.guard_was_violated(&name) {
            continue;
        }
        report(
            session,
            Expectation {
                name,
                kind: "guard".into(),
                timeout_ms: 0,
                status: Status::Passed,
                took_ms: 0,
                observed: "held whenever it was checked while faults were active".into(),
                at,
            },
        );
    }
}

/// The error that ends a script when the run must stop.
pub(crate) fn terminated(reason: crate::session::StopReason, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(reason.to_string()), pos).into()
}

/// Records an expectation's outcome and says it.
pub(crate) fn report(session: &Session, e: Expectation) {
    let mark = match e.status {
        Status::Passed => "ok",
        Status::Failed => "FAILED",
        Status::Inconclusive => "INCONCLUSIVE",
    };
    let timing = if e.kind == "guard" {
        String::new()
    } else if e.kind == "always" {
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

/// The position in an [`at`] string (`source:line:column`).
fn position_of(at: &str) -> Position {
    let mut parts = at.rsplitn(3, ':');
    let column = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    if line == 0 {
        Position::NONE
    } else {
        Position::new(line, column)
    }
}

pub(crate) fn at(ctx: &NativeCallContext) -> String {
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
        let (ok, took, observed) = wait_for(&s, &s.stop, &what, timeout, Some(&ctx), || {
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
        let (broke, took, observed) = wait_for(&s, &s.stop, &what, window, Some(&ctx), || {
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

    /// Measures a recovery the only trustworthy way: first waits (at most `disrupted_within`)
    /// until `condition` is observed *not* holding — the disruption, seen through the same
    /// status the recovery is read from — then times how long it takes to hold again (at most
    /// `within`), from that moment. Returns the recovery time in milliseconds. If the
    /// disruption is never observed, the playbook is *inconclusive* (exit 5): a recovery read
    /// from a status that never showed the fault would be measured from a stale status.
    ///
    /// ```rhai
    /// let f = chaos::pod_kill(#{ selector: #{ namespaces: ["kserve-inference"] } });
    /// f.wait_injected("10s");
    /// let ms = expect_recovery("InferenceService Ready again", "15s", "30s", || platform::inference_ready());
    /// record("recovery_ms", ms);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn expect_recovery(
        ctx: NativeCallContext,
        name: &str,
        disrupted_within: &str,
        within: &str,
        condition: FnPtr,
    ) -> RhaiResultOf<f64> {
        let s = session(&ctx)?;
        let bound = duration_arg(&ctx, "expect_recovery disruption bound", disrupted_within)?;
        let timeout = duration_arg(&ctx, "expect_recovery timeout", within)?;
        if dry_run_skip(&s, "expect_recovery", name) {
            return Ok(0.0);
        }
        let pos = ctx.call_position();
        let what = format!("expect_recovery \"{name}\": the disruption");
        let (seen, to_disruption, held) = wait_for(&s, &s.stop, &what, bound, Some(&ctx), || {
            call_condition(&ctx, &condition).map(|o| Observation {
                ok: !o.ok,
                observed: o.observed,
            })
        })?;
        if !seen {
            s.phase(Phase::Running);
            let message = format!(
                "recovery \"{name}\": the disruption was never observed within {} (the condition held throughout, last observed {held}); a recovery time read now would come from a status that never showed the fault",
                crate::duration::format(bound)
            );
            report(
                &s,
                Expectation {
                    name: name.to_string(),
                    kind: "expect_recovery".into(),
                    timeout_ms: timeout.as_millis() as u64,
                    status: Status::Inconclusive,
                    took_ms: millis(to_disruption),
                    observed: format!("no disruption: {held}"),
                    at: at(&ctx),
                },
            );
            s.record().inconclusive.push(message.clone());
            return Err(crate::outcome::inconclusive(message, pos));
        }
        (s.output)(Line::Print(format!(
            "disruption observed for \"{name}\" after {}: {held}",
            crate::duration::format(to_disruption.unsigned_abs())
        )));
        let what = format!("expect_recovery \"{name}\"");
        let (ok, took, observed) = wait_for(&s, &s.stop, &what, timeout, Some(&ctx), || {
            call_condition(&ctx, &condition)
        })?;
        s.phase(Phase::Running);
        report(
            &s,
            Expectation {
                name: name.to_string(),
                kind: "expect_recovery".into(),
                timeout_ms: timeout.as_millis() as u64,
                status: if ok { Status::Passed } else { Status::Failed },
                took_ms: millis(took),
                observed: format!("{observed} (disrupted: {held})"),
                at: at(&ctx),
            },
        );
        if ok {
            Ok(took.as_secs_f64() * 1000.0)
        } else {
            Err(failure(
                format!(
                    "\"{name}\" did not recover within {} of the disruption: last observed {observed}",
                    crate::duration::format(timeout)
                ),
                pos,
            ))
        }
    }

    /// Declares a continuous guard (a stop condition, as AWS FIS and Chaos Toolkit have): from
    /// now on, for the rest of the playbook, `condition` is checked whenever the playbook
    /// waits while a fault is active, without blocking the script. The first time it does not
    /// hold the playbook fails at once (exit 1) and cleanup removes the faults.
    ///
    /// ```rhai
    /// guard("MLflow keeps answering", || metrics::probe("mlflow", "mlflow:5000", "/health", 3).success_rate >= 0.9);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn guard(ctx: NativeCallContext, name: &str, condition: FnPtr) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        if s.dry_run {
            (s.output)(Line::Print(format!(
                "dry run: would guard \"{name}\" while faults are active"
            )));
            return Ok(());
        }
        s.add_guard(name.to_string(), condition, at(&ctx));
        check_guards(&ctx, &s)
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
        // While a fault is live (in the REPL, once `:cleanup` removed them all, a playbook
        // can be loaded again).
        if !s.live_objects().is_empty() {
            return Err(crate::host::error(
                &ctx,
                format!(
                    "steady_state(\"{name}\") must come before the first fault is injected (or once every fault is removed)"
                ),
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

/// After cleanup: every steady state must hold again within [`STEADY_RECOVERY`], and within the
/// playbook's `--timeout` plus its grace (the session's stop): running out of that is a
/// timeout at the `steady_state` statement. Returns false if one did not hold (each is
/// recorded and said).
pub fn recheck_steady_states(
    session: &Session,
    engine: &rhai::Engine,
    ast: &rhai::AST,
) -> Result<bool, Box<EvalAltResult>> {
    let mut all = true;
    for (name, f, at) in session.steady_states() {
        let what = format!("steady state \"{name}\" again");
        let (ok, took, observed) =
            wait_for(session, &session.stop, &what, STEADY_RECOVERY, None, || {
                let v: Dynamic = crate::host::call_after(engine, ast, &f)?;
                observation(v, Position::NONE)
            })
            .map_err(|mut e| {
                // Out of time: the statement running is the re-check of this steady state (a
                // stop inside its condition is reported where the closure was called from,
                // which is no line of the playbook).
                if matches!(*e, EvalAltResult::ErrorTerminated(..)) {
                    e.set_position(position_of(&at));
                }
                e
            })?;
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
