//! Global host functions, callable without a namespace: `log`, `param`, `fail`, `sleep`,
//! `record`, `on_cleanup`, `clock_ms`. What a playbook logs and records is bounded
//! (`engine::limits::OUTPUT`, `RECORD_VALUE`, `RECORDS`): past a limit the playbook ends
//! with an error, and cleanup runs.

use rhai::plugin::*;

#[export_module]
pub mod api {
    use crate::host::RhaiResultOf;
    use crate::host::{failure, session};
    use crate::session::Line;

    /// Writes a line to the run's output (and, in reports, to the playbook's log).
    ///
    /// ```rhai
    /// log("injecting the fault");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn log(ctx: NativeCallContext, message: &str) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        if !s.allow_output(message.len()) {
            return Err(crate::host::error(
                &ctx,
                crate::session::limits::output_limit_message(),
            ));
        }
        (s.output)(Line::Print(message.to_string()));
        Ok(())
    }

    /// The value of `--var NAME=VALUE`; an error naming the option if it was not given.
    ///
    /// ```rhai
    /// let ns = param("namespace");
    /// ```
    #[rhai_fn(name = "param", return_raw)]
    pub fn param(ctx: NativeCallContext, name: &str) -> RhaiResultOf<String> {
        let s = session(&ctx)?;
        s.vars.get(name).cloned().ok_or_else(|| {
            crate::host::error(
                &ctx,
                format!("parameter `{name}` is not set: pass --var {name}=VALUE, or use param(\"{name}\", default)"),
            )
        })
    }

    /// The value of `--var NAME=VALUE`, or `default` when it was not given.
    ///
    /// ```rhai
    /// let ns = param("namespace", "kserve-inference");
    /// ```
    #[rhai_fn(name = "param", return_raw)]
    pub fn param_or(ctx: NativeCallContext, name: &str, default: &str) -> RhaiResultOf<String> {
        let s = session(&ctx)?;
        Ok(s.vars
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string()))
    }

    /// Fails the playbook with `message`: its verdict is "failed" (exit code 1), and cleanup runs.
    ///
    /// ```rhai
    /// if replicas < 2 { fail(`only ${replicas} replicas`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn fail(ctx: NativeCallContext, message: &str) -> RhaiResultOf<()> {
        Err(failure(message, ctx.call_position()))
    }

    /// Lets `duration` pass on the run's clock (against the simulator: virtual time, instantly).
    ///
    /// ```rhai
    /// sleep("30s");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sleep(ctx: NativeCallContext, duration: &str) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        let d = crate::host::expect::duration_arg(&ctx, "sleep", duration)?;
        if s.dry_run {
            return Ok(());
        }
        let until = s
            .now()
            .checked_add(jiff::SignedDuration::try_from(d).unwrap_or_default())
            .unwrap_or_else(|_| s.now());
        s.phase(crate::session::Phase::Waiting {
            what: "sleep".into(),
            waited: std::time::Duration::ZERO,
            limit: d,
        });
        // Step by step, so that continuous guards are checked while time passes.
        let slept = (|| {
            while s.now() < until {
                s.target
                    .clock
                    .step(until, &s.stop)
                    .map_err(|r| crate::host::expect::terminated(r, ctx.call_position()))?;
                crate::host::expect::check_guards(&ctx, &s)?;
            }
            Ok(())
        })();
        s.phase(crate::session::Phase::Running);
        slept
    }

    /// Records an observation (a number, string, map...) under `key`: shown at the end of the
    /// playbook and kept in reports. Under `--dry-run` nothing is recorded: the value comes from
    /// waits that did not wait and faults that were not injected, so it is no measurement.
    ///
    /// ```rhai
    /// record("p99_during_ms", stats.p99);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn record(ctx: NativeCallContext, key: &str, value: Dynamic) -> RhaiResultOf<()> {
        let s = session(&ctx)?;
        let json: serde_json::Value = rhai::serde::from_dynamic(&value)?;
        if s.dry_run {
            (s.output)(Line::Print(format!(
                "dry run: would record {key} (not evaluated: no fault was injected)"
            )));
            return Ok(());
        }
        let text = json.to_string();
        s.allow_record(key, text.len())
            .map_err(|e| crate::host::error(&ctx, e))?;
        let shown = match text.char_indices().nth(400) {
            Some((at, _)) => format!("{}… ({} bytes)", &text[..at], text.len()),
            None => text,
        };
        (s.output)(Line::Print(format!("record: {key} = {shown}")));
        crate::session::recorded(&s, key, json);
        Ok(())
    }

    /// Adds `closure` to the cleanup ledger: it runs after the playbook ends, however it ends,
    /// last-in first-out with the removal of every fault.
    ///
    /// ```rhai
    /// on_cleanup(|| cluster::scale("training", "deployment/trainer", 1));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn on_cleanup(ctx: NativeCallContext, closure: rhai::FnPtr) -> RhaiResultOf<()> {
        let pos = ctx.call_position();
        let label = format!("on_cleanup closure from line {}", pos.line().unwrap_or(0));
        session(&ctx)?.on_cleanup(label, closure);
        Ok(())
    }

    /// Milliseconds since the playbook started, on the run's clock: subtract two readings to
    /// time something.
    ///
    /// ```rhai
    /// let t0 = clock_ms(); sleep("2s"); let took = clock_ms() - t0;
    /// ```
    #[rhai_fn(return_raw)]
    pub fn clock_ms(ctx: NativeCallContext) -> RhaiResultOf<f64> {
        let s = session(&ctx)?;
        let now = s.target.clock.time_read();
        Ok(now.duration_since(s.started).as_secs_f64() * 1000.0)
    }

    /// A failed expectation caught with `try { ... } catch (e) { ... }` prints as its message.
    ///
    /// ```rhai
    /// try { expect("ready", "30s", || false); } catch (e) { log(`broke: ${e}`); }
    /// ```
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn failure_to_string(f: &mut crate::session::Failure) -> String {
        f.message.clone()
    }

    /// "We could not tell" (a fault that selected no pod, a disruption never observed) caught
    /// with `try { ... } catch (e) { ... }` prints as its message; `is_inconclusive(e)` tells it
    /// apart from a failed expectation.
    ///
    /// ```rhai
    /// try { f.wait_injected("10s"); } catch (e) { log(`${e}`); }
    /// ```
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn inconclusive_to_string(f: &mut crate::outcome::Inconclusive) -> String {
        f.message.clone()
    }

    /// Whether a caught error is a failed expectation (`expect`, `always`, `guard`, `fail`):
    /// the system under test misbehaved.
    ///
    /// ```rhai
    /// try { expect("ready", "30s", || false); } catch (e) { if !is_failure(e) { throw e; } }
    /// ```
    #[rhai_fn(global)]
    pub fn is_failure(e: Dynamic) -> bool {
        e.is::<crate::session::Failure>()
    }

    /// Whether a caught error means "we could not tell": a fault that selected no pod or never
    /// reached injected, a recovery whose disruption was never observed.
    ///
    /// ```rhai
    /// try { f.wait_injected("10s"); } catch (e) { if is_inconclusive(e) { log("nothing injected"); } }
    /// ```
    #[rhai_fn(global)]
    pub fn is_inconclusive(e: Dynamic) -> bool {
        e.is::<crate::outcome::Inconclusive>()
    }
}
