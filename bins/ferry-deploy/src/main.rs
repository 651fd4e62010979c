//! `ferry-deploy`: redeploy only the workloads that opted in, pinned to the exact digest.
//!
//! `plan` reads and decides (no writes of any kind); `once` applies one pass (for a CronJob or
//! an Airflow task), `--wait` watches each rollout and rolls a failed one back.
// Binary plumbing: printing, exiting and reading the environment are its job.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

mod examples;
mod github_app;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_cli::{Failure, RegistryArgs, help};
use ferry_core::exit;
use ferry_deploy::cluster::Namespaces;
use ferry_deploy::controller::{self, ApplyOptions, Context, RunIo, report};
use ferry_deploy::lease::LeaseLock;
use ferry_deploy::metrics::{self, Metrics};
use ferry_deploy::notify::{Format, Notifier, NotifierConfig};
use ferry_deploy::policy::Action;
use ferry_deploy::policy::review::Forge;
use ferry_deploy::status::Board;
use ferry_deploy::webhook::{self, Debouncer, Receiver, Secret, WebhookConfig};
use serde_json::json;

#[derive(Parser)]
#[command(
    name = "ferry-deploy",
    version,
    about = "Redeploy only the workloads that opted in (ferry.dev/policy), pinned to the exact digest.",
    after_help = examples::ROOT
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the in-cluster
    /// service account — the order of kube's Config::infer).
    #[arg(long, value_name = "FILE", global = true, help_heading = help::WATCH)]
    kubeconfig: Option<PathBuf>,
    /// Namespace to manage (repeatable; default: all the credentials can see).
    #[arg(long, short = 'n', value_name = "NS", global = true, help_heading = help::WATCH)]
    namespace: Vec<String>,
    /// All namespaces (the default).
    #[arg(long = "all-namespaces", short = 'A', global = true, help_heading = help::WATCH)]
    all_namespaces: bool,
    /// Print JSON.
    #[arg(long, global = true, help_heading = help::OUTPUT)]
    json: bool,
    /// Write updates of Argo CD-managed workloads (and of workloads with ferry.dev/git-repo)
    /// to git instead of patching the cluster.
    #[arg(long = "git-write-back", global = true, help_heading = help::GIT)]
    git_write_back: bool,
    /// Namespace of Argo CD's Applications.
    #[arg(
        long = "argocd-namespace",
        value_name = "NS",
        default_value = "argocd",
        global = true, help_heading = help::GIT
    )]
    argocd_namespace: String,
    /// Local clone cache for write-back (default: $XDG_CACHE_HOME/ferry/git or ~/.cache/ferry/git).
    #[arg(long = "git-cache", value_name = "DIR", global = true, help_heading = help::GIT)]
    git_cache: Option<PathBuf>,
    /// File holding a token for http(s) git remotes (default: $FERRY_GIT_TOKEN).
    #[arg(long = "git-token-file", value_name = "FILE", global = true, help_heading = help::GIT)]
    git_token_file: Option<PathBuf>,
    /// GitHub App id: its installation tokens serve GitHub's API and https git pushes instead
    /// of --git-token-file (needs --github-app-key-file).
    #[arg(long = "github-app-id", value_name = "ID", global = true, help_heading = help::GIT)]
    github_app_id: Option<u64>,
    /// The GitHub App's PEM private key (PKCS#1 or PKCS#8), as GitHub issues it.
    #[arg(long = "github-app-key-file", value_name = "FILE", global = true, help_heading = help::GIT)]
    github_app_key_file: Option<PathBuf>,
    /// The app's installation (default: looked up per repository with
    /// GET /repos/{owner}/{repo}/installation).
    #[arg(long = "github-app-installation-id", value_name = "ID", global = true, help_heading = help::GIT)]
    github_app_installation_id: Option<u64>,
    /// User name sent with the token.
    #[arg(
        long = "git-user",
        value_name = "NAME",
        default_value = "x-access-token",
        global = true, help_heading = help::GIT
    )]
    git_user: String,
    /// Private key file for ssh git remotes.
    #[arg(long = "git-ssh-key", value_name = "FILE", global = true, help_heading = help::GIT)]
    git_ssh_key: Option<PathBuf>,
    /// Commit author as "Name <email>".
    #[arg(
        long = "git-author",
        value_name = "NAME <EMAIL>",
        default_value = "ferry <ferry@localhost>",
        global = true, help_heading = help::GIT
    )]
    git_author: String,
    /// Commit subject ({count} = number of changes).
    #[arg(
        long = "git-message",
        value_name = "TEXT",
        default_value = "ferry: update {count} image(s)",
        global = true, help_heading = help::GIT
    )]
    git_message: String,
    /// Stop polling a registry whose ratelimit-remaining falls below N (until its window ends).
    #[arg(
        long = "ratelimit-floor",
        value_name = "N",
        default_value_t = 10,
        global = true, help_heading = help::REGISTRY
    )]
    ratelimit_floor: u64,
    /// Send a message for every update, rollback, quarantine and failure to this URL
    /// (repeatable; a Slack incoming webhook or any JSON receiver).
    #[arg(long = "notify", value_name = "URL", global = true, help_heading = help::OUTPUT)]
    notify: Vec<String>,
    /// Body of notifications: `json` or `slack`.
    #[arg(
        long = "notify-format",
        value_name = "FORMAT",
        default_value = "json",
        global = true, help_heading = help::OUTPUT
    )]
    notify_format: String,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    log: help::LogArgs,
    /// newest-build: read the created time of at most N new tags per repository per pass
    /// (tags seen before are cached by digest and not read again).
    #[arg(long = "max-inspect", value_name = "N", default_value_t = ferry_deploy::tags::DEFAULT_MAX_INSPECT, global = true, help_heading = help::REGISTRY)]
    max_inspect: usize,
    /// Push ferry's git commits to this branch (created from the Application's branch, or
    /// fast-forwarded to it) instead of the Application's branch; a person merges it. The
    /// workload annotation ferry.dev/git-write-branch wins.
    #[arg(long = "git-write-branch", value_name = "BRANCH", global = true, help_heading = help::GIT)]
    git_write_branch: Option<String>,
    /// Open a pull request (github) or merge request (gitlab) for every git update, from a
    /// branch per workload, with the evidence; the workload annotation ferry.dev/git-pull-request
    /// (github, gitlab, off) wins. The token comes from --git-token-file.
    #[arg(long = "git-pull-request", value_name = "FORGE", value_parser = ["github", "gitlab"], global = true, help_heading = help::GIT)]
    git_pull_request: Option<String>,
    /// Branch of a request: {namespace}, {name}, and {application} (one request per Argo CD
    /// Application instead of per workload).
    #[arg(
        long = "git-pull-request-branch",
        value_name = "TEMPLATE",
        default_value = "ferry/{namespace}-{name}",
        global = true, help_heading = help::GIT
    )]
    git_pull_request_branch: String,
    /// API base URL of the forge (default https://api.github.com, https://gitlab.com/api/v4;
    /// set it for GitHub Enterprise or a self-hosted GitLab).
    #[arg(long = "git-api-url", value_name = "URL", global = true, help_heading = help::GIT)]
    git_api_url: Option<String>,
    /// A signature policy NAME=FILE (YAML/JSON: `keys:` PEM public keys); workloads ask for it
    /// with the annotation ferry.dev/signed-by: NAME. Repeatable.
    #[arg(long = "signature-policy", value_name = "NAME=FILE", global = true, help_heading = help::REGISTRY)]
    signature_policy: Vec<String>,
    /// Hold every workload to signature policy NAME (a workload's own ferry.dev/signed-by wins).
    #[arg(long = "require-signed-by", value_name = "NAME", global = true, help_heading = help::REGISTRY)]
    require_signed_by: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// What would happen; changes nothing.
    #[command(after_help = examples::PLAN)]
    Plan,
    /// One pass that applies the plan.
    #[command(after_help = examples::ONCE)]
    Once {
        /// Watch each rollout; roll a failed one back and quarantine its digest.
        #[arg(long, help_heading = help::CONTROLLER)]
        wait: bool,
        /// Give up on a rollout after this long.
        #[arg(long = "rollout-timeout", value_name = "DURATION", value_parser = ferry_cli::parse_duration, default_value = "10m", help_heading = help::CONTROLLER)]
        rollout_timeout: Duration,
    },
    /// The controller: a pass every interval (jittered), rollouts watched and failed ones
    /// rolled back, Prometheus /metrics and /healthz, /readyz, leader election on a Lease,
    /// graceful shutdown on SIGTERM.
    #[command(after_help = examples::RUN)]
    Run(RunArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Time between passes.
    #[arg(long, value_name = "DURATION", value_parser = ferry_cli::parse_duration, default_value = "5m", help_heading = help::CONTROLLER)]
    interval: Duration,
    /// Where to serve /metrics, /healthz and /readyz.
    #[arg(long = "metrics-addr",
        value_name = "ADDR",
        default_value = "0.0.0.0:9090", help_heading = help::CONTROLLER)]
    metrics_addr: String,
    /// Give up on a rollout after this long (then roll back).
    #[arg(long = "rollout-timeout", value_name = "DURATION", value_parser = ferry_cli::parse_duration, default_value = "10m", help_heading = help::CONTROLLER)]
    rollout_timeout: Duration,
    /// Namespace of the leader-election Lease (default: $POD_NAMESPACE, else default).
    #[arg(long = "lease-namespace", value_name = "NS", help_heading = help::CONTROLLER)]
    lease_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long = "lease-name",
        value_name = "NAME",
        default_value = "ferry-deploy", help_heading = help::CONTROLLER)]
    lease_name: String,
    /// How long a Lease holder keeps it without renewing; the leader renews every third
    /// of it and stops writing two thirds after its last successful renewal.
    #[arg(long = "lease-duration", value_name = "DURATION", value_parser = ferry_cli::parse_duration, default_value = "15s", help_heading = help::CONTROLLER)]
    lease_duration: Duration,
    /// Act without a Lease (one replica only).
    #[arg(long = "no-leader-election", help_heading = help::CONTROLLER)]
    no_leader_election: bool,
    /// Receive registry webhooks here (`POST /webhooks/{distribution,dockerhub,github,harbor,generic}`);
    /// off by default. Needs --webhook-secret-file.
    #[arg(long = "webhook-addr", value_name = "ADDR", help_heading = help::CONTROLLER)]
    webhook_addr: Option<String>,
    /// File holding the shared secret webhook senders must present.
    #[arg(long = "webhook-secret-file", value_name = "FILE", help_heading = help::CONTROLLER)]
    webhook_secret_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli: Cli = match ferry_cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The controller logs every decision (info); one-shot commands only warnings.
    // kube's client logs every failed request at ERROR; ferry reports it once, with its cause.
    cli.global.log.init(if matches!(cli.cmd, Cmd::Run(_)) {
        "info,kube_client::client=off"
    } else {
        "warn,kube_client::client=off"
    });
    let runtime = match ferry_cli::runtime("ferry-deploy", true) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut out = String::new();
    let result = runtime.block_on(run(&cli, &mut out));
    ferry_cli::finish("ferry-deploy", result, &out)
}

fn gitops(g: &Global) -> Result<Option<controller::GitOps>, Failure> {
    if !g.git_write_back {
        if g.git_pull_request.is_some() {
            return Err(Failure::usage(
                "--git-pull-request needs --git-write-back (requests carry git updates)",
            ));
        }
        return Ok(None);
    }
    let api_url = (g.git_api_url.as_deref())
        .map(|u| {
            url::Url::parse(u).map_err(|e| Failure::usage(format!("--git-api-url {u:?}: {e}")))
        })
        .transpose()?;
    let (token, github_app) = github_app::credentials(g, api_url.clone())?;
    let settings = controller::GitOpsSettings {
        cache_dir: g.git_cache.clone(),
        user_cache: std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache"))),
        token,
        user: g.git_user.clone(),
        ssh_key: g.git_ssh_key.clone(),
        author: g.git_author.clone(),
        subject: g.git_message.clone(),
        write_branch: g.git_write_branch.clone(),
        pull_request: g.git_pull_request.as_deref().and_then(Forge::parse),
        pull_request_branch: Some(g.git_pull_request_branch.clone()),
        api_url,
        github_app,
    };
    controller::GitOps::new(settings).map(Some).map_err(|e| {
        Failure::usage(match e {
            ferry_deploy::Error::Config(ferry_deploy::ConfigProblem::Author(_)) => {
                format!("--git-author: {e}")
            }
            e => e.to_string(),
        })
    })
}

/// Who this replica is: the Lease identity and the part in parentheses of the User-Agent of
/// every Kubernetes request (`$POD_NAME`, else the host name, else `ferry-PID`).
fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(hostname)
        .unwrap_or_else(|| format!("ferry-{}", std::process::id()))
}

/// `ferry-deploy/VERSION (IDENTITY)`: tells ferry's requests, and its replicas, apart in the API
/// server's audit log.
fn user_agent(identity: &str) -> Result<http::HeaderValue, Failure> {
    let ua = format!("ferry-deploy/{} ({identity})", env!("CARGO_PKG_VERSION"));
    http::HeaderValue::from_str(&ua).map_err(|_| {
        Failure::usage(format!(
            "$POD_NAME: {identity:?} is not a valid header value"
        ))
    })
}

/// The host name: `$HOSTNAME`, else the kernel's.
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn kube_err(e: impl std::error::Error + 'static) -> Failure {
    Failure::operational(unquote(&format!("kubernetes: {}", ferry_cli::describe(&e))))
}

/// A kubeconfig that cannot be used: a configuration problem (exit 3) naming the file once and
/// where its name came from (`--kubeconfig` or `$KUBECONFIG`).
fn kubeconfig_failure(
    path: &std::path::Path,
    from: &str,
    e: kube::config::KubeconfigError,
) -> Failure {
    let message = match &e {
        kube::config::KubeconfigError::ReadConfig(io, _) => format!(
            "cannot read kubeconfig {} (from {from}): {io}",
            path.display()
        ),
        _ => format!(
            "kubeconfig {} (from {from}): {}",
            path.display(),
            ferry_cli::describe(&e)
        ),
    };
    Failure::operational(unquote(&message))
}

/// kube names files as `'"/path"'`; ferry names them plainly.
fn unquote(message: &str) -> String {
    message.replace("'\"", "").replace("\"'", "")
}

/// The Kubernetes client and the API server's address (named in every error about it).
async fn kube_client(g: &Global) -> Result<(kube::Client, String), Failure> {
    let path = match &g.kubeconfig {
        Some(p) => Some((p.clone(), "--kubeconfig")),
        None => std::env::var_os("KUBECONFIG").map(|p| (PathBuf::from(p), "$KUBECONFIG")),
    };
    let config = match path {
        Some((p, from)) => {
            let bad = |e| kubeconfig_failure(&p, from, e);
            let kc = kube::config::Kubeconfig::read_from(&p).map_err(bad)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(bad)?
        }
        None => kube::Config::infer().await.map_err(kube_err)?,
    };
    let server = config.cluster_url.to_string();
    let mut config = config;
    config
        .headers
        .push((http::header::USER_AGENT, user_agent(&identity())?));
    let client = kube::Client::try_from(config).map_err(kube_err)?;
    Ok((client, server))
}

/// A failed pass, with the whole cause chain and — for the Kubernetes API — its address.
fn pass_failure(server: &str, e: ferry_deploy::Error) -> Failure {
    match e {
        ferry_deploy::Error::Kube(k) => Failure::operational(format!(
            "Kubernetes API at {server}: {}",
            ferry_cli::describe(&k)
        )),
        e => Failure::from(e),
    }
}

async fn run(cli: &Cli, out: &mut String) -> Result<u8, Failure> {
    let g = &cli.global;
    if g.all_namespaces && !g.namespace.is_empty() {
        return Err(Failure::usage(
            "--namespace and --all-namespaces exclude each other",
        ));
    }
    let (client, server) = kube_client(g).await?;
    let ctx = Context {
        client,
        registry: g.registry.client(None)?,
        namespaces: if g.namespace.is_empty() {
            Namespaces::All
        } else {
            Namespaces::Only(g.namespace.clone())
        },
        registry_concurrency: controller::DEFAULT_REGISTRY_CONCURRENCY,
        rate_gate: controller::RateGate::new(Some(g.ratelimit_floor)),
        gitops: gitops(g)?,
        argocd_namespace: g.argocd_namespace.clone(),
        events: Default::default(),
        tag_times: controller::TagTimes::new(g.max_inspect),
        signatures: signatures(g)?,
        provenance: Default::default(),
    };
    let notifier = notifier(g)?;
    let code = match &cli.cmd {
        Cmd::Run(args) => run_controller(&ctx, args, notifier.as_ref()).await?,
        Cmd::Plan => plan(&ctx, g.json, out)
            .await
            .map_err(|e| pass_failure(&server, e))?,
        Cmd::Once {
            wait,
            rollout_timeout,
        } => once(
            &ctx,
            g.json,
            *wait,
            *rollout_timeout,
            notifier.as_ref(),
            out,
        )
        .await
        .map_err(|e| pass_failure(&server, e))?,
    };
    if let Some(n) = notifier {
        // Deliver what is queued, bounded: a dead receiver never holds ferry up for long.
        let _ = tokio::time::timeout(Duration::from_secs(10), n.close()).await;
    }
    Ok(code)
}

/// `--signature-policy NAME=FILE` (keys and trusted roots read now) and `--require-signed-by NAME`.
fn signatures(g: &Global) -> Result<controller::Signatures, Failure> {
    let policies = g
        .signature_policy
        .iter()
        .map(|a| ferry_cli::signing::named_policy(a))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(name) = &g.require_signed_by
        && !policies.iter().any(|(n, _)| n == name)
    {
        return Err(Failure::usage(format!(
            "--require-signed-by {name}: no --signature-policy {name}=FILE"
        )));
    }
    Ok(controller::Signatures::new(
        policies,
        g.require_signed_by.clone(),
    ))
}

fn notifier(g: &Global) -> Result<Option<Notifier>, Failure> {
    if g.notify.is_empty() {
        return Ok(None);
    }
    let format: Format = g
        .notify_format
        .parse()
        .map_err(|e: ferry_deploy::Error| Failure::usage(format!("--notify-format: {e}")))?;
    let urls = g
        .notify
        .iter()
        .map(|u| url::Url::parse(u).map_err(|e| Failure::usage(format!("--notify {u:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Notifier::new(NotifierConfig::new(urls, format))
        .map(Some)
        .map_err(|e| Failure::operational(e.to_string()))
}

async fn plan(ctx: &Context, json: bool, out: &mut String) -> ferry_deploy::Result<u8> {
    let plan = controller::plan(ctx).await?;
    if json {
        out.push_str(&serde_json::to_string_pretty(&plan.decisions).unwrap_or_default());
        out.push('\n');
    } else {
        render(out, &plan.decisions);
    }
    Ok(exit::SUCCESS)
}

async fn once(
    ctx: &Context,
    json: bool,
    wait: bool,
    rollout_timeout: Duration,
    notifier: Option<&Notifier>,
    out: &mut String,
) -> ferry_deploy::Result<u8> {
    let plan = controller::plan(ctx).await?;
    let options = ApplyOptions {
        wait,
        rollout_timeout: Some(rollout_timeout),
        ..Default::default()
    };
    let applied = controller::apply(ctx, &plan, &options).await?;
    if let Some(n) = notifier {
        for note in report::notifications(&plan, &applied, std::time::SystemTime::now()) {
            n.send(note);
        }
    }
    if json {
        let v = json!({"decisions": plan.decisions, "applied": applied});
        out.push_str(&serde_json::to_string_pretty(&v).unwrap_or_default());
        out.push('\n');
    } else {
        render(out, &plan.decisions);
        render_applied(out, &applied);
    }
    // Failures win over rollbacks: something could not be done at all.
    Ok(if !applied.failures.is_empty() {
        exit::OPERATIONAL
    } else if !applied.rolled_back.is_empty() {
        exit::NEGATIVE
    } else {
        exit::SUCCESS
    })
}

fn render_applied(out: &mut String, applied: &controller::Applied) {
    for u in &applied.updated {
        out.push_str(&format!("updated {u}\n"));
    }
    for (w, why) in &applied.rolled_back {
        out.push_str(&format!("rolled back {w}: {why}\n"));
    }
    for c in &applied.committed {
        out.push_str(&format!("committed to git: {c}\n"));
    }
    for f in &applied.failures {
        let stage = f.stage.as_str();
        out.push_str(&format!("failed ({stage}) {}: {}\n", f.workload, f.message));
    }
    for (w, why) in &applied.unsynced {
        out.push_str(&format!("not synced {w}: {why}\n"));
    }
}

fn render(out: &mut String, decisions: &[ferry_deploy::policy::Decision]) {
    for d in decisions {
        let action = match d.action {
            Action::Update => "update",
            Action::Skip => "skip",
            Action::None => "none",
        };
        let container = if d.container.is_empty() {
            "-"
        } else {
            &d.container
        };
        let target = d
            .target_image()
            .map(|t| format!("→ {t} "))
            .unwrap_or_default();
        out.push_str(&format!(
            "{action:<6} {}/{}/{} {container}: {target}({})\n",
            d.namespace, d.kind, d.name, d.reason
        ));
        if let Some(g) = d.git() {
            let branch = match &g.base {
                Some(base) => format!("{}, from {base}", g.branch),
                None => g.branch.clone(),
            };
            out.push_str(&format!(
                "       via git: {} ({branch}) {}\n",
                g.repo,
                g.file.as_deref().unwrap_or("")
            ));
        }
    }
}

fn lease(args: &RunArgs) -> Option<LeaseLock> {
    (!args.no_leader_election).then(|| LeaseLock {
        namespace: args
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".into()),
        name: args.lease_name.clone(),
        identity: identity(),
        duration: args.lease_duration,
    })
}

async fn listen(addr: &str) -> Result<tokio::net::TcpListener, Failure> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::operational(format!("cannot listen on {addr}: {e}")))
}

/// The webhook receiver, served until `stop`; its debounced hints for the loop.
async fn webhooks(
    args: &RunArgs,
    metrics: &Metrics,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<Option<(Receiver, Debouncer)>, Failure> {
    let Some(addr) = &args.webhook_addr else {
        return Ok(None);
    };
    let Some(file) = &args.webhook_secret_file else {
        return Err(Failure::usage(
            "--webhook-addr needs --webhook-secret-file: the webhook secret is missing, and ferry does not accept unauthenticated webhooks",
        ));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::usage(format!("--webhook-secret-file {}: {e}", file.display())))?;
    let secret = Secret::new(text)
        .map_err(|e| Failure::usage(format!("--webhook-secret-file {}: {e}", file.display())))?;
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let receiver = Receiver::new(WebhookConfig::new(secret), tx);
    metrics.attach_webhooks(receiver.counters());
    let listener = listen(addr).await?;
    let mut rx_stop = stop.clone();
    tokio::spawn(receiver.clone().serve(listener, async move {
        let _ = rx_stop.changed().await;
    }));
    Ok(Some((
        receiver,
        Debouncer::new(rx, webhook::DEFAULT_DEBOUNCE),
    )))
}

/// SIGTERM or Ctrl-C flips `stop`.
fn on_signals(stop_tx: tokio::sync::watch::Sender<bool>) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated => {}
        }
        let _ = stop_tx.send(true);
    });
}

async fn run_controller(
    ctx: &Context,
    args: &RunArgs,
    notifier: Option<&Notifier>,
) -> Result<u8, Failure> {
    let metrics = Metrics::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hooks = webhooks(args, &metrics, &stop_rx).await?;
    let board = Board::default();
    let server = {
        let listener = listen(&args.metrics_addr).await?;
        let mut rx = stop_rx.clone();
        tokio::spawn(metrics::serve(
            listener,
            metrics.clone(),
            board.clone(),
            async move {
                let _ = rx.changed().await;
            },
        ))
    };
    on_signals(stop_tx);
    if let Some(n) = notifier {
        metrics.attach_notifications(n.counters());
    }
    let options = controller::RunOptions {
        interval: args.interval,
        rollout_timeout: args.rollout_timeout,
        lease: lease(args),
    };
    let (receiver, hints) = hooks.map_or((None, None), |(r, h)| (Some(r), Some(h)));
    let mut io = RunIo {
        hints,
        receiver,
        notifier,
        board,
    };
    controller::run(ctx, &options, &metrics, stop_rx, &mut io).await;
    let _ = server.await;
    Ok(exit::SUCCESS)
}
