//! `playbook deploy`: its YAML applied with kubectl to `sim serve` creates every object and the
//! server accepts each (the simulator validates the built-in kinds, batch/v1 included); the
//! CronJob's spec is the one README.md ("Running in the cluster") describes; bad options get
//! the command's own clear error.

use serde_json::Value;

use crate::cli::playbook;
use crate::sim_api::Server;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The objects of a YAML stream.
fn objects(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .filter(|d| d.contains("kind:"))
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("a YAML document"))
        .collect()
}

/// `playbook deploy ARGS`, applied; every object it printed, as the server now has it.
fn deploy_and_apply(server: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["deploy"];
    all.extend_from_slice(args);
    let out = playbook(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    server.ok_stdin(&["apply", "-f", "-"], &yaml);
    objects(&yaml)
        .iter()
        .map(|o| {
            let kind = o["kind"].as_str().unwrap();
            let api = o["apiVersion"].as_str().unwrap();
            let group = api.split_once('/').map(|(g, _)| g).unwrap_or("");
            let what = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            let name = o["metadata"]["name"].as_str().unwrap();
            let mut get = vec!["get", &what, name, "-o", "json"];
            let ns;
            if let Some(n) = o["metadata"]["namespace"].as_str() {
                ns = n.to_string();
                get.extend_from_slice(&["-n", &ns]);
            }
            serde_json::from_str(&server.ok(&get)).expect("kubectl prints JSON")
        })
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {objects:#?}"))
}

#[test]
fn deploy_renders_objects_the_api_server_accepts_and_the_cronjob_the_readme_describes() {
    let server = Server::start_with(&["--seed", "7"]);
    // Once: a Job.
    let job_objects = deploy_and_apply(&server, &["playbooks/", "--name", "gameday"]);
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Job",
    ] {
        find(&job_objects, kind);
    }
    let job = find(&job_objects, "Job");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    let cm = find(&job_objects, "ConfigMap");
    assert_eq!(cm["metadata"]["name"], "gameday-playbooks");
    let seeds = std::fs::read_dir("playbooks").unwrap().count();
    assert_eq!(cm["data"].as_object().unwrap().len(), seeds);
    assert_eq!(
        cm["data"]["pod-failure.rhai"].as_str().unwrap(),
        std::fs::read_to_string("playbooks/pod-failure.rhai").unwrap()
    );

    // Weekly: a CronJob, as README.md describes it.
    let cron = deploy_and_apply(
        &server,
        &[
            "playbooks/",
            "--name",
            "weekly",
            "--schedule",
            "0 3 * * 1",
            "--timeout",
            "5m",
            "--namespace",
            "chaos-testing",
        ],
    );
    let cj = find(&cron, "CronJob");
    let spec = &cj["spec"];
    assert_eq!(spec["schedule"], "0 3 * * 1");
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    let job = &spec["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0);
    // Each playbook's --timeout and the 30 s cleanup grace, summed.
    assert_eq!(job["activeDeadlineSeconds"], seeds as u64 * (300 + 30));
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["serviceAccountName"], "weekly");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "run",
            "/playbooks",
            "--timeout",
            "5m",
            "--summary-configmap",
            "chaos-testing/weekly"
        ]
    );
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/playbooks");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    // The summary ConfigMap: its creation, then only it.
    let summary = cron
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["name"] == "weekly-summary")
        .expect("the summary Role");
    assert_eq!(summary["rules"][1]["resourceNames"][0], "weekly");
    // README.md says the same.
    let readme = std::fs::read_to_string("README.md").unwrap();
    for line in [
        "concurrencyPolicy: Forbid",
        "backoffLimit: 0",
        "restartPolicy: Never",
        "--summary-configmap NAMESPACE/NAME",
        "activeDeadlineSeconds",
    ] {
        assert!(readme.contains(line), "README.md says {line:?}");
    }

    // The server refuses what the API server refuses: a schedule that does not parse.
    let bad = serde_json::to_string(&{
        let mut cj = cj.clone();
        cj["metadata"] = serde_json::json!({"name": "bad", "namespace": "chaos-testing"});
        cj["spec"]["schedule"] = "61 * * * *".into();
        cj
    })
    .unwrap();
    let err = server.fails_stdin(&["create", "-f", "-"], &bad);
    assert!(
        err.contains(
            r#"spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61"#
        ),
        "{err}"
    );
}

#[test]
fn deploy_refuses_a_bad_schedule_and_name_itself() {
    let out = playbook(&["deploy", "playbooks/", "--schedule", "61 * * * *"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty(), "nothing to apply");
    assert!(
        text(&out).contains(
            r#"error: --schedule "61 * * * *" is not a cron schedule: end of range (61) above maximum (59): 61"#
        ),
        "{}",
        text(&out)
    );
    let out = playbook(&["deploy", "playbooks/", "--schedule", "every monday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("expected exactly 5 fields, found 2: [every monday]"),
        "{}",
        text(&out)
    );
    let out = playbook(&["deploy", "playbooks/", "--name", "Game_Day"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--name \"Game_Day\""), "{}", text(&out));
}
