//! The command line: clap definitions, one struct per subcommand.

use clap::Parser;

/// Chaos experiments as Rhai playbooks.
#[derive(Debug, Parser)]
#[command(name = "playbook", version)]
pub struct Cli {}
