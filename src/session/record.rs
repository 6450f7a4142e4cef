//! What a run observed, kept as data for the console summary and the reports: expectations
//! with their timings and last observed values, faults, records, cleanup steps, and the
//! series of what the playbook observed over time (probes, readiness, HPAs, the values its
//! conditions returned, numeric records), bounded, with the marks of the timeline (fault
//! phases, records, cleanup steps). The host functions push into it through the few
//! functions at the end of this file ([`sample_map`], [`evaluated`], [`expectation_done`],
//! [`recorded`], [`mark`]).

use serde::{Deserialize, Serialize};

/// How an expectation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    /// Could not be evaluated meaningfully (`expect_recovery` never saw the disruption).
    Inconclusive,
}

/// One `expect`, `always` or `steady_state`.
#[derive(Debug, Clone, Serialize)]
pub struct Expectation {
    pub name: String,
    /// `expect`, `always`, `steady_state` or `steady_state (after cleanup)`.
    pub kind: String,
    /// The time allowed (`expect`) or the window (`always`), in milliseconds.
    pub timeout_ms: u64,
    pub status: Status,
    /// Time from the start of the check until it passed or failed, in milliseconds.
    pub took_ms: u64,
    /// The last value the condition returned besides its verdict.
    pub observed: String,
    /// Where in the playbook (file:line:col).
    pub at: String,
}

/// One fault the run injected.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub selected: Vec<String>,
    /// Seconds since the playbook started (run clock).
    pub created_s: f64,
    pub injected_s: Option<f64>,
    pub recovered_s: Option<f64>,
    /// When its object was deleted (by the playbook or by cleanup).
    pub removed_s: Option<f64>,
}

/// One cleanup step and how it went.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupStep {
    pub step: String,
    pub ok: bool,
    pub detail: String,
    /// How long the step took on the run's clock, in milliseconds.
    pub took_ms: u64,
}

/// One line the playbook wrote (`log`, `print`, `debug`) or the run said about it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Seconds since the playbook started (run clock).
    pub at_s: f64,
    /// A `debug(...)` line.
    pub debug: bool,
    pub text: String,
}

/// Everything observed during one playbook.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Record {
    pub expectations: Vec<Expectation>,
    pub faults: Vec<Fault>,
    /// `record(key, value)`, in the order written (a key written twice keeps its last value).
    pub records: Vec<(String, serde_json::Value)>,
    pub cleanup: Vec<CleanupStep>,
    /// Why the run proved nothing (a fault that selected no pod or never reached injected, a
    /// recovery whose disruption was never observed): the verdict is then inconclusive.
    pub inconclusive: Vec<String>,
    /// The playbook's output, filled by whoever routes its lines (the runner's console).
    pub log: Vec<LogLine>,
    /// In a dry run: each object a fault would have created, and the pods it could select.
    #[serde(skip)]
    pub rendered: Vec<(serde_json::Value, Vec<String>)>,
    /// What was observed over time, at most [`MAX_SERIES`] series of at most [`MAX_POINTS`].
    pub series: Vec<Series>,
    /// Marks on the timeline (fault pauses, records, cleanup steps), at most [`MAX_EVENTS`].
    pub events: Vec<Event>,
    /// When each expectation ended (run-clock seconds), by index into `expectations`; pushed
    /// with it by [`expectation_done`] (an expectation pushed otherwise has no time).
    pub ended_s: Vec<f64>,
}

impl Record {
    /// Sets a record, keeping first-write order.
    pub fn set(&mut self, key: &str, value: serde_json::Value) {
        match self.records.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.records.push((key.to_string(), value)),
        }
    }
}

/// Points kept per series: when a series is full, every other point is dropped and from then
/// on only every 2nd (then 4th, 8th...) sample is kept; the latest sample is always kept.
pub const MAX_POINTS: usize = 400;
/// Series kept per playbook; samples of further series are not kept.
pub const MAX_SERIES: usize = 64;
/// Timeline marks kept per playbook; later marks are not kept.
pub const MAX_EVENTS: usize = 1000;

/// One observed figure over time, e.g. the p99 of a probe, or `ready` of a workload.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// What was observed: `probe NS/SERVICE/PATH`, `readiness NS/WORKLOAD`, `hpa NS/NAME`,
    /// `expect "NAME"` (a condition's values), `record`.
    pub source: String,
    /// The figure: `p99`, `ready`, a field the condition returned, a record's key.
    pub field: String,
    /// `ms`, `s`, `ratio`, `replicas`, `percent`, `calls` or `value`.
    pub unit: String,
    /// How many samples were observed (more than `points` once down-sampled).
    pub samples: u64,
    /// `[run-clock seconds, value]`, oldest first.
    pub points: Vec<[f64; 2]>,
    /// Keep one sample in `stride`.
    #[serde(skip)]
    stride: u64,
    /// The latest sample, when the stride did not keep it.
    #[serde(skip)]
    latest: Option<[f64; 2]>,
}

impl Series {
    fn new(source: &str, field: &str, unit: &str) -> Self {
        Series {
            source: source.to_string(),
            field: field.to_string(),
            unit: unit.to_string(),
            samples: 0,
            points: Vec::new(),
            stride: 1,
            latest: None,
        }
    }

    fn push(&mut self, at_s: f64, value: f64) {
        if !value.is_finite() {
            return;
        }
        let n = self.samples;
        self.samples += 1;
        if n % self.stride != 0 {
            self.latest = Some([at_s, value]);
            return;
        }
        self.latest = None;
        self.points.push([at_s, value]);
        if self.points.len() > MAX_POINTS {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
    }

    /// The kept points, and the latest sample when the stride skipped it.
    pub fn points(&self) -> Vec<[f64; 2]> {
        let mut p = self.points.clone();
        p.extend(self.latest);
        p
    }
}

/// A mark on the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Run-clock seconds since the playbook started.
    pub at_s: f64,
    /// `fault`, `record` or `cleanup`.
    pub kind: String,
    /// The fault (`PodChaos ns/name`), the record's key, the cleanup step.
    pub name: String,
    /// The fault's phase (`paused`, `resumed`), the record's value, `ok` or the failure.
    pub detail: String,
}

impl Record {
    fn series(&mut self, source: &str, field: &str, unit: &str) -> Option<&mut Series> {
        let i = match self
            .series
            .iter()
            .position(|s| s.source == source && s.field == field)
        {
            Some(i) => i,
            None if self.series.len() < MAX_SERIES => {
                self.series.push(Series::new(source, field, unit));
                self.series.len() - 1
            }
            None => return None,
        };
        self.series.get_mut(i)
    }

    /// Adds one sample of `source`'s `field`.
    pub fn sample(&mut self, at_s: f64, source: &str, field: &str, unit: &str, value: f64) {
        if let Some(s) = self.series(source, field, unit) {
            s.push(at_s, value);
        }
    }

    /// Adds a timeline mark; a record's mark moves to its latest write.
    pub fn mark(&mut self, event: Event) {
        if event.kind == "record" {
            self.events
                .retain(|e| !(e.kind == "record" && e.name == event.name));
        }
        if self.events.len() < MAX_EVENTS {
            self.events.push(event);
        }
    }
}

/// The unit of a figure named `field`, observed by a `kind` of source.
pub fn unit_of(kind: &str, field: &str) -> &'static str {
    match (kind, field) {
        ("probe", "success_rate") => "ratio",
        ("probe", "count" | "ok") => "calls",
        ("probe", _) => "ms",
        ("hpa", "cpu_utilization") => "percent",
        ("readiness" | "hpa", _) => "replicas",
        (_, f) if f.ends_with("_ms") => "ms",
        (_, f) if f.ends_with("_s") => "s",
        (_, f) if f.ends_with("_rate") => "ratio",
        (_, f) if f.ends_with("_pct") || f.ends_with("_percent") => "percent",
        _ => "value",
    }
}

fn number(v: &rhai::Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
        .or_else(|| v.as_bool().ok().map(|b| if b { 1.0 } else { 0.0 }))
}

/// A host function observed `m` (a probe's statistics, a workload's readiness, an HPA):
/// each of its numbers becomes a sample of the series `KIND SOURCE`/field.
pub fn sample_map(session: &super::Session, kind: &str, source: &str, m: &rhai::Map) {
    let at = session.elapsed_s();
    let name = format!("{kind} {source}");
    let mut r = session.record();
    for (field, v) in m {
        if let Some(x) = number(v) {
            r.sample(at, &name, field, unit_of(kind, field), x);
        }
    }
}

/// A condition (`what`: `expect "NAME"`, `always "NAME"`...) was evaluated and returned
/// `observed` (`true`/`false`, or `key: value, ...` of the map it returned, `ok` left out):
/// each number (a boolean as 1/0) becomes a sample.
pub fn evaluated(session: &super::Session, what: &str, observed: &str) {
    let at = session.elapsed_s();
    let mut r = session.record();
    for (field, x) in observed_numbers(observed) {
        let unit = unit_of("condition", &field);
        r.sample(at, what, &field, unit, x);
    }
}

/// The numbers in a condition's observed text: `true`/`false` alone as `value`, else each
/// `key: number` (or boolean) of `key: value, ...`; anything else is left out.
pub fn observed_numbers(observed: &str) -> Vec<(String, f64)> {
    let scalar = |v: &str| match v.trim() {
        "true" => Some(1.0),
        "false" => Some(0.0),
        v => v.parse::<f64>().ok().filter(|x| x.is_finite()),
    };
    if let Some(x) = scalar(observed) {
        return vec![("value".into(), x)];
    }
    observed
        .split(", ")
        .filter_map(|part| {
            let (k, v) = part.split_once(": ")?;
            let k = k.trim();
            let ident = !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_');
            Some((k.to_string(), scalar(v).filter(|_| ident)?))
        })
        .collect()
}

/// An expectation ended now: keeps it, with the time it ended.
pub fn expectation_done(session: &super::Session, e: Expectation) {
    let at = session.elapsed_s();
    let mut r = session.record();
    // An expectation pushed without a time leaves a hole: fill it so indices stay aligned.
    let missing = r.expectations.len().saturating_sub(r.ended_s.len());
    r.ended_s.extend(std::iter::repeat_n(f64::NAN, missing));
    let told = expectation_told(&e);
    r.expectations.push(e);
    r.ended_s.push(at);
    drop(r);
    session.tell(told);
}

/// The Kubernetes Event of an expectation that ended: passed or failed, with its figure.
fn expectation_told(e: &Expectation) -> super::events::Told {
    let (reason, word) = match e.status {
        Status::Passed => ("ExpectationPassed", "passed"),
        Status::Failed => ("ExpectationFailed", "failed"),
        Status::Inconclusive => ("ExpectationInconclusive", "could not tell"),
    };
    let limit = if e.timeout_ms > 0 {
        format!(
            " (limit {})",
            crate::duration::format(std::time::Duration::from_millis(e.timeout_ms))
        )
    } else {
        String::new()
    };
    let observed = if e.observed.is_empty() {
        String::new()
    } else {
        format!("; observed {}", e.observed)
    };
    super::events::Told {
        warning: e.status != Status::Passed,
        action: "Expect".into(),
        reason: reason.into(),
        note: format!(
            "{} \"{}\" {word} after {}{limit}{observed} at {}",
            e.kind,
            e.name,
            crate::duration::format(std::time::Duration::from_millis(e.took_ms)),
            e.at
        ),
    }
}

/// `record(key, value)`: sets it, marks it on the timeline, and samples its numbers (a map's
/// numbers as `key.field`).
pub fn recorded(session: &super::Session, key: &str, value: serde_json::Value) {
    let at = session.elapsed_s();
    let mut r = session.record();
    let mut numbers = Vec::new();
    match &value {
        serde_json::Value::Object(m) => numbers.extend(
            m.iter()
                .filter_map(|(k, v)| Some((format!("{key}.{k}"), v.as_f64()?))),
        ),
        v => numbers.extend(v.as_f64().map(|x| (key.to_string(), x))),
    }
    for (field, x) in numbers {
        let unit = unit_of("record", &field);
        r.sample(at, "record", &field, unit, x);
    }
    r.mark(Event {
        at_s: at,
        kind: "record".into(),
        name: key.to_string(),
        detail: figure(&value),
    });
    r.set(key, value);
}

/// A mark on the timeline now: a fault's phase, a cleanup step.
pub fn mark(session: &super::Session, kind: &str, name: &str, detail: &str) {
    let at = session.elapsed_s();
    session.record().mark(Event {
        at_s: at,
        kind: kind.to_string(),
        name: name.to_string(),
        detail: detail.to_string(),
    });
}

/// A record's value for tables: numbers rounded, strings bare, the rest as compact JSON.
pub fn figure(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            (None, Some(f)) if f.abs() >= 100.0 => format!("{f:.1}"),
            (None, Some(f)) => format!("{f:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_series_is_down_sampled_to_the_cap_keeping_first_and_latest() {
        let mut r = Record::default();
        for i in 0..10_000 {
            r.sample(i as f64, "probe x", "p99", "ms", i as f64);
        }
        let s = &r.series[0];
        assert_eq!(s.samples, 10_000);
        assert!(s.points.len() <= MAX_POINTS, "{}", s.points.len());
        assert!(s.points.len() > MAX_POINTS / 2, "{}", s.points.len());
        let p = s.points();
        assert_eq!(p[0], [0.0, 0.0]);
        assert_eq!(*p.last().unwrap(), [9999.0, 9999.0]);
        // Evenly spaced: every kept point is on the stride.
        let step = p[1][0] - p[0][0];
        assert!(
            p[..p.len() - 1]
                .windows(2)
                .all(|w| w[1][0] - w[0][0] == step)
        );
    }

    #[test]
    fn series_and_marks_are_bounded() {
        let mut r = Record::default();
        for i in 0..(MAX_SERIES + 10) {
            r.sample(0.0, &format!("probe {i}"), "p50", "ms", 1.0);
        }
        assert_eq!(r.series.len(), MAX_SERIES);
        for i in 0..(MAX_EVENTS + 10) {
            r.mark(Event {
                at_s: i as f64,
                kind: "cleanup".into(),
                name: i.to_string(),
                detail: String::new(),
            });
        }
        assert_eq!(r.events.len(), MAX_EVENTS);
    }

    #[test]
    fn a_record_written_again_moves_its_mark() {
        let mut r = Record::default();
        for at in [1.0, 2.0] {
            r.mark(Event {
                at_s: at,
                kind: "record".into(),
                name: "rise_ms".into(),
                detail: String::new(),
            });
        }
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].at_s, 2.0);
    }

    #[test]
    fn numbers_are_read_from_what_a_condition_observed() {
        assert_eq!(observed_numbers("true"), [("value".to_string(), 1.0)]);
        assert_eq!(
            observed_numbers("ready: 2, desired: 3, isvc_ready: false, state: open"),
            [
                ("ready".to_string(), 2.0),
                ("desired".to_string(), 3.0),
                ("isvc_ready".to_string(), 0.0)
            ]
        );
        assert_eq!(
            observed_numbers("rise_ms: 101.0"),
            [("rise_ms".into(), 101.0)]
        );
        assert!(observed_numbers("object gone").is_empty());
        assert_eq!(unit_of("condition", "rise_ms"), "ms");
        assert_eq!(unit_of("probe", "max"), "ms");
        assert_eq!(unit_of("hpa", "max"), "replicas");
    }
}
