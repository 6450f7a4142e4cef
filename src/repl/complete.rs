//! The line editor's helper: completion (host namespaces and functions from `engine::docs`,
//! fault methods, variables, meta-commands, file names, and live cluster names inside string
//! arguments), the signature hint while typing a call's arguments, and multi-line entry.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use rhai::Engine;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use super::lex::{call_at_end, is_complete, literal_arg, path_before, scan};
use super::live::{Kind, Live};
use crate::engine::Doc;

/// Names the session has defined so far (updated after each evaluation).
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    pub variables: Vec<String>,
    pub functions: Vec<String>,
    /// `name(a, b)` of each function the session defined.
    pub signatures: Vec<String>,
}

const KEYWORDS: &[&str] = &[
    "let", "const", "fn", "if", "else", "for", "in", "while", "loop", "do", "until", "break",
    "continue", "return", "throw", "try", "catch", "switch", "import", "export", "as", "true",
    "false", "print", "debug",
];

/// Getters of a fault handle (the other methods come from the docs).
const FAULT_GETTERS: &[&str] = &["name", "kind"];

/// The REPL's completion, hints and validation.
pub(crate) struct ReplHelper {
    engine: Arc<Engine>,
    docs: Vec<Doc>,
    names: Arc<Mutex<Names>>,
    commands: Vec<&'static str>,
    live: Option<Live>,
    files: FilenameCompleter,
}

impl ReplHelper {
    pub fn new(
        engine: Arc<Engine>,
        docs: Vec<Doc>,
        names: Arc<Mutex<Names>>,
        commands: Vec<&'static str>,
        live: Option<Live>,
    ) -> Self {
        ReplHelper {
            engine,
            docs,
            names,
            commands,
            live,
            files: FilenameCompleter::new(),
        }
    }

    /// Where the completed word starts, and the candidates for it.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let Some(before) = line.get(..pos) else {
            return (pos, Vec::new());
        };
        let lead = before.len() - before.trim_start().len();
        if before[lead..].starts_with(':') {
            return self.meta(before, lead);
        }
        let s = scan(before);
        if let Some(start) = s.string {
            let prefix = &before[start..];
            return (start, matching(self.in_string(before, &s), prefix));
        }
        if s.comment {
            return (pos, Vec::new());
        }
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == ':')
            .last()
            .map(|(i, _)| i)
            .unwrap_or(pos);
        let word = &before[start..];
        let all: Vec<String> = if before[..start].ends_with('.') {
            self.methods()
        } else if word.contains("::") {
            self.docs.iter().map(Doc::path).collect()
        } else {
            self.globals()
        };
        (start, matching(all, word))
    }

    /// Live names for the string argument the cursor is in.
    fn in_string(&self, before: &str, s: &super::lex::Scan) -> Vec<String> {
        let Some(live) = &self.live else {
            return Vec::new();
        };
        let Some(top) = s.top() else {
            return Vec::new();
        };
        // `namespaces: ["...` inside a fault's selector.
        if top.bracket == '[' {
            let head = before[..top.at].trim_end();
            return match head.strip_suffix(':') {
                Some(h) if path_before(h, h.len()) == "namespaces" => {
                    live.names(Kind::Namespaces, "")
                }
                _ => Vec::new(),
            };
        }
        let Some((path, n)) = call_at_end(before, s) else {
            return Vec::new();
        };
        let kind = self
            .docs
            .iter()
            .filter(|d| d.path() == path)
            .find_map(|d| params(&d.signature).get(n).and_then(|p| Kind::of_param(p)));
        match kind {
            Some(Kind::Namespaces) => live.names(Kind::Namespaces, ""),
            Some(kind) => match literal_arg(before, top, 0) {
                Some(ns) => live.names(kind, &ns),
                None => Vec::new(),
            },
            None => Vec::new(),
        }
    }

    fn methods(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .docs
            .iter()
            .filter(|d| {
                params_typed(&d.signature)
                    .first()
                    .is_some_and(|p| p.ends_with("FaultHandle"))
            })
            .map(|d| d.name.clone())
            .collect();
        out.extend(FAULT_GETTERS.iter().map(|s| s.to_string()));
        out
    }

    fn globals(&self) -> Vec<String> {
        let mut out: BTreeSet<String> = BTreeSet::new();
        for d in &self.docs {
            if d.namespace.is_empty() {
                out.insert(d.name.clone());
            } else {
                out.insert(format!("{}::", d.namespace));
            }
        }
        if let Ok(names) = self.names.lock() {
            out.extend(names.variables.iter().cloned());
            out.extend(names.functions.iter().cloned());
        }
        out.extend(KEYWORDS.iter().map(|k| k.to_string()));
        out.into_iter().collect()
    }

    fn meta(&self, before: &str, lead: usize) -> (usize, Vec<String>) {
        let Some((cmd, arg)) = before[lead..].split_once(' ') else {
            let all = self.commands.iter().map(|c| format!(":{c}")).collect();
            return (lead, matching(all, &before[lead..]));
        };
        let start = before.len() - arg.trim_start().len();
        match cmd {
            ":help" | ":doc" => {
                let mut all: Vec<String> = self.docs.iter().map(Doc::path).collect();
                all.extend(self.docs.iter().map(|d| d.namespace.clone()));
                (start, matching(all, &before[start..]))
            }
            ":load" | ":save" => match self.files.complete_path(before, before.len()) {
                Ok((start, pairs)) => (start, pairs.into_iter().map(|p| p.replacement).collect()),
                Err(_) => (start, Vec::new()),
            },
            _ => (start, Vec::new()),
        }
    }

    /// The signature(s) of the call whose arguments the end of `line` is in.
    pub fn signature(&self, line: &str) -> Option<String> {
        let s = scan(line);
        let (path, _) = call_at_end(line, &s)?;
        let top = s.top()?;
        // `f.wait_injected(`: a method of a handle, documented under its namespace.
        let head = line[..top.at].trim_end();
        let method = head.strip_suffix(path).is_some_and(|h| h.ends_with('.'));
        let sigs: Vec<String> = self
            .docs
            .iter()
            .filter(|d| d.path() == path || (method && d.name == path))
            .map(|d| {
                if d.namespace.is_empty() || method {
                    d.signature.clone()
                } else {
                    format!("{}::{}", d.namespace, d.signature)
                }
            })
            .collect();
        let mut sigs = sigs;
        if sigs.is_empty() && !method {
            if let Ok(names) = self.names.lock() {
                let call = format!("{path}(");
                sigs.extend(
                    names
                        .signatures
                        .iter()
                        .filter(|s| s.starts_with(&call))
                        .cloned(),
                );
            }
        }
        (!sigs.is_empty()).then(|| sigs.join("  |  "))
    }
}

/// The candidates that start with `prefix`, sorted, without repeats.
fn matching(all: Vec<String>, prefix: &str) -> Vec<String> {
    let set: BTreeSet<String> = all
        .into_iter()
        .filter(|c| c.starts_with(prefix) && c != prefix)
        .collect();
    set.into_iter().collect()
}

/// `f(a: string, b: Map) -> X` as `["a: string", "b: Map"]`.
fn params_typed(signature: &str) -> Vec<String> {
    let Some(open) = signature.find('(') else {
        return Vec::new();
    };
    let close = signature.rfind(')').unwrap_or(signature.len());
    signature
        .get(open + 1..close)
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The parameter names of a signature.
fn params(signature: &str) -> Vec<String> {
    params_typed(signature)
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default().trim().to_string())
        .collect()
}

/// A hint that shows but is not inserted by the right arrow.
pub(crate) struct SignatureHint(String);

impl Hint for SignatureHint {
    fn display(&self) -> &str {
        &self.0
    }
    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(line, pos);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for ReplHelper {
    type Hint = SignatureHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SignatureHint> {
        if pos < line.len() || line.trim_start().starts_with(':') {
            return None;
        }
        self.signature(line)
            .map(|s| SignatureHint(format!("   {s}")))
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_complete(&self.engine, ctx.input()) {
            ValidationResult::Valid(None)
        } else {
            ValidationResult::Incomplete
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper() -> ReplHelper {
        let engine = Arc::new(crate::engine::build(&Default::default(), None));
        let docs = crate::engine::docs(&engine);
        let names = Arc::new(Mutex::new(Names {
            variables: vec!["fault".into()],
            functions: vec!["restart_all".into()],
            signatures: vec!["restart_all(ns, wait)".into()],
        }));
        ReplHelper::new(engine, docs, names, vec!["help", "faults", "quit"], None)
    }

    fn complete(line: &str) -> (usize, Vec<String>) {
        helper().candidates(line, line.len())
    }

    /// Each declared function exists with one kind per argument, and every function of the
    /// cluster and metrics namespaces that takes a namespace first is declared.
    #[test]
    fn argument_kinds_are_declared_for_the_functions_that_name_cluster_objects() {
        let engine = crate::engine::build(&Default::default(), None);
        let docs = crate::engine::docs(&engine);
        for d in docs
            .iter()
            .filter(|d| d.namespace == "cluster" || d.namespace == "metrics")
        {
            let params = params_typed(&d.signature);
            match crate::host::argument_kinds(&d.path()) {
                Some(kinds) => {
                    assert!(kinds.len() <= params.len(), "{}: {kinds:?}", d.signature);
                    assert_eq!(kinds[0], crate::host::Arg::Namespace, "{}", d.signature);
                }
                None => assert!(
                    !params.first().is_some_and(|p| p.starts_with("namespace")),
                    "{} takes a namespace but declares no argument kinds",
                    d.signature
                ),
            }
        }
        assert_eq!(
            crate::host::argument_kinds("cluster::get"),
            Some(&[crate::host::Arg::Namespace, crate::host::Arg::Object][..])
        );
        assert_eq!(crate::host::argument_kinds("cluster::nope"), None);
    }

    #[test]
    fn completes_namespaces_functions_methods_variables_and_commands() {
        assert_eq!(
            complete("chaos::pod_k"),
            (0, vec!["chaos::pod_kill".into()])
        );
        assert!(complete("let x = clu").1.contains(&"cluster::".to_string()));
        assert!(
            complete("cluster::")
                .1
                .contains(&"cluster::readiness".to_string())
        );
        let (start, found) = complete("fault.wait_");
        assert_eq!(start, 6);
        assert_eq!(found, vec!["wait_injected", "wait_recovered"]);
        assert!(complete("fault.").1.contains(&"kind".to_string()));
        assert_eq!(complete("print(fa").1, vec!["fail", "false", "fault"]);
        assert_eq!(complete("resta").1, vec!["restart_all"]);
        assert_eq!(complete(":fa"), (0, vec![":faults".into()]));
        assert_eq!(
            complete(":help chaos::pod_k"),
            (6, vec!["chaos::pod_kill".into()])
        );
    }

    #[test]
    fn hints_the_signature_of_the_call_being_typed() {
        let h = helper();
        let sig = h.signature("cluster::readiness(\"mlflow\", ").unwrap();
        assert_eq!(
            sig,
            "cluster::readiness(namespace: string, workload: string) -> Map"
        );
        assert!(
            h.signature("f.wait_injected(")
                .unwrap()
                .starts_with("wait_injected(")
        );
        assert_eq!(h.signature("cluster::readiness(\"a\", \"b\")"), None);
        assert_eq!(
            h.signature("restart_all(").as_deref(),
            Some("restart_all(ns, wait)")
        );
        assert_eq!(
            h.signature("restart_all(").as_deref(),
            Some("restart_all(ns, wait)")
        );
    }
}
