//! `playbook check`: everything that can be found without running — compile errors (strict
//! variables), imports that do not resolve or do not compile, and calls to functions that do not
//! exist or get the wrong number of arguments, which Rhai's compiler alone lets through.

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
    for f in all_functions(engine, true) {
        host.entry(f.path()).or_default().insert(f.params);
    }
    let mut checker = Checker {
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
                    let ns = f
                        .namespace
                        .path
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join("::");
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
        exported
    }

    /// Resolves, compiles and checks an imported module (once per file); returns its exports,
    /// or `None` when it could not be loaded (which is reported).
    fn module(&mut self, from: &str, path: &str, pos: Position) -> Option<Known> {
        match self.resolver.compile(self.engine, Some(from), path, pos) {
            Ok((file, ast)) => {
                if let Some(known) = self.modules.get(&file) {
                    return Some(known.clone());
                }
                self.modules.insert(file.clone(), HashMap::new());
                let known = self.file(&file, &ast);
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
}
