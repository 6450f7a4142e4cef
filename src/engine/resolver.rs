//! Finds `import "name" as x;`: the importing file's own folder first, then the standard library
//! (embedded in the binary, or a folder given by `--stdlib` / `PLAYBOOK_STDLIB`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rhai::{AST, Engine, EvalAltResult, Module, Position, Scope, Shared};

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

/// The module resolver every engine uses; compiled modules are cached per engine.
pub struct Resolver {
    stdlib: Stdlib,
    sources: Sources,
    cache: Mutex<HashMap<String, SharedModule>>,
}

impl Resolver {
    pub fn new(stdlib: Stdlib, sources: Sources) -> Self {
        Resolver {
            stdlib,
            sources,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Finds the module `path` imported from the file named `from`: its display name and text.
    pub fn find(&self, from: Option<&str>, path: &str) -> Option<(String, String)> {
        let file = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let beside = match from.map(Path::new).and_then(Path::parent) {
            Some(dir) => dir.join(&file),
            None => PathBuf::from(&file),
        };
        if let Ok(text) = std::fs::read_to_string(&beside) {
            return Some((beside.display().to_string(), text));
        }
        let stem = path.trim_end_matches(".rhai");
        match &self.stdlib {
            Stdlib::Embedded => EMBEDDED
                .iter()
                .find(|(n, _)| *n == stem)
                .map(|(n, s)| (format!("stdlib/{n}.rhai"), s.to_string())),
            Stdlib::Dir(dir) => {
                let p = dir.join(&file);
                std::fs::read_to_string(&p)
                    .ok()
                    .map(|t| (p.display().to_string(), t))
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
        let Some((name, text)) = self.find(from, path) else {
            return Err(Diagnostic::at(
                from.unwrap_or_default(),
                pos,
                format!(
                    "module \"{path}\" not found beside the playbook or in the standard library"
                ),
            ));
        };
        self.sources.add(&name, &text);
        let mut ast = engine
            .compile(&text)
            .map_err(|e| Diagnostic::from_parse(&name, &e))?;
        ast.set_source(name.as_str());
        Ok((name, ast))
    }
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let Some((name, text)) = self.find(source, path) else {
            return Err(EvalAltResult::ErrorModuleNotFound(path.to_string(), pos).into());
        };
        if let Some(m) = self.cache.lock().ok().and_then(|c| c.get(&name).cloned()) {
            return Ok(m);
        }
        self.sources.add(&name, &text);
        let in_module = |e: Box<EvalAltResult>| -> Box<EvalAltResult> {
            EvalAltResult::ErrorInModule(name.clone(), e, pos).into()
        };
        let mut ast = engine
            .compile(&text)
            .map_err(|e| in_module(EvalAltResult::ErrorParsing(*e.0, e.1).into()))?;
        ast.set_source(name.as_str());
        let module: SharedModule = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(in_module)?
            .into();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name, module.clone());
        }
        Ok(module)
    }
}
