//! The `playbook` binary: parse the command line, dispatch, map the outcome to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use playbook::cli::{Cli, Command, SimCmd};
use playbook::outcome::Verdict;
use playbook::run::{Front, start};

fn main() -> ExitCode {
    // A panic is a bug in playbook: say so in one line, never with a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        eprintln!(
            "error: internal error{at}: {}",
            playbook::run::panic_text(info.payload())
        );
    }));
    let cli = Cli::parse();
    let verdict = match cli.command {
        Command::Run(args) => start(Front::Batch, move || playbook::runner::run(&args)),
        Command::Check(args) => playbook::runner::check(&args),
        Command::Rbac(args) => playbook::rbac::rbac(&args),
        Command::Deploy(args) => playbook::deploy::deploy(&args),
        Command::Preflight(args) => {
            start(Front::Batch, move || playbook::preflight::preflight(&args))
        }
        Command::Cleanup(args) => start(Front::Batch, move || playbook::sweep::cleanup(&args)),
        Command::Render(args) => start(Front::Batch, move || playbook::runner::render(&args)),
        Command::Repl(args) => {
            // Statements from a pipe are a batch: any signal ends the session, and says so.
            let front = if std::io::stdin().is_terminal() {
                Front::Repl
            } else {
                Front::Batch
            };
            start(front, move || playbook::repl::run(&args))
        }
        Command::Freeze(args) => start(Front::Batch, move || playbook::freeze::freeze(&args)),
        Command::Unfreeze(args) => start(Front::Batch, move || playbook::freeze::unfreeze(&args)),
        Command::Stop(args) => start(Front::Batch, move || playbook::freeze::stop(&args)),
        Command::Doc(args) => playbook::doc(args.name.as_deref()),
        Command::Report(args) => playbook::report::command(&args.job()),
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
