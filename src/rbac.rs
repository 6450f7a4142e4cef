//! Least privilege: the permissions playbooks need (`playbook rbac` prints them as a
//! ServiceAccount, Role/ClusterRole and bindings), and a 403 turned into the permission that
//! is missing.

/// The permission a Kubernetes "forbidden" message names, as `forbidden: VERB RESOURCE in
/// namespace NS` (the apiserver's wording is staging/src/k8s.io/apiserver/pkg/endpoints/
/// handlers/responsewriters/errors.go: `User "u" cannot VERB resource "R" in API group "G" in
/// the namespace "NS"`). A message in another form is kept as it is.
pub fn forbidden(message: &str) -> String {
    let Some(rest) = message.split_once(" cannot ").map(|(_, r)| r) else {
        return format!("forbidden: {message}");
    };
    let verb = rest.split_whitespace().next().unwrap_or_default();
    let quoted = |after: &str| -> Option<&str> {
        let tail = rest.split_once(after)?.1;
        let tail = tail.strip_prefix('"')?;
        tail.split_once('"').map(|(v, _)| v)
    };
    let Some(resource) = quoted("resource ") else {
        return format!("forbidden: {message}");
    };
    let group = quoted("in API group ").filter(|g| !g.is_empty());
    let mut out = format!("forbidden: {verb} {resource}");
    if let Some(g) = group {
        out += &format!(".{g}");
    }
    match quoted("in the namespace ") {
        Some(ns) => out += &format!(" in namespace {ns}"),
        None => out += " (cluster-wide)",
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_message_names_verb_resource_and_namespace() {
        let m = r#"podchaos.chaos-mesh.org "pb-1" is forbidden: User "system:serviceaccount:chaos:playbook" cannot create resource "podchaos" in API group "chaos-mesh.org" in the namespace "argo""#;
        assert_eq!(forbidden(m), "forbidden: create podchaos.chaos-mesh.org in namespace argo");
        let m = r#"namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope"#;
        assert_eq!(forbidden(m), "forbidden: list namespaces (cluster-wide)");
        assert_eq!(forbidden("nope"), "forbidden: nope");
    }
}
