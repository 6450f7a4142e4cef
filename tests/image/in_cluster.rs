//! In-cluster configuration end to end: the image runs as a pod would, with a service
//! account's token, CA and namespace mounted at /var/run/secrets/kubernetes.io/serviceaccount
//! and KUBERNETES_SERVICE_HOST/PORT pointing at `sim serve --tls` (buildah's chroot isolation
//! shares the host's network, as a pod shares its node's loopback with hostNetwork). The
//! service account holds exactly what `playbook rbac` generates for the playbook: the seed
//! playbook passes, and anything else is refused by name.

use std::path::Path;
use std::time::Instant;

use base64::Engine as _;

use super::Image;
use crate::cli::playbook;
use crate::sim_api::Server;

/// A service account token shaped as the API server's (a JWT whose `sub` names the account);
/// the simulator knows it from its token Secret, as legacy token Secrets work.
fn token(namespace: &str, account: &str) -> String {
    let part = |json: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    format!(
        "{}.{}.{}",
        part(r#"{"alg":"RS256","kid":"playbook-sim"}"#.to_string()),
        part(format!(
            r#"{{"iss":"kubernetes/serviceaccount","sub":"system:serviceaccount:{namespace}:{account}"}}"#
        )),
        part("not-verified-by-the-simulator".to_string())
    )
}

#[test]
fn the_image_in_a_pod_uses_its_service_account_with_exactly_the_generated_permissions() {
    let image = Image::get();
    let server = Server::start_with(&["--tls", "--seed", "7"]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap().to_string();

    let rbac = playbook(&["rbac", "playbooks/pod-failure.rhai"]);
    assert_eq!(rbac.status.code(), Some(0));
    server.ok_stdin(
        &["apply", "-f", "-"],
        &String::from_utf8_lossy(&rbac.stdout),
    );
    let token = token("default", "playbook");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&token);
    server.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: playbook-token\n  namespace: default\n  annotations:\n    kubernetes.io/service-account.name: playbook\ntype: kubernetes.io/service-account-token\ndata:\n  token: {encoded}\n"
        ),
    );

    // What the kubelet mounts for a pod's service account.
    let secrets = crate::support::tempdir();
    std::fs::write(secrets.join("token"), &token).unwrap();
    std::fs::copy(
        playbook_sim::serve::ca_path(&server.kubeconfig),
        secrets.join("ca.crt"),
    )
    .expect("sim serve --tls wrote its CA beside the kubeconfig");
    std::fs::write(secrets.join("namespace"), "default").unwrap();
    let dir = crate::support::tempdir();
    std::fs::write(
        dir.join("secret.rhai"),
        r#"print(cluster::get("default", "secret/playbook-token"));"#,
    )
    .unwrap();
    std::fs::copy("playbooks/pod-failure.rhai", dir.join("pod-failure.rhai")).unwrap();

    let c = image.container();
    let sa = format!(
        "{}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
        secrets.display()
    );
    let pbs = format!("{}:/playbooks:ro", dir.display());
    let host = "KUBERNETES_SERVICE_HOST=127.0.0.1".to_string();
    let port = format!("KUBERNETES_SERVICE_PORT={port}");
    let options = [
        "--network",
        "host",
        "-v",
        &sa,
        "-v",
        &pbs,
        "--env",
        &host,
        "--env",
        &port,
    ];
    let in_pod = |file: &str| c.run(&options, &["playbook", "run", "--timeout", "5m", file]);

    let start = Instant::now();
    let (code, out) = in_pod("pod-failure.rhai");
    eprintln!(
        "pod-failure.rhai in the image, in-cluster against sim serve --tls: {:.1}s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "target: cluster (in-cluster, service account default/playbook) at https://127.0.0.1:"
        ),
        "{out}"
    );
    assert!(out.contains("1 passed"), "{out}");
    // The token is what the requests carried: its account may not read secrets.
    let (code, out) = in_pod("secret.rhai");
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("forbidden: get secrets in namespace default"),
        "{out}"
    );
    // Nothing is left behind (the administrator's kubectl sees every namespace).
    assert!(Path::new(&server.kubeconfig).exists());
    let left = server.ok(&["get", "podchaos", "-A", "-o", "name"]);
    assert_eq!(left.trim(), "", "no fault is left");
}
