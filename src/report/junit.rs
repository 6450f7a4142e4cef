//! JUnit XML (`--junit FILE.xml`) in the common shape GitLab, Jenkins and GitHub Actions read:
//! `testsuites` > a `testsuite` per playbook > a `testcase` per expectation, one for cleanup
//! and one for what broke the playbook; records as properties; the log as `system-out`.
//! Times are seconds on the run's clock (virtual in the simulator).

use std::fmt::Write as _;

use super::{ErrorInfo, PlaybookReport, RunReport, Status};
use crate::session::Status as Check;

/// Text content with `&`, `<`, `>` escaped and characters XML 1.0 forbids (control characters
/// other than tab, newline and carriage return; U+FFFE, U+FFFF) written as `\u{..}`.
pub fn escape_text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value: as [`escape_text`], plus quotes, and tab/newline/CR as character
/// references so parsers keep them.
pub fn escape_attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '\n' if attr => out.push_str("&#10;"),
            '\r' if attr => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#9;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// One `testcase` before it is written.
struct Case {
    name: String,
    time: f64,
    /// (element, type, message, body): `failure`, `error` or `skipped`.
    outcome: Option<(&'static str, String, String, String)>,
}

/// The testcases of one playbook.
fn cases(p: &PlaybookReport) -> Vec<Case> {
    let mut out = Vec::new();
    if p.status == Status::Skipped {
        out.push(Case {
            name: "playbook".into(),
            time: 0.0,
            outcome: Some((
                "skipped",
                String::new(),
                p.skip_reason.clone().unwrap_or_default(),
                String::new(),
            )),
        });
        return out;
    }
    if p.status == Status::DryRun {
        out.push(Case {
            name: "expectations".into(),
            time: 0.0,
            outcome: Some((
                "skipped",
                String::new(),
                "dry run: nothing was injected and no expectation was evaluated".into(),
                String::new(),
            )),
        });
    }
    for e in &p.expectations {
        if e.status == Check::Inconclusive {
            out.push(Case {
                name: format!("{}: {}", e.kind, e.name),
                time: e.took_s,
                outcome: Some((
                    "error",
                    "inconclusive".into(),
                    format!(
                        "{} \"{}\" is inconclusive: observed {}",
                        e.kind, e.name, e.observed
                    ),
                    format!("observed: {}\nat: {}", e.observed, e.at),
                )),
            });
            continue;
        }
        let outcome = (e.status == Check::Failed).then(|| {
            let message = match &p.error {
                Some(err) if err.kind == "failure" && err.message.contains(&e.name) => {
                    err.message.clone()
                }
                _ => format!("{} \"{}\" failed: observed {}", e.kind, e.name, e.observed),
            };
            (
                "failure",
                e.kind.clone(),
                message,
                format!(
                    "observed: {}\nwithin: {}s (limit {}s)\nat: {}",
                    e.observed, e.took_s, e.timeout_s, e.at
                ),
            )
        });
        out.push(Case {
            name: format!("{}: {}", e.kind, e.name),
            time: e.took_s,
            outcome,
        });
    }
    if let Some(err) = &p.error {
        let failed_expectation = p.expectations.iter().any(|e| e.status == Check::Failed);
        match err.kind.as_str() {
            "failure" if failed_expectation => {}
            "failure" => out.push(Case {
                name: "fail".into(),
                time: 0.0,
                outcome: Some(("failure", "fail".into(), err.message.clone(), body(err))),
            }),
            kind => out.push(Case {
                name: match kind {
                    "script" => "script error".into(),
                    "internal" => "internal error".into(),
                    other => other.to_string(),
                },
                time: 0.0,
                outcome: Some(("error", kind.to_string(), err.message.clone(), body(err))),
            }),
        }
    }
    let steps: Vec<String> = p
        .cleanup
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {}: {}",
                if s.ok { "ok" } else { "FAILED" },
                s.step,
                s.detail
            )
        })
        .collect();
    out.push(Case {
        name: "cleanup".into(),
        time: p.cleanup.steps.iter().fold(0.0, |t, s| t + s.took_s),
        outcome: (!p.cleanup.ok).then(|| {
            (
                "failure",
                "cleanup".into(),
                "cleanup could not remove everything the playbook created".into(),
                steps.join("\n"),
            )
        }),
    });
    out
}

fn body(err: &ErrorInfo) -> String {
    let mut b = err.message.clone();
    if let Some(at) = &err.at {
        let _ = write!(b, "\n  --> {at}");
    }
    for n in &err.notes {
        let _ = write!(b, "\n  = {n}");
    }
    b
}

/// `tests/fixtures/pass.rhai` -> `tests.fixtures.pass` (Jenkins: package `tests.fixtures`, class `pass`).
fn classname(name: &str) -> String {
    let stem = name.strip_suffix(".rhai").unwrap_or(name);
    stem.trim_start_matches("./")
        .replace(['/', '\\'], ".")
        .trim_matches('.')
        .to_string()
}

/// `2024-05-01T10:00:00` (UTC, no zone: the schema's form).
fn timestamp(rfc3339: Option<&str>) -> String {
    rfc3339
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

fn count(cases: &[Case]) -> Counts {
    let n = |kind: &str| {
        cases
            .iter()
            .filter(|c| c.outcome.as_ref().is_some_and(|o| o.0 == kind))
            .count()
    };
    Counts {
        tests: cases.len(),
        failures: n("failure"),
        errors: n("error"),
        skipped: n("skipped"),
    }
}

/// The whole report as JUnit XML.
pub fn render(run: &RunReport) -> String {
    let suites: Vec<(&PlaybookReport, Vec<Case>)> =
        run.playbooks.iter().map(|p| (p, cases(p))).collect();
    let all: Vec<&Case> = suites.iter().flat_map(|(_, c)| c).collect();
    let total = |kind: &str| {
        all.iter()
            .filter(|c| c.outcome.as_ref().is_some_and(|o| o.0 == kind))
            .count()
    };
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">",
        escape_attr(&format!("playbook run {}", run.run_id)),
        all.len(),
        total("failure"),
        total("error"),
        total("skipped"),
        run.playbooks.iter().fold(0.0, |t, p| t + p.run_s),
        timestamp(Some(&run.started_at)),
    );
    for (i, (p, cases)) in suites.iter().enumerate() {
        suite(&mut x, i, p, cases, &run.target.kind);
    }
    x.push_str("</testsuites>\n");
    x
}

fn suite(x: &mut String, id: usize, p: &PlaybookReport, cases: &[Case], hostname: &str) {
    let c = count(cases);
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" id=\"{id}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\" hostname=\"{}\">",
        escape_attr(&p.name),
        c.tests,
        c.failures,
        c.errors,
        c.skipped,
        p.run_s,
        timestamp(p.started_at.as_deref().or(Some(""))),
        escape_attr(hostname),
    );
    let mut props: Vec<(String, String)> = vec![
        ("playbook.status".into(), p.status.word().into()),
        ("playbook.sha256".into(), p.sha256.clone()),
        ("playbook.wall_s".into(), format!("{:.3}", p.wall_s)),
    ];
    if let Some(t) = &p.title {
        props.push(("playbook.title".into(), t.clone()));
    }
    if !p.tags.is_empty() {
        props.push(("playbook.tags".into(), p.tags.join(", ")));
    }
    props.extend(p.records.iter().map(|(k, v)| (k.clone(), super::figure(v))));
    x.push_str("    <properties>\n");
    for (k, v) in props {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape_attr(&k),
            escape_attr(&v)
        );
    }
    x.push_str("    </properties>\n");
    let class = escape_attr(&classname(&p.name));
    for case in cases {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{class}\" time=\"{:.3}\"",
            escape_attr(&case.name),
            case.time
        );
        match &case.outcome {
            None => {
                let _ = writeln!(x, "{open}/>");
            }
            Some((element, kind, message, text)) => {
                let _ = writeln!(x, "{open}>");
                let kind_attr = if kind.is_empty() {
                    String::new()
                } else {
                    format!(" type=\"{}\"", escape_attr(kind))
                };
                if text.is_empty() {
                    let _ = writeln!(
                        x,
                        "      <{element} message=\"{}\"{kind_attr}/>",
                        escape_attr(message)
                    );
                } else {
                    let _ = writeln!(
                        x,
                        "      <{element} message=\"{}\"{kind_attr}>{}</{element}>",
                        escape_attr(message),
                        escape_text(text)
                    );
                }
                x.push_str("    </testcase>\n");
            }
        }
    }
    if !p.log.is_empty() {
        let log: Vec<String> = p
            .log
            .iter()
            .map(|l| format!("[+{:.1}s] {}", l.at_s, l.text))
            .collect();
        let _ = writeln!(
            x,
            "    <system-out>{}</system-out>",
            escape_text(&log.join("\n"))
        );
    }
    x.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(escape_text("a<b & c>d"), "a&lt;b &amp; c&gt;d");
        assert_eq!(escape_text("\"q\" 'a'"), "\"q\" 'a'");
        assert_eq!(escape_attr("\"q\" 'a'"), "&quot;q&quot; &apos;a&apos;");
        assert_eq!(escape_attr("1\n2\t3\r"), "1&#10;2&#9;3&#13;");
        assert_eq!(escape_text("1\n2\t3"), "1\n2\t3");
        assert_eq!(
            escape_text("bell\u{7}esc\u{1b}[0m"),
            "bell\\u{7}esc\\u{1b}[0m"
        );
        assert_eq!(escape_attr("nul\0"), "nul\\u{0}");
        assert_eq!(escape_text("\u{FFFE}é"), "\\u{fffe}é");
        assert_eq!(escape_text("]]>"), "]]&gt;");
    }

    #[test]
    fn classnames_are_dotted_paths() {
        assert_eq!(classname("tests/fixtures/pass.rhai"), "tests.fixtures.pass");
        assert_eq!(classname("./a.rhai"), "a");
    }
}
