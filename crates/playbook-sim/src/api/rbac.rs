//! RBAC as the API server enforces it, for requests that carry a bearer token: the token names
//! a ServiceAccount through its token Secret (type `kubernetes.io/service-account-token`,
//! annotation `kubernetes.io/service-account.name`, as legacy token Secrets do), and the
//! request is allowed when a rule of a Role or ClusterRole bound to it allows the request's
//! verb, API group, resource/subresource and name — plugin/pkg/auth/authorizer/rbac/rbac.go
//! (RBACAuthorizer.Authorize, VisitRulesFor) and pkg/apis/rbac/v1/evaluation_helpers.go
//! (VerbMatches, APIGroupMatches, ResourceMatches, ResourceNameMatches). A token that names no
//! ServiceAccount is `system:anonymous`, bound to nothing. Requests without a token are the
//! simulator's administrator, as before. Discovery and `/version` are open to all (the
//! `system:discovery` and `system:public-info-viewer` ClusterRoles). Also answers
//! SelfSubjectAccessReview (pkg/registry/authorization/selfsubjectaccessreview/rest.go).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::Sim;
use super::super::error::{ApiError, Reason};
use super::super::selector::{FieldSelector, LabelSelector};
use super::{Req, Target};

/// Who is asking.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct User {
    pub name: String,
    pub groups: Vec<String>,
}

/// What is asked (k8s.io/apiserver/pkg/authorization/authorizer.AttributesRecord).
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn list(sim: &Sim, group: &str, version: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
    let w = sim.lock();
    let store = w.store();
    let Some(res) = store.registry().by_gvr(group, version, plural) else {
        return Vec::new();
    };
    store
        .list(
            res,
            ns,
            &LabelSelector::default(),
            &FieldSelector::default(),
        )
        .iter()
        .map(|v| (**v).clone())
        .collect()
}

/// The user a request's bearer token names; `None` without a token (the administrator).
pub(crate) fn user(sim: &Sim, r: &Req) -> Option<User> {
    let token = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.strip_prefix("Bearer "))?
        .trim();
    let encoded = base64(token.as_bytes());
    let secret = list(sim, "", "v1", "secrets", None).into_iter().find(|s| {
        s["type"] == "kubernetes.io/service-account-token" && s["data"]["token"] == encoded.as_str()
    });
    let Some(s) = secret else {
        return Some(User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        });
    };
    let ns = s["metadata"]["namespace"].as_str().unwrap_or_default();
    let sa = s["metadata"]["annotations"]["kubernetes.io/service-account.name"]
        .as_str()
        .unwrap_or_default();
    Some(User {
        name: format!("system:serviceaccount:{ns}:{sa}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    })
}

/// Whether a binding's subject is `user` (rbac.go appliesToUser).
fn applies(subject: &Value, user: &User, binding_ns: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str() {
        Some("ServiceAccount") => {
            let ns = subject["namespace"].as_str().unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        Some("User") => user.name == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        _ => false,
    }
}

fn has(list: &Value, want: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|v| v == "*" || v == want))
}

/// Whether one PolicyRule allows `a` (evaluation_helpers.go RuleAllows).
fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let resource_ok = rule["resources"].as_array().is_some_and(|rs| {
        rs.iter().any(|r| {
            let r = r.as_str().unwrap_or_default();
            if a.subresource.is_empty() {
                r == "*" || r == a.resource
            } else {
                r == "*"
                    || r == format!("{}/{}", a.resource, a.subresource)
                    || r == format!("*/{}", a.subresource)
            }
        })
    });
    let names_ok = match rule["resourceNames"].as_array() {
        None => true,
        Some(n) if n.is_empty() => true,
        Some(n) => n.iter().any(|x| x == a.name.as_str()),
    };
    has(&rule["verbs"], &a.verb) && has(&rule["apiGroups"], &a.group) && resource_ok && names_ok
}

/// The rules of the role a binding refers to (a Role in `ns`, or a ClusterRole).
fn role_rules(sim: &Sim, binding: &Value, ns: Option<&str>) -> Vec<Value> {
    let name = binding["roleRef"]["name"].as_str().unwrap_or_default();
    let (plural, ns) = match binding["roleRef"]["kind"].as_str() {
        Some("Role") => ("roles", ns),
        _ => ("clusterroles", None),
    };
    list(sim, "rbac.authorization.k8s.io", "v1", plural, ns)
        .into_iter()
        .find(|r| r["metadata"]["name"] == name)
        .and_then(|r| r["rules"].as_array().cloned())
        .unwrap_or_default()
}

/// Whether `user` may do `a` (rbac.go Authorize: cluster role bindings, then the role bindings
/// of the request's namespace).
pub(crate) fn allowed(sim: &Sim, user: &User, a: &Attributes) -> bool {
    let g = "rbac.authorization.k8s.io";
    let cluster = list(sim, g, "v1", "clusterrolebindings", None);
    let visit = |binding: &Value, ns: Option<&str>| {
        let binding_ns = ns.unwrap_or_default();
        let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
        subjects.iter().any(|s| applies(s, user, binding_ns))
            && role_rules(sim, binding, ns)
                .iter()
                .any(|r| rule_allows(r, a))
    };
    if cluster.iter().any(|b| visit(b, None)) {
        return true;
    }
    if a.namespace.is_empty() {
        return false;
    }
    list(sim, g, "v1", "rolebindings", Some(&a.namespace))
        .iter()
        .any(|b| visit(b, Some(&a.namespace)))
}

/// The request's verb (requestinfo.go: list vs get by name, watch, deletecollection).
fn verb(r: &Req, t: &Target) -> &'static str {
    match (&r.method, t.name.is_some()) {
        (&Method::GET | &Method::HEAD, _) if r.q_bool("watch") => "watch",
        (&Method::GET | &Method::HEAD, true) => "get",
        (&Method::GET | &Method::HEAD, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// The forbidden message (apiserver's responsewriters/errors.go forbiddenMessage).
fn forbidden(user: &User, a: &Attributes) -> ApiError {
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let what = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let subject = if a.name.is_empty() {
        what
    } else {
        format!("{what} {:?}", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    ApiError::new(
        Reason::Forbidden,
        format!(
            "{subject} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            user.name, a.verb, a.group
        ),
    )
}

/// The hook where requests are routed: refuses what the token's user may not do.
pub(crate) fn authorize(sim: &Sim, r: &Req, group: &str, t: &Target) -> Result<(), ApiError> {
    let Some(user) = user(sim, r) else {
        return Ok(());
    };
    let w = sim.lock();
    let resource = w.store().registry().def(t.res).plural.clone();
    drop(w);
    let a = Attributes {
        verb: verb(r, t).into(),
        group: group.into(),
        resource,
        subresource: t.sub.clone().unwrap_or_default(),
        namespace: t.ns.clone().unwrap_or_default(),
        name: t.name.clone().unwrap_or_default(),
    };
    if allowed(sim, &user, &a) {
        Ok(())
    } else {
        Err(forbidden(&user, &a))
    }
}

/// `POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews`: whether the requester may do
/// what `spec.resourceAttributes` says.
pub(crate) fn self_subject_access_review(sim: &Sim, r: &Req) -> Result<Response, ApiError> {
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| ApiError::new(Reason::BadRequest, format!("invalid review: {e}")))?;
    let ra = &body["spec"]["resourceAttributes"];
    if !ra.is_object() {
        return Err(ApiError::new(
            Reason::Invalid,
            "spec.resourceAttributes: Required value (nonResourceAttributes are not simulated)",
        ));
    }
    let s = |k: &str| ra[k].as_str().unwrap_or_default().to_string();
    let a = Attributes {
        verb: s("verb"),
        group: s("group"),
        resource: s("resource"),
        subresource: s("subresource"),
        namespace: s("namespace"),
        name: s("name"),
    };
    let allowed = user(sim, r).is_none_or(|u| allowed(sim, &u, &a));
    let mut out = body.clone();
    out["apiVersion"] = json!("authorization.k8s.io/v1");
    out["kind"] = json!("SelfSubjectAccessReview");
    out["status"] = json!({ "allowed": allowed });
    Ok(super::json(StatusCode::CREATED, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: "ns".into(),
            name: "x".into(),
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule = json!({"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"]});
        assert!(rule_allows(&rule, &attrs("get", "apps", "deployments", "")));
        assert!(rule_allows(
            &rule,
            &attrs("get", "apps", "deployments", "scale")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("patch", "apps", "deployments", "")
        ));
        assert!(!rule_allows(&rule, &attrs("get", "", "deployments", "")));
        assert!(!rule_allows(
            &rule,
            &attrs("get", "apps", "deployments", "status")
        ));
        let wild = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/scale"]});
        assert!(rule_allows(
            &wild,
            &attrs("patch", "apps", "statefulsets", "scale")
        ));
        assert!(!rule_allows(
            &wild,
            &attrs("patch", "apps", "statefulsets", "")
        ));
        let named = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["y"]});
        assert!(!rule_allows(&named, &attrs("get", "", "pods", "")));
    }

    #[test]
    fn base64_as_secrets_store_it() {
        assert_eq!(base64(b"token-1"), "dG9rZW4tMQ==");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
