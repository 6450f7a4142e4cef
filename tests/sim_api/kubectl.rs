//! Real kubectl against `playbook sim serve`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Server, example, kubectl_bin};

const APP: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: web, tier: front}}
spec:
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
apiVersion: v1
kind: Pod
metadata: {name: p2, namespace: team-b, labels: {app: db, tier: back}}
spec:
  containers: [{name: c, image: postgres:16}]
"#;

#[test]
fn discovery_namespaces_and_api_resources() {
    let s = Server::start();
    let ns = s.ok(&["get", "namespaces"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "{ns}");
    }
    let res = s.ok(&["api-resources"]);
    for line in [
        "pods ",
        "deployments ",
        "podchaos ",
        "inferenceservices ",
        "horizontalpodautoscalers ",
    ] {
        assert!(res.contains(line), "api-resources lacks {line}:\n{res}");
    }
    assert!(
        res.lines()
            .any(|l| l.starts_with("inferenceservices") && l.contains("isvc")),
        "{res}"
    );
    let server = s.ok(&[
        "config",
        "view",
        "-o",
        "jsonpath={.clusters[0].cluster.server} {.current-context}",
    ]);
    assert_eq!(server, format!("{} playbook-sim", s.url));
    let version = s.ok(&["version", "-o", "json"]);
    assert!(version.contains("\"minor\": \"32\""), "{version}");
}

#[test]
fn apply_get_outputs_and_selectors() {
    let s = Server::start();
    let out = s.ok_stdin(&["apply", "-f", "-"], APP);
    assert!(
        out.contains("deployment.apps/web created") && out.contains("pod/p2 created"),
        "{out}"
    );
    let again = s.ok_stdin(&["apply", "-f", "-"], APP);
    assert!(again.contains("deployment.apps/web unchanged"), "{again}");
    let changed = s.ok_stdin(
        &["apply", "-f", "-"],
        &APP.replace("replicas: 2", "replicas: 3"),
    );
    assert!(
        changed.contains("deployment.apps/web configured"),
        "{changed}"
    );
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "3"
    );
    // -A, -l, -o wide / yaml / json / jsonpath
    let all = s.ok(&["get", "pods", "-A"]);
    assert!(
        all.contains("team-b") && all.contains("p1") && all.contains("p2"),
        "{all}"
    );
    assert!(
        all.lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]),
        "{all}"
    );
    let sel = s.ok(&["get", "pods", "-A", "-l", "tier in (back)", "-o", "name"]);
    assert_eq!(sel.trim(), "pod/p2");
    // `notin` matches pods without the label: exactly the 3 the Deployment made.
    let untiered = s.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "tier notin (back,front)",
        "-o",
        "name",
    ]);
    let made = s.ok(&["get", "pods", "-A", "-l", "pod-template-hash", "-o", "name"]);
    assert_eq!(untiered, made);
    assert_eq!(made.lines().count(), 3, "{made}");
    assert!(made.lines().all(|l| l.starts_with("pod/web-")), "{made}");
    let none = s.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "tier,tier notin (back,front)",
        "-o",
        "name",
    ]);
    assert_eq!(none.trim(), "");
    let wide = s.ok(&["get", "pods", "p1", "-o", "wide"]);
    assert!(
        wide.contains("NOMINATED NODE")
            && wide.contains("READINESS GATES")
            && wide.contains(" 10.244.")
            && wide.contains(" sim-worker-"),
        "scheduled, with an IP: {wide}"
    );
    let deploy = s.ok(&["get", "deploy"]);
    assert!(
        deploy
            .lines()
            .next()
            .is_some_and(|h| h.split_whitespace().collect::<Vec<_>>()
                == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]),
        "{deploy}"
    );
    let yaml = s.ok(&["get", "pod", "p1", "-o", "yaml"]);
    assert!(
        yaml.contains("restartPolicy: Always")
            && yaml.contains("nodeName: sim-worker-")
            && yaml.contains("phase: ")
            && yaml.contains("uid: "),
        "{yaml}"
    );
    let json = s.ok(&["get", "svc", "web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        v["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.96.")),
        "{json}"
    );
    let jp = s.ok(&[
        "get",
        "pods",
        "-A",
        "-l",
        "tier",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(jp, "p1 p2");
    let field = s.ok(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "metadata.namespace=team-b",
        "-o",
        "name",
    ]);
    assert_eq!(field.trim(), "pod/p2");
    let err = s.fails(&["get", "pod", "nope"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );
    let bad = s.fails(&["get", "pods", "-l", "a in (b"]);
    assert!(!bad.is_empty());
}

#[test]
fn server_side_apply_create_delete_and_describe() {
    let s = Server::start();
    let out = s.ok_stdin(&["apply", "--server-side", "-f", "-"], APP);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let out = s.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &APP.replace("replicas: 2", "replicas: 4"),
    );
    assert!(out.contains("serverside-applied"), "{out}");
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    let err = s.kubectl(&["create", "-f", "-"]);
    assert!(!err.status.success(), "create -f - with no input fails");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: conf}\ndata: {a: '1', b: '2'}\n";
    let dry = s.ok_stdin(&["apply", "--dry-run=server", "-f", "-"], cm);
    assert!(
        dry.contains("configmap/conf created (server dry run)"),
        "{dry}"
    );
    s.fails(&["get", "cm", "conf"]);
    assert!(
        s.ok_stdin(&["create", "-f", "-"], cm)
            .contains("configmap/conf created")
    );
    let dup = s.fails_stdin(&["create", "-f", "-"], cm);
    assert!(dup.contains("AlreadyExists"), "{dup}");
    let cms = s.ok(&["get", "cm"]);
    assert!(cms.contains("conf") && cms.contains("DATA"), "{cms}");
    let d = s.ok(&["describe", "pod", "p1"]);
    assert!(
        d.contains("Name:")
            && d.contains("p1")
            && d.contains("busybox:1.36")
            && d.lines()
                .any(|l| l.starts_with("Node:") && l.contains("sim-worker-"))
            && d.contains("Successfully assigned default/p1 to sim-worker-"),
        "{d}"
    );
    let dd = s.ok(&["describe", "deployment", "web"]);
    assert!(
        dd.contains("Replicas:")
            && dd.contains("4 desired")
            && dd.contains("nginx:1.27")
            && dd.contains("NewReplicaSet:   web-"),
        "{dd}"
    );
    assert!(
        s.ok(&["delete", "configmap", "conf"])
            .contains("configmap \"conf\" deleted")
    );
    s.fails(&["get", "cm", "conf"]);
    assert!(s.ok(&["delete", "namespace", "team-b"]).contains("deleted"));
    assert_eq!(
        s.ok(&["get", "pods", "-n", "team-b", "-o", "name"]).trim(),
        ""
    );
    s.fails(&["get", "ns", "team-b"]);
}

#[test]
fn label_annotate_patch_and_scale() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], APP);
    assert!(
        s.ok(&["label", "pod", "p1", "env=prod"])
            .contains("labeled")
    );
    assert!(
        s.ok(&["annotate", "pod", "p1", "note=hello"])
            .contains("annotated")
    );
    assert_eq!(
        s.ok(&[
            "get",
            "pod",
            "p1",
            "-o",
            "jsonpath={.metadata.labels.env}/{.metadata.annotations.note}"
        ]),
        "prod/hello"
    );
    assert_eq!(
        s.ok(&["get", "pods", "-l", "env=prod", "-o", "name"])
            .trim(),
        "pod/p1"
    );
    s.ok(&["label", "pod", "p1", "env-"]);
    assert_eq!(s.ok(&["get", "pods", "-l", "env", "-o", "name"]).trim(), "");
    // strategic merge: containers merged by name
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"envoy:1"}]}}}}"#,
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "nginx sidecar"
    );
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[*].name}"
        ]),
        "nginx"
    );
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/replicas","value":7}]"#,
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.labels.m}/{.spec.replicas}"
        ]),
        "1/7"
    );
    let g = s.ok(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.generation}",
    ]);
    assert!(
        g.parse::<i64>().is_ok_and(|g| g >= 4),
        "generation bumps on spec changes: {g}"
    );
    assert!(
        s.ok(&["scale", "deploy", "web", "--replicas=5"])
            .contains("scaled")
    );
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "5"
    );
    let raw = s.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]);
    assert!(
        raw.contains("\"kind\":\"Scale\"") && raw.contains("\"selector\":\"app=web\""),
        "{raw}"
    );
    // The status subresource changes status only (no controller writes a Service's status).
    s.ok(&[
        "patch",
        "svc",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}},"spec":{"type":"LoadBalancer"}}"#,
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.type} {.status.loadBalancer.ingress[0].ip}"
        ]),
        "ClusterIP 203.0.113.7"
    );
    let bad = s.fails(&[
        "patch",
        "deploy",
        "web",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/replicas","value":1}]"#,
    ]);
    assert!(!bad.is_empty());
}

#[test]
fn get_watch_streams_changes() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], APP);
    // Only the pods carrying `tier` (none of the Deployment's), showing the label changed.
    let mut child = Command::new(kubectl_bin())
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args([
            "get",
            "pods",
            "-w",
            "--no-headers",
            "-l",
            "tier",
            "-o",
            "custom-columns=NAME:.metadata.name,WATCHED:.metadata.labels.watched",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("initial list line");
    assert!(first.starts_with("p1 "), "{first}");
    s.ok(&["label", "pod", "p1", "watched=yes"]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p3, labels: {tier: front}}\nspec: {containers: [{name: c, image: x:1}]}\n";
    s.ok_stdin(&["apply", "-f", "-"], pod);
    let columns = |l: &String| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let labelled = |seen: &[String]| seen.iter().any(|l| columns(l) == ["p1", "yes"]);
    let created = |seen: &[String]| {
        seen.iter()
            .any(|l| columns(l).first().is_some_and(|n| n == "p3"))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while !(labelled(&seen) && created(&seen)) && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(labelled(&seen), "modification of p1 seen: {seen:?}");
    assert!(created(&seen), "creation of p3 seen: {seen:?}");
    assert!(
        seen.iter().all(|l| !l.starts_with("web-")),
        "the selector holds on the watch: {seen:?}"
    );
}

#[test]
fn custom_resources_crds_and_explain() {
    let s = Server::start();
    let out = s.ok(&[
        "apply",
        "-f",
        &example("chaos-mesh/examples/pod-kill-example.yaml"),
    ]);
    assert!(
        out.contains("podchaos.chaos-mesh.org/pod-kill-example created"),
        "{out}"
    );
    let pc = s.ok(&["get", "podchaos", "-A"]);
    assert!(pc.contains("pod-kill-example"), "{pc}");
    let nc = s.ok(&[
        "apply",
        "-f",
        &example("chaos-mesh/examples/network-delay-example.yaml"),
    ]);
    assert!(nc.contains("created"), "{nc}");
    let ncs = s.ok(&["get", "networkchaos", "-A"]);
    assert!(
        ncs.contains("ACTION") && ncs.contains("DURATION"),
        "printer columns of the CRD: {ncs}"
    );
    let out = s.ok(&[
        "apply",
        "--server-side",
        "-f",
        &example("chaos-mesh/examples/burn-cpu.yaml"),
    ]);
    assert!(out.contains("serverside-applied"), "{out}");
    let crds = s.ok(&["get", "crd"]);
    assert!(
        crds.contains("podchaos.chaos-mesh.org") && crds.contains("workflows.argoproj.io"),
        "{crds}"
    );
    let explain = s.ok(&["explain", "podchaos.spec.mode"]);
    assert!(explain.contains("mode"), "{explain}");
    let deleted = s.ok(&[
        "delete",
        "-f",
        &example("chaos-mesh/examples/pod-kill-example.yaml"),
    ]);
    assert!(deleted.contains("deleted"), "{deleted}");
}

#[test]
fn invalid_chaos_is_rejected_with_the_crd_message() {
    let s = Server::start();
    let bad = "apiVersion: chaos-mesh.org/v1alpha1\nkind: PodChaos\nmetadata: {name: bad}\nspec: {action: pod-kill, mode: bogus, selector: {}}\n";
    // kubectl renders the server's 422 from its details, as with a real cluster.
    let err = s.fails_stdin(&["apply", "-f", "-"], bad);
    assert_eq!(
        err.trim(),
        r#"The PodChaos "bad" is invalid: spec.mode: Unsupported value: "bogus": supported values: "one", "all", "fixed", "fixed-percent", "random-max-percent""#
    );
    s.fails(&["get", "podchaos", "bad"]);
    let slow = "apiVersion: chaos-mesh.org/v1alpha1\nkind: NetworkChaos\nmetadata: {name: slow}\nspec: {action: delay, mode: all, selector: {namespaces: [default]}, delay: {latency: fast}}\n";
    let err = s.fails_stdin(&["apply", "--server-side", "-f", "-"], slow);
    assert_eq!(
        err.trim(),
        r#"The NetworkChaos "slow" is invalid: spec.delay.latency: Invalid value: "fast": spec.delay.latency in body should match '^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$'"#
    );
    s.fails(&["get", "networkchaos", "slow"]);
    // The same object with a valid latency is accepted.
    let out = s.ok_stdin(
        &["apply", "-f", "-"],
        &slow.replace("latency: fast", "latency: 10ms"),
    );
    assert!(
        out.contains("networkchaos.chaos-mesh.org/slow created"),
        "{out}"
    );
}

#[test]
fn service_proxy_without_handler_is_503() {
    let s = Server::start();
    s.ok_stdin(&["apply", "-f", "-"], APP);
    let err = s.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/web:80/proxy/healthz",
    ]);
    assert!(
        err.contains("no endpoints available for service \"web:80\""),
        "{err}"
    );
    let err = s.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/services/nope/proxy/",
    ]);
    assert!(err.contains("NotFound"), "{err}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut s = Server::start();
    s.ok(&["get", "ns"]);
    let st = Command::new("kill")
        .args(["-TERM", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let exit = s
        .wait_exit(Duration::from_secs(5))
        .expect("server exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
}
