//! The one error printer: `file:line:col`, the source line with a caret, and a message a person
//! understands, for compile errors, runtime errors, and errors inside modules and closures.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use rhai::{EvalAltResult, ParseError, ParseErrorType, Position};

use crate::session::Failure;

/// The text of every source a run has loaded (playbooks and modules), by the name diagnostics show.
#[derive(Clone, Default)]
pub struct Sources(Arc<RwLock<HashMap<String, Arc<str>>>>);

impl Sources {
    /// Remembers `text` under `name` (a path as the user wrote it, or `stdlib/NAME.rhai`).
    pub fn add(&self, name: &str, text: &str) {
        if let Ok(mut map) = self.0.write() {
            map.insert(name.to_string(), Arc::from(text));
        }
    }

    /// The `line`th line (1-based) of source `name`, if known.
    fn line(&self, name: &str, line: usize) -> Option<String> {
        let map = self.0.read().ok()?;
        let text = map.get(name)?;
        text.lines().nth(line.checked_sub(1)?).map(str::to_string)
    }
}

/// Where a diagnostic points.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl Location {
    /// The place `pos` in `file`, if the position is known.
    pub(crate) fn new(file: &str, pos: Position) -> Option<Self> {
        Some(Location {
            file: file.to_string(),
            line: pos.line()?,
            col: pos.position().unwrap_or(1),
        })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One problem to show a person: a message, where it happened, and how it got there.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// The call chain, innermost last: "in closure called at FILE:L:C".
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// A diagnostic at a known place.
    pub fn at(file: &str, pos: Position, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: Location::new(file, pos),
            notes: Vec::new(),
        }
    }

    /// A compile error in `file`.
    pub fn from_parse(file: &str, err: &ParseError) -> Self {
        Diagnostic::at(file, err.position(), parse_message(&err.0))
    }

    /// A runtime (or module compile) error that surfaced while running `file`: follows the chain
    /// of function calls and module imports to the innermost error and the source it lives in.
    pub fn from_eval(file: &str, err: &EvalAltResult) -> Self {
        let mut notes = Vec::new();
        let mut source = file.to_string();
        let mut err = err;
        loop {
            match err {
                EvalAltResult::ErrorInFunctionCall(name, fn_source, inner, pos) => {
                    let what = if name.starts_with("anon$") {
                        "closure".to_string()
                    } else {
                        format!("function `{name}`")
                    };
                    notes.push(match Location::new(&source, *pos) {
                        Some(at) => format!("in {what} called at {at}"),
                        None => format!("in {what}"),
                    });
                    if !fn_source.is_empty() {
                        source = fn_source.clone();
                    }
                    err = inner;
                }
                EvalAltResult::ErrorInModule(name, inner, pos) => {
                    notes.push(match Location::new(&source, *pos) {
                        Some(at) => format!("in module `{name}` imported at {at}"),
                        None => format!("in module `{name}`"),
                    });
                    source = name.clone();
                    err = inner;
                }
                _ => break,
            }
        }
        let mut d = match err {
            EvalAltResult::ErrorParsing(kind, pos) => {
                Diagnostic::at(&source, *pos, parse_message(kind))
            }
            other => Diagnostic::at(&source, other.position(), eval_message(other)),
        };
        notes.reverse();
        d.notes = notes;
        d
    }

    /// Renders the diagnostic for a terminal, rustc-style.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = format!("error: {}\n", self.message);
        if let Some(at) = &self.location {
            let _ = writeln!(out, "  --> {at}");
            if let Some(text) = sources.line(&at.file, at.line) {
                let num = at.line.to_string();
                let pad = " ".repeat(num.len());
                let caret_at: String = text
                    .chars()
                    .take(at.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{num} | {text}");
                let _ = writeln!(out, "{pad} | {caret_at}^");
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "  = {note}");
        }
        out
    }
}

/// A person's message for a compile error.
fn parse_message(kind: &ParseErrorType) -> String {
    match kind {
        ParseErrorType::UnexpectedEOF => {
            "unexpected end of file: a bracket, brace or statement is not closed".into()
        }
        ParseErrorType::UnknownOperator(op) => format!("unknown operator `{op}`"),
        ParseErrorType::MissingToken(token, what) => format!("expected `{token}` {what}"),
        ParseErrorType::VariableUndefined(name) => {
            format!("undefined variable `{name}` (declare it with `let {name} = ...;` before use)")
        }
        ParseErrorType::ModuleUndefined(name) => {
            format!("undefined module `{name}` (add `import \"...\" as {name};`)")
        }
        other => lower_first(&other.to_string()),
    }
}

/// A person's message for a runtime error.
fn eval_message(err: &EvalAltResult) -> String {
    match err {
        EvalAltResult::ErrorVariableNotFound(name, _) => format!("undefined variable `{name}`"),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => {
            format!("no function `{sig}`: check the name and the arguments (`playbook doc`)")
        }
        EvalAltResult::ErrorModuleNotFound(name, _) => {
            format!("module \"{name}\" not found beside the playbook or in the standard library")
        }
        EvalAltResult::ErrorTooManyOperations(_) => {
            "the playbook ran too many operations: is there an endless loop?".into()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "calls nested too deeply: is there an endless recursion?".into()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            format!("{} is larger than the limit", lower_first(what))
        }
        EvalAltResult::ErrorTerminated(token, _) => token.to_string(),
        EvalAltResult::ErrorRuntime(value, _) => match value.clone().try_cast::<Failure>() {
            Some(failure) => failure.message,
            None => match value.clone().try_cast::<crate::outcome::Inconclusive>() {
                Some(i) => format!("inconclusive: {}", i.message),
                None => value.to_string(),
            },
        },
        EvalAltResult::ErrorMismatchDataType(want, got, _) => {
            format!("expected {want}, found {got}")
        }
        other => {
            // Rhai's own text, minus the position it appends (we print ours).
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            lower_first(&text)
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(name: &str, text: &str) -> Sources {
        let s = Sources::default();
        s.add(name, text);
        s
    }

    #[test]
    fn renders_the_line_and_a_caret() {
        let text = "let a = 1;\nlet b = a +* 2;\n";
        let err = rhai::Engine::new().compile(text).unwrap_err();
        let d = Diagnostic::from_parse("x.rhai", &err);
        let out = d.render(&sources("x.rhai", text));
        assert!(out.contains("--> x.rhai:2:"), "{out}");
        assert!(out.contains("2 | let b = a +* 2;"), "{out}");
        assert!(out.lines().any(|l| l.trim_end().ends_with('^')), "{out}");
    }

    #[test]
    fn follows_calls_into_the_innermost_error() {
        let text = "fn inner() { undefined_thing }\nfn outer() { inner() }\nouter();\n";
        let mut ast = rhai::Engine::new().compile(text).unwrap();
        ast.set_source("y.rhai");
        let err = rhai::Engine::new().run_ast(&ast).unwrap_err();
        let d = Diagnostic::from_eval("y.rhai", &err);
        assert_eq!(d.location.as_ref().map(|l| l.line), Some(1));
        assert!(d.message.contains("undefined variable `undefined_thing`"));
        assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
        assert!(d.notes[1].contains("outer") && d.notes[1].contains("y.rhai:3:1"));
    }
}
