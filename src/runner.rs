//! The batch runner behind `playbook run` and `playbook check`: find playbooks, compile and check
//! every one before running any, run them one after another, and give the batch's verdict.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rhai::{AST, EvalAltResult};

use crate::cli::{CheckArgs, ClusterKind, RenderArgs, RunArgs};
use crate::engine::{self, Diagnostic, EngineConfig, Stdlib};
use crate::outcome::Verdict;
use crate::session::{
    Failure, Journal, Line, Session, SessionConfig, Stop, StopReason, say, stdout_output,
};
use crate::target;

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

/// A playbook that compiled and passed the static checks.
struct Compiled {
    name: String,
    ast: AST,
}

/// Reads, compiles and checks every playbook; prints every problem; `None` if any had one.
fn compile_all(config: &EngineConfig, paths: &[PathBuf]) -> Option<Vec<Compiled>> {
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
        let found = engine::check(config, &engine, &name, &text);
        if found.is_empty() {
            if let Ok(ast) = engine::compile(&engine, &config.sources, &name, &text) {
                good.push(Compiled { name, ast });
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
    let paths = match find_playbooks(&args.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Invalid;
        }
    };
    let config = EngineConfig {
        stdlib: Stdlib::from_option(args.stdlib.stdlib.clone()),
        ..Default::default()
    };
    match compile_all(&config, &paths) {
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
        Arc::new(|line| match line {
            crate::session::Line::Print(s) | crate::session::Line::Debug(s) => eprintln!("{s}"),
        }),
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
    run_with(args, stdout_output(), &|_| {})
}

fn run_with(args: &RunArgs, output: crate::session::Output, after: &dyn Fn(&Session)) -> Verdict {
    let paths = match find_playbooks(&args.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Invalid;
        }
    };
    let config = EngineConfig {
        stdlib: Stdlib::from_option(args.stdlib.stdlib.clone()),
        ..Default::default()
    };
    let Some(playbooks) = compile_all(&config, &paths) else {
        eprintln!("nothing was run: fix the playbooks above first");
        return Verdict::Invalid;
    };
    let rt = tokio::runtime::Handle::current();
    // A real cluster is shared by the batch; the simulator is new for each playbook, so a
    // playbook's figures do not depend on what ran before it.
    let real = match target::choose(&args.target) {
        ClusterKind::Kube => match rt.block_on(target::connect(&args.target)) {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("error: {e}");
                return Verdict::Error;
            }
        },
        ClusterKind::Sim => None,
    };
    let target_for = || {
        real.clone()
            .unwrap_or_else(|| target::simulated(args.target.seed, args.target.scenario))
    };
    (output)(Line::Print(target_for().description));
    let state_dir = journal_dir(args);
    let vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let run_id = new_run_id();
    let mut verdict = Verdict::Passed;
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for pb in &playbooks {
        if crate::session::interrupted().load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let target = target_for();
        let journal = (!target.is_simulated())
            .then(|| Journal::new(&state_dir, &run_id, target.context.clone()));
        let session = Session::new(SessionConfig {
            run_id: run_id.clone(),
            playbook: pb.name.clone(),
            vars: vars.clone(),
            output: output.clone(),
            stop: Stop::new(args.timeout),
            target,
            rt: rt.clone(),
            journal,
            dry_run: args.dry_run,
            prometheus: args.prometheus.clone(),
        });
        (output)(Line::Print(format!("== {}", pb.name)));
        let started = Instant::now();
        let v = run_one(&config, pb, &session);
        after(&session);
        (output)(Line::Print(format!(
            "== {}: {} in {:.0?}",
            pb.name,
            v.word(),
            started.elapsed()
        )));
        *counts.entry(v.word()).or_default() += 1;
        verdict = verdict.worst(v);
    }
    let summary: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    (output)(Line::Print(summary.join(", ")));
    verdict
}

/// Where journals go: `--state-dir`, else the user's state folder.
fn journal_dir(args: &RunArgs) -> PathBuf {
    crate::session::state_dir(args.state_dir.as_deref())
}

/// Runs one compiled playbook, then its cleanup and the steady-state re-checks, whatever
/// happened; prints its errors; its verdict.
fn run_one(config: &EngineConfig, pb: &Compiled, session: &Arc<Session>) -> Verdict {
    let engine = engine::build(config, Some(session.clone()));
    let result = catch_unwind(AssertUnwindSafe(|| engine.run_ast(&pb.ast)));
    let mut verdict = match result {
        Ok(Ok(())) => Verdict::Passed,
        Ok(Err(err)) => {
            let verdict = classify(&err, session);
            let d = Diagnostic::from_eval(&pb.name, &err);
            eprint!("{}", d.render(&config.sources));
            verdict
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("error: internal error in a host function (a bug in playbook): {what}");
            Verdict::Error
        }
    };
    // Cleanup runs on every path; closures from on_cleanup run on the same engine.
    let cleaned = catch_unwind(AssertUnwindSafe(|| {
        session.cleanup(|f| {
            engine::call_after(&engine, &pb.ast, f)
                .map(|_| ())
                .map_err(|e| Diagnostic::from_eval(&pb.name, &e).message)
        })
    }))
    .unwrap_or(false);
    if !cleaned {
        let left: Vec<String> = session
            .live_objects()
            .iter()
            .map(|o| o.to_string())
            .collect();
        eprintln!(
            "error: cleanup could not remove everything; still there: {}",
            if left.is_empty() {
                "(see the failed steps above)".to_string()
            } else {
                left.join(", ")
            }
        );
        verdict = verdict.worst(Verdict::CleanupIncomplete);
    }
    if matches!(verdict, Verdict::Passed | Verdict::Failed) {
        match crate::host::expect::recheck_steady_states(session, &engine, &pb.ast) {
            Ok(true) => {}
            Ok(false) => verdict = verdict.worst(Verdict::Failed),
            Err(e) => {
                eprint!(
                    "{}",
                    Diagnostic::from_eval(&pb.name, &e).render(&config.sources)
                );
                verdict = verdict.worst(classify(&e, session));
            }
        }
    }
    verdict
}

/// A failed expectation is "failed"; Ctrl-C is "interrupted"; anything else is "error".
fn classify(err: &EvalAltResult, session: &Session) -> Verdict {
    match err.unwrap_inner() {
        EvalAltResult::ErrorRuntime(v, _) if v.is::<Failure>() => Verdict::Failed,
        EvalAltResult::ErrorTerminated(..) => match session.stop.reason() {
            Some(StopReason::Interrupted) => Verdict::Interrupted,
            _ => Verdict::Error,
        },
        _ => Verdict::Error,
    }
}

/// A run id that is unique on this machine and sorts by time: `pb-YYYYMMDD-HHMMSS-XXXX`.
fn new_run_id() -> String {
    let now = jiff::Timestamp::now();
    let tag = (now.as_nanosecond() as u64 ^ (u64::from(std::process::id()) << 20)) & 0xffff;
    format!("pb-{}-{tag:04x}", now.strftime("%Y%m%d-%H%M%S"))
}
