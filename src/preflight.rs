//! `playbook preflight [PLAYBOOKS]`: what would make a run fail or lie, found before anything
//! is injected — the API server reachable and its version; Chaos Mesh installed (its CRDs, a
//! 2.8.x controller that is running, a chaos-daemon running on every node that holds a target
//! pod: a taint that keeps the daemon off GPU nodes means faults there are never injected);
//! every permission the playbooks need, asked of the server with SelfSubjectAccessReview; the
//! target namespaces exist and are not protected; the cluster is not frozen. A table for
//! people, JSON for machines.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use crate::cli::PreflightArgs;
use crate::connection::{self, Target, TargetKind};
use crate::outcome::Verdict;
use crate::session::describe;

/// Namespaces no playbook may target (the same list the fault functions refuse).
const PROTECTED: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];
/// The Chaos Mesh kinds playbook creates.
const CHAOS_KINDS: &[&str] = &["podchaos", "networkchaos", "stresschaos"];

/// One check's result.
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Runs the command; must be called inside a tokio runtime context.
pub fn preflight(args: &PreflightArgs) -> Verdict {
    let choice = args.target.choice();
    if connection::choose(&choice) == TargetKind::Sim {
        eprintln!(
            "error: preflight checks a cluster: point --kubeconfig/--context at it (or at `playbook sim serve`)"
        );
        return Verdict::Invalid;
    }
    let needs = if args.paths.is_empty() {
        None
    } else {
        match crate::rbac::needs_of_args(&args.paths, &args.stdlib, &args.vars, "default") {
            Ok((_, n)) => Some(n),
            Err(v) => return v,
        }
    };
    let rt = crate::connection::Rt::current();
    let target = match rt.block_on(connection::connect(&choice)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Verdict::Error;
        }
    };
    let checks = run_checks(&target, &rt, args, needs.as_ref());
    let failed = checks.iter().filter(|c| !c.ok).count();
    if args.json {
        let v: Vec<Value> = checks
            .iter()
            .map(|c| json!({"check": c.name, "ok": c.ok, "detail": c.detail}))
            .collect();
        let out = json!({"target": target.description, "ok": failed == 0, "checks": v});
        crate::session::say(&serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        crate::session::say(&target.description);
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &checks {
            crate::session::say(&format!(
                "{} {:width$}  {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            ));
        }
        crate::session::say(&if failed == 0 {
            "preflight: ready".to_string()
        } else {
            format!(
                "preflight: {failed} problem(s): a run now would fail or report what did not happen"
            )
        });
    }
    if failed == 0 {
        Verdict::Passed
    } else {
        Verdict::Failed
    }
}

fn run_checks(
    target: &Target,
    rt: &crate::connection::Rt,
    args: &PreflightArgs,
    needs: Option<&crate::rbac::Needs>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let client = &target.client;
    match rt.block_on(client.apiserver_version()) {
        Ok(v) => out.push(check(
            "API server",
            true,
            format!("reachable, {}", v.git_version),
        )),
        Err(e) => {
            out.push(check(
                "API server",
                false,
                format!("unreachable: {}", describe(&e)),
            ));
            return out;
        }
    }
    // The kill switch and the lock (coord): a frozen cluster refuses every run; a held lease
    // makes a run wait (--lock-wait).
    match rt.block_on(crate::coord::read_freeze(target)) {
        Ok(None) => out.push(check("not frozen", true, "no freeze mark")),
        Ok(Some(f)) => out.push(check(
            "not frozen",
            false,
            format!("{f}: a run would be refused"),
        )),
        Err(e) => out.push(check(
            "not frozen",
            false,
            format!("cannot read the freeze mark: {}", describe(&e)),
        )),
    }
    // Chaos Mesh: CRDs, controller, version.
    // Each kind's CRD object, and the kind served (discovery).
    let mut crds_ok = true;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for kind in CHAOS_KINDS {
        let q = format!("{kind}.chaos-mesh.org");
        let problem = match rt.block_on(crds.get_opt(&q)) {
            Ok(Some(_)) => rt.block_on(target.kind(&q)).err().map(|e| e.to_string()),
            Ok(None) => Some(format!(
                "CustomResourceDefinition {q} not found: Chaos Mesh is not installed"
            )),
            Err(e) => Some(describe(&e)),
        };
        if let Some(p) = problem {
            crds_ok = false;
            out.push(check(format!("Chaos Mesh CRD {kind}"), false, p));
        }
    }
    if crds_ok {
        out.push(check("Chaos Mesh CRDs", true, CHAOS_KINDS.join(", ")));
    }
    let ns = &args.chaos_namespace;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let controller = rt.block_on(
        deploys
            .list(&ListParams::default().labels("app.kubernetes.io/component=controller-manager")),
    );
    match controller {
        Ok(list) if !list.items.is_empty() => {
            let d = serde_json::to_value(&list.items[0]).unwrap_or_default();
            let text = |p: &str| {
                d.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let image = text("/spec/template/spec/containers/0/image");
            let version = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            out.push(check(
                "Chaos Mesh version",
                version.starts_with("v2.8."),
                format!("{image} (2.8.x expected)"),
            ));
            let ready = d
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            out.push(check(
                "Chaos Mesh controller",
                ready > 0,
                format!(
                    "{ready} ready replica(s) of {ns}/{}",
                    text("/metadata/name")
                ),
            ));
        }
        Ok(_) => out.push(check(
            "Chaos Mesh controller",
            false,
            format!("no controller-manager Deployment in {ns} (--chaos-namespace)"),
        )),
        Err(e) => out.push(check("Chaos Mesh controller", false, describe(&e))),
    }
    let Some(needs) = needs else {
        return out;
    };
    // Targets: namespaces exist and are not protected; a daemon on every node with a target pod.
    let targets: BTreeSet<String> = needs.targets.iter().cloned().collect();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for t in &targets {
        if PROTECTED.contains(&t.as_str()) || t == ns {
            out.push(check(
                format!("target namespace {t}"),
                false,
                "protected: faults there are refused (allow_protected_namespaces)",
            ));
            continue;
        }
        match rt.block_on(namespaces.get_opt(t)) {
            Ok(Some(_)) => out.push(check(format!("target namespace {t}"), true, "exists")),
            Ok(None) => out.push(check(
                format!("target namespace {t}"),
                false,
                "does not exist",
            )),
            Err(e) => out.push(check(format!("target namespace {t}"), false, describe(&e))),
        }
    }
    let daemons: Api<Pod> = Api::namespaced(client.clone(), ns);
    let daemon_nodes: BTreeSet<String> = match rt.block_on(
        daemons.list(&ListParams::default().labels("app.kubernetes.io/component=chaos-daemon")),
    ) {
        Ok(l) => l
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| {
                serde_json::to_value(p)
                    .ok()?
                    .pointer("/spec/nodeName")?
                    .as_str()
                    .map(str::to_string)
            })
            .collect(),
        Err(e) => {
            out.push(check("chaos-daemon", false, describe(&e)));
            BTreeSet::new()
        }
    };
    let mut target_nodes: BTreeSet<String> = BTreeSet::new();
    for t in &targets {
        let pods: Api<Pod> = Api::namespaced(client.clone(), t);
        if let Ok(l) = rt.block_on(pods.list(&ListParams::default())) {
            target_nodes.extend(l.items.iter().filter_map(|p| {
                serde_json::to_value(p)
                    .ok()?
                    .pointer("/spec/nodeName")?
                    .as_str()
                    .map(str::to_string)
            }));
        }
    }
    let missing: Vec<&String> = target_nodes.difference(&daemon_nodes).collect();
    out.push(check(
        "chaos-daemon on target nodes",
        missing.is_empty(),
        if missing.is_empty() {
            format!("running on all {} node(s) with target pods", target_nodes.len())
        } else {
            format!(
                "none running on {} (a taint keeping the DaemonSet off?): faults on pods there are never injected",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )
        },
    ));
    // Permissions, asked of the server.
    let reviews: Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> =
        Api::all(client.clone());
    let mut denied = Vec::new();
    let mut asked = 0;
    for (scope, (group, resource, verb)) in needs.permissions() {
        if group == "*" || resource == "*" {
            continue;
        }
        asked += 1;
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "namespace": scope.clone().unwrap_or_default(), "verb": verb, "group": group,
                "resource": resource, "subresource": sub,
            }},
        });
        let Ok(review) = serde_json::from_value(review) else {
            continue;
        };
        match rt.block_on(reviews.create(&PostParams::default(), &review)) {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => denied.push(format!(
                "{verb} {resource}{}{} in {}",
                if sub.is_empty() {
                    String::new()
                } else {
                    format!("/{sub}")
                },
                if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                },
                scope
                    .as_deref()
                    .map(|n| format!("namespace {n}"))
                    .unwrap_or("every namespace".into())
            )),
            Err(e) => denied.push(format!("cannot ask: {}", describe(&e))),
        }
    }
    out.push(check(
        "permissions",
        denied.is_empty(),
        if denied.is_empty() {
            format!("all {asked} granted (SelfSubjectAccessReview)")
        } else {
            format!(
                "missing: {} (`playbook rbac` prints what to grant)",
                denied.join("; ")
            )
        },
    ));
    out
}
