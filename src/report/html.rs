//! The HTML report (`--html FILE`, `playbook report --html`): one self-contained page — inline
//! CSS and inline SVG drawn with `plotters`, no script, font, image or style sheet from
//! anywhere — with the batch's verdicts linking to each playbook's section: its verdict and
//! reason, a timeline (faults as bands, expectations as spans ending green or red, marks for
//! records and cleanup), the observed series on the same time axis, and the tables.

use std::fmt::Write as _;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{
    Comparison, EventReport, PlaybookReport, RunReport, SeriesReport, Status, fault_active_s,
    figure, seconds,
};

/// Every chart is this wide, with the same left and right margins, so the timeline and the
/// series share one time axis, pixel for pixel.
const WIDTH: u32 = 960;
const LEFT: u32 = 64;
const RIGHT: u32 = 24;
/// Height of one timeline row, in pixels.
const ROW: u32 = 30;
/// Charts of series per playbook; the rest are in the JSON report.
const MAX_CHARTS: usize = 12;

const FONT: &str = "sans-serif";
const GREEN: RGBColor = RGBColor(46, 139, 87);
const RED: RGBColor = RGBColor(200, 40, 40);
const GREY: RGBColor = RGBColor(120, 120, 120);
const FAULT: RGBColor = RGBColor(235, 120, 40);
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// The whole page.
pub fn render(run: &RunReport) -> String {
    render_with(run, None)
}

/// The page, with a comparison against a baseline at the top when there is one.
pub fn render_with(run: &RunReport, comparison: Option<&Comparison>) -> String {
    let mut h = String::new();
    let title = format!("Chaos playbooks: {}", run.status.word());
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    let _ = write!(
        h,
        "<header>\n<h1>Chaos playbooks <span class=\"verdict-word {}\">{}</span></h1>\n\
         <p class=\"meta\">run <code>{}</code> · {} · seed {} · started {} · {} wall clock{}</p>\n</header>\n",
        class(run.status),
        esc(run.status.word()),
        esc(&run.run_id),
        esc(&run.target.description),
        run.seed,
        esc(&run.started_at),
        seconds(run.wall_s),
        if run.complete {
            ""
        } else {
            " · <strong>incomplete: the run did not finish</strong>"
        }
    );
    if let Some(c) = comparison {
        h.push_str(&comparison_section(c));
    }
    h.push_str(&batch_table(run));
    for (i, p) in run.playbooks.iter().enumerate() {
        h.push_str(&playbook_section(i, p));
    }
    let _ = write!(
        h,
        "<footer>Written by {} {} · schema {}</footer>\n</body>\n</html>\n",
        esc(&run.tool.name),
        esc(&run.tool.version),
        esc(&run.schema)
    );
    h
}

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1000px;padding:16px 20px 40px;color:#222;background:#fff}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.3em;margin:0;word-break:break-all}h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta,.title{color:#555;margin:.3em 0}code{font-size:.92em}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict-word{display:inline-block;padding:1px 8px;border-radius:4px;color:#fff;background:#b07000;font-size:.85em;text-transform:uppercase;letter-spacing:.03em}
.passed{background:#2e8b57}.failed,.error,.cleanup_incomplete{background:#c82828}.interrupted,.skipped{background:#777}
section.playbook{border-top:3px solid #ddd;margin-top:28px;padding-top:12px}
.verdict{border-left:6px solid #b07000;background:#fff6e6;padding:8px 12px;margin:10px 0;font-size:1.05em}
.verdict.passed{border-color:#2e8b57;background:#eef8f1}.verdict.failed,.verdict.error,.verdict.cleanup_incomplete{border-color:#c82828;background:#fdeeee}
.verdict.interrupted,.verdict.skipped{border-color:#777;background:#f2f2f2}
figure{margin:8px 0}figure svg{max-width:100%;height:auto;display:block}figcaption{color:#555;font-size:.85em}
.ok{color:#2e8b57;font-weight:600}.bad{color:#c82828;font-weight:600}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.85em}
.legend{font-size:.85em;margin:14px 0 0 64px}.legend span{margin-right:14px;white-space:nowrap}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px}.legend i.fault{height:10px;background:rgba(235,120,40,.3)}
footer{margin-top:30px;color:#888;font-size:.8em}a{color:#1f5fa8}
";

/// HTML-escapes text (and attribute values).
fn esc(s: &str) -> String {
    super::escape_attr(s)
}

/// The CSS class of a status: its JSON name (`passed`, `cleanup_incomplete`...); a status this
/// page has no colour for gets the neutral one.
fn class(s: Status) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn anchor(i: usize) -> String {
    format!("pb-{}", i + 1)
}

/// The verdict's reason in one line.
fn reason(p: &PlaybookReport) -> String {
    if let Some(r) = &p.skip_reason {
        return format!("not run: {r}");
    }
    if let Some(e) = &p.error {
        let at =
            e.at.as_deref()
                .map(|a| format!(" (at {a})"))
                .unwrap_or_default();
        return format!("{}{at}", e.message);
    }
    let held = p
        .expectations
        .iter()
        .filter(|e| e.status == crate::session::Status::Passed)
        .count();
    if !p.cleanup.ok {
        return "cleanup could not remove everything the playbook created".into();
    }
    format!(
        "{held} of {} expectation(s) held; cleanup removed everything",
        p.expectations.len()
    )
}

fn batch_table(run: &RunReport) -> String {
    let mut h = String::from(
        "<h2 id=\"batch\">Playbooks</h2>\n<table class=\"batch\">\n<tr><th>playbook</th><th>verdict</th>\
         <th>run clock</th><th>expectations</th><th>faults</th><th>why</th></tr>\n",
    );
    for (i, p) in run.playbooks.iter().enumerate() {
        let held = p
            .expectations
            .iter()
            .filter(|e| e.status == crate::session::Status::Passed)
            .count();
        let _ = writeln!(
            h,
            "<tr><td><a href=\"#{}\">{}</a>{}</td><td><span class=\"verdict-word {}\">{}</span></td>\
             <td class=\"num\">{}</td><td class=\"num\">{held}/{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            anchor(i),
            esc(&p.name),
            p.title
                .as_deref()
                .map(|t| format!("<br/><small>{}</small>", esc(t)))
                .unwrap_or_default(),
            class(p.status),
            esc(p.status.word()),
            seconds(p.run_s),
            p.expectations.len(),
            p.faults.len(),
            esc(&reason(p)),
        );
    }
    h.push_str("</table>\n");
    h
}

fn playbook_section(i: usize, p: &PlaybookReport) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<section class=\"playbook\" id=\"{}\">\n<h2>{}</h2>\n",
        anchor(i),
        esc(&p.name)
    );
    if let Some(t) = &p.title {
        let _ = writeln!(h, "<p class=\"title\">{}</p>", esc(t));
    }
    let _ = writeln!(
        h,
        "<div class=\"verdict {}\"><span class=\"verdict-word {}\">{}</span> {}</div>",
        class(p.status),
        class(p.status),
        esc(p.status.word()),
        esc(&reason(p))
    );
    if p.status != Status::Skipped {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} on the run clock (from {}) · {} wall clock · <a href=\"#batch\">all playbooks</a></p>",
            seconds(p.run_s),
            esc(p.run_started_at.as_deref().unwrap_or("?")),
            seconds(p.wall_s)
        );
        let span = time_span(p);
        h.push_str("<h3>Timeline</h3>\n");
        h.push_str(&figure_or_note(
            "timeline",
            timeline(p, span),
            "run-clock seconds since the playbook started; faults are bands from injected to \
             recovered (lighter: created, not yet injected); expectations are spans ending green \
             (passed) or red (failed); ▲ records; ■ cleanup steps",
        ));
        let charts = charts(p);
        if !charts.is_empty() {
            h.push_str("<h3>Observed</h3>\n<div class=\"series\">\n");
            for c in charts.iter().take(MAX_CHARTS) {
                h.push_str(&legend(c));
                h.push_str(&figure_or_note(
                    "chart",
                    chart(c, p, span),
                    &format!("{} ({})", c.title, c.unit_label()),
                ));
            }
            if charts.len() > MAX_CHARTS {
                let _ = writeln!(
                    h,
                    "<p class=\"meta\">{} more chart(s) of series are in the JSON report.</p>",
                    charts.len() - MAX_CHARTS
                );
            }
            h.push_str("</div>\n");
        }
    }
    h.push_str(&tables(p));
    h.push_str("</section>\n");
    h
}

fn figure_or_note(kind: &str, svg: Result<String, String>, caption: &str) -> String {
    match svg {
        Ok(svg) => format!(
            "<figure class=\"{kind}\">\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
            strip_xml_decl(&svg),
            esc(caption)
        ),
        Err(e) => format!("<p class=\"meta\">({kind} not drawn: {})</p>\n", esc(&e)),
    }
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The time axis of a playbook: from 0 to the latest moment anything happened.
fn time_span(p: &PlaybookReport) -> f64 {
    let mut end = p.run_s;
    for e in &p.events {
        end = end.max(e.at_s);
    }
    for s in &p.series {
        for pt in &s.points {
            end = end.max(pt[0]);
        }
    }
    if end > 0.0 { end * 1.02 } else { 1.0 }
}

/// When a fault was active: from injected (else created) to recovered, else removed, else the end.
fn fault_window(f: &super::FaultReport, end: f64) -> (f64, f64) {
    let from = f.injected_s.unwrap_or(f.created_s);
    let to = f.recovered_s.or(f.removed_s).unwrap_or(end);
    (from, to.max(from))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Writes `label` with its top left at `at` (chart coordinates).
fn text(chart: &mut Plot, label: String, at: (f64, f64), style: &TextStyle) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(Text::new(label, at, style.clone())))
        .map(|_| ())
        .map_err(err)
}

/// Fills the rectangle from `a` to `b` (chart coordinates).
fn rect(chart: &mut Plot, a: (f64, f64), b: (f64, f64), style: ShapeStyle) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(Rectangle::new([a, b], style)))
        .map(|_| ())
        .map_err(err)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn svg(height: u32, draw: impl FnOnce(&Area) -> Result<(), String>) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// One row of the timeline.
enum Row<'a> {
    Fault(&'a super::FaultReport),
    Expectation(&'a super::ExpectationReport),
    Marks(&'static str, Vec<&'a EventReport>),
}

fn timeline(p: &PlaybookReport, end: f64) -> Result<String, String> {
    let mut rows: Vec<Row> = p.faults.iter().map(Row::Fault).collect();
    rows.extend(p.expectations.iter().map(Row::Expectation));
    for (kind, label) in [("record", "records"), ("cleanup", "cleanup")] {
        let marks: Vec<&EventReport> = p.events.iter().filter(|e| e.kind == kind).collect();
        if !marks.is_empty() {
            rows.push(Row::Marks(label, marks));
        }
    }
    if rows.is_empty() {
        return Err("nothing happened on the timeline".into());
    }
    let n = rows.len() as f64;
    let height = 20 + ROW * rows.len() as u32 + 44;
    svg(height, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin_top(10)
            .margin_right(RIGHT)
            .x_label_area_size(44)
            .y_label_area_size(LEFT)
            .build_cartesian_2d(0f64..end, 0f64..n)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("run clock (s)")
            .x_labels(12)
            .x_label_formatter(&|x| axis_number(*x))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(RGBColor(242, 242, 242))
            .draw()
            .map_err(err)?;
        let label_style = TextStyle::from((FONT, 12).into_font()).color(&BLACK);
        let small = TextStyle::from((FONT, 11).into_font()).color(&GREY);
        // Each fault's active window, faintly across every row.
        for f in &p.faults {
            let (a, b) = fault_window(f, end);
            rect(&mut chart, (a, 0.0), (b, n), FAULT.mix(0.08).filled())?;
        }
        for (i, row) in rows.iter().enumerate() {
            let top = n - i as f64;
            let (bar_lo, bar_hi) = (top - 0.92, top - 0.55);
            let text_at = (end * 0.004, top - 0.06);
            match row {
                Row::Fault(f) => {
                    if let Some(inj) = f.injected_s {
                        rect(
                            &mut chart,
                            (f.created_s, bar_lo),
                            (inj, bar_hi),
                            FAULT.mix(0.3).filled(),
                        )?;
                    }
                    let (a, b) = fault_window(f, end);
                    rect(
                        &mut chart,
                        (a, bar_lo),
                        (b, bar_hi),
                        FAULT.mix(0.85).filled(),
                    )?;
                    for e in p
                        .events
                        .iter()
                        .filter(|e| e.kind == "fault" && e.name.ends_with(&format!("/{}", f.name)))
                        .filter(|e| e.detail == "paused" || e.detail == "resumed")
                    {
                        let sign = if e.detail == "paused" {
                            "❚❚"
                        } else {
                            "▶"
                        };
                        text(&mut chart, sign.into(), (e.at_s, bar_hi + 0.05), &small)?;
                    }
                    let until = match (f.recovered_s, f.removed_s) {
                        (Some(r), _) => format!("recovered {}", seconds(r)),
                        (None, Some(r)) => format!("removed {}", seconds(r)),
                        _ => "never recovered".into(),
                    };
                    let label = format!(
                        "{} {} — injected {} → {until}",
                        f.kind,
                        f.name,
                        f.injected_s.map(seconds).unwrap_or_else(|| "never".into())
                    );
                    text(&mut chart, label, text_at, &label_style)?;
                }
                Row::Expectation(e) => {
                    let color = match e.status {
                        crate::session::Status::Passed => GREEN,
                        crate::session::Status::Failed => RED,
                        crate::session::Status::Inconclusive => GREY,
                    };
                    let word = match e.status {
                        crate::session::Status::Passed => "passed",
                        crate::session::Status::Failed => "FAILED",
                        crate::session::Status::Inconclusive => "inconclusive",
                    };
                    let known = e
                        .started_s
                        .zip(e.ended_s)
                        .filter(|(a, b)| a.is_finite() && b.is_finite());
                    if let Some((a, b)) = known {
                        rect(
                            &mut chart,
                            (a, bar_lo),
                            (b, bar_hi),
                            color.mix(0.3).filled(),
                        )?;
                        chart
                            .draw_series(std::iter::once(Circle::new(
                                (b, (bar_lo + bar_hi) / 2.0),
                                6,
                                color.filled(),
                            )))
                            .map_err(err)?;
                    }
                    let when = match known {
                        Some((_, b)) => format!(" at {}", seconds(b)),
                        None => " (time not known)".into(),
                    };
                    let label = format!(
                        "{} “{}” — {word}{when} after {}",
                        e.kind,
                        e.name,
                        seconds(e.took_s)
                    );
                    text(&mut chart, label, text_at, &label_style)?;
                }
                Row::Marks(label, marks) => {
                    text(&mut chart, label.to_string(), text_at, &label_style)?;
                    for m in marks {
                        let y = (bar_lo + bar_hi) / 2.0;
                        let ok = m.kind != "cleanup" || m.detail == "ok";
                        let color = if ok { RGBColor(60, 60, 60) } else { RED };
                        if m.kind == "cleanup" {
                            let style = if ok { GREEN.filled() } else { RED.filled() };
                            let half = end * 0.003;
                            rect(
                                &mut chart,
                                (m.at_s - half, bar_lo),
                                (m.at_s + half, bar_hi),
                                style,
                            )?;
                        } else {
                            chart
                                .draw_series(std::iter::once(TriangleMarker::new(
                                    (m.at_s, y),
                                    5,
                                    color.filled(),
                                )))
                                .map_err(err)?;
                        }
                    }
                    if *label == "records" {
                        // Names of records written close together share one label.
                        let mut groups: Vec<(f64, Vec<&str>)> = Vec::new();
                        for m in marks {
                            match groups.last_mut() {
                                Some((at, names)) if m.at_s - *at < end * 0.06 => {
                                    names.push(&m.name)
                                }
                                _ => groups.push((m.at_s, vec![&m.name])),
                            }
                        }
                        for (at, names) in groups {
                            let names = names.join(", ");
                            let x = (at + end * 0.004).min(end * 0.99);
                            text(&mut chart, names, (x.max(end * 0.07), top - 0.42), &small)?;
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

/// A tick label: whole numbers plain, others with one decimal.
fn axis_number(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 || x.abs() >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// One chart: the series of one source in one unit.
struct Chart<'a> {
    title: String,
    unit: String,
    lines: Vec<&'a SeriesReport>,
}

impl Chart<'_> {
    fn unit_label(&self) -> &str {
        match self.unit.as_str() {
            "ms" => "milliseconds",
            "s" => "seconds",
            "ratio" | "percent" => "percent",
            "replicas" => "replicas",
            "calls" => "calls",
            _ => "value",
        }
    }

    /// Ratios are drawn as percentages.
    fn scale(&self) -> f64 {
        if self.unit == "ratio" { 100.0 } else { 1.0 }
    }
}

/// Which figures of a source are worth a chart (the rest stay in the JSON).
fn plotted(s: &SeriesReport) -> bool {
    match s.source.split(' ').next().unwrap_or_default() {
        "probe" => matches!(s.field.as_str(), "p50" | "p99" | "success_rate"),
        "readiness" => matches!(s.field.as_str(), "ready" | "desired"),
        "hpa" => matches!(s.field.as_str(), "current" | "desired" | "cpu_utilization"),
        "record" => s.points.len() >= 2,
        _ => true,
    }
}

/// The charts of a playbook: probes first, then readiness, HPAs, conditions, records.
fn charts(p: &PlaybookReport) -> Vec<Chart<'_>> {
    let rank = |s: &SeriesReport| match s.source.split(' ').next().unwrap_or_default() {
        "probe" => 0,
        "readiness" => 1,
        "hpa" => 2,
        "record" => 4,
        _ => 3,
    };
    let mut out: Vec<(u8, Chart)> = Vec::new();
    for s in p
        .series
        .iter()
        .filter(|s| plotted(s) && !s.points.is_empty())
    {
        match out
            .iter_mut()
            .find(|(_, c)| c.title == s.source && c.unit == s.unit)
        {
            Some((_, c)) => c.lines.push(s),
            None => out.push((
                rank(s),
                Chart {
                    title: s.source.clone(),
                    unit: s.unit.clone(),
                    lines: vec![s],
                },
            )),
        }
    }
    // A condition that only passed on what a probe or readiness already showed adds nothing.
    for (rank, c) in out.iter_mut() {
        if *rank == 3 {
            c.lines.retain(|l| !repeats(l, &p.series));
        }
    }
    // A chart of single dots says nothing a table does not.
    out.retain(|(_, c)| c.lines.iter().any(|l| l.points.len() >= 2));
    out.sort_by_key(|(r, _)| *r);
    out.into_iter().map(|(_, c)| c).collect()
}

/// Every point of `line` (a condition's value) is a point of a probe, readiness or HPA series
/// at the same moment.
fn repeats(line: &SeriesReport, all: &[SeriesReport]) -> bool {
    let observed = all.iter().filter(|s| {
        matches!(
            s.source.split(' ').next(),
            Some("probe" | "readiness" | "hpa")
        )
    });
    let points: Vec<[f64; 2]> = observed.flat_map(|s| s.points.iter().copied()).collect();
    line.points.iter().all(|a| {
        points
            .iter()
            .any(|b| (a[0] - b[0]).abs() < 1e-6 && (a[1] - b[1]).abs() < 1e-6)
    })
}

/// The chart's legend, in HTML above it: a coloured line and the figure's name each.
fn legend(c: &Chart) -> String {
    let mut h = String::from("<div class=\"legend\">");
    for (i, line) in c.lines.iter().enumerate() {
        let RGBColor(r, g, b) = PALETTE[i % PALETTE.len()];
        let _ = write!(
            h,
            "<span><i style=\"background:rgb({r},{g},{b})\"></i>{}</span>",
            esc(&line.field)
        );
    }
    h.push_str("<span><i class=\"fault\"></i>fault active</span></div>\n");
    h
}

fn chart(c: &Chart, p: &PlaybookReport, end: f64) -> Result<String, String> {
    let k = c.scale();
    let values = c
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|pt| pt[1] * k));
    let (lo, hi) = values.fold((0f64, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if c.unit == "ratio" {
        105.0
    } else if hi <= lo {
        lo + 1.0
    } else {
        hi + (hi - lo) * 0.12
    };
    svg(210, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(shorten(&c.title, 110), (FONT, 14))
            .margin_top(6)
            .margin_right(RIGHT)
            .x_label_area_size(40)
            .y_label_area_size(LEFT)
            .build_cartesian_2d(0f64..end, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("run clock (s)")
            .y_desc(c.unit_label())
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|x| axis_number(*x))
            .y_label_formatter(&|y| axis_number(*y))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 13))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(err)?;
        for f in &p.faults {
            let (a, b) = fault_window(f, end);
            rect(&mut chart, (a, lo), (b, hi), FAULT.mix(0.15).filled())?;
        }
        for (i, line) in c.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = line.points.iter().map(|pt| (pt[0], pt[1] * k)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(err)?;
            if pts.len() <= 120 {
                chart
                    .draw_series(pts.iter().map(|&xy| Circle::new(xy, 3, color.filled())))
                    .map_err(err)?;
            }
        }
        Ok(())
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn tables(p: &PlaybookReport) -> String {
    let mut h = String::new();
    if !p.expectations.is_empty() {
        h.push_str(
            "<h3>Expectations</h3>\n<table><tr><th>kind</th><th>name</th><th>result</th><th>took</th>\
             <th>limit</th><th>observed</th><th>at</th></tr>\n",
        );
        for e in &p.expectations {
            let (cls, word) = match e.status {
                crate::session::Status::Passed => ("ok", "passed"),
                crate::session::Status::Failed => ("bad", "failed"),
                crate::session::Status::Inconclusive => ("unknown", "inconclusive"),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"{cls}\">{word}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
                esc(&e.kind),
                esc(&e.name),
                seconds(e.took_s),
                seconds(e.timeout_s),
                esc(&e.observed),
                esc(&e.at)
            );
        }
        h.push_str("</table>\n");
    }
    if !p.faults.is_empty() {
        h.push_str(
            "<h3>Faults</h3>\n<table><tr><th>fault</th><th>selected</th><th>created</th><th>injected</th>\
             <th>recovered</th><th>removed</th><th>active</th></tr>\n",
        );
        let t = |x: Option<f64>| x.map(seconds).unwrap_or_else(|| "—".into());
        for f in &p.faults {
            let _ = writeln!(
                h,
                "<tr><td>{} <code>{}/{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&f.kind),
                esc(&f.namespace),
                esc(&f.name),
                esc(&f.selected.join(", ")),
                seconds(f.created_s),
                t(f.injected_s),
                t(f.recovered_s),
                t(f.removed_s),
                t(fault_active_s(f))
            );
        }
        h.push_str("</table>\n");
    }
    if !p.records.is_empty() {
        h.push_str("<h3>Records</h3>\n<table><tr><th>key</th><th>value</th></tr>\n");
        for (k, v) in p.records.iter() {
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td></tr>",
                esc(k),
                esc(&figure(v))
            );
        }
        h.push_str("</table>\n");
    }
    if !p.cleanup.steps.is_empty() {
        let _ = writeln!(
            h,
            "<h3>Cleanup: {}</h3>\n<table><tr><th>step</th><th>result</th><th>detail</th><th>took</th></tr>",
            if p.cleanup.ok {
                "everything removed"
            } else {
                "INCOMPLETE"
            }
        );
        for s in &p.cleanup.steps {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                esc(&s.step),
                if s.ok { "ok" } else { "bad" },
                if s.ok { "ok" } else { "failed" },
                esc(&s.detail),
                seconds(s.took_s)
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(e) = &p.error {
        if !e.notes.is_empty() {
            let _ = writeln!(
                h,
                "<h3>Error</h3>\n<pre>{}\n{}</pre>",
                esc(&e.message),
                esc(&e.notes.join("\n"))
            );
        }
    }
    if !p.log.is_empty() {
        let _ = write!(
            h,
            "<details><summary>Output ({} lines)</summary>\n<pre>",
            p.log.len()
        );
        for l in &p.log {
            let _ = writeln!(
                h,
                "{:>8} {}{}",
                format!("+{:.1}s", l.at_s),
                if l.level == "debug" { "[debug] " } else { "" },
                esc(&l.text)
            );
        }
        h.push_str("</pre></details>\n");
    }
    h
}

fn comparison_section(c: &Comparison) -> String {
    let mut h = format!(
        "<h2>Compared with {}</h2>\n<table><tr><th>playbook</th><th>verdict</th><th>figure</th>\
         <th>baseline</th><th>now</th><th>change</th></tr>\n",
        esc(&c.baseline)
    );
    for p in &c.playbooks {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td colspan=\"5\" class=\"{}\">{}</td></tr>",
            esc(&p.name),
            if p.verdict_worse { "bad" } else { "" },
            esc(&p.verdict_change())
        );
        for f in &p.figures {
            let _ = writeln!(
                h,
                "<tr><td></td><td></td><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num {}\">{}</td></tr>",
                esc(&f.key),
                esc(&f.old_text()),
                esc(&f.new_text()),
                if f.regressed { "bad" } else { "" },
                esc(&f.change_text())
            );
        }
    }
    h.push_str("</table>\n");
    h
}
