//! `playbook`: chaos experiments on Kubernetes MLOps platforms as short Rhai playbooks.
//!
//! # Layout
//! - [`cli`]: the command line (clap), one struct per subcommand.
//! - [`runner`]: `playbook run` and `playbook check` — find, compile and check, run, verdict.
//! - [`engine`]: the one Rhai engine constructor shared by runner, checker and REPL; the module
//!   resolver and embedded standard library; diagnostics (file:line:col with a caret); the
//!   static checks; the host API reference generated from doc comments.
//! - [`host`]: the functions playbooks call, one file per Rhai namespace.
//! - [`session`]: one run of one playbook: id, variables, output, deadline and Ctrl-C.
//! - [`outcome`]: verdicts and the exit codes they map to.
//! - [`duration`]: the one parser for "30s", "1m30s", "100ms".
//!
//! The binary (`src/main.rs`) only parses the command line, dispatches, and maps the verdict
//! to an exit code.

pub mod cli;
pub mod duration;
pub mod engine;
pub mod host;
pub mod outcome;
pub mod runner;
pub mod session;

/// `playbook doc [NAME]`: the host API reference, or one entry of it.
pub fn doc(name: Option<&str>) -> outcome::Verdict {
    let engine = engine::build(&Default::default(), None);
    match engine::render_docs(&engine::docs(&engine), name) {
        Ok(text) => {
            print!("{text}");
            outcome::Verdict::Passed
        }
        Err(e) => {
            eprintln!("error: {e}");
            outcome::Verdict::Invalid
        }
    }
}
