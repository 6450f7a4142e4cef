//! The host API reference, generated from the engine's function metadata (the `///` comments of
//! every registered host function), for `playbook doc`, the REPL's `:help`, and `playbook check`.

use std::fmt::Write as _;

use rhai::Engine;

/// One host function as a playbook sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Doc {
    /// `chaos` for `chaos::pod_kill`; empty for global functions.
    pub namespace: String,
    pub name: String,
    /// Rhai's signature, e.g. `var(name: &str, default: &str) -> String`.
    pub signature: String,
    pub params: usize,
    /// The doc comment without its `///` markers: summary line first, then the example.
    pub text: String,
}

impl Doc {
    /// `namespace::name`, or `name` for a global function.
    pub fn path(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}::{}", self.namespace, self.name)
        }
    }

    /// The first line of the doc comment.
    pub fn summary(&self) -> &str {
        self.text.lines().next().unwrap_or_default()
    }
}

/// Every host function registered with `engine` (Rhai's standard packages left out), sorted.
pub fn docs(engine: &Engine) -> Vec<Doc> {
    all_functions(engine, false)
}

/// Every function `engine` can call by name, with Rhai's standard packages if asked (read from
/// the engine's function metadata directly: `run` checks each playbook with it first).
pub(crate) fn all_functions(engine: &Engine, standard_packages: bool) -> Vec<Doc> {
    let mut out = engine.collect_fn_metadata(
        None,
        |info| {
            let f = info.metadata;
            // Operators and getters/setters that the host registers for handles are not called
            // by name.
            if f.name.starts_with("get$") || f.name.starts_with("set$") {
                return None;
            }
            let text = f
                .comments
                .iter()
                .flat_map(|c| c.lines())
                .map(|l| {
                    let l = l.trim_start();
                    let l = l.strip_prefix("///").unwrap_or(l);
                    l.strip_prefix(' ').unwrap_or(l)
                })
                .collect::<Vec<_>>()
                .join("\n");
            Some(Doc {
                namespace: info.namespace.to_string(),
                name: f.name.to_string(),
                signature: pretty(&f.gen_signature(Into::into)),
                params: f.num_params,
                text: text.trim().to_string(),
            })
        },
        standard_packages,
    );
    out.sort_by(|a, b| (a.path(), a.params, &a.signature).cmp(&(b.path(), b.params, &b.signature)));
    out
}

/// A signature as a playbook author reads it: Rust's `Result<T, Box<EvalAltResult>>` shows as
/// `T`, `&str` as `string`, and a function that returns nothing shows no return type.
fn pretty(signature: &str) -> String {
    let mut s = signature.replace("&str", "string").replace("&mut ", "");
    if let Some(start) = s.find("-> Result<") {
        if let Some(end) = s.rfind(", Box<EvalAltResult>>") {
            s = format!("{}-> {}", &s[..start], &s[start + "-> Result<".len()..end]);
        }
    }
    s.trim_end_matches(" -> ()").to_string()
}

/// The reference as text: everything, or only what `filter` names (a namespace such as `chaos`,
/// a function such as `chaos::pod_kill`, or a bare function name).
pub fn render_docs(docs: &[Doc], filter: Option<&str>) -> Result<String, String> {
    let chosen: Vec<&Doc> = docs
        .iter()
        .filter(|d| match filter {
            None => true,
            Some(f) => d.path() == f || d.namespace == f || d.name == f,
        })
        .collect();
    if chosen.is_empty() {
        let name = filter.unwrap_or_default();
        let mut near: Vec<String> = docs
            .iter()
            .map(Doc::path)
            .filter(|p| p.contains(name) || name.contains(p.as_str()))
            .collect();
        near.dedup();
        return Err(if near.is_empty() {
            format!(
                "no host function or namespace named `{name}` (run `playbook doc` for the list)"
            )
        } else {
            format!(
                "no host function named `{name}`; did you mean {}?",
                near.join(", ")
            )
        });
    }
    let mut out = String::new();
    let mut section = None;
    for d in chosen {
        if section != Some(&d.namespace) {
            section = Some(&d.namespace);
            let title = if d.namespace.is_empty() {
                "global functions".to_string()
            } else {
                format!("{}::", d.namespace)
            };
            let _ = writeln!(out, "# {title}\n");
        }
        let _ = writeln!(out, "{}", qualify(&d.signature, &d.namespace));
        for line in d.text.lines() {
            let _ = writeln!(out, "    {line}");
        }
        out.push('\n');
    }
    Ok(out)
}

/// `pod_kill(...)` becomes `chaos::pod_kill(...)`.
fn qualify(signature: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        signature.to_string()
    } else {
        format!("{namespace}::{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Doc> {
        docs(&crate::engine::build(&Default::default(), None))
    }

    #[test]
    fn every_host_function_has_a_summary_and_an_example() {
        let docs = all();
        assert!(
            docs.len() >= 4,
            "host functions missing from metadata: {docs:?}"
        );
        for d in &docs {
            assert!(!d.summary().is_empty(), "{} has no /// summary", d.path());
            assert!(
                d.text.contains("```rhai"),
                "{} has no ```rhai example in its doc comment",
                d.path()
            );
        }
    }

    #[test]
    fn filters_by_name_and_suggests() {
        let docs = all();
        let out = render_docs(&docs, Some("param")).unwrap();
        assert!(
            out.contains("param(name: string, default: string) -> String"),
            "{out}"
        );
        assert!(!out.contains("fail("), "{out}");
        let err = render_docs(&docs, Some("fai")).unwrap_err();
        assert!(
            err.contains("did you mean") && err.contains("fail"),
            "{err}"
        );
    }
}
