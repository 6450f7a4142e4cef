//! The `playbook` binary: parse the command line, dispatch, map the outcome to an exit code.

use clap::Parser;
use playbook::cli::{Cli, Command, SimCmd};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Command::Sim {
            cmd: SimCmd::Serve(args),
        }) => playbook::sim::serve::run(args),
        None => Ok(()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
