//! Pluggable answers for the service proxy (`services/NAME/proxy/...`) and pod logs.

use futures::future::BoxFuture;
use serde_json::Value;

use super::super::Sim;

/// A request that reached `/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH`.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// HTTP method, e.g. `GET`.
    pub method: String,
    /// The service's namespace.
    pub namespace: String,
    /// The service's name.
    pub service: String,
    /// The port part of `NAME:PORT` (a number or a port name), if given.
    pub port: Option<String>,
    /// The path after `/proxy`, starting with `/` (`/` when empty).
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Request headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: bytes::Bytes,
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct ProxyResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: bytes::Bytes,
}

/// Answers requests proxied to services (e.g. the platform's traffic model). Register with
/// [`Sim::set_service_proxy`]. Returning `None` gives the real server's answer for a service
/// without endpoints: 503 `no endpoints available for service "NAME"`.
pub trait ServiceProxy: Send + Sync {
    /// Handles one proxied request. Called without the world lock held; use `sim` to look at
    /// or change the world.
    fn handle(&self, sim: &Sim, req: ProxyRequest) -> BoxFuture<'static, Option<ProxyResponse>>;
}

/// The text of `GET pods/NAME/log`. Register with [`Sim::set_pod_logs`]; the default is empty.
pub trait PodLogs: Send + Sync {
    /// The log of `container` (None: the pod's only/first container) of `pod`.
    fn logs(&self, sim: &Sim, pod: &Value, container: Option<&str>) -> String;
}
