//! The Markdown summary (`--markdown FILE.md`) for a pull-request comment: one table row per
//! playbook with its verdict, run-clock duration, fault activity and main figures, then the
//! failed expectations with what they observed, and what broke.

use std::fmt::Write as _;

use super::{PlaybookReport, RunReport, Status, fault_active_s, figure, seconds};
use crate::session::Status as Check;

/// How many records the table shows per playbook (the JSON journal has them all).
const FIGURES: usize = 8;

fn badge(s: Status) -> &'static str {
    match s {
        Status::Passed => "✅ passed",
        Status::DryRun => "📝 dry run (not evaluated)",
        Status::Failed => "❌ failed",
        Status::Inconclusive => "❔ inconclusive",
        Status::Error => "💥 error",
        Status::Interrupted => "⏹️ interrupted",
        Status::CleanupIncomplete => "🧹 cleanup incomplete",
        Status::Skipped => "⏭️ skipped",
    }
}

/// A table cell: no line breaks, pipes escaped.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Inline code that survives backticks inside.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

fn faults(p: &PlaybookReport) -> String {
    let parts: Vec<String> = p
        .faults
        .iter()
        .map(|f| {
            let pods = if f.selected.is_empty() {
                String::new()
            } else {
                format!(", {} pod(s)", f.selected.len())
            };
            match fault_active_s(f) {
                Some(s) => format!("{} active {}{pods}", f.kind, seconds(s)),
                None => format!("{}{pods}", f.kind),
            }
        })
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("<br>")
    }
}

fn figures(p: &PlaybookReport) -> String {
    let mut parts: Vec<String> = p
        .records
        .iter()
        .take(FIGURES)
        .map(|(k, v)| format!("{k}: **{}**", figure(v)))
        .collect();
    if p.records.0.len() > FIGURES {
        parts.push(format!("… {} more", p.records.0.len() - FIGURES));
    }
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("<br>")
    }
}

/// The whole summary.
pub fn render(run: &RunReport) -> String {
    let mut m = String::new();
    let counts: Vec<String> = run
        .counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.word()))
        .collect();
    let _ = writeln!(
        m,
        "## Chaos playbooks: {} ({})\n",
        badge(run.status),
        counts.join(", ")
    );
    let _ = writeln!(
        m,
        "Run `{}` on {}, `playbook` {}{}.\n",
        run.run_id,
        cell(&run.target.description),
        run.tool.version,
        if run.complete { "" } else { " (still running)" }
    );
    m.push_str("| playbook | verdict | run clock | expectations | faults | figures |\n");
    m.push_str("|---|---|---:|---:|---|---|\n");
    for p in &run.playbooks {
        let passed = p
            .expectations
            .iter()
            .filter(|e| e.status == Check::Passed)
            .count();
        let expectations = if p.status == Status::Skipped {
            "—".to_string()
        } else {
            format!("{passed}/{}", p.expectations.len())
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {expectations} | {} | {} |",
            code(&p.name),
            badge(p.status),
            if p.status == Status::Skipped {
                "—".into()
            } else {
                seconds(p.run_s)
            },
            cell(&faults(p)),
            cell(&figures(p)),
        );
    }
    let failed: Vec<_> = run
        .playbooks
        .iter()
        .flat_map(|p| {
            p.expectations
                .iter()
                .filter(|e| e.status == Check::Failed)
                .map(move |e| (p, e))
        })
        .collect();
    if !failed.is_empty() {
        m.push_str("\n### Failed expectations\n\n");
        for (p, e) in failed {
            let _ = writeln!(
                m,
                "- {}: {} **{}** after {} (limit {}): observed {} at {}",
                code(&p.name),
                e.kind,
                cell(&e.name),
                seconds(e.took_s),
                seconds(e.timeout_s),
                code(&e.observed),
                code(&e.at)
            );
        }
    }
    let broken: Vec<_> = run
        .playbooks
        .iter()
        .filter_map(|p| p.error.as_ref().map(|e| (p, e)))
        .filter(|(p, e)| {
            e.kind != "failure" || !p.expectations.iter().any(|x| x.status == Check::Failed)
        })
        .collect();
    if !broken.is_empty() {
        m.push_str("\n### Errors\n\n");
        for (p, e) in broken {
            let at = e.at.as_deref().map(code).unwrap_or_default();
            let _ = writeln!(
                m,
                "- {} ({}): {} {at}",
                code(&p.name),
                e.kind,
                cell(&e.message)
            );
        }
    }
    let dirty: Vec<_> = run.playbooks.iter().filter(|p| !p.cleanup.ok).collect();
    if !dirty.is_empty() {
        m.push_str("\n### Cleanup incomplete\n\n");
        for p in dirty {
            for s in p.cleanup.steps.iter().filter(|s| !s.ok) {
                let _ = writeln!(m, "- {}: {}: {}", code(&p.name), s.step, cell(&s.detail));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_the_table_intact() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(code("x`y"), "`` x`y ``");
    }
}
