//! Finds `import "name" as x;`: the importing file's own folder first, then the standard library
//! (embedded in the binary, or a folder given by `--stdlib` / `PLAYBOOK_STDLIB`). Imports stay
//! inside the playbook's folder tree (no absolute paths, no `..`, no link out of the folder),
//! read only regular files of bounded size, never a file already being imported (a cycle),
//! and evaluate inside the importer's limits (one operation budget, one call depth, one
//! module count per run).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use rhai::{AST, Engine, EvalAltResult, GlobalRuntimeState, Module, Position, Scope, Shared};

type SharedModule = Shared<Module>;

use super::diagnostic::{Diagnostic, Sources};

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// Where the standard library comes from.
#[derive(Debug, Clone, Default)]
pub enum Stdlib {
    /// The copy built into the binary.
    #[default]
    Embedded,
    /// A folder of `.rhai` files, for people editing the standard library.
    Dir(PathBuf),
}

impl Stdlib {
    /// `Dir` when a folder is given, else the embedded copy.
    pub fn from_option(dir: Option<PathBuf>) -> Self {
        dir.map_or(Stdlib::Embedded, Stdlib::Dir)
    }

    /// The names and sources of every module in this standard library.
    pub fn modules(&self) -> Vec<(String, String)> {
        match self {
            Stdlib::Embedded => EMBEDDED
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
            Stdlib::Dir(dir) => {
                let mut out: Vec<_> = std::fs::read_dir(dir)
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
                    .filter_map(|p| {
                        let name = p.file_stem()?.to_str()?.to_string();
                        Some((name, std::fs::read_to_string(&p).ok()?))
                    })
                    .collect();
                out.sort();
                out
            }
        }
    }
}

/// The largest module file read, in bytes.
pub const MODULE_SIZE: u64 = 1 << 20;
/// Imports nested inside imports (a module importing a module ...).
pub const IMPORT_DEPTH: usize = 8;

/// The module resolver every engine uses; compiled modules are cached per engine (one run).
pub struct Resolver {
    stdlib: Stdlib,
    sources: Sources,
    cache: Mutex<HashMap<String, SharedModule>>,
    /// The files being imported now, outermost first (the importing playbook at the bottom).
    loading: Mutex<Vec<String>>,
    /// Modules evaluated by this engine so far.
    evaluated: AtomicUsize,
}

/// Why an import cannot be loaded.
#[derive(Debug)]
enum Refused {
    NotFound,
    Bad(String),
}

impl Resolver {
    pub fn new(stdlib: Stdlib, sources: Sources) -> Self {
        Resolver {
            stdlib,
            sources,
            cache: Mutex::new(HashMap::new()),
            loading: Mutex::new(Vec::new()),
            evaluated: AtomicUsize::new(0),
        }
    }

    /// Finds the module `path` imported from the file named `from`: its display name and text.
    pub fn find(&self, from: Option<&str>, path: &str) -> Option<(String, String)> {
        self.locate(from, path).ok()
    }

    fn locate(&self, from: Option<&str>, path: &str) -> Result<(String, String), Refused> {
        check_name(path).map_err(Refused::Bad)?;
        let file = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let (dir, shown) = match from.map(Path::new).and_then(Path::parent) {
            Some(d) if !d.as_os_str().is_empty() => (d.to_path_buf(), d.join(&file)),
            _ => (PathBuf::from("."), PathBuf::from(&file)),
        };
        match read_inside(&dir, &file) {
            Err(Refused::NotFound) => {}
            Ok(text) => return Ok((shown.display().to_string(), text)),
            Err(e) => return Err(e),
        }
        let stem = path.trim_end_matches(".rhai");
        match &self.stdlib {
            Stdlib::Embedded => EMBEDDED
                .iter()
                .find(|(n, _)| *n == stem)
                .map(|(n, s)| (format!("stdlib/{n}.rhai"), s.to_string()))
                .ok_or(Refused::NotFound),
            Stdlib::Dir(dir) => {
                read_inside(dir, &file).map(|t| (dir.join(&file).display().to_string(), t))
            }
        }
    }

    fn refusal(from: Option<&str>, path: &str, why: Refused) -> String {
        match why {
            Refused::NotFound => format!(
                "module \"{path}\" not found beside the playbook or in the standard library"
            ),
            Refused::Bad(why) => {
                let _ = from;
                format!("module \"{path}\" refused: {why}")
            }
        }
    }

    /// Finds and compiles a module without running it (for `playbook check`).
    pub fn compile(
        &self,
        engine: &Engine,
        from: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<(String, AST), Diagnostic> {
        let (name, text) = self.locate(from, path).map_err(|why| {
            Diagnostic::at(
                from.unwrap_or_default(),
                pos,
                Self::refusal(from, path, why),
            )
        })?;
        self.sources.add(&name, &text);
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Diagnostic::from_parse(&name, &e))?;
        ast.set_source(name.as_str());
        Ok((name, ast))
    }

    /// Resolves `path` from `source`: cycle, depth and count checks, then the cache, then an
    /// evaluation by `eval` (inside the importer's runtime state when there is one).
    fn load(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
        eval: impl FnOnce(&AST) -> Result<Module, Box<EvalAltResult>>,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let (name, text) = self.locate(source, path).map_err(|why| match why {
            Refused::NotFound => EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into(),
            why => runtime(Self::refusal(source, path, why), pos),
        })?;
        let key = identity(&name);
        let pushed_root = {
            let mut loading = lock(&self.loading);
            let pushed_root = loading.is_empty() && source.is_some();
            if let Some(from) = source.filter(|_| pushed_root) {
                loading.push(identity(from));
            }
            if loading.contains(&key) {
                let mut chain: Vec<String> = loading.clone();
                chain.push(key.clone());
                let chain = chain
                    .iter()
                    .map(|k| k.rsplit('/').next().unwrap_or(k))
                    .collect::<Vec<_>>()
                    .join(" imports ");
                if pushed_root {
                    loading.clear();
                }
                return Err(runtime(
                    format!(
                        "import cycle: {chain} (a module may not import itself, directly or through others)"
                    ),
                    pos,
                ));
            }
            if let Some(m) = lock(&self.cache).get(&key).cloned() {
                if pushed_root {
                    loading.clear();
                }
                return Ok(m);
            }
            if loading.len() > IMPORT_DEPTH {
                if pushed_root {
                    loading.clear();
                }
                return Err(runtime(
                    format!("imports nested more than {IMPORT_DEPTH} deep"),
                    pos,
                ));
            }
            if self.evaluated.fetch_add(1, Ordering::Relaxed) >= super::limits::MODULES {
                if pushed_root {
                    loading.clear();
                }
                return Err(runtime(
                    format!(
                        "more than {} modules imported in one run",
                        super::limits::MODULES
                    ),
                    pos,
                ));
            }
            loading.push(key.clone());
            pushed_root
        };
        self.sources.add(&name, &text);
        let in_module = |e: Box<EvalAltResult>| -> Box<EvalAltResult> {
            EvalAltResult::ErrorInModule(name.clone(), e, pos).into()
        };
        let result = engine
            .compile(&text)
            .map_err(|e| in_module(EvalAltResult::ErrorParsing(*e.0, e.1).into()))
            .and_then(|mut ast| {
                ast.set_source(name.as_str());
                eval(&ast).map_err(in_module)
            });
        {
            let mut loading = lock(&self.loading);
            if let Some(at) = loading.iter().rposition(|k| *k == key) {
                loading.truncate(at);
            }
            if pushed_root {
                loading.clear();
            }
        }
        let module: SharedModule = result?.into();
        lock(&self.cache).insert(key, module.clone());
        Ok(module)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtime(message: String, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(message.into(), pos).into()
}

/// One name per file, however it was reached (`a.rhai`, `./a.rhai`, a link inside the tree).
fn identity(name: &str) -> String {
    std::fs::canonicalize(name)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| name.to_string())
}

/// An import names a file below the importer's folder: relative, no `..`, no odd characters.
fn check_name(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty() || path.len() > 255 || path.contains(['\0', '\\']) {
        return Err("a module name is a short relative path such as \"lib/retry\"".into());
    }
    if p.is_absolute() {
        return Err("absolute paths are not importable: put the module beside the playbook".into());
    }
    if p.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        return Err(
            "`..` is not importable: modules come from the playbook's own folder tree or the standard library".into(),
        );
    }
    Ok(())
}

/// Reads `file` below `dir` if it is a regular file inside `dir` (after following links) of
/// at most [`MODULE_SIZE`] bytes.
fn read_inside(dir: &Path, file: &str) -> Result<String, Refused> {
    let candidate = dir.join(file);
    if std::fs::symlink_metadata(&candidate).is_err() {
        return Err(Refused::NotFound);
    }
    let bad = |m: String| Refused::Bad(m);
    let root = std::fs::canonicalize(dir)
        .map_err(|e| bad(format!("cannot resolve folder {}: {e}", dir.display())))?;
    let real = std::fs::canonicalize(&candidate)
        .map_err(|e| bad(format!("cannot resolve {}: {e}", candidate.display())))?;
    if !real.starts_with(&root) {
        return Err(bad(format!(
            "{} leads outside the playbook's folder",
            candidate.display()
        )));
    }
    let meta = std::fs::metadata(&real).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(format!(
            "{} is not a regular file",
            candidate.display()
        )));
    }
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: a FIFO swapped in after the check above cannot block the open.
        open.custom_flags(0o4000);
    }
    let f = open
        .open(&real)
        .map_err(|e| bad(format!("cannot read {}: {e}", candidate.display())))?;
    let meta = f.metadata().map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad(format!(
            "{} is not a regular file",
            candidate.display()
        )));
    }
    if meta.len() > MODULE_SIZE {
        return Err(bad(format!(
            "{} is larger than {} KiB",
            candidate.display(),
            MODULE_SIZE >> 10
        )));
    }
    let mut text = String::new();
    f.take(MODULE_SIZE + 1)
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot read {}: {e}", candidate.display())))?;
    if text.len() as u64 > MODULE_SIZE {
        return Err(bad(format!(
            "{} is larger than {} KiB",
            candidate.display(),
            MODULE_SIZE >> 10
        )));
    }
    Ok(text)
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        self.load(engine, source, path, pos, |ast| {
            Module::eval_ast_as_new(Scope::new(), ast, engine)
        })
    }

    /// Evaluates the module in the importer's runtime state: its operation count, call depth
    /// and module count go on, so no import escapes the limits.
    fn resolve_raw(
        &self,
        engine: &Engine,
        global: &mut GlobalRuntimeState,
        _scope: &mut Scope,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let source = global.source().map(str::to_string);
        self.load(engine, source.as_deref(), path, pos, |ast| {
            Module::eval_ast_as_new_raw(engine, &mut Scope::new(), global, ast)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of modules, and an engine resolving from it with `ops` operations at most.
    fn setup(name: &str, files: &[(&str, &str)], ops: u64) -> (PathBuf, Engine) {
        let dir = std::env::temp_dir().join(format!("pb-resolver-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in files {
            std::fs::write(dir.join(f), text).unwrap();
        }
        let mut engine = Engine::new();
        engine
            .set_max_operations(ops)
            .set_module_resolver(Resolver::new(Stdlib::Embedded, Sources::default()));
        (dir, engine)
    }

    fn run(dir: &Path, engine: &Engine) -> Result<(), Box<EvalAltResult>> {
        let main = dir.join("main.rhai");
        let mut ast = engine
            .compile(std::fs::read_to_string(&main).unwrap())
            .unwrap();
        ast.set_source(main.display().to_string());
        engine.run_ast(&ast)
    }

    #[test]
    fn a_module_spends_the_importers_operation_budget() {
        let spin = "let n = 0; for i in 0..200 { n += i; }";
        let ops = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = ops.clone();
        let mut counting = Engine::new();
        counting.on_progress(move |n| {
            seen.fetch_max(n as usize, Ordering::Relaxed);
            None
        });
        counting.run(spin).unwrap();
        // Room for one spin (and the import), not for two.
        let budget = ops.load(Ordering::Relaxed) as u64 * 3 / 2;
        let (dir, engine) = setup(
            "ops",
            &[
                ("main.rhai", &format!("{spin}\nimport \"m\" as m;")),
                ("m.rhai", spin),
            ],
            budget,
        );
        let err = run(&dir, &engine).unwrap_err();
        assert!(
            matches!(err.unwrap_inner(), EvalAltResult::ErrorTooManyOperations(_)),
            "{err}"
        );
        std::fs::write(dir.join("main.rhai"), "import \"m\" as m;").unwrap();
        let (_, fresh) = setup("ops2", &[], budget);
        run(&dir, &fresh).unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn cycles_and_deep_nesting_are_refused() {
        let (dir, engine) = setup(
            "cycle",
            &[
                ("main.rhai", "import \"a\" as a;"),
                ("a.rhai", "import \"b\" as b;"),
                ("b.rhai", "import \"main\" as m;"),
            ],
            100_000,
        );
        let err = run(&dir, &engine).unwrap_err().to_string();
        assert!(
            err.contains("import cycle: main.rhai imports a.rhai imports b.rhai imports main.rhai"),
            "{err}"
        );
        let chain: Vec<(String, String)> = (0..12)
            .map(|i| (format!("d{i}.rhai"), format!("import \"d{}\" as x;", i + 1)))
            .chain([("d12.rhai".to_string(), String::new())])
            .collect();
        let mut files: Vec<(&str, &str)> = chain
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        files.push(("main.rhai", "import \"d0\" as d;"));
        let (dir2, engine) = setup("depth", &files, 100_000);
        let err = run(&dir2, &engine).unwrap_err().to_string();
        assert!(err.contains("imports nested more than 8 deep"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(dir2);
    }
}
