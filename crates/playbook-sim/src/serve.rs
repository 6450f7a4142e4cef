//! The simulator in wall time on loopback, over plain HTTP or (`--tls`) HTTPS with a CA of its
//! own, with a kubeconfig (`playbook sim serve`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

use super::{ClockMode, Sim, SimConfig};

/// How to serve the simulator (the command line's `playbook sim serve` builds one).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Loopback address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where to write a kubeconfig (context `playbook-sim`) pointing at the simulator.
    pub kubeconfig_out: PathBuf,
    /// Seed of the simulator's random choices.
    pub seed: u64,
    /// The platform the simulator runs.
    pub scenario: super::platform::Scenario,
    /// Log one line per request (method, path, status, duration) on stderr.
    pub verbose: bool,
    /// Serve HTTPS with a certificate signed by a CA made at start-up; the CA is written
    /// beside the kubeconfig ([`ca_path`]).
    pub tls: bool,
}

/// Where `--tls` writes the CA certificate: beside the kubeconfig, named after it
/// (`kubeconfig` -> `kubeconfig.ca.crt`).
pub fn ca_path(kubeconfig: &Path) -> PathBuf {
    beside(kubeconfig, ".ca.crt")
}

/// `kubeconfig` with `suffix` added to its file name.
fn beside(kubeconfig: &Path, suffix: &str) -> PathBuf {
    let mut name = kubeconfig
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "kubeconfig".into());
    name.push(suffix);
    kubeconfig.with_file_name(name)
}

/// The kubeconfig's user: none over HTTP; over HTTPS the administrator's client certificate
/// (kubectl asks for a password when an HTTPS cluster's user has no credentials at all).
fn user(admin: Option<(&Path, &Path)>) -> String {
    match admin {
        None => "{}".into(),
        Some((cert, key)) => format!(
            "\n    client-certificate: {}\n    client-key: {}",
            cert.display(),
            key.display()
        ),
    }
}

/// The kubeconfig that points kubectl at `addr` over plain HTTP.
pub fn kubeconfig(addr: SocketAddr) -> String {
    kubeconfig_for(&format!("http://{addr}"), "", &user(None))
}

/// The kubeconfig for `server`, with `cluster` lines (indented under `cluster:`) added, and
/// its `user`.
fn kubeconfig_for(server: &str, cluster: &str, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: playbook-sim
  cluster:
    server: {server}
{cluster}users:
- name: playbook-sim
  user: {user}
contexts:
- name: playbook-sim
  context:
    cluster: playbook-sim
    user: playbook-sim
    namespace: default
current-context: playbook-sim
preferences: {{}}
"
    )
}

/// Serves the simulator until Ctrl-C or SIGTERM.
pub fn run(args: ServeConfig) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(args))
}

async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let resp = next.run(req).await;
    eprintln!(
        "{method} {path} {} {:.1}ms",
        resp.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    resp
}

async fn serve(args: ServeConfig) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "--listen must be a loopback address (127.0.0.1 or ::1), got {}",
            args.listen
        );
    }
    let sim = Sim::new(SimConfig {
        seed: args.seed,
        clock: ClockMode::Wall,
        scenario: args.scenario,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let tls = if args.tls {
        let tls = super::tls::Tls::generate()?;
        let kc = std::path::absolute(&args.kubeconfig_out).context("the kubeconfig's path")?;
        let (ca, cert, key) = (
            ca_path(&kc),
            beside(&kc, ".admin.crt"),
            beside(&kc, ".admin.key"),
        );
        for (path, pem) in [
            (&ca, &tls.ca_pem),
            (&cert, &tls.admin_cert_pem),
            (&key, &tls.admin_key_pem),
        ] {
            std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        }
        Some((tls, ca, cert, key))
    } else {
        None
    };
    let config = match &tls {
        Some((_, ca, cert, key)) => kubeconfig_for(
            &format!("https://{addr}"),
            &format!("    certificate-authority: {}\n", ca.display()),
            &user(Some((cert, key))),
        ),
        None => kubeconfig(addr),
    };
    std::fs::write(&args.kubeconfig_out, config)
        .with_context(|| format!("writing {}", args.kubeconfig_out.display()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("playbook sim serving on {scheme}://{addr}");
    println!(
        "kubeconfig written to {} (context playbook-sim)",
        args.kubeconfig_out.display()
    );
    if let Some((_, ca, _, _)) = &tls {
        println!("CA certificate written to {}", ca.display());
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let meter = super::api::meter::Meter::default();
    let mut app = sim.router().layer(axum::middleware::from_fn_with_state(
        meter.clone(),
        super::api::meter::count,
    ));
    if args.verbose {
        app = app.layer(axum::middleware::from_fn(log_request));
    }
    match tls {
        Some((tls, ..)) => until_signal(tls.listen(listener)?, app).await?,
        None => until_signal(listener, app).await?,
    }
    eprintln!("playbook sim stopped; requests answered: {}", meter.json());
    Ok(())
}

/// Serves `app` on `listener` until Ctrl-C or SIGTERM.
async fn until_signal<L>(listener: L, app: axum::Router) -> anyhow::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut rx2 = rx.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = tx.send(true);
    });
    // Open watches never finish by themselves: give connections a moment, then stop anyway.
    tokio::select! {
        r = server => r.context("serving")?,
        _ = async {
            let _ = rx2.wait_for(|s| *s).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        } => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
