//! The host API that playbooks call: one file per Rhai namespace, each function with a `///`
//! summary and a `rhai` example that `playbook doc` and the REPL's `:help` print.

mod answers;
pub(crate) mod chaos;
pub(crate) mod cluster;
pub(crate) mod expect;
mod exposition;
mod global;
pub(crate) mod metrics;
mod nodes;

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

/// What a string argument of a host function names, declared beside the function (the REPL
/// completes it from the live cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arg {
    /// A namespace.
    Namespace,
    /// `deployment/NAME` or `statefulset/NAME`.
    Workload,
    /// A workload or `pod/NAME`.
    Object,
    /// A service's name.
    Service,
    /// A label selector of pods (`key=value`).
    Labels,
    /// Anything else (not completed).
    Other,
}

/// The declared kinds of a host function's arguments, by its path (`cluster::pods`).
pub fn argument_kinds(path: &str) -> Option<&'static [Arg]> {
    let (namespace, name) = path.split_once("::")?;
    let table = match namespace {
        "cluster" => cluster::ARGUMENTS,
        "metrics" => metrics::ARGUMENTS,
        _ => return None,
    };
    table.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
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

/// Calls a closure of the playbook `ast` after the playbook has ended (cleanup steps,
/// steady-state re-checks), in a small script that first repeats the playbook's top-level
/// imports, so the closure can still use the modules it names.
pub fn call_after(
    engine: &Engine,
    ast: &rhai::AST,
    f: &rhai::FnPtr,
) -> Result<Dynamic, Box<rhai::EvalAltResult>> {
    let mut text = String::new();
    for stmt in ast.statements() {
        if let rhai::Stmt::Import(x, _) = stmt {
            if let rhai::Expr::StringConstant(path, _) = &x.0 {
                if x.1.name.is_empty() {
                    text += &format!("import {path:?};\n");
                } else {
                    text += &format!("import {path:?} as {};\n", x.1.name);
                }
            }
        }
    }
    text += "__closure.call()";
    let mut scope = rhai::Scope::new();
    scope.push("__closure", f.clone());
    let mut epilogue = engine
        .compile_with_scope(&scope, &text)
        .map_err(|e| Box::new(rhai::EvalAltResult::ErrorParsing(*e.0, e.1)))?;
    if let Some(source) = ast.source() {
        epilogue.set_source(source);
    }
    let program = ast.clone_functions_only().merge(&epilogue);
    engine.eval_ast_with_scope::<Dynamic>(&mut scope, &program)
}
