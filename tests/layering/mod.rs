//! The core's layering, checked from the sources: each module of `src/` may use only modules at
//! or below its own layer, so the import graph has no circle (ARCHITECTURE.md, "Layers").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first; a module may use modules of its own layer or any lower one,
/// except where [`SAME_LAYER`] orders two modules of one layer.
const LAYERS: &[&[&str]] = &[
    // The model: types, units, faults as data, verdicts, stop reasons.
    &["duration", "faults", "files", "outcome", "stop", "suggest"],
    // What a run talks to, and its clock.
    &["connection"],
    // One run's state: ledger, journal, record.
    &["session"],
    // The host API playbooks call; what a batch shows and writes.
    &["host", "report"],
    // The one engine constructor (registers the host API).
    &["engine", "proof"],
    // The run lifecycle below both front ends.
    &["run", "coord"],
    // The front ends.
    &[
        "cli",
        "runner",
        "repl",
        "sweep",
        "rbac",
        "preflight",
        "freeze",
        "deploy",
    ],
];

/// Within one layer, (user, used) pairs that are allowed; any other use inside a layer is not.
const SAME_LAYER: &[(&str, &str)] = &[
    ("faults", "duration"),
    ("faults", "suggest"),
    ("stop", "duration"),
    ("runner", "cli"),
    ("repl", "cli"),
    ("sweep", "cli"),
    ("rbac", "cli"),
    ("rbac", "runner"),
    ("preflight", "cli"),
    ("preflight", "rbac"),
    ("freeze", "cli"),
    ("freeze", "sweep"),
    ("deploy", "cli"),
    ("deploy", "rbac"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/host/chaos.rs` -> `host`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("a path");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_string()
}

/// Every top-level module `text` names through `crate::` (in `use` lines, groups over several
/// lines, and paths); comments are left out.
fn used_modules(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first name of each item at depth 0.
            let mut depth = 0;
            let mut start_of_item = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start_of_item = true,
                    c if start_of_item && !c.is_whitespace() => {
                        let name = ident(&group[i..]);
                        if !name.is_empty() {
                            out.push(name);
                        }
                        start_of_item = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(after));
        }
        rest = after;
    }
    out
}

#[test]
fn every_module_uses_only_modules_at_or_below_its_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue; // the crate root and the binary sit above every layer
        }
        let Some(layer) = layer_of(&module) else {
            unplaced.push(module);
            continue;
        };
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        for used in used_modules(&text) {
            if used == module {
                continue;
            }
            let Some(used_layer) = layer_of(&used) else {
                unplaced.push(format!("{used} (used by {})", file.display()));
                continue;
            };
            let allowed = used_layer < layer
                || (used_layer == layer && SAME_LAYER.contains(&(module.as_str(), used.as_str())));
            if !allowed {
                wrong
                    .entry(format!("{} (layer {layer})", file.display()))
                    .or_default()
                    .push(format!("{used} (layer {used_layer})"));
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and ARCHITECTURE.md): {unplaced:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports that go up or sideways (a circle in the making):\n{wrong:#?}"
    );
}

#[test]
fn the_layering_check_reads_groups_and_paths() {
    let text = "use crate::{a, b::{c, d}, e};\nlet x = crate::f::g(); // crate::h\n";
    assert_eq!(used_modules(text), ["a", "b", "e", "f"]);
}
