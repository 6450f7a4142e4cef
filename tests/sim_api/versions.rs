//! Real kubectl 1.32 against kinds served in two group-versions (autoscaling v1/v2, events in
//! core and events.k8s.io/v1), through the aggregated discovery kubectl asks for first.

use super::Server;

const HPA_V1: &str = r#"
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 4
  targetCPUUtilizationPercentage: 65
"#;

const EVENT_V1: &str = r#"
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: sched}
eventTime: "2026-01-01T00:00:00.000000Z"
reportingController: default-scheduler
reportingInstance: default-scheduler-sim
action: Scheduling
reason: FailedScheduling
type: Warning
regarding: {kind: Pod, name: web-0, namespace: default}
note: 0/3 nodes are available
"#;

#[test]
fn api_versions_and_resources_list_both_versions() {
    let s = Server::start();
    let versions = s.ok(&["api-versions"]);
    for gv in ["autoscaling/v1", "autoscaling/v2", "events.k8s.io/v1", "v1"] {
        assert!(
            versions.lines().any(|l| l == gv),
            "api-versions lacks {gv}:\n{versions}"
        );
    }
    let res = s.ok(&["api-resources"]);
    let line = |name: &str, gv: &str| {
        res.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&name) && cols.contains(&gv)
        })
    };
    // api-resources shows each group's preferred version.
    assert!(line("horizontalpodautoscalers", "autoscaling/v2"), "{res}");
    assert!(!line("horizontalpodautoscalers", "autoscaling/v1"), "{res}");
    assert!(line("events", "v1"), "{res}");
    assert!(line("events", "events.k8s.io/v1"), "{res}");
    let grouped = s.ok(&["api-resources", "--api-group=events.k8s.io", "-o", "name"]);
    assert_eq!(grouped.trim(), "events.events.k8s.io");
}

#[test]
fn hpa_in_v1_and_v2_and_events_in_both_groups() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], HPA_V1);
    // Explicit version: the v1 shape of the one stored object.
    let v1 = s.ok(&[
        "get",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "-o",
        "jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage}",
    ]);
    assert_eq!(v1, "autoscaling/v1 65");
    // Unqualified: the preferred version, v2.
    let v2 = s.ok(&[
        "get",
        "hpa",
        "web",
        "-o",
        "jsonpath={.apiVersion} {.spec.metrics[0].resource.target.averageUtilization}",
    ]);
    assert_eq!(v2, "autoscaling/v2 65");
    // `hpa.v1.autoscaling` answers too (kubectl's shortcut expansion keeps only the group:
    // client-go restmapper/shortcut.go, so it reads the preferred version, as on a real cluster).
    let table = s.ok(&["get", "hpa.v1.autoscaling"]);
    assert!(
        table.contains("web") && table.contains("cpu: <unknown>/65%"),
        "{table}"
    );
    s.ok(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":40}}"#,
    ]);
    let after = s.ok(&[
        "get",
        "hpa.v2.autoscaling",
        "web",
        "-o",
        "jsonpath={.spec.metrics[0].resource.target.averageUtilization}",
    ]);
    assert_eq!(after, "40");
    let err = s.fails(&[
        "patch",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"targetCPUUtilizationPercentage":0}}"#,
    ]);
    assert!(
        err.contains("must be greater than 0"),
        "invalid target refused: {err}"
    );

    s.ok_stdin(&["apply", "-f", "-"], EVENT_V1);
    let note = s.ok(&[
        "get",
        "events.events.k8s.io",
        "sched",
        "-o",
        "jsonpath={.apiVersion} {.note} {.reportingController}",
    ]);
    assert_eq!(
        note,
        "events.k8s.io/v1 0/3 nodes are available default-scheduler"
    );
    let core = s.ok(&[
        "get",
        "events",
        "sched",
        "-o",
        "jsonpath={.apiVersion} {.message} {.involvedObject.name} [{.lastTimestamp}]",
    ]);
    // The legacy timestamp is null on the core view of an events.k8s.io event.
    assert_eq!(core, "v1 0/3 nodes are available web-0 [null]");
    let listed = s.ok(&["get", "events.events.k8s.io"]);
    assert!(
        listed.contains("FailedScheduling") && listed.contains("pod/web-0"),
        "{listed}"
    );
}
