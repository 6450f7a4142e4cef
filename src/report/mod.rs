//! What a batch run reports: the run's journal as data ([`RunReport`], schema
//! `playbook.report/v1`, documented in `docs/report-schema.md`), built by the runner as playbooks
//! finish, and its renderings — the console (live progress, plain lines, summary table), JSON,
//! JUnit XML, Markdown and HTML — written to the files `--report`, `--junit`, `--markdown` and
//! `--html` name; `playbook report` renders them again from a saved journal and compares two.
//!
//! # Layout
//! - `console.rs`: live progress on a terminal, timestamped lines otherwise, the summary table.
//! - `compare.rs`: `playbook report`: re-rendering a saved journal, comparing it to a baseline.
//! - `html.rs`: the self-contained HTML page (timeline and series drawn as inline SVG).
//! - `json.rs`: the JSON journal (and the ordered `records` map).
//! - `junit.rs`: JUnit XML for GitLab, Jenkins and GitHub Actions; XML escaping.
//! - `markdown.rs`: the pull-request summary.
//! - `publish.rs`: the JSON summary (`--notify`, `--summary-configmap`), the Pushgateway
//!   exposition (`--pushgateway`), and their bounded sender and ConfigMap writer.
//! - `select.rs`: a playbook's `//!` header (title, tags) and `--filter`.

mod compare;
mod console;
mod html;
mod json;
mod junit;
mod markdown;
pub mod publish;
mod select;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compare::{Comparison, FigureChange, Job, PlaybookChange, command};
pub use console::{Console, Mode, Sink, Verbosity};
pub use json::Records;
pub use junit::{escape_attr, escape_text};
pub use select::{Filter, Header};

use crate::outcome::Verdict;
use crate::session::Record;

/// The version of the JSON journal's schema; bumped on any change that is not an addition.
pub const SCHEMA: &str = "playbook.report/v1";

/// The journal of one `playbook run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    pub run_id: String,
    pub tool: Tool,
    pub target: TargetInfo,
    /// The simulator's seed (`--seed`); the same seed gives the same simulated run.
    pub seed: u64,
    /// Wall clock, RFC 3339.
    pub started_at: String,
    /// Wall clock, RFC 3339; absent while the run is still going.
    pub finished_at: Option<String>,
    /// Wall-clock seconds from start to finish (or to the last playbook written).
    pub wall_s: f64,
    /// False while playbooks are still to run: the file is rewritten after each playbook.
    pub complete: bool,
    pub options: Options,
    /// The batch's verdict: the most severe of the playbooks'.
    pub status: Status,
    /// The process's exit code for that verdict (README's table).
    pub exit_code: u8,
    /// How many playbooks ended with each status.
    pub counts: BTreeMap<Status, usize>,
    pub playbooks: Vec<PlaybookReport>,
}

/// The program that wrote the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// What the run talked to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `sim` or `kube`.
    pub kind: String,
    /// The target in one line, as the run printed it.
    pub description: String,
    /// The kubeconfig context (kube only).
    pub context: Option<String>,
}

/// The options that shaped the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// `--timeout` of each playbook, in seconds.
    pub timeout_s: f64,
    pub dry_run: bool,
    pub fail_fast: bool,
    pub filter: Vec<String>,
}

/// How a playbook (or the batch) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    /// `--dry-run`: nothing injected, no expectation evaluated (exit code 0).
    DryRun,
    Failed,
    /// Nothing proves the faults took effect, or a recovery's disruption was never observed.
    Inconclusive,
    Error,
    Interrupted,
    CleanupIncomplete,
    Skipped,
}

impl Status {
    /// The status of a verdict (an invalid playbook never runs; it counts as an error).
    pub fn of(v: Verdict) -> Status {
        match v {
            Verdict::Passed => Status::Passed,
            Verdict::DryRun => Status::DryRun,
            Verdict::Failed => Status::Failed,
            Verdict::Inconclusive => Status::Inconclusive,
            Verdict::Invalid | Verdict::Error | Verdict::Refused => Status::Error,
            Verdict::Interrupted => Status::Interrupted,
            Verdict::CleanupIncomplete => Status::CleanupIncomplete,
        }
    }

    /// A word for tables: `passed`, `cleanup incomplete`, ...
    pub fn word(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::DryRun => "dry run (not evaluated)",
            Status::Failed => "failed",
            Status::Inconclusive => "inconclusive",
            Status::Error => "error",
            Status::Interrupted => "interrupted",
            Status::CleanupIncomplete => "cleanup incomplete",
            Status::Skipped => "skipped",
        }
    }
}

/// One playbook of the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookReport {
    /// The playbook's path as given on the command line (or found in a folder).
    pub name: String,
    /// The first line of its `//!` header.
    pub title: Option<String>,
    /// From a `//! tags: a, b` header line.
    pub tags: Vec<String>,
    /// SHA-256 of the playbook's text: which version of it ran.
    pub sha256: String,
    pub status: Status,
    /// Why it did not run (status `skipped`).
    pub skip_reason: Option<String>,
    /// Wall clock, RFC 3339 (absent when skipped).
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Wall-clock seconds, cleanup included.
    pub wall_s: f64,
    /// The run clock (virtual in the simulator) when it started, RFC 3339.
    pub run_started_at: Option<String>,
    /// Run-clock seconds, cleanup and steady-state re-checks included.
    pub run_s: f64,
    /// What ended it early: a failed expectation or `fail`, a script error, a timeout...
    pub error: Option<ErrorInfo>,
    /// Why it proved nothing (status `inconclusive`): faults that selected no pod or were
    /// never seen injected, recoveries whose disruption was never observed.
    #[serde(default)]
    pub inconclusive: Vec<String>,
    pub expectations: Vec<ExpectationReport>,
    pub faults: Vec<FaultReport>,
    /// `record(key, value)` in first-write order.
    pub records: Records,
    pub cleanup: CleanupReport,
    pub log: Vec<LogReport>,
    /// What it observed over time (absent in reports written before series existed).
    #[serde(default)]
    pub series: Vec<SeriesReport>,
    /// Marks on its timeline, in time order: fault phases, records, cleanup steps.
    #[serde(default)]
    pub events: Vec<EventReport>,
    /// Records whose regression direction the playbook declared (`//! higher is worse: KEY`,
    /// `//! lower is worse: KEY`): key -> `higher` or `lower`.
    #[serde(default)]
    pub worse_if: BTreeMap<String, String>,
}

/// One observed figure over time (see `docs/report-schema.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesReport {
    /// `probe NS/SERVICE/PATH`, `readiness NS/WORKLOAD`, `hpa NS/NAME`, `expect "NAME"`...
    pub source: String,
    pub field: String,
    pub unit: String,
    /// Samples observed (more than `points` once down-sampled).
    pub samples: u64,
    /// `[run-clock seconds, value]`.
    pub points: Vec<[f64; 2]>,
}

/// A mark on a playbook's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventReport {
    pub at_s: f64,
    /// `fault`, `record` or `cleanup`.
    pub kind: String,
    pub name: String,
    pub detail: String,
}

/// Why a playbook ended early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// `failure` (an expectation or `fail`: status failed), `inconclusive`, `script`,
    /// `timeout`, `interrupted` or `internal`.
    pub kind: String,
    pub message: String,
    /// `file:line:col`, when known.
    pub at: Option<String>,
    /// The call chain, outermost first.
    pub notes: Vec<String>,
}

/// One `expect`, `always` or `steady_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationReport {
    pub name: String,
    /// `expect`, `expect_recovery`, `always`, `guard`, `steady_state` or `steady_state (after
    /// cleanup)`.
    pub kind: String,
    pub status: crate::session::Status,
    /// Time allowed (`expect`), window (`always`), in seconds.
    pub timeout_s: f64,
    /// Seconds until it passed or failed (run clock).
    pub took_s: f64,
    /// The last value the condition observed.
    pub observed: String,
    /// `file:line:col` of the call.
    pub at: String,
    /// Run-clock seconds when it started and ended (unknown in older reports).
    #[serde(default)]
    pub started_s: Option<f64>,
    #[serde(default)]
    pub ended_s: Option<f64>,
}

/// One fault the playbook injected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    /// The Chaos Mesh kind, e.g. `PodChaos`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Pods Chaos Mesh selected (`namespace/name`), once known.
    pub selected: Vec<String>,
    /// Run-clock seconds since the playbook started.
    pub created_s: f64,
    pub injected_s: Option<f64>,
    pub recovered_s: Option<f64>,
    /// When its object was deleted (by the playbook or by cleanup).
    pub removed_s: Option<f64>,
}

/// Cleanup: every step, last-in first-out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Everything the playbook created was removed.
    pub ok: bool,
    pub steps: Vec<StepReport>,
}

/// One cleanup step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub ok: bool,
    pub detail: String,
    /// Run-clock seconds it took.
    pub took_s: f64,
}

/// One line of the playbook's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogReport {
    /// Run-clock seconds since the playbook started.
    pub at_s: f64,
    /// `info` (print, log, the run's own lines) or `debug`.
    pub level: String,
    pub text: String,
}

/// What the runner knows about a playbook before running it.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub name: String,
    pub header: Header,
    pub sha256: String,
}

/// Timings of a playbook that ran.
#[derive(Debug, Clone)]
pub struct Timing {
    pub started_at: jiff::Timestamp,
    pub finished_at: jiff::Timestamp,
    pub run_started_at: jiff::Timestamp,
    pub run_s: f64,
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Seconds rounded to the millisecond (no `11.999999` from a subtraction).
fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The timeline marks of a playbook: each fault's phases (from its times), and the marks the
/// run made (pauses, records, cleanup steps), in time order.
fn events(record: &Record) -> Vec<EventReport> {
    let mut out: Vec<EventReport> = Vec::new();
    for f in &record.faults {
        let name = format!("{} {}/{}", f.kind, f.namespace, f.name);
        let phases = [
            ("created", Some(f.created_s)),
            ("injected", f.injected_s),
            ("recovered", f.recovered_s),
            ("removed", f.removed_s),
        ];
        for (phase, at) in phases {
            if let Some(at_s) = at {
                out.push(EventReport {
                    at_s,
                    kind: "fault".into(),
                    name: name.clone(),
                    detail: phase.into(),
                });
            }
        }
    }
    out.extend(record.events.iter().map(|e| EventReport {
        at_s: e.at_s,
        kind: e.kind.clone(),
        name: e.name.clone(),
        detail: e.detail.clone(),
    }));
    out.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    out
}

impl PlaybookReport {
    /// A playbook that ran: its verdict, what ended it, and what it observed.
    pub fn ran(
        meta: &Meta,
        verdict: Verdict,
        error: Option<ErrorInfo>,
        cleanup_ok: bool,
        timing: &Timing,
        record: &Record,
    ) -> Self {
        PlaybookReport {
            status: Status::of(verdict),
            started_at: Some(timing.started_at.to_string()),
            finished_at: Some(timing.finished_at.to_string()),
            wall_s: timing
                .finished_at
                .duration_since(timing.started_at)
                .as_secs_f64(),
            run_started_at: Some(timing.run_started_at.to_string()),
            run_s: timing.run_s,
            error,
            inconclusive: record.inconclusive.clone(),
            expectations: record
                .expectations
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let ended = record
                        .ended_s
                        .get(i)
                        .copied()
                        .filter(|t| t.is_finite())
                        .map(round_ms);
                    ExpectationReport {
                        name: e.name.clone(),
                        kind: e.kind.clone(),
                        status: e.status,
                        timeout_s: secs(e.timeout_ms),
                        took_s: secs(e.took_ms),
                        observed: e.observed.clone(),
                        at: e.at.clone(),
                        started_s: ended.map(|t| round_ms(t - secs(e.took_ms))),
                        ended_s: ended,
                    }
                })
                .collect(),
            faults: record
                .faults
                .iter()
                .map(|f| FaultReport {
                    kind: f.kind.clone(),
                    namespace: f.namespace.clone(),
                    name: f.name.clone(),
                    selected: f.selected.clone(),
                    created_s: f.created_s,
                    injected_s: f.injected_s,
                    recovered_s: f.recovered_s,
                    removed_s: f.removed_s,
                })
                .collect(),
            records: Records(record.records.clone()),
            cleanup: CleanupReport {
                ok: cleanup_ok,
                steps: record
                    .cleanup
                    .iter()
                    .map(|c| StepReport {
                        step: c.step.clone(),
                        ok: c.ok,
                        detail: c.detail.clone(),
                        took_s: secs(c.took_ms),
                    })
                    .collect(),
            },
            skip_reason: None,
            log: record
                .log
                .iter()
                .map(|l| LogReport {
                    at_s: l.at_s,
                    level: if l.debug { "debug" } else { "info" }.into(),
                    text: l.text.clone(),
                })
                .collect(),
            series: record
                .series
                .iter()
                .map(|s| SeriesReport {
                    source: s.source.clone(),
                    field: s.field.clone(),
                    unit: s.unit.clone(),
                    samples: s.samples,
                    points: s.points(),
                })
                .collect(),
            events: events(record),
            ..PlaybookReport::skipped(meta, String::new())
        }
    }

    /// A playbook that did not run, and why.
    pub fn skipped(meta: &Meta, reason: String) -> Self {
        PlaybookReport {
            name: meta.name.clone(),
            title: meta.header.title.clone(),
            tags: meta.header.tags.clone(),
            sha256: meta.sha256.clone(),
            status: Status::Skipped,
            skip_reason: Some(reason),
            started_at: None,
            finished_at: None,
            wall_s: 0.0,
            run_started_at: None,
            run_s: 0.0,
            error: None,
            inconclusive: Vec::new(),
            expectations: Vec::new(),
            faults: Vec::new(),
            records: Records::default(),
            cleanup: CleanupReport {
                ok: true,
                steps: Vec::new(),
            },
            log: Vec::new(),
            series: Vec::new(),
            events: Vec::new(),
            worse_if: meta.header.worse_if.iter().cloned().collect(),
        }
    }

    /// Its verdict (skipped counts as passed: it does not change the exit code).
    pub fn verdict(&self) -> Verdict {
        match self.status {
            Status::Passed | Status::Skipped => Verdict::Passed,
            Status::DryRun => Verdict::DryRun,
            Status::Failed => Verdict::Failed,
            Status::Inconclusive => Verdict::Inconclusive,
            Status::Error => Verdict::Error,
            Status::Interrupted => Verdict::Interrupted,
            Status::CleanupIncomplete => Verdict::CleanupIncomplete,
        }
    }
}

impl RunReport {
    /// An empty journal for a run that starts now.
    pub fn new(run_id: &str, target: TargetInfo, seed: u64, options: Options) -> Self {
        RunReport {
            schema: SCHEMA.into(),
            run_id: run_id.into(),
            tool: Tool {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            target,
            seed,
            started_at: jiff::Timestamp::now().to_string(),
            finished_at: None,
            wall_s: 0.0,
            complete: false,
            options,
            status: Status::Passed,
            exit_code: 0,
            counts: BTreeMap::new(),
            playbooks: Vec::new(),
        }
    }

    /// Adds a finished (or skipped) playbook; updates the batch's verdict and counts.
    pub fn push(&mut self, p: PlaybookReport) {
        *self.counts.entry(p.status).or_default() += 1;
        self.playbooks.push(p);
        let verdict = self.verdict();
        self.status = Status::of(verdict);
        self.exit_code = verdict.exit_code();
        self.touch();
    }

    /// The most severe verdict of the playbooks so far.
    pub fn verdict(&self) -> Verdict {
        self.playbooks
            .iter()
            .fold(Verdict::Passed, |v, p| v.worst(p.verdict()))
    }

    /// Marks the run finished.
    pub fn finish(&mut self) {
        self.complete = true;
        self.touch();
        self.finished_at = Some(jiff::Timestamp::now().to_string());
    }

    fn touch(&mut self) {
        if let Ok(start) = self.started_at.parse::<jiff::Timestamp>() {
            self.wall_s = jiff::Timestamp::now().duration_since(start).as_secs_f64();
        }
    }
}

/// Which report files to write.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

/// A report file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write report {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl Outputs {
    /// Checks, before anything runs, that every report file can be written (creating it):
    /// a report never replaces anything but a regular file.
    pub fn check(&self) -> Result<(), WriteError> {
        for path in self.paths() {
            let err = |source| WriteError {
                path: path.to_path_buf(),
                source,
            };
            match std::fs::symlink_metadata(path) {
                Ok(_) => {
                    crate::files::regular_or_absent(path).map_err(err)?;
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(path)
                        .map_err(err)?;
                }
                Err(_) => {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(path)
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }

    /// The files to write.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        [&self.json, &self.junit, &self.markdown, &self.html]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }

    /// Writes every report (each atomically: a temporary file, then a rename); every failure.
    pub fn write(&self, run: &RunReport) -> Vec<WriteError> {
        let mut errors = Vec::new();
        let renders: [(&Option<PathBuf>, Render); 4] = [
            (&self.json, json::render),
            (&self.junit, junit::render),
            (&self.markdown, markdown::render),
            (&self.html, html::render),
        ];
        for (path, render) in renders {
            if let Some(path) = path {
                if let Err(source) = write_atomic(path, &render(run)) {
                    errors.push(WriteError {
                        path: path.clone(),
                        source,
                    });
                }
            }
        }
        errors
    }
}

/// Renders a report format.
type Render = fn(&RunReport) -> String;

fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    write_safely(path, text.as_bytes())
}

pub use crate::files::write_safely;

pub use crate::session::figure;

/// Seconds for tables: `850ms`, `12.3s`, `2m05s`.
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// How long a fault was active: from injected (else created) until recovered (else removed).
pub fn fault_active_s(f: &FaultReport) -> Option<f64> {
    Some(f.recovered_s.or(f.removed_s)? - f.injected_s.unwrap_or(f.created_s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_seconds_read_well_in_tables() {
        assert_eq!(figure(&serde_json::json!(12000)), "12000");
        assert_eq!(figure(&serde_json::json!(12.0)), "12");
        assert_eq!(figure(&serde_json::json!(0.12345)), "0.123");
        assert_eq!(figure(&serde_json::json!(1234.56)), "1234.6");
        assert_eq!(figure(&serde_json::json!("ok")), "ok");
        assert_eq!(figure(&serde_json::json!({"a": 1})), "{\"a\":1}");
        assert_eq!(seconds(0.25), "250ms");
        assert_eq!(seconds(12.34), "12.3s");
        assert_eq!(seconds(125.0), "2m05s");
    }

    #[test]
    fn a_report_that_cannot_be_written_names_its_path() {
        let bad = std::env::temp_dir()
            .join(format!("pb-no-such-dir-{}", std::process::id()))
            .join("run.json");
        let outputs = Outputs {
            json: Some(bad.clone()),
            ..Default::default()
        };
        let run = RunReport::new(
            "pb-1",
            TargetInfo {
                kind: "sim".into(),
                description: String::new(),
                context: None,
            },
            1,
            Options {
                timeout_s: 1.0,
                dry_run: false,
                fail_fast: false,
                filter: Vec::new(),
            },
        );
        let errors = outputs.write(&run);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains(&bad.display().to_string()));
        assert!(outputs.check().is_err());
    }
}
