//! `playbook`: chaos experiments on Kubernetes MLOps platforms as short Rhai playbooks.
//!
//! # Layout
//! - [`cli`]: the command line (clap), one struct per subcommand.
//! - [`runner`]: `playbook run`, `check` and `render` — find, compile and check, run, verdict.
//! - [`repl`]: `playbook repl` — the interactive front end on the same engine and session.
//! - [`sweep`]: `playbook cleanup` — remove what killed runs left, from journals and labels.
//! - [`engine`]: the one Rhai engine constructor shared by runner, checker and REPL; the module
//!   resolver and embedded standard library; diagnostics (file:line:col with a caret); the
//!   static checks; the host API reference generated from doc comments.
//! - [`host`]: the functions playbooks call, one file per Rhai namespace.
//! - [`session`]: one run of one playbook: id, parameters, output, deadline and Ctrl-C, the
//!   cleanup ledger and journal, the record of observations.
//! - [`connection`]: what a run talks to (a real cluster or the simulator) and its clock.
//! - [`outcome`]: verdicts and the exit codes they map to.
//! - [`report`]: what a batch shows and writes: live progress or plain lines, the summary
//!   table, the JSON journal, JUnit XML and Markdown.
//! - [`duration`]: the one parser for playbooks' durations: "30s", "1m30s", "100ms".
//! - [`faults`]: Chaos Mesh objects built and checked from a playbook's options, apart from
//!   sending them.
//!
//! Two crates of the workspace sit below this one: `playbook-model` (the CRDs, schema
//! validation, the generated Chaos Mesh types, units) and `playbook-sim` (the simulated
//! cluster, which knows nothing of playbooks).
//!
//! The binary (`src/main.rs`) only parses the command line, dispatches, and maps the verdict
//! to an exit code.

pub mod cli;
pub mod connection;
pub mod duration;
pub mod engine;
pub mod faults;
pub mod host;
pub mod outcome;
pub mod preflight;
pub mod rbac;
pub mod repl;
pub mod report;
pub mod runner;
pub mod session;
pub mod sweep;

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
