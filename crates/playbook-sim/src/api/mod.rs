//! The HTTP API facade: parses Kubernetes API paths and answers as a real API server does.

pub(crate) mod admission;
pub(crate) mod conversion;
pub mod discovery;
pub mod format;
pub mod meter;
pub mod proxy;
mod rbac;
mod subresources;
pub mod table;
pub(crate) mod validation;
mod verbs;
pub mod watch;

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Sim;
use super::error::ApiError;
use super::resources::{ResId, Served, ViewId};

/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The router over `sim`: every path goes to one dispatcher.
pub fn router(sim: Sim) -> Router {
    Router::new().fallback(handle).with_state(sim)
}

/// A parsed request.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub raw_query: Option<String>,
    pub accept: String,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str)
    }

    pub fn q_bool(&self, k: &str) -> bool {
        matches!(self.q(k), Some("1") | Some("true"))
    }

    /// The client asked for a `meta.k8s.io` Table.
    pub fn wants_table(&self) -> bool {
        self.accept.contains("as=Table")
    }
}

/// Where a resource request points.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The stored kind.
    pub res: ResId,
    /// The other group-version the request names, when not the storage version.
    pub view: Option<ViewId>,
    /// Namespace from the path (None: all namespaces, or cluster-scoped).
    pub ns: Option<String>,
    pub name: Option<String>,
    /// Subresource: `status`, `scale`, `log`, `proxy`, ...
    pub sub: Option<String>,
    /// For `proxy`: the rest of the path.
    pub rest: String,
}

async fn handle(State(sim): State<Sim>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return error(&ApiError::new(
                super::Reason::BadRequest,
                "request body too large",
            ));
        }
    };
    let raw_query = parts.uri.query().map(str::to_string);
    let query: HashMap<String, String> = raw_query
        .as_deref()
        .map(|q| {
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
                .map(|axum::extract::Query(v)| v.into_iter().collect())
                .unwrap_or_else(|_| {
                    q.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect()
                })
        })
        .unwrap_or_default();
    let hv = |h: header::HeaderName| {
        parts
            .headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let r = Req {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query,
        raw_query,
        accept: hv(header::ACCEPT),
        content_type: hv(header::CONTENT_TYPE),
        headers: parts
            .headers
            .iter()
            .filter_map(|(k, v)| {
                v.to_str()
                    .ok()
                    .map(|v| (k.as_str().to_string(), v.to_string()))
            })
            .collect(),
        body,
    };
    match dispatch(&sim, r).await {
        Ok(resp) => resp,
        Err(e) => error(&e),
    }
}

async fn dispatch(sim: &Sim, r: Req) -> Result<Response, ApiError> {
    let segs: Vec<String> = r
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["version"] => return Ok(json(StatusCode::OK, &discovery::version())),
        ["healthz"] | ["livez"] | ["readyz"] => return Ok((StatusCode::OK, "ok").into_response()),
        ["api"] | ["apis"] if let Some(v) = discovery::aggregated_version(&r.accept) => {
            return Ok(aggregated(sim, &r, s.as_slice() == ["api"], v));
        }
        ["api"] => return Ok(json(StatusCode::OK, &discovery::api_versions())),
        ["apis"] => return Ok(json(StatusCode::OK, &discovery::group_list(sim))),
        ["api", "v1"] => {
            return Ok(json(
                StatusCode::OK,
                &discovery::resource_list(sim, "", "v1")?,
            ));
        }
        [
            "apis",
            "authorization.k8s.io",
            "v1",
            "selfsubjectaccessreviews",
        ] if r.method == Method::POST => {
            return rbac::self_subject_access_review(sim, &r);
        }
        ["apis", g] => return Ok(json(StatusCode::OK, &discovery::group(sim, g)?)),
        ["apis", g, v] => return Ok(json(StatusCode::OK, &discovery::resource_list(sim, g, v)?)),
        ["openapi", "v3"] => return Ok(json(StatusCode::OK, &discovery::openapi_v3_index(sim))),
        ["openapi", "v3", rest @ ..] => {
            return Ok(json(
                StatusCode::OK,
                &discovery::openapi_v3_doc(sim, &rest.join("/"))?,
            ));
        }
        _ => {}
    }
    let (group, version, rest) = match s.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_resource()),
    };
    let t = parse_target(sim, group, version, rest)?;
    rbac::authorize(sim, &r, group, &t)?;
    verbs::serve(sim, r, t).await
}

/// Aggregated discovery, with its ETag and a 304 for a client that has it
/// (apiserver/pkg/endpoints/discovery/aggregated/etag.go `ServeHTTPWithETag`).
fn aggregated(sim: &Sim, r: &Req, core: bool, version: &str) -> Response {
    let body = serde_json::to_vec(&discovery::aggregated(sim, core, version)).unwrap_or_default();
    let etag = discovery::etag(&body);
    let cached = r
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("if-none-match") && *v == etag);
    let mut resp = if cached {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        resp
    } else {
        json_bytes(StatusCode::OK, body)
    };
    let h = resp.headers_mut();
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    if let Ok(v) = HeaderValue::try_from(ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::try_from(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
    resp
}

fn parse_target(sim: &Sim, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let w = sim.lock();
    let reg = w.store().registry();
    let find = |plural: &str| {
        reg.served(group, version, plural)
            .ok_or_else(ApiError::no_resource)
    };
    let namespaced = |s: Served| match s.view {
        Some(v) => reg.view(v).def.namespaced,
        None => reg.def(s.res).namespaced,
    };
    let mk = |s: Served, ns: Option<&str>, name: Option<&str>, sub: Option<&str>, rest: &[&str]| {
        Target {
            res: s.res,
            view: s.view,
            ns: ns.map(str::to_string),
            name: name.map(str::to_string),
            sub: sub.map(str::to_string),
            rest: rest.join("/"),
        }
    };
    // namespaces/NS/PLURAL... when PLURAL is a namespaced resource of this group-version.
    if let ["namespaces", ns, plural, more @ ..] = rest
        && let Some(res) = reg
            .served(group, version, plural)
            .filter(|&s| namespaced(s))
    {
        return Ok(match more {
            [] => mk(res, Some(ns), None, None, &[]),
            [name] => mk(res, Some(ns), Some(name), None, &[]),
            [name, sub, tail @ ..] => mk(res, Some(ns), Some(name), Some(sub), tail),
        });
    }
    match rest {
        [plural] => Ok(mk(find(plural)?, None, None, None, &[])),
        [plural, name] => {
            let res = find(plural)?;
            if namespaced(res) {
                return Err(ApiError::no_resource());
            }
            Ok(mk(res, None, Some(name), None, &[]))
        }
        [plural, name, sub, tail @ ..] => {
            let res = find(plural)?;
            if namespaced(res) {
                return Err(ApiError::no_resource());
            }
            Ok(mk(res, None, Some(name), Some(sub), tail))
        }
        _ => Err(ApiError::no_resource()),
    }
}

/// Decodes `%XX` escapes (invalid ones are kept as is).
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(x) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON response.
pub(crate) fn json(code: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    json_bytes(code, body)
}

/// A JSON response from bytes.
pub(crate) fn json_bytes(code: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The `Status` answer of an error.
pub(crate) fn error(e: &ApiError) -> Response {
    json(
        StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.status(),
    )
}
