//! `playbook check`: everything that can be found without running — compile errors (strict
//! variables), imports that do not resolve or do not compile, and calls to functions that do not
//! exist or get the wrong number of arguments, which Rhai's compiler alone lets through; and
//! what literals already tell: fault option maps checked as `run` checks them (unknown keys,
//! the CRD schema), durations, method names, argument types of host calls, import cycles.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rhai::{AST, ASTNode, Engine, Expr, FnAccess, Position, Stmt};

use super::diagnostic::Diagnostic;
use super::doc::all_functions;
use super::{EngineConfig, Resolver};
use crate::suggest::edit_distance;

/// Functions the engine handles as keywords: callable with any number of arguments.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "this",
    "global",
];

/// Names a scope can call, with the argument counts each accepts.
type Known = HashMap<String, BTreeSet<usize>>;

/// Checks the playbook `name` (source `text`) and every module it imports; returns every problem found.
pub fn check(config: &EngineConfig, engine: &Engine, name: &str, text: &str) -> Vec<Diagnostic> {
    let ast = match super::compile(engine, &config.sources, name, text) {
        Ok(ast) => ast,
        Err(d) => return vec![d],
    };
    let mut host: Known = HashMap::new();
    let mut types: HashMap<String, Vec<Vec<String>>> = HashMap::new();
    let mut methods: BTreeSet<String> = BTreeSet::new();
    for f in all_functions(engine, true) {
        host.entry(f.path()).or_default().insert(f.params);
        methods.insert(f.name.clone());
        if let Some(params) = param_types(&f.signature) {
            types.entry(f.path()).or_default().push(params);
        }
    }
    let mut checker = Checker {
        types,
        methods,
        stack: vec![name.to_string()],
        engine,
        resolver: Resolver::new(config.stdlib.clone(), config.sources.clone()),
        host,
        modules: BTreeMap::new(),
        found: Vec::new(),
    };
    checker.file(name, &ast);
    checker.found
}

struct Checker<'a> {
    /// The parameter types of each host function's overloads (`ns::name`).
    types: HashMap<String, Vec<Vec<String>>>,
    /// Every function name callable as a method (`x.name(...)`).
    methods: BTreeSet<String>,
    /// The files being checked, outermost first (an import of one of them is a cycle).
    stack: Vec<String>,
    engine: &'a Engine,
    resolver: Resolver,
    /// Every registered function, namespaced ones as `ns::name`.
    host: Known,
    /// Exported functions of each module checked so far, by its file name.
    modules: BTreeMap<String, Known>,
    found: Vec<Diagnostic>,
}

impl Checker<'_> {
    /// Checks one file; returns its exported functions.
    fn file(&mut self, name: &str, ast: &AST) -> Known {
        let mut own: Known = HashMap::new();
        let mut exported: Known = HashMap::new();
        for f in ast.iter_functions() {
            own.entry(f.name.to_string())
                .or_default()
                .insert(f.params.len());
            if f.access != FnAccess::Private {
                exported
                    .entry(f.name.to_string())
                    .or_default()
                    .insert(f.params.len());
            }
        }
        // Imports first: their aliases become namespaces of this file.
        let mut imports: Vec<(String, String, Position)> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Stmt(Stmt::Import(x, pos))) = path.last() {
                if let Expr::StringConstant(module, _) = &x.0 {
                    imports.push((module.to_string(), x.1.name.to_string(), *pos));
                }
            }
            true
        });
        // An alias whose module did not resolve is `None`: its calls were already reported.
        let mut aliases: HashMap<String, Option<Known>> = HashMap::new();
        for (module, alias, pos) in imports {
            let funcs = self.module(name, &module, pos);
            if !alias.is_empty() {
                aliases.insert(alias, funcs);
            }
        }
        let mut calls: Vec<(String, String, usize, Position)> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            let call = match path.last() {
                Some(ASTNode::Expr(Expr::FnCall(f, pos))) => Some((f, *pos)),
                Some(ASTNode::Stmt(Stmt::FnCall(f, pos))) => Some((f, *pos)),
                _ => None,
            };
            if let Some((f, pos)) = call {
                if !f.is_operator_call() && is_identifier(&f.name) {
                    let ns = namespace_of(f);
                    calls.push((ns, f.name.to_string(), f.args.len(), pos));
                }
            }
            true
        });
        for (ns, fname, args, pos) in calls {
            let problem = if ns.is_empty() {
                if KEYWORDS.contains(&fname.as_str()) {
                    None
                } else {
                    arity_problem(&fname, args, [own.get(&fname), self.host.get(&fname)])
                }
            } else if let Some(funcs) = aliases.get(&ns) {
                let path = format!("{ns}::{fname}");
                funcs
                    .as_ref()
                    .and_then(|f| arity_problem(&path, args, [f.get(&fname), None]))
            } else {
                let path = format!("{ns}::{fname}");
                if self.host.keys().any(|k| k.starts_with(&format!("{ns}::"))) {
                    arity_problem(&path, args, [self.host.get(&path), None])
                } else {
                    Some(format!(
                        "unknown namespace `{ns}` in `{path}` (import it, or see `playbook doc`)"
                    ))
                }
            };
            if let Some(message) = problem {
                let message = match suggest(&self.host, &aliases, &own, &ns, &fname) {
                    Some(s) if !message.contains("argument") => {
                        format!("{message}; did you mean `{s}`?")
                    }
                    _ => message,
                };
                self.found.push(Diagnostic::at(name, pos, message));
            }
        }
        self.literals(name, ast, &own);
        exported
    }

    /// What literal arguments already tell: fault option maps, durations, argument types,
    /// and method names that exist nowhere.
    fn literals(&mut self, name: &str, ast: &AST, own: &Known) {
        let mut found: Vec<(Position, String)> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            let (f, pos, method) = match path.last() {
                Some(ASTNode::Expr(Expr::FnCall(f, pos))) => (f, *pos, false),
                Some(ASTNode::Stmt(Stmt::FnCall(f, pos))) => (f, *pos, false),
                Some(ASTNode::Expr(Expr::MethodCall(f, pos))) => (f, *pos, true),
                _ => return true,
            };
            if f.is_operator_call() || !is_identifier(&f.name) {
                return true;
            }
            let ns = namespace_of(f);
            let fname = f.name.as_str();
            if method
                && !self.methods.contains(fname)
                && !own.contains_key(fname)
                && !KEYWORDS.contains(&fname)
            {
                let near = self
                    .methods
                    .iter()
                    .chain(own.keys())
                    .filter(|m| is_identifier(m))
                    .map(|m| (edit_distance(m, fname), m))
                    .filter(|(d, _)| *d <= 2)
                    .min()
                    .map(|(_, m)| format!("; did you mean `{m}`?"))
                    .unwrap_or_default();
                found.push((pos, format!("no method `{fname}`{near}")));
            }
            let path_name = if ns.is_empty() {
                fname.to_string()
            } else {
                format!("{ns}::{fname}")
            };
            let args: Vec<Option<serde_json::Value>> = f.args.iter().map(literal).collect();
            // Durations, by the function's own parameter names.
            for (i, _) in duration_params(&path_name, method, args.len()) {
                if let Some(Some(serde_json::Value::String(text))) = args.get(i) {
                    if let Err(e) = crate::duration::parse(text) {
                        found.push((f.args[i].position(), format!("{fname}: {e}")));
                    }
                }
            }
            // Argument types of host functions (all overloads with this arity must refuse).
            if !method && !own.contains_key(fname) {
                if let Some(overloads) = self.types.get(&path_name) {
                    let fitting: Vec<&Vec<String>> =
                        overloads.iter().filter(|o| o.len() == args.len()).collect();
                    if !fitting.is_empty()
                        && fitting.iter().all(|o| {
                            o.iter()
                                .zip(&args)
                                .any(|(t, a)| a.as_ref().is_some_and(|a| !accepts(t, a)))
                        })
                    {
                        let want: Vec<String> = fitting
                            .iter()
                            .map(|o| format!("({})", o.join(", ")))
                            .collect();
                        let got: Vec<String> = args
                            .iter()
                            .map(|a| a.as_ref().map(json_type).unwrap_or("?").to_string())
                            .collect();
                        found.push((
                            pos,
                            format!(
                                "`{path_name}` takes {}, not ({})",
                                want.join(" or "),
                                got.join(", ")
                            ),
                        ));
                    }
                }
            }
            // Fault option maps, checked as `run` checks them.
            if ns == "chaos" {
                if let (Some(fault), Some(arg)) =
                    (crate::faults::Fault::from_function(fname), f.args.first())
                {
                    if let Some(problem) = fault_options(fault, arg) {
                        found.push((arg.position(), problem));
                    }
                }
            }
            true
        });
        for (pos, message) in found {
            self.found.push(Diagnostic::at(name, pos, message));
        }
    }

    /// Resolves, compiles and checks an imported module (once per file); returns its exports,
    /// or `None` when it could not be loaded (which is reported).
    fn module(&mut self, from: &str, path: &str, pos: Position) -> Option<Known> {
        match self.resolver.compile(self.engine, Some(from), path, pos) {
            Ok((file, _)) if self.stack.iter().any(|f| same_file(f, &file)) => {
                let mut cycle = self.stack.clone();
                cycle.push(file);
                self.found.push(Diagnostic::at(
                    from,
                    pos,
                    format!(
                        "import cycle: {} (a playbook cannot import itself, directly or through its modules)",
                        cycle.join(" -> ")
                    ),
                ));
                None
            }
            Ok((file, ast)) => {
                if let Some(known) = self.modules.get(&file) {
                    return Some(known.clone());
                }
                self.modules.insert(file.clone(), HashMap::new());
                self.stack.push(file.clone());
                let known = self.file(&file, &ast);
                self.stack.pop();
                self.modules.insert(file, known.clone());
                Some(known)
            }
            Err(mut d) => {
                if d.location.as_ref().is_some_and(|l| l.file != from) {
                    if let Some(at) = super::Location::new(from, pos) {
                        d.notes
                            .push(format!("in module \"{path}\" imported at {at}"));
                    }
                }
                self.found.push(d);
                None
            }
        }
    }
}

/// The namespace a call names (`chaos` in `chaos::pod_kill`), "" for none.
fn namespace_of(f: &rhai::FnCallExpr) -> String {
    f.namespace
        .path
        .iter()
        .map(|i| i.name.as_str())
        .collect::<Vec<_>>()
        .join("::")
}

/// Whether two names are the same file (as given, or once made canonical).
fn same_file(a: &str, b: &str) -> bool {
    a == b
        || match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        }
}

/// A literal argument as JSON (`None` when it is computed).
fn literal(e: &Expr) -> Option<serde_json::Value> {
    let v = e.get_literal_value(None)?;
    rhai::serde::from_dynamic(&v).ok()
}

/// `name: string, default: string` from a signature `param(name: string, default: string) -> String`.
fn param_types(signature: &str) -> Option<Vec<String>> {
    let inner = signature.split_once('(')?.1.rsplit_once(')')?.0;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    Some(
        inner
            .split(", ")
            .map(|p| {
                p.rsplit_once(": ")
                    .map(|(_, t)| t)
                    .unwrap_or("?")
                    .trim()
                    .to_string()
            })
            .collect(),
    )
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::String(_) => "string",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(n) if n.is_f64() => "f64",
        serde_json::Value::Number(_) => "int",
        serde_json::Value::Array(_) => "Array",
        serde_json::Value::Object(_) => "Map",
        serde_json::Value::Null => "()",
    }
}

/// Whether a parameter of type `t` (as `playbook doc` writes it) takes the literal `v`.
fn accepts(t: &str, v: &serde_json::Value) -> bool {
    match t {
        "string" | "String" | "&str" | "ImmutableString" => v.is_string(),
        "bool" => v.is_boolean(),
        "i64" | "int" | "INT" => v.is_i64() || v.is_u64(),
        "f64" | "float" | "FLOAT" => v.is_f64(),
        "Map" => v.is_object(),
        "Array" => v.is_array(),
        _ => true,
    }
}

/// Which arguments of a host call are durations: `(index, what)`.
fn duration_params(path: &str, method: bool, args: usize) -> Vec<(usize, &'static str)> {
    match (path, method, args) {
        ("expect", false, 3) => vec![(1, "timeout")],
        ("always", false, 3) => vec![(1, "window")],
        ("sleep", false, 1) => vec![(0, "duration")],
        ("expect_recovery", false, 4) => vec![(1, "disruption bound"), (2, "timeout")],
        ("cluster::events", false, 2) => vec![(1, "window")],
        ("wait_injected" | "wait_recovered", true, 1) => vec![(0, "timeout")],
        _ => Vec::new(),
    }
}

/// A fault constructor's option map: unknown keys always; when the map is wholly literal,
/// everything `run` checks (durations, modes and values, the CRD schema).
fn fault_options(fault: crate::faults::Fault, arg: &Expr) -> Option<String> {
    let keys: Vec<String> = match arg {
        Expr::Map(m, _) => m.0.iter().map(|(k, _)| k.name.to_string()).collect(),
        other => literal(other)?.as_object()?.keys().cloned().collect(),
    };
    let say = |e: crate::faults::OptionError| {
        format!(
            "chaos::{}: option `{}`: {}",
            fault.function(),
            e.field,
            e.message
        )
    };
    if let Err(e) = crate::faults::check_keys(fault, keys.iter().map(String::as_str)) {
        return Some(say(e));
    }
    if let Expr::Map(m, _) = arg {
        for (k, v) in &m.0 {
            if k.name == "duration" {
                if let Some(serde_json::Value::String(d)) = literal(v) {
                    if let Err(e) = crate::duration::parse(&d) {
                        return Some(format!(
                            "chaos::{}: option `duration`: {e}",
                            fault.function()
                        ));
                    }
                }
            }
        }
    }
    let options = literal(arg)?;
    let cx = crate::faults::Context {
        run_id: "check",
        default_name: "check".into(),
        default_duration: "1m".into(),
        default_namespace: "default".into(),
    };
    crate::faults::build(fault, &options, &cx).err().map(say)
}

/// Why calling `path` with `args` arguments cannot work, given the arities that exist.
fn arity_problem(
    path: &str,
    args: usize,
    candidates: [Option<&BTreeSet<usize>>; 2],
) -> Option<String> {
    let arities: BTreeSet<usize> = candidates
        .into_iter()
        .flatten()
        .flatten()
        .copied()
        .collect();
    if arities.is_empty() {
        return Some(format!("no function `{path}`"));
    }
    if arities.contains(&args) {
        return None;
    }
    let want = arities
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" or ");
    let plural = |n: &str| if n == "1" { "argument" } else { "arguments" };
    Some(format!(
        "`{path}` takes {want} {}, not {args}",
        plural(&want)
    ))
}

/// A known name close to the unknown one (same namespace, small edit distance).
fn suggest(
    host: &Known,
    aliases: &HashMap<String, Option<Known>>,
    own: &Known,
    ns: &str,
    name: &str,
) -> Option<String> {
    let candidates: Vec<String> = if ns.is_empty() {
        own.keys()
            .chain(host.keys().filter(|k| !k.contains("::")))
            .cloned()
            .collect()
    } else if let Some(Some(m)) = aliases.get(ns) {
        m.keys().map(|k| format!("{ns}::{k}")).collect()
    } else {
        host.keys()
            .filter(|k| k.starts_with(&format!("{ns}::")))
            .cloned()
            .collect()
    };
    let target = if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}::{name}")
    };
    candidates
        .into_iter()
        .filter(|c| is_identifier(c.rsplit("::").next().unwrap_or_default()))
        .map(|c| (edit_distance(&c, &target), c))
        .filter(|(d, _)| *d <= 2.max(target.len() / 4))
        .min()
        .map(|(_, c)| c)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<String> {
        let config = EngineConfig::default();
        let engine = crate::engine::build(&config, None);
        check(&config, &engine, "t.rhai", text)
            .into_iter()
            .map(|d| {
                format!(
                    "{}: {}",
                    d.location.map(|l| l.to_string()).unwrap_or_default(),
                    d.message
                )
            })
            .collect()
    }

    #[test]
    fn a_good_playbook_has_no_findings() {
        assert_eq!(
            run("fn f(x) { x + 1 }\nlet a = f(1);\nlog(`a=${a}`);\nprint(a.to_string());"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn unknown_and_misused_functions_are_found_with_positions() {
        let found = run("log(\"a\");\nlgo(\"b\");\nlog(\"a\", \"b\", \"c\");\n");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("t.rhai:2:1: no function `lgo`; did you mean `log`?"),
            "{found:?}"
        );
        // Rhai's math package has log(x) and log(x, base); types are not known before running.
        assert!(
            found[1].starts_with("t.rhai:3:1: `log` takes 1 or 2 arguments, not 3"),
            "{found:?}"
        );
    }

    #[test]
    fn unknown_namespaces_and_modules_are_found() {
        let found = run("let x = nope::thing();");
        assert!(
            found[0].contains("t.rhai:1:9: undefined module `nope`"),
            "{found:?}"
        );
        let found = run("import \"no_such_module\" as m;\nm::f();");
        assert!(
            found[0].contains("module \"no_such_module\" not found"),
            "{found:?}"
        );
    }

    #[test]
    fn literals_are_checked_as_run_checks_them() {
        let found = run(concat!(
            "let f = chaos::network_delay(#{ selector: #{ namespaces: [\"m\"] }, laency: \"100ms\" });\n",
            "let g = chaos::pod_kill(#{ selector: #{ namespaces: [\"x\"] }, duration: \"30 s\" });\n",
            "g.wait_injeted(\"10s\");\n",
            "expect(\"x\", \"1h30\", || true);\n",
            "let p = param(\"x\", 3);\n",
            "let ok = chaos::pod_kill(#{ selector: #{ namespaces: [\"x\"] }, mode: \"one\" });\n",
            "ok.wait_injected(\"10s\");\n",
        ));
        let want = [
            "t.rhai:1:30: chaos::network_delay: option `laency`: unknown option for chaos::network_delay; did you mean `latency`?",
            "t.rhai:2:25: chaos::pod_kill: option `duration`: invalid duration \"30 s\"",
            "t.rhai:3:3: no method `wait_injeted`; did you mean `wait_injected`?",
            "t.rhai:4:13: expect: invalid duration \"1h30\": missing unit",
            "t.rhai:5:9: `param` takes (string, string), not (string, int)",
        ];
        assert_eq!(found.len(), want.len(), "{found:?}");
        for (f, w) in found.iter().zip(want) {
            assert!(f.starts_with(w), "{f} does not start with {w}");
        }
    }
}
