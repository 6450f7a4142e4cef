//! The HTML report and `playbook report`: the page of the five seed playbooks checked as a
//! document and rendered by headless Chromium, series identical for a seed, a saved journal
//! rendered again, and two runs compared (a deliberately slower one failing the threshold).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use playbook::report::RunReport;

use crate::cli::{expect_exit, playbook, tempdir};

/// Runs `playbook ARGS`, asserts the exit code; stdout.
fn ok(args: &[&str], code: i32) -> String {
    expect_exit(args, code).0
}

/// Runs the seed playbooks (or `paths`) on the simulator with `extra` args; (json, html).
fn seed_run(dir: &Path, paths: &[&str], extra: &[&str]) -> (PathBuf, PathBuf) {
    let (json, html) = (dir.join("run.json"), dir.join("run.html"));
    let (j, h) = (json.display().to_string(), html.display().to_string());
    let mut args = vec![
        "run",
        "--cluster",
        "sim",
        "-q",
        "--report",
        &j,
        "--html",
        &h,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    ok(&args, 0);
    (json, html)
}

fn load(path: &Path) -> RunReport {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Parses the page as XML (it is polyglot XHTML; its one DTD is `<!DOCTYPE html>`).
fn xml(text: &str) -> Result<roxmltree::Document<'_>, roxmltree::Error> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(text, options)
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    n.attribute(name).unwrap_or_default()
}

fn has_class(n: roxmltree::Node, class: &str) -> bool {
    attr(n, "class").split(' ').any(|c| c == class)
}

#[test]
fn the_html_of_the_seed_playbooks_is_one_well_formed_self_contained_page() {
    let dir = tempdir();
    let (json, html) = seed_run(&dir, &["playbooks"], &["--filter", "tag:seed"]);
    let report = load(&json);
    assert_eq!(report.playbooks.len(), 5);
    let text = std::fs::read_to_string(&html).unwrap();
    // Well-formed: the page is written as polyglot XHTML, so an XML parser takes it whole.
    let doc = xml(&text).unwrap_or_else(|e| panic!("not well-formed: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "html");
    assert!(text.starts_with("<!DOCTYPE html>"));
    // One file: nothing loaded from anywhere.
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        assert!(
            !matches!(
                tag,
                "script" | "link" | "img" | "iframe" | "object" | "embed" | "image" | "use"
            ),
            "<{tag}> in the page"
        );
        for a in n.attributes() {
            let v = a.value();
            match a.name() {
                "src" | "srcset" | "action" | "data" => panic!("{}={v:?} on <{tag}>", a.name()),
                "href" => assert!(v.starts_with('#'), "link out of the page: {v}"),
                _ => assert!(
                    !v.contains("url(") && !v.starts_with("http") || a.name() == "xmlns",
                    "{}={v:?} on <{tag}>",
                    a.name()
                ),
            }
        }
    }
    assert!(!text.contains("url(") && !text.contains("@import") && !text.contains("@font-face"));
    for scheme in ["http://", "https://"] {
        let outside: Vec<&str> = text
            .match_indices(scheme)
            .map(|(i, _)| &text[i..(i + 40).min(text.len())])
            .filter(|s| !s.starts_with("http://www.w3.org/2000/svg"))
            .collect();
        assert!(outside.is_empty(), "{outside:?}");
    }

    // The batch table links to each playbook's section, with its verdict.
    let links: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("a"))
        .map(|n| attr(n, "href"))
        .filter(|h| h.starts_with("#pb-"))
        .collect();
    assert_eq!(links, ["#pb-1", "#pb-2", "#pb-3", "#pb-4", "#pb-5"]);
    let sections: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("section") && has_class(*n, "playbook"))
        .collect();
    assert_eq!(sections.len(), 5);
    for (section, p) in sections.iter().zip(&report.playbooks) {
        let texts = |n: roxmltree::Node| -> String {
            n.descendants()
                .filter_map(|d| d.text())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(attr(*section, "id").len(), 4);
        // The verdict and its reason at the top.
        let verdict = section
            .children()
            .find(|n| n.has_tag_name("div") && has_class(*n, "verdict"))
            .unwrap_or_else(|| panic!("no verdict for {}", p.name));
        assert!(has_class(verdict, "passed"), "{}", p.name);
        assert!(
            texts(verdict).contains("expectation(s) held"),
            "{}",
            texts(verdict)
        );
        // One timeline, with the fault as a band and each expectation's span.
        let timelines: Vec<roxmltree::Node> = section
            .descendants()
            .filter(|n| n.has_tag_name("figure") && has_class(*n, "timeline"))
            .collect();
        assert_eq!(timelines.len(), 1, "{}", p.name);
        let svg = timelines[0]
            .children()
            .find(|n| n.has_tag_name("svg"))
            .expect("an inline svg");
        let band = svg
            .descendants()
            .filter(|n| n.has_tag_name("rect") && attr(*n, "fill") == "#EB7828")
            .count();
        assert!(
            band >= 2,
            "{}: fault band and its window, {band} rects",
            p.name
        );
        let label = texts(svg);
        let f = &p.faults[0];
        assert!(label.contains(&format!("{} {}", f.kind, f.name)), "{label}");
        for e in &p.expectations {
            assert!(
                label.contains(&e.name),
                "{} missing from the timeline",
                e.name
            );
        }
        // The observed series under it, each an inline svg with a time axis.
        let charts: Vec<roxmltree::Node> = section
            .descendants()
            .filter(|n| n.has_tag_name("figure") && has_class(*n, "chart"))
            .collect();
        assert!(!charts.is_empty(), "no series drawn for {}", p.name);
        for c in &charts {
            let t = texts(*c);
            assert!(t.contains("run clock (s)"), "{t}");
            assert!(c.descendants().any(|n| n.has_tag_name("polyline")), "{t}");
        }
        // Then today's tables.
        let headings: Vec<&str> = section
            .descendants()
            .filter(|n| n.has_tag_name("h3"))
            .filter_map(|n| n.text())
            .collect();
        for h in ["Timeline", "Observed", "Expectations", "Faults", "Records"] {
            assert!(headings.contains(&h), "{}: {headings:?}", p.name);
        }
        let tables = section
            .descendants()
            .filter(|n| n.has_tag_name("table"))
            .count();
        assert!(tables >= 3, "{}: {tables} tables", p.name);
    }
    let chart_titles = |i: usize| -> String {
        sections[i]
            .descendants()
            .filter(|n| n.has_tag_name("figcaption"))
            .filter_map(|n| n.text())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Latency around the delay, readiness dipping, replicas rising under the HPA.
    let by_name = |name: &str| {
        report
            .playbooks
            .iter()
            .position(|p| p.name.ends_with(name))
            .unwrap()
    };
    assert!(
        chart_titles(by_name("network-delay.rhai")).contains("probe mlflow/mlflow:5000")
            && chart_titles(by_name("network-delay.rhai")).contains("milliseconds")
    );
    assert!(chart_titles(by_name("pod-failure.rhai")).contains("readiness kserve-inference"));
    assert!(
        chart_titles(by_name("cpu-stress.rhai")).contains("readiness training/deployment/trainer")
    );
}

#[test]
fn the_journal_keeps_series_and_marks_identical_for_the_same_seed() {
    let series = |seed: &str| {
        let dir = tempdir();
        let (json, _) = seed_run(
            &dir,
            &["playbooks/pod-failure.rhai", "playbooks/network-delay.rhai"],
            &["--seed", seed],
        );
        let r = load(&json);
        // A fault's object name carries the run's id (its start time): the one difference.
        let id = r
            .run_id
            .trim_start_matches("pb-")
            .split_once('-')
            .unwrap()
            .1
            .to_string();
        r.playbooks
            .into_iter()
            .map(|mut p| {
                for e in &mut p.events {
                    e.name = e.name.replace(&id, "RUN");
                }
                (p.series, p.events, p.expectations)
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (series("7"), series("7"));
    assert!(a == b, "two runs with seed 7 observed different series");
    let (pod, delay) = (&a[0], &a[1]);
    // Readiness dips when the pod is killed and comes back.
    let ready = pod
        .0
        .iter()
        .find(|s| s.source.starts_with("readiness ") && s.field == "ready")
        .expect("readiness series");
    assert_eq!(ready.unit, "replicas");
    let values: Vec<f64> = ready.points.iter().map(|p| p[1]).collect();
    let low = values.iter().cloned().fold(f64::MAX, f64::min);
    assert!(low < 3.0 && values.last() == Some(&3.0), "{values:?}");
    // The probe's p50 rises during the delay and is back after it.
    let p50 = delay
        .0
        .iter()
        .find(|s| s.source.starts_with("probe mlflow/") && s.field == "p50")
        .expect("probe series");
    let during = p50.points.iter().map(|p| p[1]).fold(0.0, f64::max);
    assert!(
        during > 100.0 && p50.points.last().unwrap()[1] < 50.0,
        "{:?}",
        p50.points
    );
    // Every fault phase and the records are marks, in time order.
    let phases: Vec<&str> = delay
        .1
        .iter()
        .filter(|e| e.kind == "fault")
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(phases, ["created", "injected", "recovered", "removed"]);
    assert!(delay.1.windows(2).all(|w| w[0].at_s <= w[1].at_s));
    assert!(
        delay
            .1
            .iter()
            .any(|e| e.kind == "record" && e.name == "rise_ms")
    );
    for e in &delay.2 {
        let (s, t) = (e.started_s.unwrap(), e.ended_s.unwrap());
        assert!((t - s - e.took_s).abs() < 0.002, "{e:?}");
    }
}

#[test]
fn a_saved_journal_renders_again_to_the_same_reports() {
    let dir = tempdir();
    let [json, md, junit, md2, xml2, html2] =
        ["run.json", "a.md", "a.xml", "b.md", "b.xml", "b.html"]
            .map(|f| dir.join(f).display().to_string());
    ok(
        &[
            "run",
            "--cluster",
            "sim",
            "-q",
            "--report",
            &json,
            "--markdown",
            &md,
            "--junit",
            &junit,
            "tests/fixtures/report",
        ],
        3,
    );
    let out = ok(
        &[
            "report",
            &json,
            "--markdown",
            &md2,
            "--junit",
            &xml2,
            "--html",
            &html2,
        ],
        0,
    );
    assert!(out.contains(&format!("report: {html2}")), "{out}");
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    assert_eq!(read(&md), read(&md2));
    assert_eq!(read(&junit), read(&xml2));
    let page = read(&html2);
    xml(&page).unwrap();
    assert!(
        page.contains("array index 5 out of bounds"),
        "the error's reason is shown"
    );

    // Bad input: a clear error, exit 2.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"schema": "playbook.report/v9"}"#).unwrap();
    let bad = bad.display().to_string();
    let out = playbook(&["report", &bad, "--html", &html2]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has schema playbook.report/v9"));
    let out = playbook(&["report", &json]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to do"));
}

#[test]
fn a_baseline_comparison_shows_the_changes_and_a_slower_run_fails_the_threshold() {
    let dir = tempdir();
    let run = |name: &str, args: &[&str], code: i32| {
        let path = dir.join(name).display().to_string();
        let mut all = vec!["run", "--cluster", "sim", "-q", "--report", &path];
        all.extend_from_slice(args);
        ok(&all, code);
        path
    };
    // Two seeds: the figures differ, nothing is gated without a threshold.
    let one = run(
        "seed1.json",
        &["--seed", "1", "playbooks/pod-failure.rhai"],
        0,
    );
    let two = run(
        "seed8.json",
        &["--seed", "8", "playbooks/pod-failure.rhai"],
        0,
    );
    let out = ok(&["report", &two, "--baseline", &one], 0);
    let a = load(Path::new(&one));
    let b = load(Path::new(&two));
    let (ra, rb) = (
        a.playbooks[0]
            .records
            .get("recovery_ms")
            .unwrap()
            .as_f64()
            .unwrap(),
        b.playbooks[0]
            .records
            .get("recovery_ms")
            .unwrap()
            .as_f64()
            .unwrap(),
    );
    assert_ne!(ra, rb, "seeds 1 and 8 recover at the same moment");
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("recovery_ms"))
        .unwrap_or_else(|| panic!("{out}"));
    let pct = format!("{:+.1}%", (rb - ra) / ra * 100.0);
    assert!(
        line.contains("->") && line.contains(&pct),
        "{line} (want {pct})"
    );
    assert!(out.contains("playbooks/pod-failure.rhai: passed"), "{out}");
    assert!(out.contains("no threshold given"), "{out}");

    // A deliberately slower recovery (10 s -> 16 s, +60%) fails a 20% threshold...
    let fixture = "tests/fixtures/compare/recovery.rhai";
    let fast = run("fast.json", &["--var", "recovery_s=10", fixture], 0);
    let slow = run("slow.json", &["--var", "recovery_s=16", fixture], 0);
    let out = gate(&slow, &fast, "20%", 1);
    assert!(
        out.contains("recovery_ms")
            && out.contains("10.0 s -> 16.0 s")
            && out.contains("+60.0% REGRESSION"),
        "{out}"
    );
    assert!(out.contains("1 regression(s)"), "{out}");
    // ...passes a 75% one, and the faster run against the slower passes.
    gate(&slow, &fast, "75", 0);
    let out = gate(&fast, &slow, "20%", 0);
    assert!(
        out.contains("-37.5% (better)") && out.contains("no regression"),
        "{out}"
    );
    // A verdict that got worse fails too (the recovery misses its 2m limit).
    let failed = run("failed.json", &["--var", "recovery_s=200", fixture], 1);
    let out = gate(&failed, &fast, "20%", 1);
    assert!(out.contains("passed -> failed  VERDICT WORSE"), "{out}");
    // The HTML page carries the comparison.
    let html = dir.join("cmp.html").display().to_string();
    ok(
        &[
            "report",
            &slow,
            "--baseline",
            &fast,
            "--max-regression",
            "20%",
            "--html",
            &html,
        ],
        1,
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Compared with") && page.contains("+60.0% REGRESSION"));
}

/// `playbook report CURRENT --baseline BASELINE --max-regression PCT`, asserting the exit code.
fn gate(current: &str, baseline: &str, pct: &str, code: i32) -> String {
    ok(
        &[
            "report",
            current,
            "--baseline",
            baseline,
            "--max-regression",
            pct,
        ],
        code,
    )
}

/// A child process killed (with its process group: Chromium's helpers too) when dropped.
struct Guarded(Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let pgid = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs Chromium headless with `args` on `url`, at most `limit`; (success, stdout, stderr).
fn chromium(profile: &Path, args: &[&str], url: &str, limit: Duration) -> (bool, String, String) {
    use std::os::unix::process::CommandExt;
    let (out, err) = (profile.join("stdout"), profile.join("stderr"));
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--user-data-dir={}", profile.join("profile").display()),
        ])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromium ({e}): run tests/support/setup.sh (apt-get install -y chromium)")
        });
    let mut child = Guarded(child);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > limit {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(child);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (stdout, stderr) = (read(&out), read(&err));
    assert!(
        status.is_some(),
        "chromium did not finish within {limit:?}\n{stderr}"
    );
    (status.unwrap().success(), stdout, stderr)
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let dir = tempdir();
    let (json, html) = seed_run(&dir, &["playbooks"], &["--filter", "tag:seed"]);
    let report = load(&json);
    let url = format!("file://{}", html.canonicalize().unwrap().display());
    let limit = Duration::from_secs(120);

    // The DOM the browser built: every playbook's section, its timeline and charts.
    let (ok, dom, stderr) = chromium(&dir, &["--dump-dom"], &url, limit);
    assert!(ok, "chromium --dump-dom failed:\n{stderr}");
    for p in &report.playbooks {
        assert!(dom.contains(&p.name), "{} missing from the DOM", p.name);
    }
    assert_eq!(dom.matches("class=\"timeline\"").count(), 5);
    assert!(dom.matches("<svg").count() >= 10);
    // No script errors, no page errors in the browser's console.
    for bad in [
        "Uncaught",
        "CONSOLE",
        "Failed to load resource",
        "net::ERR_",
    ] {
        assert!(!stderr.contains(bad), "{bad} in chromium's log:\n{stderr}");
    }

    // A screenshot: the expected size, and not blank — the verdict's green, a fault band's
    // orange and chart lines' blue are on it.
    let shot = dir.join("report.png");
    let (w, h) = (1100u32, 2400u32);
    let (ok, _, stderr) = chromium(
        &dir,
        &[
            &format!("--screenshot={}", shot.display()),
            &format!("--window-size={w},{h}"),
        ],
        &url,
        limit,
    );
    assert!(ok && shot.exists(), "no screenshot:\n{stderr}");
    for bad in ["Uncaught", "CONSOLE"] {
        assert!(!stderr.contains(bad), "{bad} in chromium's log:\n{stderr}");
    }
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (w, h));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let pixels: Vec<[u8; 3]> = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let white = pixels.iter().filter(|p| **p == [255, 255, 255]).count();
    let inked = pixels.len() - white;
    assert!(
        inked > pixels.len() / 20,
        "the page is nearly blank: {inked} of {} pixels not white",
        pixels.len()
    );
    let near = |c: [u8; 3]| {
        pixels
            .iter()
            .filter(|p| p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6))
            .count()
    };
    assert!(near([46, 139, 87]) > 500, "no verdict green");
    assert!(
        near([235, 120, 40]) > 200 || near([237, 140, 72]) > 200,
        "no fault band"
    );
    assert!(near([31, 119, 180]) > 200, "no chart line");
    // Kept for a person to look at.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::copy(&shot, keep);
}
