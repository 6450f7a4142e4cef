//! The console of a batch run: on a terminal a live status line (playbook, phase, run clock and
//! wall time, the fault's state) under the playbook's lines; elsewhere (CI logs, pipes) plain
//! timestamped lines; `-q` keeps only the summary and errors, `-v` adds every wait step and
//! debug lines. It also keeps each playbook's lines for the reports, and prints the summary table.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::{PlaybookReport, RunReport, Status, figure, seconds};
use crate::session::{Line, LogLine, Output, Phase, PhaseObserver, Session};

/// How much the console says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Only the summary table (errors still go to standard error).
    Quiet,
    Normal,
    /// Every wait step and every phase, and `debug(...)` lines.
    Verbose,
}

/// How the console shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A status line redrawn in place (a terminal).
    Live,
    /// One line per event; `timestamps`: prefixed with the wall time and the run clock.
    Plain { timestamps: bool },
}

/// Where the console writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// How often the live status line is redrawn while nothing else happens.
const TICK: Duration = Duration::from_millis(200);

/// The playbook running now.
struct Current {
    name: String,
    session: Arc<Session>,
    wall: Instant,
    phase: Phase,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    /// Whether the live status line is on screen (and must be cleared before a line).
    drawn: bool,
    log: Vec<LogLine>,
    spin: usize,
    /// When the status line was last drawn (redraws are throttled).
    last_draw: Option<Instant>,
}

/// The live status line is redrawn at most this often on wait steps.
const THROTTLE: Duration = Duration::from_millis(50);

/// The console of one batch (see the module's summary).
pub struct Console {
    verbosity: Verbosity,
    mode: Mode,
    sink: Sink,
    state: Mutex<State>,
}

impl Console {
    /// A console; in [`Mode::Live`] a thread redraws the status line until the console is dropped.
    pub fn new(verbosity: Verbosity, mode: Mode, sink: Sink) -> Arc<Console> {
        let c = Arc::new(Console {
            verbosity,
            mode,
            sink,
            state: Mutex::new(State::default()),
        });
        if mode == Mode::Live && verbosity != Verbosity::Quiet {
            let weak = Arc::downgrade(&c);
            let _ = std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || ticker(weak));
        }
        c
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, text: &str) {
        // A closed pipe is not an error: the run goes on, and cleanup still runs.
        let _ = match self.sink {
            Sink::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Sink::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        };
        if self.sink == Sink::Stdout {
            let _ = std::io::stdout().flush();
        }
    }

    /// Prints a line above the status line, with the plain mode's prefix inside a playbook.
    fn emit(&self, st: &mut State, at_s: Option<f64>, text: &str) {
        let mut out = String::new();
        if st.drawn {
            out.push_str("\r\x1b[2K");
            st.drawn = false;
        }
        if let (Mode::Plain { timestamps: true }, Some(at)) = (self.mode, at_s) {
            let wall = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
            out.push_str(&format!("{wall} {:>8} ", format!("+{at:.1}s")));
        }
        out.push_str(text);
        out.push('\n');
        self.write(&out);
        self.redraw(st);
    }

    /// Redraws the live status line (a no-op in plain mode or outside a playbook).
    fn redraw(&self, st: &mut State) {
        if self.mode != Mode::Live || self.verbosity == Verbosity::Quiet {
            return;
        }
        let Some(cur) = &st.current else { return };
        st.spin = st.spin.wrapping_add(1);
        let line = status_line(cur, st.spin, width());
        self.write(&format!("\r\x1b[2K{line}"));
        st.drawn = true;
        st.last_draw = Some(Instant::now());
    }

    /// A line outside any playbook (the target), unless quiet.
    pub fn say(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            let mut st = self.lock();
            self.emit(&mut st, None, text);
        }
    }

    /// An error, on standard error, clearing the status line first.
    pub fn error(&self, text: &str) {
        let mut st = self.lock();
        if st.drawn {
            self.write("\r\x1b[2K");
            st.drawn = false;
        }
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        self.redraw(&mut st);
    }

    /// Where the playbook's lines go: shown (per verbosity) and kept for the reports.
    pub fn output(self: &Arc<Self>) -> Output {
        let c = self.clone();
        Arc::new(move |line| c.line(line))
    }

    /// Where the playbook's phases go.
    pub fn observer(self: &Arc<Self>) -> PhaseObserver {
        let c = self.clone();
        Arc::new(move |phase, at_s| c.phase(phase, at_s))
    }

    fn line(&self, line: Line) {
        let session = self.lock().current.as_ref().map(|c| c.session.clone());
        let at_s = session.map(|s| s.elapsed_s());
        let (debug, text) = match line {
            Line::Print(t) => (false, t),
            Line::Debug(t) => (true, t),
        };
        let mut st = self.lock();
        let show = match self.verbosity {
            Verbosity::Quiet => false,
            Verbosity::Normal => !debug,
            Verbosity::Verbose => true,
        };
        if show {
            let shown = if debug {
                format!("[debug] {text}")
            } else {
                text.clone()
            };
            self.emit(&mut st, at_s, &shown);
        }
        st.log.push(LogLine {
            at_s: at_s.unwrap_or(0.0),
            debug,
            text,
        });
    }

    fn phase(&self, phase: &Phase, at_s: f64) {
        let mut st = self.lock();
        let Some(cur) = st.current.as_mut() else {
            return;
        };
        let new = !phase.same_as(&cur.phase);
        cur.phase = phase.clone();
        let say = match (self.verbosity, self.mode, phase) {
            (Verbosity::Quiet, ..) | (_, _, Phase::Running) => None,
            (Verbosity::Verbose, Mode::Plain { .. }, _) => Some(phase.describe()),
            (Verbosity::Verbose, Mode::Live, _) if new => Some(phase.describe()),
            (Verbosity::Normal, Mode::Plain { .. }, Phase::Waiting { what, limit, .. }) if new => {
                Some(format!(
                    "waiting: {what} (up to {})",
                    crate::duration::format(*limit)
                ))
            }
            _ => None,
        };
        match say {
            Some(text) => self.emit(&mut st, Some(at_s), &text),
            None if new || st.last_draw.is_none_or(|t| t.elapsed() >= THROTTLE) => {
                self.redraw(&mut st)
            }
            None => {}
        }
    }

    /// A playbook starts: its header line, and the status line follows it.
    pub fn start(&self, name: &str, session: &Arc<Session>) {
        let mut st = self.lock();
        st.current = Some(Current {
            name: name.to_string(),
            session: session.clone(),
            wall: Instant::now(),
            phase: Phase::Running,
        });
        st.log.clear();
        if self.verbosity != Verbosity::Quiet {
            self.emit(&mut st, Some(0.0), &format!("== {name}"));
        }
    }

    /// A playbook ended: its verdict line; the status line goes.
    pub fn finish(&self, p: &PlaybookReport) {
        let mut st = self.lock();
        let at = st.current.as_ref().map(|c| c.session.elapsed_s());
        if self.verbosity != Verbosity::Quiet {
            let timed_out = p.error.as_ref().is_some_and(|e| e.kind == "timeout");
            let text = format!(
                "== {}: {}{} in {} (run clock), {} wall",
                p.name,
                p.status.word(),
                if timed_out { " (timeout)" } else { "" },
                seconds(p.run_s),
                seconds(p.wall_s)
            );
            self.emit(&mut st, at, &text);
        }
        if st.drawn {
            self.write("\r\x1b[2K");
            st.drawn = false;
        }
        st.current = None;
    }

    /// The lines the current playbook wrote so far (for the reports), taken.
    pub fn take_log(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.lock().log)
    }

    /// A playbook that does not run.
    pub fn skipped(&self, name: &str, reason: &str) {
        if self.verbosity != Verbosity::Quiet {
            let mut st = self.lock();
            self.emit(&mut st, None, &format!("== {name}: skipped ({reason})"));
        }
    }

    /// The summary table of the batch, and the counts line (always, even when quiet).
    pub fn summary(&self, run: &RunReport) {
        let mut st = self.lock();
        let text = summary_table(run);
        if st.drawn {
            self.write("\r\x1b[2K");
            st.drawn = false;
        }
        self.write(&text);
    }
}

fn ticker(console: Weak<Console>) {
    loop {
        std::thread::sleep(TICK);
        let Some(c) = console.upgrade() else { return };
        let mut st = c.lock();
        c.redraw(&mut st);
    }
}

/// The terminal's width ($COLUMNS), else 100.
fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|w: &usize| *w >= 20)
        .unwrap_or(100)
}

/// The state of the playbook's latest fault, e.g. `PodChaos default/pb-x injected (2 pods)`.
fn fault_state(s: &Session) -> Option<String> {
    let live = s.live_objects();
    let record = s.record();
    let f = record.faults.last()?;
    let removed = !live
        .iter()
        .any(|o| o.name == f.name && o.namespace.as_deref() == Some(f.namespace.as_str()));
    let state = if f.recovered_s.is_some() {
        "recovered"
    } else if removed {
        "removed"
    } else if f.injected_s.is_some() {
        "injected"
    } else {
        "created"
    };
    let pods = if f.selected.is_empty() {
        String::new()
    } else {
        format!(" ({} pods)", f.selected.len())
    };
    Some(format!("{}/{} {state}{pods}", f.kind, f.name))
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

fn status_line(cur: &Current, spin: usize, width: usize) -> String {
    let mut parts = vec![
        format!("{} {}", SPINNER[spin % SPINNER.len()], cur.name),
        cur.phase.describe(),
        format!(
            "run {} · wall {}",
            seconds(cur.session.elapsed_s()),
            seconds(cur.wall.elapsed().as_secs_f64())
        ),
    ];
    if let Some(f) = fault_state(&cur.session) {
        parts.push(format!("fault: {f}"));
    }
    truncate(&parts.join(" · "), width.saturating_sub(1))
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The summary: one row per playbook (verdict, run clock, wall, records), then the counts.
pub fn summary_table(run: &RunReport) -> String {
    let head = ["playbook", "verdict", "run clock", "wall", "figures"];
    let rows: Vec<[String; 5]> = run
        .playbooks
        .iter()
        .map(|p| {
            let figures: Vec<String> = p
                .records
                .iter()
                .map(|(k, v)| format!("{k}={}", figure(v)))
                .collect();
            let skipped = p.status == Status::Skipped;
            [
                p.name.clone(),
                p.status.word().to_string(),
                if skipped {
                    "-".into()
                } else {
                    seconds(p.run_s)
                },
                if skipped {
                    "-".into()
                } else {
                    seconds(p.wall_s)
                },
                figures.join("  "),
            ]
        })
        .collect();
    let mut widths = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |cells: [&str; 5]| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        line.trim_end().to_string() + "\n"
    };
    let mut out = String::from("\n");
    out.push_str(&fmt_row(head));
    for r in &rows {
        out.push_str(&fmt_row([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    // Counts in word order ("1 error, 1 failed, 1 passed"), as earlier versions printed them.
    let mut counts: Vec<(&str, usize)> = run.counts.iter().map(|(s, n)| (s.word(), *n)).collect();
    counts.sort();
    let counts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    out.push_str(&counts.join(", "));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_status_lines_are_cut_to_the_terminal() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
