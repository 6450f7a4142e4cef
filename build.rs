//! Embeds the standard library (`stdlib/*.rhai`) in the binary, so an installed `playbook`
//! finds it from any folder.

use std::{env, fs, path::Path};

fn main() {
    // Read at run time: a build script compiled once may serve another checkout of the crate.
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("stdlib");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from(
        "/// The embedded standard library: (module name, source).\npub(crate) static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        out += &format!(
            "    ({stem:?}, include_str!({:?})),\n",
            path.display().to_string()
        );
    }
    out += "];\n";
    let dest = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("stdlib.rs");
    if let Err(e) = fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
