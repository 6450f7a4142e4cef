//! The REPL's meta-commands as a table of `{name, summary, run}` rows; `:help` prints it.

use serde_json::Value;

use super::Repl;
use super::show::table;
use crate::engine::render_docs;
use crate::session::{ObjectRef, say};

/// What the loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Quit,
}

/// One meta-command.
pub(crate) struct Command {
    pub name: &'static str,
    pub args: &'static str,
    pub summary: &'static str,
    pub run: fn(&mut Repl, &str) -> Flow,
}

/// Every meta-command, in the order `:help` shows them.
pub(crate) const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        args: "[FN]",
        summary: "this table, or the signature and doc of one host function",
        run: help,
    },
    Command {
        name: "doc",
        args: "[NAME]",
        summary: "the host API reference (all, a namespace such as chaos, or a function)",
        run: doc,
    },
    Command {
        name: "load",
        args: "FILE",
        summary: "run a playbook's statements in this session (its faults join the session's)",
        run: load,
    },
    Command {
        name: "faults",
        args: "",
        summary: "the faults of this session and their status now",
        run: faults,
    },
    Command {
        name: "cleanup",
        args: "",
        summary: "remove every fault of the session now (what cleanup at exit would do)",
        run: cleanup,
    },
    Command {
        name: "save",
        args: "FILE",
        summary: "write what succeeded so far as a playbook (`:cleanup` as chaos::cleanup())",
        run: save,
    },
    Command {
        name: "quit",
        args: "",
        summary: "clean up and leave (also Ctrl-D)",
        run: |_, _| Flow::Quit,
    },
];

/// The names of the commands, for completion.
pub(crate) fn names() -> Vec<&'static str> {
    COMMANDS.iter().map(|c| c.name).collect()
}

/// Runs the meta-command on `line` (which starts with `:`).
pub(crate) fn dispatch(repl: &mut Repl, line: &str) -> Flow {
    let line = line.trim().trim_start_matches(':');
    let (name, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(c) => (c.run)(repl, arg.trim()),
        None => {
            let near: Vec<String> = COMMANDS
                .iter()
                .filter(|c| {
                    !name.is_empty()
                        && (c.name.starts_with(name)
                            || name.starts_with(c.name)
                            || crate::suggest::edit_distance(name, c.name) <= 2)
                })
                .map(|c| format!(":{}", c.name))
                .collect();
            if near.is_empty() {
                warn!("error: unknown command `:{name}` (:help lists them)");
            } else {
                warn!(
                    "error: unknown command `:{name}`; did you mean {}?",
                    near.join(", ")
                );
            }
            Flow::Continue
        }
    }
}

fn help(repl: &mut Repl, arg: &str) -> Flow {
    if !arg.is_empty() {
        if let Some(c) = COMMANDS
            .iter()
            .find(|c| c.name == arg.trim_start_matches(':'))
        {
            say(&format!(":{} {}\n    {}", c.name, c.args, c.summary));
            return Flow::Continue;
        }
        return doc(repl, arg);
    }
    let rows: Vec<Vec<String>> = COMMANDS
        .iter()
        .map(|c| {
            vec![
                format!(":{} {}", c.name, c.args).trim_end().to_string(),
                c.summary.to_string(),
            ]
        })
        .collect();
    say(&table(&[], &rows));
    say(
        "Statements run as you enter them; variables and functions stay for the session.\nTab completes (names from the cluster inside strings); :help NAME shows a function.",
    );
    Flow::Continue
}

fn doc(repl: &mut Repl, arg: &str) -> Flow {
    let filter = (!arg.is_empty()).then_some(arg);
    match render_docs(&repl.docs, filter) {
        Ok(text) => say(text.trim_end()),
        Err(e) => warn!("error: {e}"),
    }
    Flow::Continue
}

fn load(repl: &mut Repl, arg: &str) -> Flow {
    if arg.is_empty() {
        warn!("error: :load needs a file, e.g. :load playbooks/kill-one.rhai");
        return Flow::Continue;
    }
    match std::fs::read_to_string(arg) {
        Ok(text) => {
            if repl.evaluate(arg, &text) {
                repl.saved
                    .push(format!("// from {arg}\n{}", text.trim_end()));
            }
        }
        Err(e) => warn!("error: cannot read {arg}: {e}"),
    }
    Flow::Continue
}

fn faults(repl: &mut Repl, _: &str) -> Flow {
    let s = repl.run.session.clone();
    let faults = s.record().faults.clone();
    if faults.is_empty() {
        say("no faults in this session");
        return Flow::Continue;
    }
    let live = s.live_objects();
    let header: Vec<String> = [
        "name",
        "kind",
        "namespace",
        "state",
        "injected",
        "recovered",
        "paused",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let rows: Vec<Vec<String>> = faults
        .iter()
        .map(|f| {
            let object = ObjectRef::new(
                crate::faults::API_VERSION,
                &f.kind,
                Some(&f.namespace),
                &f.name,
            );
            let mut row = vec![f.name.clone(), f.kind.clone(), f.namespace.clone()];
            if !live.iter().any(|o| o.same_name(&object)) {
                row.extend(["removed".into(), "-".into(), "-".into(), "-".into()]);
                return row;
            }
            match fetch(&s, &object) {
                Ok(Some(o)) => {
                    let yes = |kind: &str| {
                        if crate::host::cluster::condition_true(&o, kind) {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_string()
                    };
                    row.extend([
                        "live".into(),
                        yes("AllInjected"),
                        yes("AllRecovered"),
                        yes("Paused"),
                    ]);
                }
                Ok(None) => row.extend(["gone".into(), "-".into(), "-".into(), "-".into()]),
                Err(e) => row.extend([format!("unknown: {e}"), "?".into(), "?".into(), "?".into()]),
            }
            row
        })
        .collect();
    say(&table(&header, &rows));
    Flow::Continue
}

/// The object as the cluster has it now.
fn fetch(s: &crate::session::Session, o: &ObjectRef) -> Result<Option<Value>, String> {
    let api = crate::session::api_for(&s.target, &s.rt, o)?;
    let got =
        s.rt.block_on(api.get_opt(&o.name))
            .map_err(|e| e.to_string())?;
    Ok(got.map(|o| serde_json::to_value(o).unwrap_or_default()))
}

fn cleanup(repl: &mut Repl, _: &str) -> Flow {
    let before = repl.run.session.record().cleanup.len();
    repl.cleanup();
    // What changed the cluster is saved, so the saved playbook does what the session did.
    if repl.run.session.record().cleanup.len() > before {
        repl.saved.push("chaos::cleanup();".into());
    }
    Flow::Continue
}

fn save(repl: &mut Repl, arg: &str) -> Flow {
    if arg.is_empty() {
        warn!("error: :save needs a file, e.g. :save my-experiment.rhai");
        return Flow::Continue;
    }
    let header = format!(
        "//! Saved from `playbook repl` (session {}, {}): the statements that succeeded, in order.\n\n",
        repl.run.session.run_id,
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    let body = repl.saved.join("\n");
    match std::fs::write(arg, format!("{header}{body}\n")) {
        Ok(()) => say(&format!("saved {} statement(s) to {arg}", repl.saved.len())),
        Err(e) => warn!("error: cannot write {arg}: {e}"),
    }
    Flow::Continue
}
