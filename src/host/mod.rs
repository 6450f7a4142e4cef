//! The host API that playbooks call: one file per Rhai namespace, each function with a `///`
//! summary and a `rhai` example that `playbook doc` and the REPL's `:help` print.

pub(crate) mod chaos;
pub(crate) mod cluster;
pub(crate) mod expect;
mod global;
pub(crate) mod metrics;

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position, exported_module};

use crate::session::{Failure, Session};

/// Registers every host function with `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_global_module(exported_module!(global::api).into());
    engine.register_global_module(exported_module!(expect::api).into());
    engine.register_static_module("cluster", exported_module!(cluster::api).into());
    engine.register_type_with_name::<chaos::FaultHandle>("Fault");
    engine.register_type_with_name::<Failure>("Failure");
    engine.register_type_with_name::<crate::outcome::Inconclusive>("Inconclusive");
    engine.register_static_module("chaos", exported_module!(chaos::api).into());
    engine.register_static_module("metrics", exported_module!(metrics::api).into());
}

/// A manifest as YAML a user could `kubectl apply`.
pub fn render_yaml(v: &serde_json::Value) -> String {
    chaos::yaml(v)
}

/// What a host function returns. Named like Rhai's own alias so that `playbook doc` shows `T`.
pub(crate) type RhaiResultOf<T> = Result<T, Box<EvalAltResult>>;

/// The session a host function acts on (absent in `check` and `doc`, which never run anything).
pub(crate) fn session(ctx: &NativeCallContext) -> RhaiResultOf<Arc<Session>> {
    ctx.tag()
        .and_then(|t| t.clone().try_cast::<Arc<Session>>())
        .ok_or_else(|| {
            error(
                ctx,
                format!(
                    "`{}` can only be called while a playbook runs",
                    ctx.fn_name()
                ),
            )
        })
}

/// A runtime error at the call site, with a message a person understands.
pub(crate) fn error(ctx: &NativeCallContext, message: impl Into<String>) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), ctx.call_position()).into()
}

/// A failed expectation at the call site: the playbook fails (exit 1) rather than breaks (exit 3).
pub(crate) fn failure(message: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        Dynamic::from(Failure {
            message: message.into(),
        }),
        pos,
    )
    .into()
}
