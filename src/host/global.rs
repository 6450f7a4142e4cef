//! Global host functions, callable without a namespace: `log`, `param`, `fail`.

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
}
