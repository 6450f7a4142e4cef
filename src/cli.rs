//! The command line: clap definitions, one struct per subcommand.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use playbook_sim::platform::Scenario;

/// Chaos experiments on Kubernetes MLOps platforms as short Rhai playbooks.
#[derive(Debug, Parser)]
#[command(name = "playbook", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run playbooks (files, or folders of .rhai files in name order), one after another.
    Run(RunArgs),
    /// Find everything that is wrong with playbooks without running them.
    Check(CheckArgs),
    /// Print the host API reference, or the entry for one function or namespace.
    Doc(DocArgs),
    /// Print, as YAML for `kubectl apply -f -`, every object a playbook would create, with the
    /// pods each would select now; creates nothing.
    Render(RenderArgs),
    /// Remove what killed runs left behind: objects in their journals, and (--all) every
    /// Chaos Mesh object labelled as playbook's.
    Cleanup(CleanupArgs),
    /// An interactive session: statements one at a time against a cluster, with completion,
    /// history and meta-commands (:help); every fault it injected is removed at exit.
    Repl(ReplArgs),
    /// Print the ServiceAccount, Role/ClusterRole and bindings the playbooks need (least
    /// privilege, found from what they call) as YAML for `kubectl apply -f -`.
    Rbac(RbacArgs),
    /// Before anything is injected: API reachable, Chaos Mesh installed and running where the
    /// targets are, permissions, targets and protected namespaces. Non-zero exit if a run would
    /// fail or lie.
    Preflight(PreflightArgs),
    /// Print, as YAML for `kubectl apply -f -`, what runs the playbooks inside the cluster: a
    /// ServiceAccount with least-privilege RBAC, a ConfigMap holding the playbooks, and a Job
    /// (or, with --schedule, a CronJob that never runs twice at once).
    Deploy(DeployArgs),
    /// Render a saved JSON report again (HTML, Markdown, JUnit), or compare it with a
    /// baseline report and fail on a regression.
    Report(ReportCmdArgs),
    /// The kill switch: mark the cluster frozen (a ConfigMap `playbook-freeze` in
    /// chaos-testing); running runs stop and clean up within seconds, new ones are refused.
    Freeze(FreezeArgs),
    /// Lift the freeze: runs may inject again.
    Unfreeze(UnfreezeArgs),
    /// Freeze the cluster and remove every Chaos Mesh object labelled as playbook's, whoever
    /// created it.
    Stop(StopArgs),
    /// The simulated Kubernetes cluster.
    Sim {
        #[command(subcommand)]
        cmd: SimCmd,
    },
}

/// `playbook sim ...`
#[derive(Debug, Subcommand)]
pub enum SimCmd {
    /// Serve the simulated cluster on loopback (wall time) and write a kubeconfig for kubectl.
    Serve(ServeArgs),
}

/// Which cluster a run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClusterKind {
    /// The built-in simulated MLOps cluster, in process.
    Sim,
    /// A real cluster, through kubeconfig or in-cluster configuration.
    Kube,
}

/// Where the cluster is.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// The cluster to run against [default: kube when a kubeconfig or in-cluster config is found, else sim].
    #[arg(long, value_enum)]
    pub cluster: Option<ClusterKind>,
    /// The kubeconfig context to use (kube only).
    #[arg(long)]
    pub context: Option<String>,
    /// The kubeconfig file to use (kube only) [default: $KUBECONFIG, then ~/.kube/config].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Seed of the simulator's random source: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The platform the simulator runs (sim only): mlops, mlops-fragile or empty.
    #[arg(long, default_value = "mlops", value_parser = parse_scenario)]
    pub scenario: Scenario,
}

impl ClusterKind {
    /// The connection's own kind.
    pub fn kind(self) -> crate::connection::TargetKind {
        match self {
            ClusterKind::Sim => crate::connection::TargetKind::Sim,
            ClusterKind::Kube => crate::connection::TargetKind::Kube,
        }
    }
}

impl TargetArgs {
    /// These options as the connection's own type (the one place clap's types are turned
    /// into the core's).
    pub fn choice(&self) -> crate::connection::TargetChoice {
        crate::connection::TargetChoice {
            cluster: self.cluster.map(ClusterKind::kind),
            context: self.context.clone(),
            kubeconfig: self.kubeconfig.clone(),
            seed: self.seed,
            scenario: self.scenario,
        }
    }
}

/// Where the standard library comes from.
#[derive(Debug, Clone, Args)]
pub struct StdlibArgs {
    /// Read the standard library from this folder instead of the copy built into the binary.
    #[arg(long, env = "PLAYBOOK_STDLIB", value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Playbook files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A parameter the playbook reads with param("KEY") (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Time budget of each playbook, e.g. 30s, 5m, 1h30m.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// Create nothing: print the exact objects each fault would create and the pods it would select.
    #[arg(long)]
    pub dry_run: bool,
    /// The Prometheus that metrics::prometheus queries, e.g. http://127.0.0.1:9090.
    #[arg(long, env = "PLAYBOOK_PROMETHEUS", value_name = "URL")]
    pub prometheus: Option<String>,
    /// Where journals of created objects are kept [default: $XDG_STATE_HOME/playbook].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub publish: Box<PublishArgs>,
}

/// One run at a time per cluster: the lease a run holds while it can inject.
#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// How long to wait for the cluster's lease when another run holds it, then refuse (exit 6).
    #[arg(long, default_value = "1m", value_parser = crate::duration::parse, value_name = "DURATION")]
    pub lock_wait: Duration,
    /// Do not take the lease (another run may inject at the same time); the freeze is still obeyed.
    #[arg(long)]
    pub no_lock: bool,
}

impl Default for LockArgs {
    fn default() -> Self {
        LockArgs {
            lock_wait: Duration::from_secs(60),
            no_lock: false,
        }
    }
}

/// `playbook freeze`
#[derive(Debug, Clone, Args)]
pub struct FreezeArgs {
    /// Why (shown to every run that is stopped or refused, and by kubectl).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `playbook unfreeze`
#[derive(Debug, Clone, Args)]
pub struct UnfreezeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `playbook stop --all`
#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Every run: freeze the cluster and remove every object labelled
    /// app.kubernetes.io/managed-by=playbook.
    #[arg(long, required = true)]
    pub all: bool,
    /// Why (the freeze's reason).
    #[arg(long, value_name = "TEXT", default_value = "playbook stop --all")]
    pub reason: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Where a run's results go besides its files (none of them changes a verdict, except a
/// summary ConfigMap that cannot be written, which is a report that could not be written).
#[derive(Debug, Clone, Default, Args)]
pub struct PublishArgs {
    /// Push each playbook's verdict, duration and numeric records to this Prometheus
    /// Pushgateway (job "playbook", instance = the playbook), e.g. http://127.0.0.1:9091.
    #[arg(long, env = "PLAYBOOK_PUSHGATEWAY", value_name = "URL", value_parser = parse_http_url)]
    pub pushgateway: Option<String>,
    /// When the run ends, POST its summary as JSON (with a `text` field Slack and Mattermost
    /// webhooks display) to this URL.
    #[arg(long, env = "PLAYBOOK_NOTIFY", value_name = "URL", value_parser = parse_http_url)]
    pub notify: Option<String>,
    /// Write the run's JSON report (its summary if the report is large) into this ConfigMap,
    /// key summary.json, creating or replacing it (a real cluster only).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = crate::report::publish::parse_configmap)]
    pub summary_configmap: Option<(String, String)>,
}

/// An http:// or https:// URL with a host.
fn parse_http_url(s: &str) -> Result<String, String> {
    let uri: http::Uri = s.parse().map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(s.to_string()),
        _ => Err(format!("expected an http:// or https:// URL, got {s:?}")),
    }
}

/// What a batch shows while it runs and the reports it writes (CI).
#[derive(Debug, Clone, Default, Args)]
pub struct ReportArgs {
    /// Print only the summary table and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more: every step of every wait, and debug(...) lines.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write the run's journal as JSON (schema playbook.report/v1, docs/report-schema.md).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Write a JUnit XML report: a testsuite per playbook, a testcase per expectation.
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary for a pull request comment.
    #[arg(long, value_name = "FILE.md")]
    pub markdown: Option<PathBuf>,
    /// Write one self-contained HTML page: each playbook's timeline and observed series.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Stop after the first playbook that does not pass; the rest are reported as skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run only playbooks whose name contains PATTERN or matches it as a glob (`net*`), or that
    /// carry it as a tag (`//! tags: network, mlflow`); `tag:NAME` matches tags only.
    /// Repeatable: a playbook runs if any pattern matches.
    #[arg(long, value_name = "PATTERN")]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A parameter statements read with param("KEY") (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Time budget of the whole session (wall time); faults without a duration last at most
    /// what is left of it. Ctrl-C stops one evaluation.
    #[arg(long, default_value = "12h", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// The Prometheus that metrics::prometheus queries, e.g. http://127.0.0.1:9090.
    #[arg(long, env = "PLAYBOOK_PROMETHEUS", value_name = "URL")]
    pub prometheus: Option<String>,
    /// Where the history and journals are kept [default: $XDG_STATE_HOME/playbook].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The playbook.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A parameter the playbook reads with param("KEY") (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
}

impl RenderArgs {
    /// The same as `run --dry-run FILE`.
    pub fn as_run(&self) -> RunArgs {
        RunArgs {
            paths: vec![self.file.clone()],
            target: self.target.clone(),
            vars: self.vars.clone(),
            timeout: Duration::from_secs(600),
            dry_run: true,
            prometheus: None,
            state_dir: None,
            stdlib: self.stdlib.clone(),
            report: ReportArgs::default(),
            lock: LockArgs::default(),
            publish: Box::default(),
        }
    }
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["run", "all"])))]
pub struct CleanupArgs {
    /// Only the run with this id (as printed by `playbook run` and kept in journals).
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// Every run's journal, and every object labelled app.kubernetes.io/managed-by=playbook.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where journals are kept [default: $XDG_STATE_HOME/playbook].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also clean up runs whose process is still alive on this machine, and drop journals
    /// whose cluster cannot be verified.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RbacArgs {
    /// Playbook files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// A parameter value the playbooks will be run with (stands in for `param` defaults).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The namespace chaos objects go to when a playbook does not name one (the kubeconfig
    /// context's namespace).
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The ServiceAccount's name.
    #[arg(long, default_value = "playbook")]
    pub account: String,
    /// The ServiceAccount's namespace.
    #[arg(long, default_value = "default")]
    pub account_namespace: String,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
}

/// Arguments of `playbook deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Playbook files, or folders of them (with their modules in subfolders).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Run on this cron schedule (a CronJob, e.g. "0 3 * * 1") instead of once (a Job).
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Time budget of each playbook (`playbook run --timeout`); the Job's deadline is each
    /// playbook's budget and the 30s cleanup grace, summed.
    #[arg(long, default_value = "10m", value_parser = crate::duration::parse)]
    pub timeout: Duration,
    /// The namespace of the Job, its ServiceAccount and ConfigMaps, and where chaos objects go
    /// when a playbook does not name one.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// The container image (scripts/image.sh builds it) [default: localhost/playbook:VERSION].
    #[arg(long)]
    pub image: Option<String>,
    /// The name of the Job or CronJob, its ServiceAccount and its summary ConfigMap.
    #[arg(long, default_value = "playbook")]
    pub name: String,
    /// A parameter the playbooks read with param("KEY") (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// Playbook files, or folders of them (their permissions and targets are checked).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A parameter value the playbooks will be run with.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// JSON for machines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The Chaos Mesh namespace.
    #[arg(long, default_value = "chaos-testing")]
    pub chaos_namespace: String,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Playbook files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub stdlib: StdlibArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DocArgs {
    /// A namespace (`chaos`), a function (`chaos::pod_kill`, `expect`), or nothing for everything.
    pub name: Option<String>,
}

/// `playbook report REPORT.json ...`
#[derive(Debug, Clone, Args)]
pub struct ReportCmdArgs {
    /// A JSON report written by `playbook run --report`.
    #[arg(value_name = "REPORT.json")]
    pub report: PathBuf,
    /// Write it as one self-contained HTML page (with the comparison, given --baseline).
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Write it as a Markdown summary.
    #[arg(long, value_name = "FILE.md")]
    pub markdown: Option<PathBuf>,
    /// Write it as JUnit XML.
    #[arg(long, value_name = "FILE.xml")]
    pub junit: Option<PathBuf>,
    /// Compare with this earlier report: each playbook's verdict and numeric records.
    #[arg(long, value_name = "OLD.json")]
    pub baseline: Option<PathBuf>,
    /// Exit 1 when a record got worse by more than this (e.g. 20%), or a verdict got worse.
    /// Records ending in _ms or _s are worse when higher; a playbook declares others with
    /// `//! higher is worse: KEY` or `//! lower is worse: KEY`.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub max_regression: Option<f64>,
}

impl ReportCmdArgs {
    /// The report command's own job for these arguments.
    pub fn job(&self) -> crate::report::Job {
        crate::report::Job {
            report: self.report.clone(),
            html: self.html.clone(),
            markdown: self.markdown.clone(),
            junit: self.junit.clone(),
            baseline: self.baseline.clone(),
            max_regression: self.max_regression,
        }
    }
}

/// `20%` or `20`: a fraction (0.2).
fn parse_percent(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches('%').trim();
    match n.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x / 100.0),
        _ => Err(format!("expected a percentage such as 20%, got {s:?}")),
    }
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// Arguments of `playbook sim serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Loopback address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Where to write a kubeconfig (context `playbook-sim`) pointing at the simulator.
    #[arg(long)]
    pub kubeconfig_out: PathBuf,
    /// Seed of the simulator's random choices.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The platform the simulator runs: mlops, mlops-fragile or empty.
    #[arg(long, default_value = "mlops", value_parser = parse_scenario)]
    pub scenario: Scenario,
    /// Log one line per request (method, path, status, duration) on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Serve HTTPS with a certificate signed by a CA made at start-up, written beside the
    /// kubeconfig as KUBECONFIG.ca.crt (what a pod's service account mounts as ca.crt).
    #[arg(long)]
    pub tls: bool,
}

impl ServeArgs {
    /// The simulator's own configuration for these arguments.
    pub fn config(self) -> playbook_sim::serve::ServeConfig {
        playbook_sim::serve::ServeConfig {
            listen: self.listen,
            kubeconfig_out: self.kubeconfig_out,
            seed: self.seed,
            scenario: self.scenario,
            verbose: self.verbose,
            tls: self.tls,
        }
    }
}

/// `--scenario NAME`: one of the simulator's platform scenarios.
fn parse_scenario(s: &str) -> Result<Scenario, String> {
    s.parse()
}
