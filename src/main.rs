//! The `playbook` binary: parse the command line, dispatch, map the outcome to an exit code.

use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::Parser;
use playbook::cli::{Cli, Command, SimCmd};
use playbook::outcome::Verdict;

fn main() -> ExitCode {
    // A panic is a bug in playbook: say so in one line, never with a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{at}: {}",
            playbook::runner::panic_text(info.payload())
        );
    }));
    let cli = Cli::parse();
    let verdict = match cli.command {
        Command::Run(args) => with_signals(move || playbook::runner::run(&args)),
        Command::Check(args) => playbook::runner::check(&args),
        Command::Cleanup(args) => with_signals(move || playbook::sweep::cleanup(&args)),
        Command::Render(args) => with_signals(move || playbook::runner::render(&args)),
        Command::Repl(args) => playbook::repl::main(args),
        Command::Doc(args) => playbook::doc(args.name.as_deref()),
        Command::Report(args) => playbook::report::command(&args),
        Command::Sim {
            cmd: SimCmd::Serve(args),
        } => match playbook_sim::serve::run(args.config()) {
            Ok(()) => Verdict::Passed,
            Err(e) => {
                eprintln!("error: {e:#}");
                Verdict::Error
            }
        },
    };
    ExitCode::from(verdict.exit_code())
}

/// Runs `work` on a thread with room for deep scripts, while Ctrl-C and SIGTERM set the
/// interrupt flag (the run stops, cleans up, and exits 130).
fn with_signals(work: impl FnOnce() -> Verdict + Send + 'static) -> Verdict {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Verdict::Error;
        }
    };
    runtime.spawn(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        playbook::session::interrupted().store(true, Ordering::SeqCst);
        eprintln!("\ninterrupted: stopping and cleaning up");
    });
    let handle = runtime.handle().clone();
    let worker = std::thread::Builder::new()
        .name("playbook".into())
        .stack_size(256 << 20)
        .spawn(move || {
            let _in_runtime = handle.enter();
            work()
        });
    match worker.map(|w| w.join()) {
        Ok(Ok(verdict)) => verdict,
        _ => Verdict::Error,
    }
}
