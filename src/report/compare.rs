//! `playbook report`: renders a saved JSON journal again (HTML, Markdown, JUnit), and compares
//! it with a baseline journal: per playbook the verdict change and every numeric record's
//! change, judged by the record's direction (`_ms`/`_s`: higher is worse; or as the playbook's
//! `//! higher is worse:` / `//! lower is worse:` header declares), gated by `--max-regression`.

use std::fmt::Write as _;
use std::path::Path;

use super::{Outputs, PlaybookReport, RunReport, Status, figure, html};
use crate::outcome::Verdict;

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worse {
    Higher,
    Lower,
}

/// One numeric record in the baseline and now.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureChange {
    /// The record's key (`hpa.current` for a field of a map).
    pub key: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
    /// `None`: the change is shown, never judged.
    pub worse: Option<Worse>,
    /// It got worse by more than the threshold (never without one).
    pub regressed: bool,
}

/// One playbook in the baseline and now.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookChange {
    pub name: String,
    /// `None`: not in that report.
    pub old: Option<Status>,
    pub new: Option<Status>,
    /// Its verdict is more severe than the baseline's, or it is gone.
    pub verdict_worse: bool,
    pub figures: Vec<FigureChange>,
}

/// A report compared with a baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The baseline, as `FILE (run ID, seed N)`.
    pub baseline: String,
    pub current: String,
    /// `--max-regression` as a fraction (0.2 for 20%).
    pub threshold: Option<f64>,
    pub playbooks: Vec<PlaybookChange>,
}

impl FigureChange {
    /// The relative change (0.56 for +56%); `None` without both values or from 0.
    pub fn relative(&self) -> Option<f64> {
        let (o, n) = (self.old?, self.new?);
        (o != 0.0).then(|| (n - o) / o.abs())
    }

    fn text(&self, v: Option<f64>) -> String {
        let Some(v) = v else {
            return "—".into();
        };
        if self.key.ends_with("_ms") {
            if v.abs() >= 1000.0 {
                format!("{:.1} s", v / 1000.0)
            } else {
                format!("{} ms", figure(&serde_json::json!(v)))
            }
        } else if self.key.ends_with("_s") {
            format!("{v:.1} s")
        } else {
            figure(&serde_json::json!(v))
        }
    }

    pub fn old_text(&self) -> String {
        self.text(self.old)
    }

    pub fn new_text(&self) -> String {
        self.text(self.new)
    }

    /// `+56.0%`, `-3.2%`, `same`, `+12 (from 0)`, `new`, `gone`, then how it is judged.
    pub fn change_text(&self) -> String {
        let judged = match (self.worse, self.got_worse()) {
            (Some(_), true) if self.regressed => " REGRESSION",
            (Some(_), true) => " (worse)",
            (Some(_), false) if self.old != self.new => " (better)",
            _ => "",
        };
        let change = match (self.old, self.new, self.relative()) {
            (Some(o), Some(n), _) if o == n => "same".into(),
            (None, Some(_), _) => "new".into(),
            (Some(_), None, _) => "gone".into(),
            (_, _, Some(r)) => format!("{:+.1}%", r * 100.0),
            (Some(o), Some(n), None) => format!("{:+} (from 0)", figure(&serde_json::json!(n - o))),
            _ => String::new(),
        };
        format!("{change}{judged}")
    }

    /// It moved in its worse direction (by any amount).
    fn got_worse(&self) -> bool {
        match (self.worse, self.old, self.new) {
            (Some(Worse::Higher), Some(o), Some(n)) => n > o,
            (Some(Worse::Lower), Some(o), Some(n)) => n < o,
            _ => false,
        }
    }
}

impl PlaybookChange {
    /// `passed -> failed`, `passed`, `new: passed`, `gone (was passed)`.
    pub fn verdict_change(&self) -> String {
        match (self.old, self.new) {
            (Some(o), Some(n)) if o == n => n.word().to_string(),
            (Some(o), Some(n)) => format!("{} -> {}", o.word(), n.word()),
            (None, Some(n)) => format!("new: {}", n.word()),
            (Some(o), None) => format!("gone (was {})", o.word()),
            (None, None) => String::new(),
        }
    }
}

impl Comparison {
    /// Compares `current` with `baseline`; a figure regresses when it got worse by more than
    /// `threshold` (a fraction), or at all from 0.
    pub fn new(
        baseline: (&str, &RunReport),
        current: (&str, &RunReport),
        threshold: Option<f64>,
    ) -> Comparison {
        let describe =
            |(file, r): (&str, &RunReport)| format!("{file} (run {}, seed {})", r.run_id, r.seed);
        let (old, new) = (baseline.1, current.1);
        let mut playbooks = Vec::new();
        for n in &new.playbooks {
            let o = old.playbooks.iter().find(|o| o.name == n.name);
            playbooks.push(compare(o, Some(n), threshold));
        }
        for o in &old.playbooks {
            if !new.playbooks.iter().any(|n| n.name == o.name) {
                playbooks.push(compare(Some(o), None, threshold));
            }
        }
        Comparison {
            baseline: describe(baseline),
            current: describe(current),
            threshold,
            playbooks,
        }
    }

    /// Whether CI should fail: a threshold was given, and a figure regressed beyond it or a
    /// verdict got worse.
    pub fn failed(&self) -> bool {
        self.threshold.is_some()
            && self
                .playbooks
                .iter()
                .any(|p| p.verdict_worse || p.figures.iter().any(|f| f.regressed))
    }

    /// The comparison as text for the console.
    pub fn text(&self) -> String {
        let mut t = format!("baseline: {}\ncurrent:  {}\n", self.baseline, self.current);
        let _ = writeln!(
            t,
            "threshold: {}",
            match self.threshold {
                Some(x) => format!(
                    "a figure regresses when it gets worse by more than {}%",
                    figure(&serde_json::json!(x * 100.0))
                ),
                None => "none (--max-regression not given: nothing fails)".into(),
            }
        );
        let width = self
            .playbooks
            .iter()
            .flat_map(|p| p.figures.iter().map(|f| f.key.len()))
            .max()
            .unwrap_or(0);
        for p in &self.playbooks {
            let _ = writeln!(
                t,
                "\n{}: {}{}",
                p.name,
                p.verdict_change(),
                if p.verdict_worse {
                    "  VERDICT WORSE"
                } else {
                    ""
                }
            );
            for f in &p.figures {
                let _ = writeln!(
                    t,
                    "  {:width$}  {:>10} -> {:<10}  {}",
                    f.key,
                    f.old_text(),
                    f.new_text(),
                    f.change_text()
                );
            }
        }
        let regressions: usize = self
            .playbooks
            .iter()
            .map(|p| p.figures.iter().filter(|f| f.regressed).count() + p.verdict_worse as usize)
            .sum();
        let _ = writeln!(
            t,
            "\n{}",
            match (self.threshold, regressions) {
                (None, _) => "compared (no threshold given)".to_string(),
                (Some(_), 0) => "no regression".to_string(),
                (Some(_), n) => format!("{n} regression(s)"),
            }
        );
        t
    }
}

fn compare(
    old: Option<&PlaybookReport>,
    new: Option<&PlaybookReport>,
    threshold: Option<f64>,
) -> PlaybookChange {
    let name = new.or(old).map(|p| p.name.clone()).unwrap_or_default();
    let verdict_worse = match (old, new) {
        (Some(o), Some(n)) => o.verdict().worst(n.verdict()) != o.verdict(),
        (Some(_), None) => true,
        _ => false,
    };
    let (of, nf) = (
        old.map(numbers).unwrap_or_default(),
        new.map(numbers).unwrap_or_default(),
    );
    let mut keys: Vec<&String> = nf.iter().map(|(k, _)| k).collect();
    keys.extend(
        of.iter()
            .map(|(k, _)| k)
            .filter(|k| !nf.iter().any(|(n, _)| n == *k)),
    );
    let declared = new.or(old).map(|p| &p.worse_if);
    let figures = keys
        .into_iter()
        .map(|key| {
            let get = |v: &Vec<(String, f64)>| v.iter().find(|(k, _)| k == key).map(|(_, x)| *x);
            let mut f = FigureChange {
                key: key.clone(),
                old: get(&of),
                new: get(&nf),
                worse: worse_of(key, declared),
                regressed: false,
            };
            f.regressed = threshold
                .is_some_and(|t| f.got_worse() && f.relative().is_none_or(|r| r.abs() > t));
            f
        })
        .collect();
    PlaybookChange {
        name,
        old: old.map(|p| p.status),
        new: new.map(|p| p.status),
        verdict_worse,
        figures,
    }
}

/// Which way `key` gets worse: as the playbook declared, else `_ms` and `_s` higher.
pub fn worse_of(
    key: &str,
    declared: Option<&std::collections::BTreeMap<String, String>>,
) -> Option<Worse> {
    match declared.and_then(|d| d.get(key)).map(String::as_str) {
        Some("higher") => Some(Worse::Higher),
        Some("lower") => Some(Worse::Lower),
        _ if key.ends_with("_ms") || key.ends_with("_s") => Some(Worse::Higher),
        _ => None,
    }
}

/// A playbook's numeric records, a map's numbers as `key.field` (deeper: `key.a.b`).
fn numbers(p: &PlaybookReport) -> Vec<(String, f64)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
        match v {
            serde_json::Value::Number(n) => out.extend(n.as_f64().map(|x| (prefix.to_string(), x))),
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    walk(&format!("{prefix}.{k}"), v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (k, v) in p.records.iter() {
        walk(k, v, &mut out);
    }
    out
}

/// Reads a JSON journal written by `playbook run --report`.
pub fn load(path: &Path) -> Result<RunReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read report {}: {e}", path.display()))?;
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<String>,
    }
    let head: Schema = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a JSON object: {e}", path.display()))?;
    match head.schema.as_deref() {
        Some(super::SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "{} has schema {other}; this playbook reads {}",
                path.display(),
                super::SCHEMA
            ));
        }
        None => {
            return Err(format!(
                "{} is not a playbook report (no `schema` field)",
                path.display()
            ));
        }
    }
    // From the text, not a `Value`: records keep the order they were written in.
    serde_json::from_str(&text).map_err(|e| format!("{} is damaged: {e}", path.display()))
}

/// What `playbook report` is asked to do (the front end builds it from the command line).
#[derive(Debug, Clone)]
pub struct Job {
    /// The saved JSON report.
    pub report: std::path::PathBuf,
    /// Render it as HTML here.
    pub html: Option<std::path::PathBuf>,
    /// Render it as Markdown here.
    pub markdown: Option<std::path::PathBuf>,
    /// Render it as JUnit XML here.
    pub junit: Option<std::path::PathBuf>,
    /// Compare it with this older report.
    pub baseline: Option<std::path::PathBuf>,
    /// Fail when a record got worse by more than this fraction.
    pub max_regression: Option<f64>,
}

/// `playbook report REPORT.json [--html F] [--markdown F] [--junit F] [--baseline OLD.json
/// [--max-regression PCT]]`: exit 0, 1 when the comparison found a regression, 2 on bad input,
/// 3 when a file could not be written.
pub fn command(args: &Job) -> Verdict {
    let run = match load(&args.report) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Invalid;
        }
    };
    let comparison = match &args.baseline {
        Some(b) => match load(b) {
            Ok(old) => Some(Comparison::new(
                (&b.display().to_string(), &old),
                (&args.report.display().to_string(), &run),
                args.max_regression,
            )),
            Err(e) => {
                eprintln!("error: {e}");
                return Verdict::Invalid;
            }
        },
        None => None,
    };
    if args.max_regression.is_some() && comparison.is_none() {
        eprintln!("error: --max-regression needs --baseline OLD.json to compare with");
        return Verdict::Invalid;
    }
    let outputs = Outputs {
        json: None,
        junit: args.junit.clone(),
        markdown: args.markdown.clone(),
        html: None,
    };
    if outputs.paths().next().is_none() && args.html.is_none() && comparison.is_none() {
        eprintln!(
            "error: nothing to do: give --html, --markdown or --junit to render, or --baseline to compare"
        );
        return Verdict::Invalid;
    }
    let mut verdict = Verdict::Passed;
    let mut written = Vec::new();
    for e in outputs.write(&run) {
        eprintln!("error: {e}");
        verdict = Verdict::Error;
    }
    written.extend(outputs.paths().map(Path::to_path_buf));
    if let Some(path) = &args.html {
        match super::write_atomic(path, &html::render_with(&run, comparison.as_ref())) {
            Ok(()) => written.push(path.clone()),
            Err(e) => {
                eprintln!("error: cannot write report {}: {e}", path.display());
                verdict = Verdict::Error;
            }
        }
    }
    if let Some(c) = &comparison {
        crate::session::say(c.text().trim_end());
        if c.failed() && verdict == Verdict::Passed {
            verdict = Verdict::Failed;
        }
    }
    for p in written {
        crate::session::say(&format!("report: {}", p.display()));
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure_change(key: &str, old: f64, new: f64, threshold: Option<f64>) -> FigureChange {
        let mut f = FigureChange {
            key: key.into(),
            old: Some(old),
            new: Some(new),
            worse: worse_of(key, None),
            regressed: false,
        };
        f.regressed =
            threshold.is_some_and(|t| f.got_worse() && f.relative().is_none_or(|r| r.abs() > t));
        f
    }

    #[test]
    fn slower_recovery_beyond_the_threshold_regresses() {
        let f = figure_change("recovery_ms", 21800.0, 34000.0, Some(0.2));
        assert!(f.regressed);
        assert_eq!(f.old_text(), "21.8 s");
        assert_eq!(f.new_text(), "34.0 s");
        assert_eq!(f.change_text(), "+56.0% REGRESSION");
        let f = figure_change("recovery_ms", 21800.0, 24000.0, Some(0.2));
        assert!(!f.regressed);
        assert_eq!(f.change_text(), "+10.1% (worse)");
        let f = figure_change("recovery_ms", 21800.0, 12000.0, Some(0.2));
        assert!(!f.regressed && f.change_text().ends_with("(better)"));
        // No direction: shown, never judged.
        let f = figure_change("replicas_after", 3.0, 1.0, Some(0.2));
        assert!(!f.regressed && f.change_text() == "-66.7%");
        // From zero, any rise regresses.
        assert!(figure_change("errors_ms", 0.0, 5.0, Some(0.5)).regressed);
        // Without a threshold nothing regresses.
        assert!(!figure_change("recovery_ms", 1.0, 100.0, None).regressed);
    }

    #[test]
    fn a_declared_direction_wins() {
        let mut d = std::collections::BTreeMap::new();
        d.insert("success_rate_after".to_string(), "lower".to_string());
        d.insert("took_ms".to_string(), "lower".to_string());
        assert_eq!(worse_of("success_rate_after", Some(&d)), Some(Worse::Lower));
        assert_eq!(worse_of("took_ms", Some(&d)), Some(Worse::Lower));
        assert_eq!(worse_of("drain_s", Some(&d)), Some(Worse::Higher));
        assert_eq!(worse_of("replicas", Some(&d)), None);
    }
}
