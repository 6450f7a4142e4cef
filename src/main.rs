//! The `playbook` binary: parse the command line, dispatch, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let _cli = playbook::cli::Cli::parse();
}
