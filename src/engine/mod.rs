//! The one Rhai engine constructor that the runner, the checker and the REPL share: limits,
//! module resolution, output routing, deadline and Ctrl-C, and the host API.

mod check;
mod diagnostic;
mod doc;
mod resolver;

use std::sync::Arc;

use rhai::{Dynamic, Engine};

/// Where the host functions call playbook closures after the playbook ended.
pub use crate::host::call_after;
pub use check::check;
pub use diagnostic::{Diagnostic, Location, Sources};
pub use doc::{Doc, docs, render_docs};
pub use resolver::{Resolver, Stdlib};

use crate::session::{Line, Session};

/// Limits that keep a broken playbook from hanging or exhausting the machine.
pub mod limits {
    /// Operations one playbook may run (an endless loop stops here if the deadline doesn't stop it first).
    pub const OPERATIONS: u64 = 20_000_000;
    /// Nested function calls (endless recursion stops here).
    pub const CALL_DEPTH: usize = 48;
    /// Nesting of expressions, at top level and inside functions.
    pub const EXPR_DEPTH: (usize, usize) = (64, 48);
    /// Length of one string, in bytes.
    pub const STRING_SIZE: usize = 4 << 20;
    /// Items in one array.
    pub const ARRAY_SIZE: usize = 100_000;
    /// Properties in one object map.
    pub const MAP_SIZE: usize = 10_000;
    /// Modules one playbook may import.
    pub const MODULES: usize = 64;
    /// How often (in operations) the deadline and Ctrl-C are checked.
    pub const CHECK_EVERY: u64 = 1024;
    pub use crate::session::limits::{OUTPUT, RECORD_VALUE, RECORDS};
}

/// What every engine is built from.
#[derive(Clone, Default)]
pub struct EngineConfig {
    pub stdlib: Stdlib,
    pub sources: Sources,
}

/// Builds the engine. With a session, host functions act on it and the session's deadline and
/// Ctrl-C stop the script; without one (check, doc) host functions exist but refuse to run.
pub fn build(config: &EngineConfig, session: Option<Arc<Session>>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_max_operations(limits::OPERATIONS)
        .set_max_call_levels(limits::CALL_DEPTH)
        .set_max_expr_depths(limits::EXPR_DEPTH.0, limits::EXPR_DEPTH.1)
        .set_max_string_size(limits::STRING_SIZE)
        .set_max_array_size(limits::ARRAY_SIZE)
        .set_max_map_size(limits::MAP_SIZE)
        .set_max_modules(limits::MODULES)
        .set_module_resolver(Resolver::new(config.stdlib.clone(), config.sources.clone()));
    // `eval` is off: it would run text that `check` never saw, outside the resolver's rules.
    engine.disable_symbol("eval");
    register_bounded_replace(&mut engine);
    crate::host::register(&mut engine);
    match session {
        Some(session) => {
            let out = session.clone();
            engine.on_print(move |s| {
                if out.allow_output(s.len()) {
                    (out.output)(Line::Print(s.to_string()))
                }
            });
            let out = session.clone();
            engine.on_debug(move |s, src, pos| {
                let at = match (src, pos.line()) {
                    (Some(src), Some(line)) => format!("{src}:{line}: "),
                    _ => String::new(),
                };
                if out.allow_output(s.len() + at.len()) {
                    (out.output)(Line::Debug(format!("{at}{s}")))
                }
            });
            let stop = session.clone();
            engine.on_progress(move |ops| {
                // Cleanup's closures run to the end: a signal must not skip them.
                if ops % limits::CHECK_EVERY != 0 || crate::stop::cleaning() {
                    return None;
                }
                if stop.output_exhausted() {
                    return Some(Dynamic::from(output_limit_message()));
                }
                stop.stop.check().map(|r| Dynamic::from(r.to_string()))
            });
            engine.set_default_tag(Dynamic::from(session));
        }
        None => {
            engine.on_print(|_| {});
            engine.on_debug(|_, _, _| {});
        }
    }
    engine
}

pub use crate::session::limits::output_limit_message;

/// `replace` computes the size of its result before building it: Rhai checks a string's size
/// only after an operation, too late for `x.replace("x", x)` on a long `x`.
fn register_bounded_replace(engine: &mut Engine) {
    fn bounded(
        string: &mut rhai::ImmutableString,
        find: &str,
        with: &str,
    ) -> Result<(), Box<rhai::EvalAltResult>> {
        if string.is_empty() {
            return Ok(());
        }
        let hits = string.matches(find).count();
        let size =
            (string.len() - hits * find.len()).saturating_add(hits.saturating_mul(with.len()));
        if size > limits::STRING_SIZE {
            return Err(rhai::EvalAltResult::ErrorDataTooLarge(
                "Length of string".into(),
                rhai::Position::NONE,
            )
            .into());
        }
        *string = string.replace(find, with).into();
        Ok(())
    }
    let doc = [
        "/// Replaces every `find` in the string with `with`, refusing a result longer than the",
        "/// string limit before building it.",
        "///",
        "/// ```rhai",
        "/// let s = \"a-b\"; s.replace(\"-\", \"+\");",
        "/// ```",
    ];
    let params = ["string: &mut ImmutableString", "find", "with"];
    rhai::FuncRegistration::new("replace")
        .with_comments(doc)
        .with_params_info(params)
        .register_into_engine(engine, |s: &mut rhai::ImmutableString, f: &str, w: &str| {
            bounded(s, f, w)
        });
    rhai::FuncRegistration::new("replace")
        .with_comments(doc)
        .with_params_info(params)
        .register_into_engine(engine, |s: &mut rhai::ImmutableString, f: &str, w: char| {
            bounded(s, f, &w.to_string())
        });
    rhai::FuncRegistration::new("replace")
        .with_comments(doc)
        .with_params_info(params)
        .register_into_engine(engine, |s: &mut rhai::ImmutableString, f: char, w: &str| {
            bounded(s, &f.to_string(), w)
        });
}

/// Compiles a playbook for running or checking, remembering its source for diagnostics.
pub fn compile(
    engine: &Engine,
    sources: &Sources,
    name: &str,
    text: &str,
) -> Result<rhai::AST, Diagnostic> {
    sources.add(name, text);
    let mut ast = engine
        .compile(text)
        .map_err(|e| Diagnostic::from_parse(name, &e))?;
    ast.set_source(name);
    Ok(ast)
}
