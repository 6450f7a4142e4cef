//! Counts the API requests `sim serve` answers, by verb, so a benchmark can measure how much a
//! playbook asks of an API server: `GET /playbook-sim/requests` (not counted itself) returns
//! `{"total": N, "by_verb": {"get": .., "list": .., "watch": .., ...}}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Where the meter's counts are read.
pub const PATH: &str = "/playbook-sim/requests";

/// The counts of one server.
#[derive(Clone, Default)]
pub struct Meter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

/// The Kubernetes verb of a request (watch and list told apart as the apiserver does:
/// staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go).
fn verb(method: &Method, path: &str, query: &str) -> &'static str {
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let segments = path.trim_matches('/').split('/').count();
    let collection = match path.split('/').nth(1) {
        // /api/v1/PLURAL or /api/v1/namespaces/NS/PLURAL
        Some("api") => segments == 3 || (segments == 5 && path.contains("/namespaces/")),
        // /apis/G/V/PLURAL or /apis/G/V/namespaces/NS/PLURAL
        Some("apis") => segments == 4 || (segments == 6 && path.contains("/namespaces/")),
        _ => false,
    };
    match *method {
        Method::GET if watch => "watch",
        Method::GET if collection => "list",
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

impl Meter {
    /// The counts, as JSON.
    pub fn json(&self) -> serde_json::Value {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let total: u64 = counts.values().sum();
        serde_json::json!({ "total": total, "by_verb": counts })
    }
}

/// The middleware: answers [`PATH`], counts everything else.
pub async fn count(State(meter): State<Meter>, req: Request, next: Next) -> Response {
    if req.uri().path() == PATH {
        let body = serde_json::to_vec(&meter.json()).unwrap_or_default();
        return super::json_bytes(StatusCode::OK, body);
    }
    let v = verb(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
    );
    *meter
        .counts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(v.to_string())
        .or_default() += 1;
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_as_the_apiserver_names_them() {
        assert_eq!(verb(&Method::GET, "/api/v1/namespaces/a/pods", ""), "list");
        assert_eq!(
            verb(&Method::GET, "/api/v1/namespaces/a/pods", "watch=true"),
            "watch"
        );
        assert_eq!(verb(&Method::GET, "/api/v1/namespaces/a/pods/p", ""), "get");
        assert_eq!(verb(&Method::GET, "/apis/apps/v1/deployments", ""), "list");
        assert_eq!(
            verb(&Method::GET, "/apis/apps/v1/namespaces/a/deployments/d", ""),
            "get"
        );
        assert_eq!(
            verb(
                &Method::POST,
                "/apis/chaos-mesh.org/v1alpha1/namespaces/a/podchaos",
                ""
            ),
            "create"
        );
    }
}
