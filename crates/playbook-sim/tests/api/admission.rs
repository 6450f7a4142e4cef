//! Admission as a real API server does it: typed decoding, field validation of built-in kinds,
//! pruning and defaulting of custom resources with `fieldValidation`, pod logs and exec,
//! watch compaction. Each test names the upstream file whose behaviour it checks.

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

/// One request: (status code, JSON body, Warning headers).
async fn call(
    sim: &Sim,
    method: &str,
    uri: &str,
    ct: &str,
    body: Value,
) -> (u16, Value, Vec<String>) {
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", ct)
        .body(axum::body::Body::from(if body.is_null() {
            String::new()
        } else {
            body.to_string()
        }))
        .expect("request");
    let resp = sim.router().oneshot(req).await.expect("response");
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (code, v, warnings)
}

const J: &str = "application/json";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}})
}

// pkg/apis/apps/validation/validation.go ValidateDeploymentSpec (replicas) via every write path.
#[tokio::test]
async fn negative_replicas_are_invalid_on_every_write_path() {
    let s = sim();
    let (code, _, _) = call(&s, "POST", DEPLOYS, J, deployment("x")).await;
    assert_eq!(code, 201);
    let want = "Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0";
    let patch = json!({"spec": {"replicas": -1}});
    for (method, uri, ct, body) in [
        (
            "PATCH",
            format!("{DEPLOYS}/x"),
            "application/strategic-merge-patch+json",
            patch.clone(),
        ),
        (
            "PATCH",
            format!("{DEPLOYS}/x?dryRun=All"),
            "application/merge-patch+json",
            patch.clone(),
        ),
        (
            "PATCH",
            format!("{DEPLOYS}/x"),
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": -1}]),
        ),
        (
            "PATCH",
            format!("{DEPLOYS}/x?fieldManager=t"),
            "application/apply-patch+yaml",
            {
                let mut d = deployment("x");
                d["spec"]["replicas"] = json!(-1);
                d
            },
        ),
        ("PUT", format!("{DEPLOYS}/x"), J, {
            let mut d = deployment("x");
            d["spec"]["replicas"] = json!(-1);
            d
        }),
        (
            "PUT",
            format!("{DEPLOYS}/x/scale"),
            J,
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "x", "namespace": "default"}, "spec": {"replicas": -1}}),
        ),
    ] {
        let (code, st, _) = call(&s, method, &uri, ct, body).await;
        assert_eq!(code, 422, "{method} {uri} {ct}: {st}");
        if !uri.contains("/scale") {
            assert_eq!(st["message"], want, "{method} {uri} {ct}");
            assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
            assert_eq!(st["details"]["causes"][0]["field"], "spec.replicas");
        }
    }
    let (_, d, _) = call(&s, "GET", &format!("{DEPLOYS}/x"), J, Value::Null).await;
    assert_eq!(d["spec"]["replicas"], 1, "nothing invalid was stored");
}

// pkg/apis/apps/validation/validation.go ValidatePodTemplateSpecForReplicaSet; core ValidatePodSpec.
#[tokio::test]
async fn selector_template_and_pod_spec_are_validated_even_in_dry_run() {
    let s = sim();
    let mut d = deployment("m");
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let (code, st, _) = call(&s, "POST", &format!("{DEPLOYS}?dryRun=All"), J, d).await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        "Deployment.apps \"m\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
    );
    let mut d = deployment("n");
    d["spec"].as_object_mut().expect("spec").remove("selector");
    let (code, st, _) = call(&s, "POST", DEPLOYS, J, d).await;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "Deployment.apps \"n\" is invalid: spec.selector: Required value"
    );
    let (code, st, _) = call(
        &s,
        "POST",
        "/api/v1/namespaces/default/pods?dryRun=All",
        J,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "Pod \"p\" is invalid: spec.containers: Required value"
    );
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueRequired");
    let (code, st, _) = call(&s, "POST", "/api/v1/namespaces/default/pods", J,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"}, "spec": {"restartPolicy": "Sometimes",
            "containers": [{"name": "Web_1", "image": "", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}})).await;
    assert_eq!(code, 422);
    let fields: Vec<&str> = st["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .map(|c| c["field"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        fields,
        [
            "spec.containers[0].name",
            "spec.containers[0].image",
            "spec.containers[0].resources.requests",
            "spec.restartPolicy"
        ],
        "{st}"
    );
    let msg = st["message"].as_str().expect("message");
    assert!(msg.contains("spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"), "{msg}");
    assert!(msg.contains("spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"), "{msg}");
    assert!(msg.contains("spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""), "{msg}");
    assert_eq!(
        st["details"]["causes"][3]["reason"],
        "FieldValueNotSupported"
    );
}

// staging/src/k8s.io/apiserver/pkg/endpoints/handlers/create.go transformDecodeError and
// handlers/patch.go (jsonPatcher / smpPatcher): type errors.
#[tokio::test]
async fn type_errors_are_answered_as_the_decoder_does() {
    let s = sim();
    let mut d = deployment("t");
    d["spec"]["replicas"] = json!("three");
    let (code, st, _) = call(&s, "POST", &format!("{DEPLOYS}?dryRun=All"), J, d).await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(
        st["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    );
    call(&s, "POST", DEPLOYS, J, deployment("t")).await;
    let (code, st, _) = call(
        &s,
        "PATCH",
        &format!("{DEPLOYS}/t"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"replicas": "three"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["message"],
        " \"\" is invalid: patch: Invalid value: \"map[spec:map[replicas:three]]\": unrecognized type: int32"
    );
    let (code, st, _) = call(&s, "PATCH", &format!("{DEPLOYS}/t"), "application/merge-patch+json", json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "80"}]}]}}}})).await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"].as_str().expect("msg").ends_with("json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"), "{st}");
}

// handlers/create.go + rest.go fieldValidation for a built-in kind: unknown fields dropped.
#[tokio::test]
async fn unknown_fields_of_builtins_follow_field_validation() {
    let s = sim();
    let mut d = deployment("u");
    d["spec"]["replica"] = json!(2);
    let (code, st, _) = call(
        &s,
        "POST",
        &format!("{DEPLOYS}?fieldValidation=Strict"),
        J,
        d.clone(),
    )
    .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (
            400,
            Some("strict decoding error: unknown field \"spec.replica\"")
        )
    );
    let (code, obj, warnings) = call(&s, "POST", DEPLOYS, J, d).await;
    assert_eq!(code, 201);
    assert_eq!(warnings, ["299 - \"unknown field \\\"spec.replica\\\"\""]);
    assert!(obj["spec"].get("replica").is_none(), "dropped: {obj}");
    let (code, st, _) = call(
        &s,
        "POST",
        &format!("{DEPLOYS}?fieldValidation=Loud"),
        J,
        deployment("v"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        st["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loud\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}

const STRESS: &str = "/apis/chaos-mesh.org/v1alpha1/namespaces/default/stresschaos";
const NETWORK: &str = "/apis/chaos-mesh.org/v1alpha1/namespaces/default/networkchaos";

// staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning/algorithm.go and
// .../schema/defaulting (PruneNonNullableNullsWithoutDefaults, Default): custom resources.
#[tokio::test]
async fn custom_resources_are_pruned_and_defaulted() {
    let s = sim();
    // What chaostoolkit-kubernetes' stress_cpu sends: containerNames null.
    let stress = json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "StressChaos", "metadata": {"name": "s"},
        "spec": {"mode": "one", "selector": {"namespaces": ["default"]}, "containerNames": null, "durtion": "30s",
        "stressors": {"cpu": {"workers": 1, "load": 50}}}});
    let (code, st, _) = call(
        &s,
        "POST",
        &format!("{STRESS}?fieldValidation=Strict"),
        J,
        stress.clone(),
    )
    .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (
            400,
            Some("strict decoding error: unknown field \"spec.durtion\"")
        )
    );
    let (code, obj, warnings) = call(&s, "POST", STRESS, J, stress.clone()).await;
    assert_eq!(code, 201, "{obj}");
    assert_eq!(warnings, ["299 - \"unknown field \\\"spec.durtion\\\"\""]);
    assert!(
        obj["spec"].get("containerNames").is_none() && obj["spec"].get("durtion").is_none(),
        "{obj}"
    );
    let (code, _, warnings) = call(
        &s,
        "POST",
        &format!("{STRESS}?fieldValidation=Ignore&dryRun=All"),
        J,
        {
            let mut x = stress.clone();
            x["metadata"]["name"] = json!("s2");
            x
        },
    )
    .await;
    assert_eq!((code, warnings.len()), (201, 0));
    let net = json!({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos", "metadata": {"name": "n"},
        "spec": {"action": "delay", "mode": "all", "selector": {"namespaces": ["default"]}, "delay": {"latency": "10ms"}}});
    let (code, obj, _) = call(&s, "POST", NETWORK, J, net).await;
    assert_eq!(code, 201, "{obj}");
    assert_eq!(obj["spec"]["direction"], "to");
    // An invalid enum: FieldValueNotSupported (apimachinery field/errors.go NotSupported).
    let (code, st, _) = call(
        &s,
        "PATCH",
        &format!("{NETWORK}/n"),
        "application/merge-patch+json",
        json!({"spec": {"direction": "sideways"}}),
    )
    .await;
    assert_eq!(code, 422, "{st}");
    assert_eq!(
        st["details"]["causes"][0]["reason"],
        "FieldValueNotSupported"
    );
}

// pkg/registry/core/pod/rest/log.go: an empty container means the only one; exec without an
// upgrade is 400 (apiserver/pkg/util/proxy/upgradeaware.go).
#[tokio::test]
async fn logs_with_empty_container_and_exec_without_upgrade() {
    let s = sim();
    let pods = "/api/v1/namespaces/default/pods";
    call(
        &s,
        "POST",
        pods,
        J,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    )
    .await;
    let (code, _, _) = call(
        &s,
        "GET",
        &format!("{pods}/p/log?container="),
        J,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    let (code, st, _) = call(
        &s,
        "GET",
        &format!("{pods}/p/log?container=x"),
        J,
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("container x is not valid for pod p"))
    );
    let (code, st, _) = call(
        &s,
        "POST",
        &format!("{pods}/p/exec?command=ls&container=c"),
        J,
        Value::Null,
    )
    .await;
    assert_eq!(
        (code, st["message"].as_str()),
        (400, Some("Upgrade request required"))
    );
}

// apiserver/pkg/storage/etcd3/compact.go: compaction every 5 minutes to the previous tick's revision.
#[tokio::test]
async fn a_watch_from_a_long_stale_resource_version_is_expired() {
    let s = sim();
    let cms = "/api/v1/namespaces/default/configmaps";
    let (_, cm, _) = call(
        &s,
        "POST",
        cms,
        J,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
    )
    .await;
    let old_rv = cm["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    call(
        &s,
        "POST",
        cms,
        J,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}),
    )
    .await;
    // A minute later the history is still there.
    s.advance_by(jiff::SignedDuration::from_secs(60));
    let (code, body, _) = call(
        &s,
        "GET",
        &format!("{cms}?watch=1&resourceVersion={old_rv}&timeoutSeconds=1"),
        J,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body.to_string().contains("ADDED") || body.is_object(),
        "{body}"
    );
    s.advance_by(jiff::SignedDuration::from_secs(11 * 60));
    let (code, body, _) = call(
        &s,
        "GET",
        &format!("{cms}?watch=1&resourceVersion={old_rv}&timeoutSeconds=1"),
        J,
        Value::Null,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body["type"], "ERROR", "{body}");
    assert_eq!(body["object"]["code"], 410);
    assert_eq!(body["object"]["reason"], "Expired");
}
