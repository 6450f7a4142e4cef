//! `playbook deploy`: what runs a folder of playbooks inside the cluster, as YAML for
//! `kubectl apply -f -` — a ServiceAccount with the least privilege `playbook rbac` finds
//! (plus what the run itself writes: its summary ConfigMap and its Events), a ConfigMap holding
//! the playbooks (and a standard library given with --stdlib), and a Job, or with --schedule a
//! CronJob that never runs twice at once. Creates nothing itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::outcome::Verdict;

/// The image's non-root user and group (deploy/Containerfile).
pub const IMAGE_USER: i64 = 65532;
/// Where the playbooks ConfigMap is mounted (the image's working directory).
pub const PLAYBOOKS_DIR: &str = "/playbooks";
/// Where a --stdlib ConfigMap is mounted (PLAYBOOK_STDLIB in the container).
pub const STDLIB_DIR: &str = "/stdlib";
/// The image's home: journals of created objects go below it (an emptyDir, since the root
/// file system is read-only).
pub const HOME_DIR: &str = "/home/playbook";
/// What the pod has, after its deadline's SIGTERM, to remove its faults before SIGKILL.
pub const TERMINATION_GRACE: Duration = Duration::from_secs(60);
/// A ConfigMap's data may total 1 MiB (pkg/apis/core/validation/validation.go
/// ValidateConfigMap, core.MaxSecretSize).
const CONFIGMAP_LIMIT: usize = 1 << 20;
/// How deep below a folder modules are collected.
const DEPTH: usize = 8;

/// What `playbook deploy` was asked for (the command line's own form is `cli::DeployArgs`).
pub struct Deploy {
    pub paths: Vec<PathBuf>,
    pub schedule: Option<String>,
    pub timeout: Duration,
    pub namespace: String,
    pub image: String,
    pub name: String,
    pub vars: Vec<(String, String)>,
    pub stdlib: Option<PathBuf>,
}

impl Deploy {
    /// The command line's arguments in this command's own form.
    pub fn from_args(args: &crate::cli::DeployArgs) -> Deploy {
        Deploy {
            paths: args.paths.clone(),
            schedule: args.schedule.clone(),
            timeout: args.timeout,
            namespace: args.namespace.clone(),
            image: args
                .image
                .clone()
                .unwrap_or_else(|| format!("localhost/playbook:{}", env!("CARGO_PKG_VERSION"))),
            name: args.name.clone(),
            vars: args.vars.clone(),
            stdlib: args.stdlib.stdlib.clone(),
        }
    }
}

/// `playbook deploy PLAYBOOKS...`: prints the YAML, or says what is wrong (exit 2).
pub fn deploy(args: &crate::cli::DeployArgs) -> Verdict {
    let d = Deploy::from_args(args);
    let stdlib = crate::cli::StdlibArgs {
        stdlib: d.stdlib.clone(),
    };
    let checked = check(&d).and_then(|()| {
        crate::rbac::needs_of_args(&d.paths, &stdlib, &d.vars, &d.namespace).map_err(|_| None)
    });
    let (playbooks, mut needs) = match checked {
        Ok(x) => x,
        Err(Some(message)) => {
            eprintln!("error: {message}");
            return Verdict::Invalid;
        }
        // The generator said what is wrong.
        Err(None) => return Verdict::Invalid,
    };
    match render(&d, playbooks.len(), &mut needs) {
        Ok(text) => {
            crate::session::say(text.trim_end());
            Verdict::Passed
        }
        Err(message) => {
            eprintln!("error: {message}");
            Verdict::Invalid
        }
    }
}

/// The options a cluster would refuse, refused here with the option's name.
fn check(d: &Deploy) -> Result<(), Option<String>> {
    if let Some(s) = &d.schedule {
        playbook_model::cron::check(s)
            .map_err(|e| Some(format!("--schedule {s:?} is not a cron schedule: {e}")))?;
    }
    // A CronJob's name leaves 11 characters for its Jobs' suffix (batch validation.go
    // ValidateCronJobCreate); a Job's name is a label value (job-name), 63 at most.
    let max = if d.schedule.is_some() { 52 } else { 63 };
    let n = &d.name;
    let ok = !n.is_empty()
        && n.len() <= max - "-playbooks".len()
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !n.starts_with('-')
        && !n.ends_with('-');
    if !ok {
        return Err(Some(format!(
            "--name {n:?}: lower-case letters, digits and '-', starting and ending with a letter or digit, at most {} characters",
            max - "-playbooks".len()
        )));
    }
    if d.timeout.is_zero() {
        return Err(Some("--timeout must be more than 0s".into()));
    }
    Ok(())
}

/// The files a ConfigMap holds: (key, path below its mount, text).
type Files = Vec<(String, String, String)>;

/// The playbooks and modules of `paths`: a folder gives its `.rhai` files (those at its top are
/// the playbooks `playbook run` runs; those below are modules they import), a file gives
/// itself.
fn playbook_files(paths: &[PathBuf]) -> Result<Files, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |rel: String, file: &Path| -> Result<(), String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        if out.insert(rel.clone(), text).is_some() {
            return Err(format!(
                "two playbooks would both be /playbooks/{rel}: give them different names"
            ));
        }
        Ok(())
    };
    for p in paths {
        if p.is_dir() {
            for (rel, file) in rhai_below(p, p, 0)? {
                add(rel, &file)?;
            }
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            add(name, p)?;
        }
    }
    keyed(out)
}

/// Every `.rhai` file below `dir` (at most [`DEPTH`] folders down), relative to `root`.
fn rhai_below(root: &Path, dir: &Path, depth: usize) -> Result<Vec<(String, PathBuf)>, String> {
    if depth > DEPTH {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read folder {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_dir() && !hidden {
            out.extend(rhai_below(root, &path, depth + 1)?);
        } else if path.is_file() && path.extension().is_some_and(|x| x == "rhai") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
    Ok(out)
}

/// ConfigMap keys for relative paths (`lib/retry.rhai` -> `lib_retry.rhai`; a key is
/// `[-._a-zA-Z0-9]+`), refusing two paths that would share a key, and the 1 MiB limit.
fn keyed(files: BTreeMap<String, String>) -> Result<Files, String> {
    let mut keys = BTreeMap::new();
    let mut total = 0;
    let mut out = Files::new();
    for (rel, text) in files {
        let key: String = rel
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-._".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Some(other) = keys.insert(key.clone(), rel.clone()) {
            return Err(format!(
                "{other} and {rel} would share the ConfigMap key {key}: rename one"
            ));
        }
        total += key.len() + text.len();
        out.push((key, rel, text));
    }
    if total > CONFIGMAP_LIMIT {
        return Err(format!(
            "the playbooks total {total} bytes; a ConfigMap holds at most {CONFIGMAP_LIMIT}"
        ));
    }
    Ok(out)
}

/// The labels of everything deploy renders.
fn labels(name: &str) -> Value {
    json!({
        "app.kubernetes.io/name": "playbook",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "playbook",
    })
}

fn config_map(name: &str, instance: &str, ns: &str, files: &Files) -> Value {
    let data: serde_json::Map<String, Value> = files
        .iter()
        .map(|(k, _, t)| (k.clone(), json!(t)))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns, "labels": labels(instance) },
        "data": data,
    })
}

fn volume(name: &str, cm: &str, files: &Files) -> Value {
    let items: Vec<Value> = files
        .iter()
        .map(|(k, p, _)| json!({ "key": k, "path": p }))
        .collect();
    json!({ "name": name, "configMap": { "name": cm, "items": items } })
}

/// The Job's deadline: each playbook's `--timeout` and the cleanup grace after it
/// (stop.rs AFTER_GRACE), one after another.
pub fn deadline(playbooks: usize, timeout: Duration) -> u64 {
    playbooks.max(1) as u64 * (timeout + crate::stop::AFTER_GRACE).as_secs()
}

/// The Job's spec (also a CronJob's job template).
fn job_spec(d: &Deploy, playbooks: usize, files: &Files, stdlib: Option<&Files>) -> Value {
    let mut args = vec![
        "run".to_string(),
        PLAYBOOKS_DIR.to_string(),
        "--timeout".to_string(),
        crate::duration::format(d.timeout),
        "--summary-configmap".to_string(),
        format!("{}/{}", d.namespace, d.name),
    ];
    for (k, v) in &d.vars {
        args.push("--var".into());
        args.push(format!("{k}={v}"));
    }
    let mut env = vec![json!({ "name": "HOME", "value": HOME_DIR })];
    let mut mounts = vec![
        json!({ "name": "playbooks", "mountPath": PLAYBOOKS_DIR, "readOnly": true }),
        json!({ "name": "home", "mountPath": HOME_DIR }),
    ];
    let mut volumes = vec![
        volume("playbooks", &format!("{}-playbooks", d.name), files),
        json!({ "name": "home", "emptyDir": {} }),
    ];
    if let Some(files) = stdlib {
        env.push(json!({ "name": "PLAYBOOK_STDLIB", "value": STDLIB_DIR }));
        mounts.push(json!({ "name": "stdlib", "mountPath": STDLIB_DIR, "readOnly": true }));
        volumes.push(volume("stdlib", &format!("{}-stdlib", d.name), files));
    }
    json!({
        // One attempt: a chaos run is not retried behind anyone's back.
        "backoffLimit": 0,
        "activeDeadlineSeconds": deadline(playbooks, d.timeout),
        "template": {
            "metadata": { "labels": labels(&d.name) },
            "spec": {
                "serviceAccountName": d.name,
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": TERMINATION_GRACE.as_secs(),
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": IMAGE_USER,
                    "runAsGroup": IMAGE_USER,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [{
                    "name": "playbook",
                    "image": d.image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/usr/local/bin/playbook"],
                    "args": args,
                    "env": env,
                    "workingDir": PLAYBOOKS_DIR,
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": { "drop": ["ALL"] },
                    },
                    "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } },
                    "volumeMounts": mounts,
                }],
                "volumes": volumes,
            },
        },
    })
}

/// The whole YAML stream.
fn render(d: &Deploy, playbooks: usize, needs: &mut crate::rbac::Needs) -> Result<String, String> {
    let files = playbook_files(&d.paths)?;
    let stdlib = match &d.stdlib {
        Some(dir) => {
            let found = rhai_below(dir, dir, DEPTH)?;
            let mut m = BTreeMap::new();
            for (rel, file) in found {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                m.insert(rel, text);
            }
            Some(keyed(m)?)
        }
        None => None,
    };
    // The run's Events, beside the chaos objects and the workloads they regard.
    let mut event_scopes = needs.fault_scopes();
    event_scopes.extend(needs.targets.iter().cloned().map(Some));
    for scope in event_scopes {
        needs.grant(scope, "events.k8s.io", "events", &["create"]);
    }
    let ns = d.namespace.as_str();
    let name = d.name.as_str();
    let mut objects = needs.manifests(name, ns);
    // The summary ConfigMap: created once, then only that one is read and written.
    let role = format!("{name}-summary");
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": { "name": role, "namespace": ns, "labels": labels(name) },
        "rules": [
            { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"] },
            { "apiGroups": [""], "resources": ["configmaps"], "resourceNames": [name],
              "verbs": ["get", "update", "patch"] },
        ],
    }));
    objects.push(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": { "name": role, "namespace": ns, "labels": labels(name) },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role },
        "subjects": [{ "kind": "ServiceAccount", "name": name, "namespace": ns }],
    }));
    objects.push(config_map(&format!("{name}-playbooks"), name, ns, &files));
    if let Some(files) = &stdlib {
        objects.push(config_map(&format!("{name}-stdlib"), name, ns, files));
    }
    let spec = job_spec(d, playbooks, &files, stdlib.as_ref());
    objects.push(match &d.schedule {
        None => json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": { "name": name, "namespace": ns, "labels": labels(name) },
            "spec": spec,
        }),
        Some(schedule) => json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": { "name": name, "namespace": ns, "labels": labels(name) },
            "spec": {
                "schedule": schedule,
                // A run still going when the next is due: the next is skipped.
                "concurrencyPolicy": "Forbid",
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": { "metadata": { "labels": labels(name) }, "spec": spec },
            },
        }),
    });

    let what = match &d.schedule {
        Some(s) => format!("a CronJob ({s}, never two runs at once)"),
        None => "a Job".to_string(),
    };
    let mut text = format!(
        "# {playbooks} playbook(s) run in namespace {ns} by {what} as ServiceAccount {name} (`playbook deploy`).\n\
         # Apply with: kubectl apply -f -\n\
         # Reports: the pod's log (kubectl logs -n {ns} -l app.kubernetes.io/instance={name}) and ConfigMap {ns}/{name} (key summary.json).\n"
    );
    for n in &needs.notes {
        text += &format!("# wider than needed: {n}\n");
    }
    for m in objects {
        text += "---\n";
        text += &crate::host::chaos::yaml(&m);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_each_playbooks_timeout_and_grace() {
        assert_eq!(deadline(5, Duration::from_secs(600)), 5 * 630);
        assert_eq!(deadline(0, Duration::from_secs(60)), 90);
    }

    #[test]
    fn keys_are_configmap_keys_and_may_not_collide() {
        let m: BTreeMap<String, String> = [
            ("a.rhai".to_string(), "x".to_string()),
            ("lib/retry.rhai".to_string(), "y".to_string()),
        ]
        .into();
        let files = keyed(m).unwrap();
        assert_eq!(files[1].0, "lib_retry.rhai");
        assert_eq!(files[1].1, "lib/retry.rhai");
        let m: BTreeMap<String, String> = [
            ("lib_retry.rhai".to_string(), "x".to_string()),
            ("lib/retry.rhai".to_string(), "y".to_string()),
        ]
        .into();
        assert!(keyed(m).unwrap_err().contains("share the ConfigMap key"));
    }
}
