//! The batch runner behind `playbook run` and `playbook check`: find playbooks, compile and check
//! every one before running any, run them one after another, and give the batch's verdict.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::AST;
use sha2::Digest;

use crate::cli::{CheckArgs, RenderArgs, RunArgs};
use crate::engine::{self, EngineConfig, Stdlib};
use crate::outcome::Verdict;
use crate::report::{
    Console, Filter, Header, Meta, Mode, Options, Outputs, PlaybookReport, RunReport, Sink, Status,
    TargetInfo, Verbosity,
};
use crate::run::{Run, Targets, journal_for, new_run_id};
use crate::session::{Session, SessionConfig, Stop, say};

/// The `.rhai` files named by `paths`: files as given, folders' files in name order.
pub fn find_playbooks(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("cannot read folder {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "rhai"))
                .collect();
            if files.is_empty() {
                return Err(format!(
                    "folder {} holds no .rhai playbooks",
                    path.display()
                ));
            }
            files.sort();
            out.extend(files);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(format!(
                "no such playbook file or folder: {}",
                path.display()
            ));
        }
    }
    Ok(out)
}

/// The playbooks named by `paths` and the engine configuration; a usage error is said here.
fn prepare(
    paths: &[PathBuf],
    stdlib: &crate::cli::StdlibArgs,
) -> Result<(Vec<PathBuf>, EngineConfig), Verdict> {
    let paths = find_playbooks(paths).map_err(|e| {
        eprintln!("error: {e}");
        Verdict::Invalid
    })?;
    let config = EngineConfig {
        stdlib: Stdlib::from_option(stdlib.stdlib.clone()),
        ..Default::default()
    };
    Ok((paths, config))
}

/// A playbook that compiled and passed the static checks.
struct Compiled {
    meta: Meta,
    ast: AST,
}

/// Reads every playbook, keeps those `filter` selects, compiles and checks them; prints every
/// problem; `None` if any had one.
fn compile_all(config: &EngineConfig, paths: &[PathBuf], filter: &Filter) -> Option<Vec<Compiled>> {
    let engine = engine::build(config, None);
    let mut good = Vec::new();
    let mut problems = 0;
    for path in paths {
        let name = display_name(path);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {name}: {e}");
                problems += 1;
                continue;
            }
        };
        let header = Header::parse(&text);
        if !filter.matches(&name, &header.tags) {
            continue;
        }
        let found = engine::check(config, &engine, &name, &text);
        if found.is_empty() {
            if let Ok(ast) = engine::compile(&engine, &config.sources, &name, &text) {
                let sha256 = format!("{:x}", sha2::Sha256::digest(text.as_bytes()));
                good.push(Compiled {
                    meta: Meta {
                        name,
                        header,
                        sha256,
                    },
                    ast,
                });
            }
        } else {
            problems += found.len();
            for d in &found {
                eprint!("{}", d.render(&config.sources));
            }
        }
    }
    (problems == 0).then_some(good)
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// `playbook check`: every problem in every playbook, or "ok".
pub fn check(args: &CheckArgs) -> Verdict {
    let (paths, config) = match prepare(&args.paths, &args.stdlib) {
        Ok(x) => x,
        Err(verdict) => return verdict,
    };
    match compile_all(&config, &paths, &Filter::default()) {
        Some(ok) => {
            say(&format!("{} playbook(s) ok", ok.len()));
            Verdict::Passed
        }
        None => Verdict::Invalid,
    }
}

/// `playbook render FILE`: a dry run whose only standard output is the YAML of every object
/// the playbook would create (its other output goes to standard error).
pub fn render(args: &RenderArgs) -> Verdict {
    let rendered = std::sync::Mutex::new(Vec::new());
    let verdict = run_with(
        &args.as_run(),
        Console::new(
            Verbosity::Normal,
            Mode::Plain { timestamps: false },
            Sink::Stderr,
        ),
        &|session| {
            if let Ok(mut r) = rendered.lock() {
                r.extend(session.record().rendered.drain(..));
            }
        },
    );
    for (object, pods) in rendered.into_inner().unwrap_or_default() {
        let selects = if pods.is_empty() {
            "(no running pods match now)".to_string()
        } else {
            pods.join(", ")
        };
        say(&format!(
            "---\n# would select from: {selects}\n{}",
            crate::host::render_yaml(&object).trim_end()
        ));
    }
    verdict
}

/// `playbook run`: compile everything, then run each playbook in turn; the batch's verdict.
/// Must be called inside a tokio runtime context (host functions block on it).
pub fn run(args: &RunArgs) -> Verdict {
    let verbosity = if args.report.quiet {
        Verbosity::Quiet
    } else if args.report.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let mode = if std::io::stdout().is_terminal() {
        Mode::Live
    } else {
        Mode::Plain { timestamps: true }
    };
    run_with(args, Console::new(verbosity, mode, Sink::Stdout), &|_| {})
}

fn run_with(args: &RunArgs, console: Arc<Console>, after: &dyn Fn(&Session)) -> Verdict {
    let (paths, config) = match prepare(&args.paths, &args.stdlib) {
        Ok(x) => x,
        Err(verdict) => return verdict,
    };
    let filter = Filter(args.report.filter.clone());
    let Some(playbooks) = compile_all(&config, &paths, &filter) else {
        eprintln!("nothing was run: fix the playbooks above first");
        return Verdict::Invalid;
    };
    if playbooks.is_empty() {
        eprintln!(
            "error: --filter {} matches none of the {} playbook(s) (by name, glob or `//! tags:`)",
            filter.0.join(" --filter "),
            paths.len()
        );
        return Verdict::Invalid;
    }
    let outputs = Outputs {
        json: args.report.report.clone(),
        junit: args.report.junit.clone(),
        markdown: args.report.markdown.clone(),
        html: args.report.html.clone(),
    };
    if let Err(e) = outputs.check() {
        eprintln!("error: {e}");
        return Verdict::Invalid;
    }
    let rt = crate::connection::Rt::current();
    let targets = match Targets::connect(&args.target.choice()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Error;
        }
    };
    if args.publish.summary_configmap.is_some()
        && targets.kind() == crate::connection::TargetKind::Sim
    {
        eprintln!(
            "error: --summary-configmap needs a cluster (--cluster kube, or `playbook sim serve`'s kubeconfig): the in-process simulator is gone when the run ends"
        );
        return Verdict::Invalid;
    }
    let target_for = || targets.next();
    let first = target_for();
    console.say(&first.description);
    let state_dir = journal_dir(args);
    let vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let run_id = new_run_id();
    let mut journal = RunReport::new(
        &run_id,
        TargetInfo {
            kind: targets.kind().as_str().into(),
            description: first.description.clone(),
            context: first.context.clone(),
        },
        args.target.seed,
        Options {
            timeout_s: args.timeout.as_secs_f64(),
            dry_run: args.dry_run,
            fail_fast: args.report.fail_fast,
            filter: args.report.filter.clone(),
        },
    );
    // One run at a time per cluster, and the freeze obeyed: held for the whole batch, given
    // back after the last playbook's cleanup (a dry run injects nothing and takes nothing).
    let guard = if args.dry_run {
        crate::coord::Guard::none(&rt)
    } else {
        let options = crate::coord::Options {
            lock: !args.lock.no_lock,
            wait: args.lock.lock_wait,
            reach: args.timeout,
        };
        match crate::coord::Guard::enter(&first, &rt, &run_id, &options) {
            Ok(g) => g,
            Err(refusal) => {
                // Every playbook skipped, and the reports say why (with the refusal's own
                // status and exit code: a report of skipped playbooks alone would say "passed").
                let verdict = refusal.report();
                for pb in &playbooks {
                    journal.push(PlaybookReport::skipped(&pb.meta, refusal.to_string()));
                }
                journal.status = Status::of(verdict);
                journal.exit_code = verdict.exit_code();
                journal.finish();
                for e in outputs.write(&journal) {
                    eprintln!("error: {e}");
                }
                return verdict;
            }
        }
    };
    let mut failed_writes: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut write = |journal: &RunReport| {
        for e in outputs.write(journal) {
            failed_writes
                .entry(e.path.clone())
                .or_insert_with(|| e.to_string());
        }
    };
    let mut stopped: Option<String> = None;
    for pb in &playbooks {
        if stopped.is_none()
            && crate::session::interrupted().load(std::sync::atomic::Ordering::Relaxed)
        {
            stopped = Some(INTERRUPTED.into());
        }
        if let Some(reason) = &stopped {
            console.skipped(&pb.meta.name, reason);
            journal.push(PlaybookReport::skipped(&pb.meta, reason.clone()));
            write(&journal);
            continue;
        }
        let target = target_for();
        let journal_file = journal_for(&target, &state_dir, &run_id);
        let session = Session::new(SessionConfig {
            run_id: run_id.clone(),
            playbook: pb.meta.name.clone(),
            vars: vars.clone(),
            output: console.output(),
            stop: Stop::new(args.timeout),
            target,
            rt: rt.clone(),
            journal: journal_file,
            dry_run: args.dry_run,
            prometheus: args.prometheus.clone(),
        });
        session.observe(console.observer());
        console.start(&pb.meta.name, &session);
        let started_at = jiff::Timestamp::now();
        let outcome = run_one(&config, pb, &session, &console);
        after(&session);
        let verdict = outcome.verdict;
        let report = crate::run::report(
            &pb.meta,
            outcome,
            started_at,
            &session,
            Some(console.take_log()),
        );
        console.finish(&report);
        if let Some(url) = &args.publish.pushgateway {
            push_metrics(&rt, url, &run_id, &report, &console);
        }
        if verdict == Verdict::Interrupted {
            stopped = Some(INTERRUPTED.into());
        } else if args.report.fail_fast && report.status != Status::Passed {
            stopped = Some(format!("--fail-fast: {} did not pass", pb.meta.name));
        }
        journal.push(report);
        write(&journal);
    }
    guard.release();
    journal.finish();
    write(&journal);
    console.summary(&journal);
    let mut verdict = journal.verdict();
    // Skipped because of a signal (before the first playbook, or between two): interrupted.
    if stopped.as_deref() == Some(INTERRUPTED) {
        verdict = verdict.worst(Verdict::Interrupted);
    }
    for e in failed_writes.values() {
        console.error(&format!("error: {e}\n"));
        verdict = verdict.worst(Verdict::Error);
    }
    for path in outputs.paths().filter(|p| !failed_writes.contains_key(*p)) {
        console.say(&format!("report: {}", path.display()));
    }
    if let Some((ns, name)) = &args.publish.summary_configmap {
        let text = crate::report::publish::configmap_text(&journal);
        let budget = crate::connection::request::Budget::window(PUBLISH_WINDOW);
        let written = crate::connection::request::within(budget, || {
            rt.block_on(crate::report::publish::write_configmap(
                &first.client,
                ns,
                name,
                &run_id,
                &text,
            ))
        });
        match written {
            Ok(()) => console.say(&format!(
                "summary: ConfigMap {ns}/{name} (key {})",
                crate::report::publish::SUMMARY_KEY
            )),
            Err(e) => {
                console.error(&format!("error: cannot write the summary: {e}\n"));
                verdict = verdict.worst(Verdict::Error);
            }
        }
    }
    if let Some(url) = &args.publish.notify {
        let body =
            serde_json::to_vec(&crate::report::publish::notification(&journal)).unwrap_or_default();
        let sent = rt.block_on(crate::report::publish::send(
            "POST",
            url,
            "application/json",
            body,
        ));
        if let Err(e) = sent {
            console.error(&format!(
                "warning: --notify: could not post the run's summary to {url}: {e} (the verdict stands)\n"
            ));
        }
    }
    verdict
}

/// How long writing the summary ConfigMap may take, retries included.
const PUBLISH_WINDOW: std::time::Duration = std::time::Duration::from_secs(20);

/// Pushes one playbook's metrics to the Pushgateway at `url` (PUT: they replace that
/// playbook's previous push); a failure is said, and changes nothing else.
fn push_metrics(
    rt: &crate::connection::Rt,
    url: &str,
    run_id: &str,
    report: &PlaybookReport,
    console: &Console,
) {
    if report.status == Status::Skipped {
        return;
    }
    use crate::report::publish;
    let text = publish::exposition(run_id, report);
    let target = publish::pushgateway_url(url, &report.name);
    let sent = rt.block_on(publish::send(
        "PUT",
        &target,
        "text/plain; version=0.0.4; charset=utf-8",
        text.into_bytes(),
    ));
    if let Err(e) = sent {
        console.error(&format!(
            "warning: --pushgateway: could not push the metrics of {} to {url}: {e} (the verdict stands)\n",
            report.name
        ));
    }
}

/// Why the rest of a batch is skipped after a signal.
const INTERRUPTED: &str = "the run was interrupted";

/// Where journals go: `--state-dir`, else the user's state folder.
fn journal_dir(args: &RunArgs) -> PathBuf {
    crate::session::state_dir(args.state_dir.as_deref())
}

/// Runs one compiled playbook, then its cleanup and the steady-state re-checks, whatever
/// happened; prints its errors; how it ended.
fn run_one(
    config: &EngineConfig,
    pb: &Compiled,
    session: &Arc<Session>,
    console: &Arc<Console>,
) -> crate::run::Outcome {
    let shown = console.clone();
    let mut run = Run::new(
        config.clone(),
        session.clone(),
        Arc::new(move |text: &str| shown.error(text)),
    );
    let (verdict, error) = run.play(&pb.meta.name, &pb.ast);
    run.finish(&pb.meta.name, verdict, error)
}

/// The message of a panic's payload (a bug in playbook, reported in one line).
pub use crate::run::panic_text;
