//! `playbook`: chaos experiments on Kubernetes MLOps platforms as short Rhai playbooks.
//!
//! # Layout
//! By layer, top first; a module uses only modules of the layers below it (checked by
//! `tests/layering`).
//! - Front ends: [`cli`] (clap, one struct per subcommand; the only module that knows clap's
//!   types), [`runner`] (`playbook run`, `check`, `render`), [`repl`] (`playbook repl`),
//!   [`sweep`] (`playbook cleanup`: what killed runs left, from journals and labels),
//!   [`rbac`] (`playbook rbac`: least-privilege rules from the playbooks), [`preflight`]
//!   (`playbook preflight`: what would make a run fail or lie, checked first), [`freeze`]
//!   (`playbook freeze`, `unfreeze`, `stop --all`: the kill switch), [`deploy`]
//!   (`playbook deploy`: a Job or CronJob that runs the playbooks in the cluster).
//! - Run lifecycle: [`run`] — start-up with signals caught, the target, the run id, and
//!   [`run::Run`]: evaluation, then `finish` (cleanup, steady-state re-checks, verdict);
//!   [`coord`]: one run at a time per cluster (a Lease) and the freeze mark that stops them.
//! - Engine, proof and host: [`engine`] (the one Rhai engine constructor, resolver and
//!   embedded stdlib, diagnostics, static checks, the API reference); [`proof`] (how a run
//!   earns its verdict: errors classified, proof of injection, inconclusive); [`host`] (the functions playbooks
//!   call, one file per Rhai namespace); [`report`] (live progress or plain lines, the summary
//!   table, JSON, JUnit XML, Markdown, HTML; `playbook report`; the summary, Pushgateway
//!   metrics and webhook a run publishes).
//! - [`session`]: one run's state: parameters, output, the cleanup ledger and journal, the
//!   record of observations, the Kubernetes Events it posts.
//! - [`connection`]: what a run talks to (a real cluster or the simulator) and its clock.
//! - Model: [`stop`] (signals and deadlines), [`faults`] (Chaos Mesh objects built and checked
//!   from a playbook's options), [`files`] (reports and journals written safely), [`outcome`] (verdicts, exit codes), [`duration`] (the parser
//!   of "30s", "1m30s"), [`suggest`] (edit distance for "did you mean").
//!
//! Two crates of the workspace sit below this one: `playbook-model` (the CRDs, schema
//! validation, the generated Chaos Mesh types, units, Chaos Mesh's pod selection) and `playbook-sim` (the simulated
//! cluster, which knows nothing of playbooks).
//!
//! The binary (`src/main.rs`) only parses the command line, dispatches through
//! [`run::start`], and maps the verdict to an exit code.

pub mod cli;
pub mod connection;
pub mod coord;
pub mod deploy;
pub mod duration;
pub mod engine;
pub mod faults;
pub mod files;
pub mod freeze;
pub mod host;
pub mod outcome;
pub mod preflight;
pub mod proof;
pub mod rbac;
pub mod repl;
pub mod report;
pub mod run;
pub mod runner;
pub mod session;
pub mod stop;
pub mod suggest;
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
