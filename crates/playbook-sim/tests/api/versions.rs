//! Kinds served in more than one group-version, as a real v1.32 server serves them: discovery
//! (legacy and aggregated) lists every version, objects are stored once and converted on each
//! read and write. Each test names the upstream file whose behaviour it checks.

use http_body_util::BodyExt;
use playbook_sim::{ClockMode, Sim, SimConfig};
use serde_json::{Value, json};
use tower::ServiceExt;

fn sim() -> Sim {
    Sim::new(SimConfig {
        seed: 7,
        clock: ClockMode::Virtual,
        ..Default::default()
    })
}

const J: &str = "application/json";
/// What kubectl 1.32 (client-go discovery) sends to `/api` and `/apis`.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

struct Answer {
    code: u16,
    body: Value,
    headers: axum::http::HeaderMap,
}

async fn call(sim: &Sim, method: &str, uri: &str, headers: &[(&str, &str)], body: Value) -> Answer {
    let mut req = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(axum::body::Body::from(if body.is_null() {
            String::new()
        } else {
            body.to_string()
        }))
        .expect("request");
    let resp = sim.router().oneshot(req).await.expect("response");
    let code = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        code,
        body,
        headers,
    }
}

async fn get(sim: &Sim, uri: &str) -> Value {
    let a = call(sim, "GET", uri, &[("accept", J)], Value::Null).await;
    assert_eq!(a.code, 200, "GET {uri}: {}", a.body);
    a.body
}

async fn write(sim: &Sim, method: &str, uri: &str, ct: &str, body: Value) -> Answer {
    call(
        sim,
        method,
        uri,
        &[("content-type", ct), ("accept", J)],
        body,
    )
    .await
}

// kube-aggregator handler_apis.go + the aggregator's priorities
// (pkg/controlplane/apiserver/aggregator.go): groups by priority, versions preferred first.
#[tokio::test]
async fn legacy_discovery_lists_every_version_preferred_first() {
    let s = sim();
    let apis = get(&s, "/apis").await;
    let groups: Vec<(String, Vec<String>, String)> = apis["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().to_string(),
                g["versions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v["version"].as_str().unwrap_or_default().to_string())
                    .collect(),
                g["preferredVersion"]["version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let names: Vec<&str> = groups.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "apps",
            "events.k8s.io",
            "autoscaling",
            "apiextensions.k8s.io"
        ],
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"metrics.k8s.io"), "{names:?}");
    let autoscaling = groups.iter().find(|g| g.0 == "autoscaling").unwrap();
    assert_eq!(autoscaling.1, ["v2", "v1"]);
    assert_eq!(autoscaling.2, "v2");
    let group = get(&s, "/apis/autoscaling").await;
    assert_eq!(group["kind"], "APIGroup");
    assert_eq!(group["preferredVersion"]["groupVersion"], "autoscaling/v2");
    for (gv, kind) in [
        ("autoscaling/v1", "HorizontalPodAutoscaler"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("events.k8s.io/v1", "Event"),
    ] {
        let list = get(&s, &format!("/apis/{gv}")).await;
        assert_eq!(list["groupVersion"], gv);
        assert!(
            list["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == kind && !r["name"].as_str().unwrap().contains('/')),
            "{list}"
        );
    }
    let ev = get(&s, "/apis/events.k8s.io/v1").await;
    assert_eq!(ev["resources"][0]["shortNames"], json!(["ev"]));
}

// apiserver/pkg/endpoints/discovery/aggregated/{wrapper,handler,etag}.go: the aggregated
// document on the client's Accept, with its own content type, an ETag and 304.
#[tokio::test]
async fn aggregated_discovery_on_the_accept_header() {
    let s = sim();
    let a = call(&s, "GET", "/apis", &[("accept", AGGREGATED)], Value::Null).await;
    assert_eq!(a.code, 200);
    assert_eq!(
        a.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(a.body["kind"], "APIGroupDiscoveryList");
    assert_eq!(a.body["apiVersion"], "apidiscovery.k8s.io/v2");
    let items = a.body["items"].as_array().expect("items");
    let autoscaling = items
        .iter()
        .find(|g| g["metadata"]["name"] == "autoscaling")
        .expect("autoscaling");
    let versions: Vec<&str> = autoscaling["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v2", "v1"]);
    let hpa = &autoscaling["versions"][1]["resources"][0];
    assert_eq!(hpa["resource"], "horizontalpodautoscalers");
    assert_eq!(
        hpa["responseKind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "HorizontalPodAutoscaler"})
    );
    assert_eq!(hpa["scope"], "Namespaced");
    assert_eq!(hpa["subresources"][0]["subresource"], "status");
    assert_eq!(autoscaling["versions"][0]["freshness"], "Current");
    let apps = items
        .iter()
        .find(|g| g["metadata"]["name"] == "apps")
        .unwrap();
    let deploy = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .expect("deployments");
    assert!(
        deploy["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|sr| sr["subresource"] == "scale" && sr["responseKind"]["kind"] == "Scale"),
        "{deploy}"
    );
    assert!(items.iter().all(|g| g["metadata"]["name"] != ""));

    // The same document again: 304 for a client holding it.
    let etag = a.headers["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    let again = call(
        &s,
        "GET",
        "/apis",
        &[("accept", AGGREGATED), ("if-none-match", &etag)],
        Value::Null,
    )
    .await;
    assert_eq!(again.code, 304);

    // /api: the core group, without a name.
    let core = call(&s, "GET", "/api", &[("accept", AGGREGATED)], Value::Null).await;
    assert_eq!(core.body["items"].as_array().unwrap().len(), 1);
    let v1 = &core.body["items"][0]["versions"][0];
    assert_eq!(v1["version"], "v1");
    assert!(
        v1["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "pods" && r["shortNames"] == json!(["po"]))
    );

    // A client that only asks for JSON keeps the legacy documents; v2beta1 when only it is asked.
    let plain = call(&s, "GET", "/apis", &[("accept", J)], Value::Null).await;
    assert_eq!(plain.body["kind"], "APIGroupList");
    let beta = call(
        &s,
        "GET",
        "/apis",
        &[(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
        )],
        Value::Null,
    )
    .await;
    assert_eq!(beta.body["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    let prefer_plain = call(
        &s,
        "GET",
        "/api",
        &[(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList;q=0.5,application/json",
        )],
        Value::Null,
    )
    .await;
    assert_eq!(prefer_plain.body["kind"], "APIVersions");
}

const HPAS_V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const HPAS_V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

// pkg/apis/autoscaling/v1/conversion.go; test/integration/etcd/data.go (v1 stored as v2).
#[tokio::test]
async fn hpa_written_in_v1_is_stored_once_and_read_in_both_versions() {
    let s = sim();
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 4, "targetCPUUtilizationPercentage": 65}});
    let a = write(&s, "POST", HPAS_V1, J, v1).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.body["apiVersion"], "autoscaling/v1");
    assert_eq!(a.body["spec"]["targetCPUUtilizationPercentage"], 65);
    let v2 = get(&s, &format!("{HPAS_V2}/web")).await;
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 65}}}])
    );
    // One object: both lists hold it, with the same uid.
    let l1 = get(&s, HPAS_V1).await;
    let l2 = get(&s, HPAS_V2).await;
    assert_eq!(l1["apiVersion"], "autoscaling/v1");
    assert_eq!(l1["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(
        l1["items"][0]["metadata"]["uid"],
        l2["items"][0]["metadata"]["uid"]
    );
    assert_eq!(l1["items"][0]["apiVersion"], "autoscaling/v1");

    // A v2 metric v1 cannot hold rides in the annotation and survives a v1 read-modify-write.
    let mut with_mem = v2.clone();
    with_mem["spec"]["metrics"] = json!([
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 65}}},
    ]);
    let a = write(&s, "PUT", &format!("{HPAS_V2}/web"), J, with_mem).await;
    assert_eq!(a.code, 200, "{}", a.body);
    let mut got = get(&s, &format!("{HPAS_V1}/web")).await;
    let ann = got["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
        .as_str()
        .expect("metrics annotation")
        .to_string();
    assert!(ann.contains("\"targetAverageValue\":\"500Mi\""), "{ann}");
    got["spec"]["maxReplicas"] = json!(6);
    let a = write(&s, "PUT", &format!("{HPAS_V1}/web"), J, got).await;
    assert_eq!(a.code, 200, "{}", a.body);
    let v2 = get(&s, &format!("{HPAS_V2}/web")).await;
    assert_eq!(v2["spec"]["maxReplicas"], 6);
    assert_eq!(v2["spec"]["metrics"].as_array().unwrap().len(), 2, "{v2}");
    assert!(
        v2["metadata"]["annotations"]
            .get("autoscaling.alpha.kubernetes.io/metrics")
            .is_none(),
        "the conversion annotation is not stored: {v2}"
    );

    // A merge patch in v1 applies to the v1 form; validation runs on the stored form, so its
    // error names the v2 path (as upstream's internal-version validation does).
    let p = write(
        &s,
        "PATCH",
        &format!("{HPAS_V1}/web"),
        "application/merge-patch+json",
        json!({"spec": {"targetCPUUtilizationPercentage": 30}}),
    )
    .await;
    assert_eq!(p.code, 200, "{}", p.body);
    assert_eq!(p.body["spec"]["targetCPUUtilizationPercentage"], 30);
    let bad = write(
        &s,
        "PATCH",
        &format!("{HPAS_V1}/web"),
        "application/merge-patch+json",
        json!({"spec": {"targetCPUUtilizationPercentage": 0}}),
    )
    .await;
    assert_eq!(bad.code, 422, "{}", bad.body);
    assert!(
        bad.body["message"]
            .as_str()
            .unwrap()
            .contains("spec.metrics[1].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"),
        "{}",
        bad.body
    );
    // A field v1 does not have: dropped with a warning, refused under Strict.
    let strict = write(
        &s,
        "POST",
        &format!("{HPAS_V1}?fieldValidation=Strict"),
        J,
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "x"}, "spec": {"maxReplicas": 2, "metrics": [],
            "scaleTargetRef": {"kind": "Deployment", "name": "x"}}}),
    )
    .await;
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert!(
        strict.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.metrics\""),
        "{}",
        strict.body
    );
}

// pkg/apis/autoscaling/v1/conversion.go: no target at all is the 80% cpu default.
#[tokio::test]
async fn hpa_v1_without_target_is_stored_with_the_default_cpu_metric() {
    let s = sim();
    let a = write(
        &s,
        "POST",
        HPAS_V1,
        J,
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "d"}, "spec": {"maxReplicas": 3,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}}),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let v2 = get(&s, &format!("{HPAS_V2}/d")).await;
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        80
    );
}

const EVENTS: &str = "/api/v1/namespaces/default/events";
const EVENTS_V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";

// pkg/apis/events/v1/conversion.go; default_storage_factory_builder.go (events cohabit).
#[tokio::test]
async fn events_are_one_collection_in_two_shapes() {
    let s = sim();
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "legacy"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "reason": "Killing", "message": "Stopping container nginx", "type": "Normal",
        "source": {"component": "kubelet"}, "count": 3,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z"});
    assert_eq!(write(&s, "POST", EVENTS, J, core).await.code, 201);
    let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "new"},
        "eventTime": "2026-01-01T00:02:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-01T00:03:00.000000Z"},
        "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-sim",
        "action": "Scheduling", "reason": "FailedScheduling", "type": "Warning",
        "regarding": {"kind": "Pod", "name": "web-1", "namespace": "default"},
        "note": "0/3 nodes are available"});
    let a = write(&s, "POST", EVENTS_V1, J, new).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.body["apiVersion"], "events.k8s.io/v1");
    assert_eq!(a.body["note"], "0/3 nodes are available");

    // The core view of the events.k8s.io one: no legacy timestamps, a series.
    let c = get(&s, &format!("{EVENTS}/new")).await;
    assert_eq!(c["apiVersion"], "v1");
    assert_eq!(c["message"], "0/3 nodes are available");
    assert_eq!(c["involvedObject"]["name"], "web-1");
    assert!(c["lastTimestamp"].is_null(), "{c}");
    assert_eq!(c["series"]["count"], 2);
    assert_eq!(c["reportingComponent"], "default-scheduler");

    // The events.k8s.io view of the legacy one.
    let e = get(&s, &format!("{EVENTS_V1}/legacy")).await;
    assert_eq!(e["note"], "Stopping container nginx");
    assert_eq!(e["regarding"]["name"], "web-0");
    assert_eq!(e["deprecatedCount"], 3);
    assert_eq!(e["deprecatedLastTimestamp"], "2026-01-01T00:01:00Z");
    assert!(
        e["eventTime"].is_null() && e.get("message").is_none(),
        "{e}"
    );

    let l = get(&s, EVENTS_V1).await;
    assert_eq!(l["kind"], "EventList");
    assert_eq!(l["apiVersion"], "events.k8s.io/v1");
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "events.k8s.io/v1")
    );

    // A table through the view has the event columns of the stored kind.
    let t = call(
        &s,
        "GET",
        EVENTS_V1,
        &[
            ("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
            ("x", "y"),
        ],
        Value::Null,
    )
    .await;
    assert_eq!(t.body["kind"], "Table");
    assert_eq!(t.body["rows"].as_array().unwrap().len(), 2);

    // Deleting through one version removes it from both.
    let d = write(&s, "DELETE", &format!("{EVENTS_V1}/legacy"), J, Value::Null).await;
    assert_eq!(d.code, 200, "{}", d.body);
    assert_eq!(d.body["apiVersion"], "events.k8s.io/v1");
    let gone = call(&s, "GET", &format!("{EVENTS}/legacy"), &[], Value::Null).await;
    assert_eq!(gone.code, 404);
}

// pkg/apis/core/validation/events.go: ValidateEventCreate is strict through events.k8s.io/v1
// (eventTime, reporter, action, reason, type, no deprecated fields, a series of 2 or more);
// legacyValidateEvent holds every event: a core one in its involved object's namespace.
#[tokio::test]
async fn events_are_validated_as_the_api_server_does() {
    let s = sim();
    let good = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "ok"},
        "eventTime": "2026-01-01T00:02:00.000000Z",
        "reportingController": "playbook", "reportingInstance": "host/pb-1",
        "action": "Inject", "reason": "FaultInjected", "type": "Normal",
        "regarding": {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "name": "f", "namespace": "default"},
        "related": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "default"},
        "note": "PodChaos default/f injected"});
    let a = write(&s, "POST", EVENTS_V1, J, good.clone()).await;
    assert_eq!(a.code, 201, "{}", a.body);
    assert_eq!(a.body["related"]["kind"], "Deployment");

    let mut bad = good.clone();
    bad["metadata"]["name"] = json!("bad");
    for f in ["eventTime", "reportingController", "action", "reason"] {
        bad.as_object_mut().unwrap().remove(f);
    }
    bad["type"] = json!("Info");
    bad["note"] = json!("x".repeat(1025));
    bad["series"] = json!({"count": 1});
    bad["deprecatedCount"] = json!(2);
    let b = write(&s, "POST", EVENTS_V1, J, bad).await;
    assert_eq!(b.code, 422, "{}", b.body);
    let fields: Vec<&str> = b.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    for f in [
        "series.count",
        "series.lastObservedTime",
        "eventTime",
        "type",
        "count",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }

    // Without eventTime (a core event), legacy validation: the namespace must match.
    let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "elsewhere"},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "other"},
        "reason": "Killing", "message": "m", "type": "Normal"});
    let c = write(&s, "POST", EVENTS, J, core).await;
    assert_eq!(c.code, 422, "{}", c.body);
    assert!(
        c.body["message"].as_str().unwrap().contains(
            "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
        ),
        "{}",
        c.body
    );
    // A core create with eventTime is held to the reporter fields and the note's length.
    let core_v = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "nv"},
        "eventTime": "2026-01-01T00:02:00.000000Z",
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default"},
        "reason": "Killing", "message": "y".repeat(1025), "type": "Normal"});
    let d = write(&s, "POST", EVENTS, J, core_v).await;
    assert_eq!(d.code, 422, "{}", d.body);
    let msg = d.body["message"].as_str().unwrap();
    for part in [
        "reportingController: Required value",
        "action: Required value",
        "message: Invalid value",
    ] {
        assert!(msg.contains(part), "{part} in {msg}");
    }
}

// A watch through a view streams the request's version.
#[tokio::test]
async fn watch_through_a_view_streams_converted_objects() {
    let s = sim();
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "w"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Pulled", "message": "pulled", "type": "Normal"});
    assert_eq!(write(&s, "POST", EVENTS, J, ev).await.code, 201);
    let req = axum::http::Request::builder()
        .uri(format!("{EVENTS_V1}?watch=1&timeoutSeconds=1"))
        .body(axum::body::Body::empty())
        .expect("request");
    let resp = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sim_router_collect(&s, req),
    )
    .await
    .expect("watch ends by its timeout");
    let first: Value = serde_json::from_str(resp.lines().next().expect("a line")).expect("json");
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(first["object"]["note"], "pulled");
}

async fn sim_router_collect(s: &Sim, req: axum::http::Request<axum::body::Body>) -> String {
    let resp = s.router().oneshot(req).await.expect("response");
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}
