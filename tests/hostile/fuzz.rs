//! Random and mutated playbooks (seeded, bounded in count and time) fed to the checker and the
//! runner: whatever they say, neither may panic, abort, or hang.

use std::path::PathBuf;
use std::time::Duration;

use super::playbook_within;
use crate::cli::tempdir;

/// A small deterministic generator (xorshift64*): the same seed gives the same playbooks.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments a hostile author would try, spliced into real playbooks.
const SPLICES: &[&str] = &[
    "import \"platform\" as platform;",
    "import \"m0\" as again;",
    "let m = \"m\" + \"1\"; import m as x;",
    "import \"/etc/passwd\" as p;",
    "import \"../x\" as p;",
    "eval(\"1\");",
    "let s = \"ab\"; for i in 0..20 { s += s; } s.replace(\"a\", s);",
    "record(\"k\", [1, 2, 3]);",
    "log(\"x\");",
    "chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] }, mode: \"fixed\", value: \"99\" });",
    "chaos::pod_kill(#{ name: \"twice\", selector: #{ namespaces: [\"default\"] } });",
    "chaos::network_delay(#{ selector: #{ namespaces: [\"default\"] }, latency: \"1ms\", target: #{ mode: \"all\", selector: #{ namespaces: [\"kube-system\"] } } });",
    "cluster::scale(\"kube-system\", \"deployment/coredns\", 0);",
    "cluster::scale(\"default\", \"deployment/nope\", 2);",
    "on_cleanup(|| chaos::pod_kill(#{ selector: #{ namespaces: [\"default\"] } }));",
    "sleep(\"99999999999999999h\");",
    "fn f(n) { f(n + 1) } f(0);",
    "let a = []; a.pad(99999999, 0);",
    "}",
    "{",
    "(",
    "\"",
    "`${",
    "99999999999999999999",
    "-9223372036854775808 / -1;",
];

fn seeds() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        "playbooks",
        "tests/fixtures/ok",
        "tests/fixtures/host",
        "tests/fixtures/report",
        "tests/fixtures/hostile",
        "tests/fixtures/broken",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
            .collect();
        files.sort();
        out.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    assert!(out.len() > 10, "seed playbooks found");
    out
}

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(lines.len() + 1);
        match rng.below(6) {
            0 if !lines.is_empty() => {
                lines.remove(at.min(lines.len() - 1));
            }
            1 if !lines.is_empty() => {
                let l = lines[at.min(lines.len() - 1)].clone();
                lines.insert(at.min(lines.len()), l);
            }
            3 if lines.len() > 1 => {
                let (a, b) = (at.min(lines.len() - 1), rng.below(lines.len()));
                lines.swap(a, b);
            }
            4 if !lines.is_empty() => {
                let i = at.min(lines.len() - 1);
                let cut: String = lines[i].chars().take(rng.below(40)).collect();
                lines[i] = cut;
            }
            _ => lines.insert(at, SPLICES[rng.below(SPLICES.len())].to_string()),
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn random_and_mutated_playbooks_never_panic_abort_or_hang() {
    const COUNT: usize = 36;
    let seeds = seeds();
    let mut rng = Rng(0x15_15_15_15);
    let dir = tempdir();
    let runnable = dir.join("runnable");
    std::fs::create_dir_all(&runnable).unwrap();
    let mut ran = 0;
    for i in 0..COUNT {
        let base = &seeds[rng.below(seeds.len())];
        let text = if rng.below(5) == 0 {
            // Now and then a playbook made only of splices.
            (0..1 + rng.below(6))
                .map(|_| SPLICES[rng.below(SPLICES.len())])
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            mutate(&mut rng, base)
        };
        let file = dir.join(format!("m{i}.rhai"));
        std::fs::write(&file, &text).unwrap();
        let checked = playbook_within(&["check", file.to_str().unwrap()], Duration::from_secs(30));
        assert!(
            matches!(checked.code, Some(0 | 2)),
            "check of mutant {i} ended with {:?}:\n{text}\n{}",
            checked.code,
            checked.text
        );
        if checked.code == Some(0) {
            std::fs::write(runnable.join(format!("m{i}.rhai")), &text).unwrap();
            ran += 1;
        }
    }
    assert!(ran > 0, "some mutants pass the checker and are run");
    let out = playbook_within(
        &[
            "run",
            "--cluster",
            "sim",
            "--timeout",
            "30s",
            "--var",
            "exit=pass",
            "--var",
            "case=fixed-8",
            runnable.to_str().unwrap(),
        ],
        Duration::from_secs(400),
    );
    assert!(
        matches!(out.code, Some(0 | 1 | 3 | 4)),
        "the runner ended with {:?} (a signal or abort is None):\n{}",
        out.code,
        out.text
    );
    assert!(!out.text.contains("root:"), "{}", out.text);
}
