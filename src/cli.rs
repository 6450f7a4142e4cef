//! The command line: clap definitions, one struct per subcommand.

use clap::{Parser, Subcommand};

/// Chaos experiments as Rhai playbooks.
#[derive(Debug, Parser)]
#[command(name = "playbook", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The simulated Kubernetes cluster.
    Sim {
        /// What to do with the simulator.
        #[command(subcommand)]
        cmd: SimCmd,
    },
}

/// `playbook sim ...`
#[derive(Debug, Subcommand)]
pub enum SimCmd {
    /// Serve the simulated cluster on loopback (wall time) and write a kubeconfig for kubectl.
    Serve(crate::sim::serve::ServeArgs),
}
