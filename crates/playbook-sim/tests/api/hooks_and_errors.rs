//! The pluggable service proxy and pod logs, and bad requests answered with `Status`, not panics.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use playbook_sim::{ClockMode, ControllerLag, Sim, SimConfig};
use serde_json::json;

/// An instant world (no controller lag): these tests check API semantics step by step.
fn sim() -> Sim {
    Sim::new(SimConfig {
        seed: 7,
        clock: ClockMode::Virtual,
        lag: ControllerLag::Off,
        ..Default::default()
    })
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    )
    .expect("pod")
}

/// Answers every proxied request with the service name and path.
struct Echo;

impl playbook_sim::ServiceProxy for Echo {
    fn handle(
        &self,
        _sim: &Sim,
        req: playbook_sim::ProxyRequest,
    ) -> futures::future::BoxFuture<'static, Option<playbook_sim::ProxyResponse>> {
        Box::pin(async move {
            (req.service != "down").then(|| playbook_sim::ProxyResponse {
                status: 200,
                headers: vec![("content-type".into(), "text/plain".into())],
                body: format!("{} {} {:?} {}", req.method, req.service, req.port, req.path).into(),
            })
        })
    }
}

/// Logs name the pod and container.
struct Logs;

impl playbook_sim::PodLogs for Logs {
    fn logs(&self, _sim: &Sim, pod: &serde_json::Value, container: Option<&str>) -> String {
        format!(
            "log of {} {}\n",
            pod["metadata"]["name"].as_str().unwrap_or("?"),
            container.unwrap_or("-")
        )
    }
}

#[tokio::test]
async fn service_proxy_and_pod_log_hooks() {
    let sim = sim();
    let client = sim.client();
    for name in ["web", "down"] {
        sim.seed(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}}))
            .expect("svc");
    }
    let get = |uri: &str| axum::http::Request::get(uri).body(Vec::new()).expect("req");
    let err = client
        .request_text(get("/api/v1/namespaces/default/services/web/proxy/x"))
        .await
        .expect_err("503");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 503 && s.message == "no endpoints available for service \"web\""),
        "{err:?}"
    );
    sim.set_service_proxy(std::sync::Arc::new(Echo));
    let body = client
        .request_text(get(
            "/api/v1/namespaces/default/services/web:80/proxy/v1/models/m:predict?x=1",
        ))
        .await
        .expect("proxied");
    assert_eq!(body, "GET web Some(\"80\") /v1/models/m:predict");
    let err = client
        .request_text(get("/api/v1/namespaces/default/services/down/proxy/"))
        .await
        .expect_err("none");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 503),
        "{err:?}"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("l"))
        .await
        .expect("pod");
    assert_eq!(
        pods.logs("l", &Default::default())
            .await
            .expect("empty log"),
        ""
    );
    sim.set_pod_logs(std::sync::Arc::new(Logs));
    let lp = kube::api::LogParams {
        container: Some("c".into()),
        ..Default::default()
    };
    assert_eq!(pods.logs("l", &lp).await.expect("log"), "log of l c\n");
    let bad = kube::api::LogParams {
        container: Some("nope".into()),
        ..Default::default()
    };
    assert!(pods.logs("l", &bad).await.is_err());
}

#[tokio::test]
async fn bad_requests_get_status_answers_not_panics() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let sim = sim();
    sim.seed(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}))
        .expect("seed");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, &str, &str, String, u16)> = vec![
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "{not json".into(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/yaml",
            "a: [b".into(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            deep.clone(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "[1,2]".into(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "".into(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            "application/json",
            r#"{"metadata":{"name":"x"}}"#.into(),
            404,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "text/plain",
            "{}".into(),
            415,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json-patch+json",
            "{}".into(),
            400,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
            "nope".into(),
            400,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/apply-patch+yaml",
            "{}".into(),
            400,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
            r#"{"metadata":{"name":"other"}}"#.into(),
            400,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
            r#"{"metadata":{"name":"c","resourceVersion":"1"}}"#.into(),
            409,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?limit=abc",
            "",
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?limit=1&continue=a%C3%A91",
            "",
            String::new(),
            400,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/configmaps/c",
            "application/json",
            // A ConfigMap has no `spec` (a real server drops it with a warning); `data` of the
            // wrong type is the decoder's 400 (handlers/create.go transformDecodeError).
            r#"{"metadata":{"name":"c"},"data":"x"}"#.into(),
            400,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c",
            "application/merge-patch+json",
            r#"{"metadata":"x"}"#.into(),
            400,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/new?fieldManager=t",
            "application/apply-patch+yaml",
            r#"{"metadata":"x"}"#.into(),
            400,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/configmaps/c?fieldManager=t",
            "application/apply-patch+yaml",
            r#"{"metadata":"x"}"#.into(),
            400,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/services",
            "application/json",
            r#"{"metadata":{"name":"s"},"spec":"x"}"#.into(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?limit=1&continue=zz",
            "",
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20(b",
            "",
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?fieldSelector=nonsense",
            "",
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=abc",
            "",
            String::new(),
            400,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/widgets",
            "",
            String::new(),
            404,
        ),
        ("GET", "/apis/nope.io/v1/things", "", String::new(), 404),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/%ZZ%",
            "",
            String::new(),
            404,
        ),
        ("GET", "/api/v1/configmaps/c", "", String::new(), 404),
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/c/scale",
            "",
            String::new(),
            404,
        ),
        (
            "POST",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "application/json",
            "{}".into(),
            405,
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/configmaps/c?propagationPolicy=Sometimes",
            "",
            String::new(),
            400,
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/configmaps/missing",
            "",
            String::new(),
            404,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/configmaps?dryRun=Maybe",
            "application/json",
            "{}".into(),
            400,
        ),
    ];
    for (method, uri, ct, body, code) in cases {
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let resp = sim
            .router()
            .oneshot(req.body(axum::body::Body::from(body)).expect("req"))
            .await
            .expect("resp");
        assert_eq!(resp.status().as_u16(), code, "{method} {uri}");
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let status: serde_json::Value = serde_json::from_slice(&bytes).expect("a Status object");
        assert_eq!(status["kind"], "Status", "{method} {uri}: {status}");
        assert_eq!(status["code"], code, "{method} {uri}");
    }
}
