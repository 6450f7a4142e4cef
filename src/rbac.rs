//! Least privilege: the permissions playbooks need (`playbook rbac` prints them as a
//! ServiceAccount, Role/ClusterRole and bindings), and a 403 turned into the permission that
//! is missing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use rhai::{AST, ASTNode, Engine, Expr, Stmt};
use serde_json::{Value, json};

use crate::engine::{self, EngineConfig, Resolver, Stdlib};
use crate::outcome::Verdict;

/// One permission: API group, resource (with `/subresource`), verb.
type Perm = (String, String, String);

/// Where a permission applies: a namespace, or every namespace (a ClusterRole).
type Scope = Option<String>;

const READ: &[&str] = &["get", "list", "watch"];
/// What a fault needs on its own kind: create it, watch it, pause/resume it, remove it.
const FAULT: &[&str] = &["create", "get", "list", "watch", "patch", "delete"];

/// (API group, resource, verbs) a host function needs.
type Need = (&'static str, &'static str, &'static [&'static str]);

/// A host function's needs, and which argument names the namespace (`None`: cluster-wide).
fn needs(path: &str, args: usize) -> Option<(Vec<Need>, Option<usize>)> {
    let core = |r, v| ("", r, v);
    Some(match path {
        "cluster::pods" => (vec![core("pods", READ)], Some(0)),
        "cluster::inference_service" => (
            vec![("serving.kserve.io", "inferenceservices", READ)],
            Some(0),
        ),
        "cluster::hpa" => (
            vec![("autoscaling", "horizontalpodautoscalers", READ)],
            Some(0),
        ),
        "cluster::workflows" => (vec![("argoproj.io", "workflows", READ)], Some(0)),
        "cluster::events" => (vec![core("events", &["list"])], Some(0)),
        "cluster::proxy_get" => (vec![core("services/proxy", &["get"])], Some(0)),
        "cluster::namespaces" => (vec![core("namespaces", &["list"])], None),
        "metrics::probe" if args == 5 => (vec![core("services/proxy", &["create"])], Some(0)),
        "metrics::probe" => (vec![core("services/proxy", &["get"])], Some(0)),
        "metrics::pod_usage" => (vec![("metrics.k8s.io", "pods", &["list"])], Some(0)),
        "metrics::golden" => (vec![core("services/proxy", &["get", "create"])], Some(0)),
        "metrics::time_to_serving" => (
            vec![
                core("services/proxy", &["get", "create"]),
                core("endpoints", READ),
                core("pods", READ),
            ],
            Some(0),
        ),
        "metrics::scrape" | "metrics::scraped" => (vec![core("services/proxy", &["get"])], Some(0)),
        "cluster::nodes" => (vec![core("nodes", &["list"])], None),
        "cluster::cordon" | "cluster::uncordon" => {
            (vec![core("nodes", &["get", "list", "patch"])], None)
        }
        // kubectl drain's needs: the node, its pods in every namespace, their evictions.
        "cluster::drain" => (
            vec![
                core("nodes", &["get", "list", "patch"]),
                core("pods", &["get", "list"]),
                core("pods/eviction", &["create"]),
            ],
            None,
        ),
        "cluster::delete_pod" => (vec![core("pods", &["delete"])], Some(0)),
        _ => return None,
    })
}

/// The (group, resource) of a kind as kubectl names it, for the kinds playbooks use.
fn known_kind(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "po" | "pod" | "pods" => ("", "pods"),
        "svc" | "service" | "services" => ("", "services"),
        "cm" | "configmap" | "configmaps" => ("", "configmaps"),
        "ns" | "namespace" | "namespaces" => ("", "namespaces"),
        "no" | "node" | "nodes" => ("", "nodes"),
        "ev" | "event" | "events" => ("", "events"),
        "ep" | "endpoints" => ("", "endpoints"),
        "deploy" | "deployment" | "deployments" => ("apps", "deployments"),
        "sts" | "statefulset" | "statefulsets" => ("apps", "statefulsets"),
        "rs" | "replicaset" | "replicasets" => ("apps", "replicasets"),
        "hpa" | "horizontalpodautoscaler" | "horizontalpodautoscalers" => {
            ("autoscaling", "horizontalpodautoscalers")
        }
        "isvc" | "inferenceservice" | "inferenceservices" => {
            ("serving.kserve.io", "inferenceservices")
        }
        "wf" | "workflow" | "workflows" => ("argoproj.io", "workflows"),
        "pdb" | "poddisruptionbudget" | "poddisruptionbudgets" => {
            ("policy", "poddisruptionbudgets")
        }
        "job" | "jobs" => ("batch", "jobs"),
        _ => return None,
    })
}

/// The Chaos Mesh resource (plural) of a fault function or a manifest kind.
fn chaos_resource(fault_or_kind: &str) -> Option<String> {
    let r = match fault_or_kind {
        "pod_kill" | "pod_failure" | "container_kill" => "podchaos",
        "network_delay" | "network_loss" | "network_partition" => "networkchaos",
        "cpu_stress" | "memory_stress" => "stresschaos",
        "apply" | "apply_with" => return None,
        k if k.ends_with("Chaos") => return Some(k.to_ascii_lowercase()),
        "Schedule" => "schedules",
        "Workflow" => "workflows",
        "StatusCheck" => "statuschecks",
        _ => return None,
    };
    Some(r.into())
}

/// What `playbook rbac` found, and the options it was given.
pub struct Needs {
    perms: BTreeMap<Scope, BTreeSet<Perm>>,
    /// Why a rule is wider than it could be (a namespace or kind not known statically).
    pub notes: BTreeSet<String>,
    /// The namespaces whose pods faults target.
    pub targets: BTreeSet<String>,
    vars: BTreeMap<String, String>,
    /// The namespace chaos objects go to when a playbook does not say (the kubeconfig's).
    default_namespace: String,
}

/// A file's AST (its zero-argument functions are evaluated, with `param` answering from
/// `--var` or its default) and its constant top-level `let`s.
#[derive(Clone)]
struct Consts {
    ast: AST,
    vars: HashMap<String, Expr>,
    aliases: HashMap<String, String>,
}

/// A call found in a body: the namespace path (`cluster`, a module alias, or none), the
/// function's name, its arguments; or a method call (`x.f(...)`, args unknown).
struct Call {
    ns: Vec<String>,
    name: String,
    args: Vec<Expr>,
    method: bool,
}

/// How deep script functions are followed with their arguments; deeper calls (a recursion)
/// are walked once with every parameter unknown.
const MAX_DEPTH: usize = 8;

struct Walker<'a> {
    engine: &'a Engine,
    resolver: Resolver,
    files: HashMap<String, Consts>,
    needs: Needs,
    /// The parameters of the script function being walked, with their values where the call
    /// site made them known (`None`: the file's top level or a closure, whose variables are
    /// the file's constants). Rhai functions see only their parameters.
    frame: Option<HashMap<String, Option<Value>>>,
    /// Script functions already walked, with the arguments they were walked with.
    walked: BTreeSet<String>,
    /// Script functions walked at least once: (file, name).
    reached: BTreeSet<(String, String)>,
    depth: usize,
}

/// The part of `ast` to walk: its statements (if `statements`) and the functions `keep`
/// accepts by name and arity. (`AST::clone_functions_only_filtered` does not filter into an
/// empty module in rhai 1.27, so the part is built function by function.)
fn part_of(ast: &AST, statements: bool, keep: impl Fn(&str, usize) -> bool) -> AST {
    let mut functions = rhai::Module::new();
    for f in ast.iter_fn_def() {
        if keep(&f.name, f.params.len()) {
            functions.set_script_fn(f.clone());
        }
    }
    let stmts = if statements {
        ast.statements().to_vec()
    } else {
        Vec::new()
    };
    AST::new(stmts, functions)
}

/// A walk over some nodes of an AST.
type Walk<'w> = &'w mut dyn FnMut(&[ASTNode]) -> bool;

/// Every call `walk` meets.
fn calls_in(walk: impl FnOnce(Walk<'_>)) -> Vec<Call> {
    let mut calls = Vec::new();
    walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(f, _)) | ASTNode::Stmt(Stmt::FnCall(f, _))) => {
                calls.push(Call {
                    ns: f
                        .namespace
                        .path
                        .iter()
                        .map(|i| i.name.to_string())
                        .collect(),
                    name: f.name.to_string(),
                    args: f.args.to_vec(),
                    method: false,
                });
            }
            Some(ASTNode::Expr(Expr::MethodCall(f, _))) => calls.push(Call {
                ns: Vec::new(),
                name: f.name.to_string(),
                args: Vec::new(),
                method: true,
            }),
            _ => {}
        }
        true
    });
    calls
}

/// The names `ast` mentions as strings or function pointers (`Fn("name")`, `call("name")`):
/// functions that may be called dynamically.
fn names_mentioned(ast: &AST, out: &mut BTreeSet<String>) {
    ast.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Expr(Expr::StringConstant(s, _))) => {
                out.insert(s.to_string());
            }
            Some(ASTNode::Expr(Expr::DynamicConstant(d, _))) => {
                if let Some(f) = d.read_lock::<rhai::FnPtr>() {
                    out.insert(f.fn_name().to_string());
                }
            }
            _ => {}
        }
        true
    });
}

impl Walker<'_> {
    /// Loads `name` (and its imports), collecting its constants and its host calls.
    fn file(&mut self, name: &str, ast: &AST) {
        if self.files.contains_key(name) {
            return;
        }
        let mut c = Consts {
            ast: ast.clone(),
            vars: HashMap::new(),
            aliases: HashMap::new(),
        };
        let mut lets: HashMap<String, usize> = HashMap::new();
        for stmt in ast.statements() {
            if let Stmt::Var(x, _, _) = stmt {
                *lets.entry(x.0.name.to_string()).or_default() += 1;
                c.vars.insert(x.0.name.to_string(), x.1.clone());
            }
        }
        // A name bound twice is not a constant.
        c.vars.retain(|k, _| lets.get(k) == Some(&1));
        let mut imports = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            if let Some(ASTNode::Stmt(Stmt::Import(x, pos))) = path.last() {
                if let Expr::StringConstant(module, _) = &x.0 {
                    imports.push((module.to_string(), x.1.name.to_string(), *pos));
                }
            }
            true
        });
        self.files.insert(name.to_string(), c);
        for (module, alias, pos) in imports {
            if let Ok((file, mast)) = self.resolver.compile(self.engine, Some(name), &module, pos) {
                self.file(&file, &mast);
                if let Some(c) = self.files.get_mut(name) {
                    c.aliases.insert(alias, file);
                }
            }
        }
        // The top level and the closures (anonymous functions, whose variables are the file's
        // constants); named functions are walked where they are called, with their arguments.
        let top = part_of(ast, true, |f, _| f.starts_with("anon$"));
        self.visit_all(
            name,
            calls_in(|walk| {
                top.walk(walk);
            }),
        );
    }

    /// Visits the calls of one body of `file`.
    fn visit_all(&mut self, file: &str, calls: Vec<Call>) {
        for c in calls {
            self.visit(file, c);
        }
    }

    /// A host call is granted; a call of a script function (this file's or an imported
    /// module's) walks its body with the parameters bound to the arguments known here.
    fn visit(&mut self, file: &str, c: Call) {
        if let [host] = c.ns.as_slice()
            && ["cluster", "chaos", "metrics"].contains(&host.as_str())
        {
            self.call(file, &format!("{host}::{}", c.name), &c.args);
            return;
        }
        let target = match c.ns.as_slice() {
            [] => file.to_string(),
            [alias] => match self.files.get(file).and_then(|f| f.aliases.get(alias)) {
                Some(t) => t.clone(),
                None => return,
            },
            _ => return,
        };
        let Some(ast) = self.files.get(&target).map(|f| f.ast.clone()) else {
            return;
        };
        for f in ast.iter_functions() {
            if f.name != c.name || (!c.method && f.params.len() != c.args.len()) {
                continue;
            }
            let params: Vec<String> = f.params.iter().map(|p| p.to_string()).collect();
            let known = !c.method && self.depth < MAX_DEPTH;
            let values: Vec<Option<Value>> = params
                .iter()
                .enumerate()
                .map(|(i, _)| {
                    known
                        .then(|| c.args.get(i).and_then(|a| self.value(file, a, 0)))
                        .flatten()
                })
                .collect();
            self.walk_function(&target, &ast, &c.name, params, values);
        }
    }

    /// Walks the body of `target`'s function `name` (of `params.len()` parameters) once per
    /// distinct set of argument values.
    fn walk_function(
        &mut self,
        target: &str,
        ast: &AST,
        name: &str,
        params: Vec<String>,
        values: Vec<Option<Value>>,
    ) {
        let key = format!("{target}::{name}/{}{}", params.len(), json!(values));
        if !self.walked.insert(key) {
            return;
        }
        self.reached.insert((target.to_string(), name.to_string()));
        let arity = params.len();
        let body = part_of(ast, false, |f, n| f == name && n == arity);
        let frame = params.into_iter().zip(values).collect();
        let saved = self.frame.replace(frame);
        self.depth += 1;
        self.visit_all(
            target,
            calls_in(|walk| {
                body.walk(walk);
            }),
        );
        self.depth -= 1;
        self.frame = saved;
    }

    /// Named functions no call reached statically but whose names appear as strings or
    /// function pointers (called dynamically): walked with every parameter unknown.
    fn dynamic_calls(&mut self) {
        let mut mentioned = BTreeSet::new();
        for c in self.files.values() {
            names_mentioned(&c.ast, &mut mentioned);
        }
        let files: Vec<(String, AST)> = self
            .files
            .iter()
            .map(|(n, c)| (n.clone(), c.ast.clone()))
            .collect();
        for (file, ast) in files {
            for f in ast.iter_functions() {
                let reached = self.reached.contains(&(file.clone(), f.name.to_string()));
                if reached || f.name.starts_with("anon$") || !mentioned.contains(f.name) {
                    continue;
                }
                let params: Vec<String> = f.params.iter().map(|p| p.to_string()).collect();
                let values = vec![None; params.len()];
                self.walk_function(&file, &ast, f.name, params, values);
            }
        }
    }

    /// The constant value of `e` in `file`, if it has one.
    fn value(&self, file: &str, e: &Expr, depth: usize) -> Option<Value> {
        if depth > 16 {
            return None;
        }
        let c = self.files.get(file)?;
        match e {
            Expr::StringConstant(s, _) => Some(json!(s.as_str())),
            Expr::IntegerConstant(n, _) => Some(json!(n)),
            Expr::BoolConstant(b, _) => Some(json!(b)),
            Expr::InterpolatedString(parts, _) => {
                let mut out = String::new();
                for p in parts.iter() {
                    match self.value(file, p, depth + 1)? {
                        Value::String(s) => out += &s,
                        v => out += &v.to_string(),
                    }
                }
                Some(json!(out))
            }
            Expr::Array(items, _) => items
                .iter()
                .map(|i| self.value(file, i, depth + 1))
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
            Expr::Map(m, _) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m.0.iter() {
                    // A value not known statically is left out (the caller decides what that means).
                    if let Some(v) = self.value(file, v, depth + 1) {
                        out.insert(k.name.to_string(), v);
                    } else {
                        out.insert(k.name.to_string(), Value::Null);
                    }
                }
                Some(Value::Object(out))
            }
            Expr::Variable(x, _, _) if x.2.path.is_empty() => {
                if let Some(frame) = &self.frame {
                    return frame.get(x.1.as_str()).cloned().flatten();
                }
                let e = c.vars.get(x.1.as_str())?;
                self.value(file, e, depth + 1)
            }
            Expr::FnCall(f, _) => {
                let ns: Vec<&str> = f.namespace.path.iter().map(|i| i.name.as_str()).collect();
                if ns.is_empty() && f.name == "param" && !f.args.is_empty() {
                    let name = self.value(file, &f.args[0], depth + 1)?;
                    let name = name.as_str()?;
                    if let Some(v) = self.needs.vars.get(name) {
                        return Some(json!(v));
                    }
                    return f.args.get(1).and_then(|d| self.value(file, d, depth + 1));
                }
                if !f.args.is_empty() {
                    return None;
                }
                let target = match ns.as_slice() {
                    [] => file.to_string(),
                    [alias] => c.aliases.get(*alias)?.clone(),
                    _ => return None,
                };
                // Runs the function alone (not the file's statements): host functions refuse
                // without a session, so only what is computable from constants succeeds.
                let ast = &self.files.get(&target)?.ast;
                let options = rhai::CallFnOptions::new().eval_ast(false);
                let v: rhai::Dynamic = self
                    .engine
                    .call_fn_with_options(
                        options,
                        &mut rhai::Scope::new(),
                        ast,
                        f.name.as_str(),
                        (),
                    )
                    .ok()?;
                rhai::serde::from_dynamic(&v).ok()
            }
            _ => None,
        }
    }

    fn grant(&mut self, scope: Scope, group: &str, resource: &str, verbs: &[&str]) {
        self.needs.grant(scope, group, resource, verbs);
    }

    /// A namespace argument: known, or every namespace (with a note).
    fn scope(&mut self, file: &str, path: &str, arg: Option<&Expr>) -> Scope {
        let known = arg
            .and_then(|a| self.value(file, a, 0))
            .and_then(|v| v.as_str().map(str::to_string));
        if known.is_none() {
            self.needs.notes.insert(format!(
                "{file}: the namespace of a {path} call is not known statically: its rule is cluster-wide"
            ));
        }
        known
    }

    /// The kind of a constant `kind/name` argument.
    fn kind_arg(&self, file: &str, arg: Option<&Expr>) -> Option<String> {
        let arg = arg?;
        // `kind/${name}`: the kind is the literal before the slash, whatever the name.
        if let Expr::InterpolatedString(parts, _) = arg
            && let Some(Expr::StringConstant(head, _)) = parts.first()
            && let Some((kind, _)) = head.split_once('/')
        {
            return Some(kind.to_string());
        }
        let v = self.value(file, arg, 0)?;
        v.as_str()?.split_once('/').map(|(k, _)| k.to_string())
    }

    fn call(&mut self, file: &str, path: &str, args: &[Expr]) {
        if let Some((perms, ns_arg)) = needs(path, args.len()) {
            let scope = match ns_arg {
                Some(i) => self.scope(file, path, args.get(i)),
                None => None,
            };
            for (g, r, v) in perms {
                self.grant(scope.clone(), g, r, v);
            }
            return;
        }
        match path {
            "cluster::readiness" | "cluster::scale" | "cluster::rollout_restart" => {
                let scope = self.scope(file, path, args.first());
                let kind = self
                    .kind_arg(file, args.get(1))
                    .and_then(|k| known_kind(&k));
                let resources: Vec<&str> = match kind {
                    Some(("apps", r)) => vec![r],
                    _ => {
                        self.needs.notes.insert(format!(
                            "{file}: the workload of a {path} call is not known statically: deployments, statefulsets and replicasets"
                        ));
                        vec!["deployments", "statefulsets", "replicasets"]
                    }
                };
                for r in resources {
                    match path {
                        "cluster::readiness" => self.grant(scope.clone(), "apps", r, READ),
                        "cluster::scale" => {
                            self.grant(
                                scope.clone(),
                                "apps",
                                &format!("{r}/scale"),
                                &["get", "patch"],
                            );
                        }
                        _ => self.grant(scope.clone(), "apps", r, &["get", "patch"]),
                    }
                }
            }
            "cluster::get" | "cluster::exists" => {
                let scope = self.scope(file, path, args.first());
                let kind = self.kind_arg(file, args.get(1));
                match kind.as_deref().and_then(known_kind) {
                    Some((g, r)) => self.grant(scope, g, r, READ),
                    None => {
                        self.needs.notes.insert(format!(
                            "{file}: the kind of a {path} call is not one playbook knows statically ({}): read access to every kind",
                            kind.unwrap_or_else(|| "not a literal".into())
                        ));
                        self.grant(scope, "*", "*", READ);
                    }
                }
            }
            p if p.starts_with("chaos::") => {
                let f = &p["chaos::".len()..];
                let options = args.first().and_then(|a| self.value(file, a, 0));
                let resource = match f {
                    "apply" | "apply_with" => options
                        .as_ref()
                        .and_then(|o| o["kind"].as_str())
                        .and_then(chaos_resource),
                    _ => chaos_resource(f),
                };
                let Some(resource) = resource.or_else(|| {
                    (f == "apply" || f == "apply_with").then(|| {
                        self.needs.notes.insert(format!(
                            "{file}: a chaos::{f} manifest's kind is not known statically: every Chaos Mesh kind"
                        ));
                        "*".to_string()
                    })
                }) else {
                    return;
                };
                let spec = options.as_ref().map(|o| {
                    if f.starts_with("apply") {
                        o["spec"].clone()
                    } else {
                        o.clone()
                    }
                });
                // Where the object goes, as faults.rs decides: its `namespace`, else the first
                // namespace its selector names, else the kubeconfig's.
                let selected: Option<Vec<String>> = spec.as_ref().and_then(|s| {
                    let sel = s.get("selector")?;
                    if let Some(list) = sel.get("namespaces").and_then(Value::as_array) {
                        return list
                            .iter()
                            .map(|n| n.as_str().map(str::to_string))
                            .collect();
                    }
                    if let Some(pods) = sel.get("pods").and_then(Value::as_object) {
                        return Some(pods.keys().cloned().collect());
                    }
                    sel.is_object().then(Vec::new)
                });
                let named = options.as_ref().and_then(|o| {
                    o.pointer("/metadata/namespace")
                        .or(o.get("namespace"))
                        .cloned()
                });
                let ns: Scope = match (&named, &selected) {
                    (Some(Value::String(n)), _) => Some(n.clone()),
                    (Some(_), _) => None,
                    (None, Some(list)) => Some(
                        list.first()
                            .cloned()
                            .unwrap_or_else(|| self.needs.default_namespace.clone()),
                    ),
                    (None, None) => None,
                };
                if ns.is_none() {
                    self.needs.notes.insert(format!(
                        "{file}: where a chaos::{f} object goes is not known statically: its rule is cluster-wide"
                    ));
                }
                self.grant(ns.clone(), "chaos-mesh.org", &resource, FAULT);
                // The run's Kubernetes Events go where the chaos object is (session/events.rs:
                // created, and patched when one repeats as a series).
                self.grant(ns.clone(), "events.k8s.io", "events", &["create", "patch"]);
                // The selection preview lists the pods of the selector's namespaces; an
                // Event's related workload is a selected pod's ReplicaSet's Deployment.
                match (&selected, &ns) {
                    (Some(list), _) if !list.is_empty() => {
                        for n in list {
                            self.needs.targets.insert(n.clone());
                            self.grant(Some(n.clone()), "", "pods", READ);
                            self.grant(Some(n.clone()), "apps", "replicasets", &["get"]);
                        }
                    }
                    (Some(_), Some(n)) => {
                        self.needs.targets.insert(n.clone());
                        self.grant(Some(n.clone()), "", "pods", READ);
                        self.grant(Some(n.clone()), "apps", "replicasets", &["get"]);
                    }
                    _ => {
                        self.needs.notes.insert(format!(
                            "{file}: the target namespaces of a chaos::{f} call are not known statically: pods are readable cluster-wide"
                        ));
                        self.grant(None, "", "pods", READ);
                        self.grant(None, "apps", "replicasets", &["get"]);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What the playbooks at `paths` need, found statically from their ASTs and those of the
/// modules they import; `--var` values stand in for `param(...)` defaults.
pub fn needs_of(
    config: &EngineConfig,
    paths: &[PathBuf],
    vars: BTreeMap<String, String>,
    default_namespace: &str,
) -> Result<Needs, String> {
    let mut engine = engine::build(config, None);
    // `param` answers from --var, else its default, so names computed from parameters are known.
    let given = vars.clone();
    engine.register_fn("param", move |name: &str, default: &str| {
        given
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    });
    // What `playbook preflight` reads to check the installation (read-only).
    let chaos_ns = vars
        .get("chaos_namespace")
        .cloned()
        .unwrap_or_else(|| "chaos-testing".into());
    let mut w = Walker {
        engine: &engine,
        resolver: Resolver::new(config.stdlib.clone(), config.sources.clone()),
        files: HashMap::new(),
        needs: Needs {
            perms: BTreeMap::new(),
            notes: BTreeSet::new(),
            targets: BTreeSet::new(),
            vars,
            default_namespace: default_namespace.to_string(),
        },
        frame: None,
        walked: BTreeSet::new(),
        reached: BTreeSet::new(),
        depth: 0,
    };
    w.grant(None, "", "namespaces", &["get"]);
    w.grant(
        None,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get"],
    );
    w.grant(Some(chaos_ns.clone()), "apps", "deployments", &["list"]);
    w.grant(Some(chaos_ns), "", "pods", &["list"]);
    // One run at a time (the Lease, taken, renewed and given back) and the kill switch (the
    // freeze mark, read and watched), beside Chaos Mesh (see `coord`).
    let coord_ns = Some(crate::coord::NAMESPACE.to_string());
    w.grant(
        coord_ns.clone(),
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    );
    w.grant(coord_ns, "", "configmaps", READ);
    for path in paths {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        let ast = engine::compile(&engine, &config.sources, &name, &text)
            .map_err(|d| d.render(&config.sources))?;
        w.file(&name, &ast);
    }
    w.dynamic_calls();
    Ok(w.needs)
}

impl Needs {
    /// The rules of one scope, grouped as Kubernetes writes them (one rule per group and set
    /// of verbs).
    fn rules(perms: &BTreeSet<Perm>) -> Vec<Value> {
        let mut by: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
        for (g, r, v) in perms {
            by.entry((g.clone(), r.clone()))
                .or_default()
                .insert(v.clone());
        }
        let mut merged: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((g, r), verbs) in by {
            merged
                .entry((g, verbs.into_iter().collect()))
                .or_default()
                .push(r);
        }
        merged
            .into_iter()
            .map(|((g, verbs), resources)| {
                json!({ "apiGroups": [g], "resources": resources, "verbs": verbs })
            })
            .collect()
    }

    /// Adds a permission in `scope` (a namespace, or `None` for cluster-wide) that the
    /// playbooks do not call for but what runs them needs (`playbook deploy`).
    pub fn grant(&mut self, scope: Scope, group: &str, resource: &str, verbs: &[&str]) {
        let set = self.perms.entry(scope).or_default();
        for v in verbs {
            set.insert((group.to_string(), resource.to_string(), v.to_string()));
        }
    }

    /// Where faults go: the scopes holding a Chaos Mesh permission.
    pub fn fault_scopes(&self) -> BTreeSet<Scope> {
        self.perms
            .iter()
            .filter(|(_, ps)| ps.iter().any(|(g, _, _)| g == "chaos-mesh.org"))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// The permissions in one scope (namespace, or `None` for cluster-wide), as
    /// (group, resource, verb).
    pub fn permissions(&self) -> impl Iterator<Item = (&Scope, &Perm)> {
        self.perms
            .iter()
            .flat_map(|(s, ps)| ps.iter().map(move |p| (s, p)))
    }

    /// The objects to `kubectl apply`: a ServiceAccount, a Role and RoleBinding per namespace,
    /// a ClusterRole and ClusterRoleBinding for cluster-wide needs.
    pub fn manifests(&self, account: &str, account_ns: &str) -> Vec<Value> {
        let subject =
            json!([{ "kind": "ServiceAccount", "name": account, "namespace": account_ns }]);
        let labels = json!({ "app.kubernetes.io/managed-by": "playbook" });
        let mut out = vec![json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": { "name": account, "namespace": account_ns, "labels": labels },
        })];
        for (scope, perms) in &self.perms {
            let rules = Self::rules(perms);
            match scope {
                Some(ns) => {
                    out.push(json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                        "metadata": { "name": account, "namespace": ns, "labels": labels },
                        "rules": rules,
                    }));
                    out.push(json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                        "metadata": { "name": account, "namespace": ns, "labels": labels },
                        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account },
                        "subjects": subject,
                    }));
                }
                None => {
                    out.push(json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                        "metadata": { "name": account, "labels": labels },
                        "rules": rules,
                    }));
                    out.push(json!({
                        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                        "metadata": { "name": account, "labels": labels },
                        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": account },
                        "subjects": subject,
                    }));
                }
            }
        }
        out
    }
}

/// What the playbooks named on a command line need; a usage error is said here.
pub fn needs_of_args(
    paths: &[PathBuf],
    stdlib: &crate::cli::StdlibArgs,
    vars: &[(String, String)],
    default_namespace: &str,
) -> Result<(Vec<PathBuf>, Needs), Verdict> {
    let paths = crate::runner::find_playbooks(paths).map_err(|e| {
        eprintln!("error: {e}");
        Verdict::Invalid
    })?;
    let config = EngineConfig {
        stdlib: Stdlib::from_option(stdlib.stdlib.clone()),
        ..Default::default()
    };
    let vars = vars.iter().cloned().collect();
    let needs = needs_of(&config, &paths, vars, default_namespace).map_err(|e| {
        eprint!("{e}");
        Verdict::Invalid
    })?;
    Ok((paths, needs))
}

/// `playbook rbac PLAYBOOKS...`: prints the YAML.
pub fn rbac(args: &crate::cli::RbacArgs) -> Verdict {
    let (paths, needs) = match needs_of_args(&args.paths, &args.stdlib, &args.vars, &args.namespace)
    {
        Ok(x) => x,
        Err(v) => return v,
    };
    let mut text = format!(
        "# The permissions {} playbook(s) need, found from what they call (`playbook rbac`).\n\
         # Apply with: kubectl apply -f -\n",
        paths.len()
    );
    for n in &needs.notes {
        text += &format!("# wider than needed: {n}\n");
    }
    for m in needs.manifests(&args.account, &args.account_namespace) {
        text += "---\n";
        text += &crate::host::chaos::yaml(&m);
    }
    crate::session::say(text.trim_end());
    Verdict::Passed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The needs of `playbook` with `module` importable as `"lib"` beside it.
    fn needs(playbook: &str, module: &str) -> Needs {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("playbook-rbac-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("lib.rhai"), module).expect("module");
        let path = dir.join("p.rhai");
        std::fs::write(&path, playbook).expect("playbook");
        let config = EngineConfig::default();
        needs_of(&config, &[path], BTreeMap::new(), "default").expect("analysed")
    }

    /// Where `resource` may be listed, apart from what preflight always reads.
    fn scopes(n: &Needs, resource: &str) -> Vec<Scope> {
        n.permissions()
            .filter(|(s, (_, r, v))| {
                r == resource && v == "list" && s.as_deref() != Some("chaos-testing")
            })
            .map(|(s, _)| s.clone())
            .collect()
    }

    const LIB: &str = r#"
        fn pods_of(namespace) { cluster::pods(namespace, "app=x") }
        fn twice(namespace) { pods_of(namespace) + pods_of(namespace) }
        fn unused(namespace) { cluster::pods(namespace, "app=y") }
    "#;

    #[test]
    fn a_module_function_is_walked_with_the_arguments_of_each_call() {
        let n = needs(
            r#"import "lib" as lib;
               let ns = "serving";
               lib::twice(ns);
               expect("x", "1m", || lib::pods_of("training").len() > 0);"#,
            LIB,
        );
        assert_eq!(
            scopes(&n, "pods"),
            vec![Some("serving".into()), Some("training".into())],
            "{:?}",
            n.notes
        );
        assert!(n.notes.is_empty(), "{:?}", n.notes);
    }

    #[test]
    fn an_argument_not_known_statically_makes_the_rule_cluster_wide_and_says_why() {
        let n = needs(
            r#"import "lib" as lib;
               let ns = cluster::namespaces()[0];
               lib::pods_of(ns);"#,
            LIB,
        );
        assert_eq!(scopes(&n, "pods"), vec![None]);
        assert!(
            n.notes.iter().any(|t| t.contains("lib.rhai")
                && t.contains("namespace of a cluster::pods call is not known statically")),
            "{:?}",
            n.notes
        );
    }

    #[test]
    fn a_parameter_is_never_read_from_a_top_level_let_of_the_same_name() {
        // Rhai functions see only their parameters: `namespace` inside `pods_of` is the
        // argument (unknown here), not the playbook's `namespace`.
        let n = needs(
            r#"import "lib" as lib;
               let namespace = "serving";
               fn mine(namespace) { cluster::pods(namespace, "app=z") }
               mine(cluster::namespaces()[0]);"#,
            LIB,
        );
        assert_eq!(scopes(&n, "pods"), vec![None]);
    }

    #[test]
    fn a_function_called_by_name_at_run_time_is_granted_everywhere() {
        let n = needs(
            r#"import "lib" as lib;
               fn mine(namespace) { cluster::pods(namespace, "app=z") }
               call(Fn("mine"), "serving");"#,
            LIB,
        );
        assert_eq!(scopes(&n, "pods"), vec![None]);
        // Neither `lib::unused` nor any module function no call reaches is granted.
        let n = needs(r#"import "lib" as lib; log("nothing");"#, LIB);
        assert_eq!(scopes(&n, "pods"), Vec::<Scope>::new());
    }
}
