//! A light scan of unfinished input, shared by completion, hints and multi-line entry: open
//! brackets and the call each belongs to, whether the cursor is inside a string, and whether
//! a statement is finished.

use rhai::{Engine, ParseErrorType};

/// An open bracket before the cursor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub bracket: char,
    /// Byte offset of the bracket.
    pub at: usize,
    /// Byte offsets of the commas directly inside it.
    pub commas: Vec<usize>,
}

/// Where the end of a text is, lexically.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Scan {
    /// Open brackets, outermost first.
    pub frames: Vec<Frame>,
    /// Inside a string literal that starts at this byte offset (just after the quote).
    pub string: Option<usize>,
    /// Inside a back-tick string (these may span lines).
    pub backtick: bool,
    /// Inside a block comment.
    pub comment: bool,
    /// A closing bracket without an opening one (the input is wrong, not unfinished).
    pub unbalanced: bool,
}

impl Scan {
    /// The innermost open bracket.
    pub fn top(&self) -> Option<&Frame> {
        self.frames.last()
    }
}

/// Scans `text` from its start to its end.
pub(crate) fn scan(text: &str) -> Scan {
    let mut s = Scan::default();
    let mut chars = text.char_indices().peekable();
    let mut line_comment = false;
    while let Some((i, c)) = chars.next() {
        if line_comment {
            line_comment = c != '\n';
            continue;
        }
        if s.comment {
            if c == '*' && chars.peek().is_some_and(|(_, n)| *n == '/') {
                chars.next();
                s.comment = false;
            }
            continue;
        }
        if let Some(_start) = s.string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' if !s.backtick => s.string = None,
                '`' if s.backtick => {
                    s.string = None;
                    s.backtick = false;
                }
                '\n' if !s.backtick => s.string = None,
                _ => {}
            }
            continue;
        }
        match c {
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => line_comment = true,
            '/' if chars.peek().is_some_and(|(_, n)| *n == '*') => {
                chars.next();
                s.comment = true;
            }
            '"' => s.string = Some(i + 1),
            '`' => {
                s.string = Some(i + 1);
                s.backtick = true;
            }
            '\'' => {
                // A character literal: skip to its closing quote on this line.
                let mut escaped = false;
                for (_, n) in chars.by_ref() {
                    if n == '\n' || (n == '\'' && !escaped) {
                        break;
                    }
                    escaped = n == '\\' && !escaped;
                }
            }
            '(' | '[' | '{' => s.frames.push(Frame {
                bracket: c,
                at: i,
                commas: Vec::new(),
            }),
            ')' | ']' | '}' if s.frames.pop().is_none() => s.unbalanced = true,
            ',' => {
                if let Some(f) = s.frames.last_mut() {
                    f.commas.push(i);
                }
            }
            _ => {}
        }
    }
    s
}

/// The identifier path (`cluster::readiness`, `f`) that ends at byte `end` of `text`.
pub(crate) fn path_before(text: &str, end: usize) -> &str {
    let head = text[..end].trim_end();
    let start = head
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == ':')
        .last()
        .map(|(i, _)| i)
        .unwrap_or(head.len());
    &head[start..]
}

/// The call whose argument list the end of `text` is in: its path and the argument index.
pub(crate) fn call_at_end<'t>(text: &'t str, s: &Scan) -> Option<(&'t str, usize)> {
    let f = s.top().filter(|f| f.bracket == '(')?;
    let path = path_before(text, f.at);
    (!path.is_empty() && !path.ends_with(':')).then_some((path, f.commas.len()))
}

/// The string literal that is argument `n` of the call `frame`, if it is one.
pub(crate) fn literal_arg(text: &str, frame: &Frame, n: usize) -> Option<String> {
    let start = if n == 0 {
        frame.at + 1
    } else {
        frame.commas.get(n - 1)? + 1
    };
    let end = frame.commas.get(n).copied().unwrap_or(text.len());
    let arg = text.get(start..end)?.trim();
    let inner = arg.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('"')).then(|| inner.to_string())
}

/// Whether `text` is a whole input, or the user is still typing it (an open bracket, brace,
/// back-tick string or comment; or Rhai says the input ended too early).
pub(crate) fn is_complete(engine: &Engine, text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with(':') {
        return true;
    }
    let s = scan(text);
    if s.unbalanced {
        return true;
    }
    if !s.frames.is_empty() || s.backtick || s.comment {
        return false;
    }
    match engine.compile(text) {
        Err(e) => !matches!(*e.0, ParseErrorType::UnexpectedEOF),
        Ok(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_call_and_the_argument_in_a_string() {
        let t = r#"let r = cluster::readiness("mlflow", "deployment/"#;
        let s = scan(t);
        assert_eq!(s.string, Some(t.len() - "deployment/".len()));
        assert_eq!(call_at_end(t, &s), Some(("cluster::readiness", 1)));
        assert_eq!(
            literal_arg(t, s.top().unwrap(), 0).as_deref(),
            Some("mlflow")
        );
        let t = r#"f(#{ a: "(", b: [1, 2] }, "x\"y", "#;
        let s = scan(t);
        assert_eq!(call_at_end(t, &s), Some(("f", 2)));
    }

    #[test]
    fn unfinished_input_continues() {
        let e = Engine::new();
        assert!(!is_complete(&e, "fn f(x) {"));
        assert!(!is_complete(&e, "let a = [1,\n2"));
        assert!(!is_complete(&e, "let s = `two\nlines"));
        assert!(!is_complete(&e, "/* note"));
        assert!(is_complete(&e, "fn f(x) {\n x + 1\n}"));
        assert!(is_complete(&e, "let a = 1"));
        assert!(is_complete(&e, "let a = \"{\";"));
        assert!(is_complete(&e, "}"));
        assert!(is_complete(&e, ":help"));
        assert!(is_complete(&e, "let a = ;"));
    }
}
