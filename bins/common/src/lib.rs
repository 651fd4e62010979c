//! Plumbing shared by ferry's binaries (not a library for other tools): the registry flags
//! every binary accepts, the failure type and exit codes, error reporting (GitHub annotations),
//! stdout writing that treats a broken pipe as success, `$GITHUB_OUTPUT`, logging setup.

// Binary plumbing: reading the environment and exiting are its job.
#![allow(clippy::exit, clippy::disallowed_methods)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use clap::Args;
use ferry_core::exit;
use ferry_registry::{Client, ClientConfig, DockerConfigFile};

pub mod help;
pub mod signing;

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// One of `ferry_core::exit`.
    pub code: u8,
    /// What to print.
    pub message: String,
}

impl Failure {
    /// Exit 1.
    pub fn negative(message: impl Into<String>) -> Self {
        Failure {
            code: exit::NEGATIVE,
            message: message.into(),
        }
    }
    /// Exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: exit::USAGE,
            message: message.into(),
        }
    }
    /// Exit 3.
    pub fn operational(message: impl Into<String>) -> Self {
        Failure {
            code: exit::OPERATIONAL,
            message: message.into(),
        }
    }
}

impl<E> From<E> for Failure
where
    E: std::error::Error + exit::Classify + 'static,
{
    /// The exit code the error names for itself, and its whole cause chain as the message
    /// ([`describe`]).
    fn from(e: E) -> Self {
        Failure {
            code: e.exit_code(),
            message: describe(&e),
        }
    }
}

/// An error and every cause below it on one line, each said once:
/// `request to https://… failed: dns error: failed to lookup address information: …`.
///
/// A cause whose text is already in the line (an error that prints its source in its own
/// message, or a wrapper repeating the URL) is left out, and so are the generic wrappers of
/// the HTTP stack ("error sending request for url (…)", "client error (Connect)") that say
/// nothing their own causes do not. With `-v` (see [`init_tracing`]) errors are reported with
/// [`error_chain_verbose`] instead.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string().trim().to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        source = cause.source();
        let text = cause.to_string();
        let text = text.trim();
        if source.is_some() && is_wrapper(text) {
            // Also when the error above printed it as its own cause.
            line = line.replacen(&format!(": {text}"), "", 1);
            continue;
        }
        if text.is_empty() || line.contains(text) {
            continue;
        }
        line.push_str(": ");
        line.push_str(text);
    }
    line
}

/// Every link of the cause chain, one per line, unfiltered, the innermost also in its debug
/// form (OS error codes, TLS alert names): what `-v` adds.
pub fn error_chain_verbose(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    let mut innermost = None;
    while let Some(cause) = source {
        out.push_str(&format!("\n  caused by: {cause}"));
        innermost = Some(cause);
        source = cause.source();
    }
    if let Some(cause) = innermost {
        out.push_str(&format!("\n  innermost cause (debug): {cause:?}"));
    }
    out
}

/// Messages of the HTTP stack that only announce that their cause follows.
fn is_wrapper(text: &str) -> bool {
    text.starts_with("error sending request")
        || text.starts_with("error trying to connect")
        || text == "error resolving DNS"
        || (text.starts_with("client error (") && text.ends_with(')'))
}

/// Exit code of a registry error: 1 for negative answers, 3 otherwise.
pub fn registry_code(e: &ferry_registry::Error) -> u8 {
    exit::Classify::exit_code(e)
}

/// An error's message for a one-line report: [`error_chain`], or [`error_chain_verbose`]
/// when the binary runs with `-v`.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    if VERBOSITY.load(Ordering::Relaxed) > 0 {
        error_chain_verbose(e)
    } else {
        error_chain(e)
    }
}

/// Registry options shared by every binary (accepted anywhere on the command line).
#[derive(Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// Registry reached over plain HTTP (HOST or HOST:PORT); repeatable.
    #[arg(long = "plain-http", value_name = "HOST[:PORT]", global = true, help_heading = help::REGISTRY)]
    pub plain_http: Vec<String>,
    /// Send requests for REGISTRY to URL instead (e.g. docker.io=http://127.0.0.1:5000); repeatable.
    #[arg(long, value_name = "REGISTRY=URL", global = true, help_heading = help::REGISTRY)]
    pub mirror: Vec<String>,
    /// Directory holding Docker's config.json (default: $DOCKER_CONFIG, else ~/.docker).
    #[arg(long = "docker-config", value_name = "DIR", global = true, help_heading = help::REGISTRY)]
    pub docker_config: Option<PathBuf>,
    /// Longest a credential helper's answer is used before asking it again (default 10m); a
    /// 401/403 asks again at once.
    #[arg(long = "credential-ttl", value_name = "DURATION", value_parser = parse_duration, global = true, help_heading = help::REGISTRY)]
    pub credential_ttl: Option<Duration>,
    /// Built-in logins of cloud registries, by host: aws (ECR), gcp, azure, comma-separated,
    /// or none (default aws,gcp,azure). Explicit credentials (config.json, pull secrets) win.
    #[arg(long = "cloud-auth", value_name = "LIST", global = true, help_heading = help::REGISTRY)]
    pub cloud_auth: Option<String>,
    /// Extra PEM CA certificate(s) to trust.
    #[arg(long = "ca-file", value_name = "FILE", global = true, help_heading = help::REGISTRY)]
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout (e.g. 2s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true, help_heading = help::REGISTRY)]
    pub timeout: Option<Duration>,
    /// Requests in flight per registry host (default 32).
    #[arg(long = "max-concurrency", value_name = "N", global = true, help_heading = help::REGISTRY)]
    pub max_concurrency: Option<usize>,
}

impl RegistryArgs {
    /// Build a client: credentials from `--docker-config`, `$DOCKER_CONFIG` or `~/.docker`
    /// (its `config.json` read again whenever it changes, helpers asked again after
    /// `--credential-ttl`).
    pub fn client(&self, request_timeout: Option<Duration>) -> Result<Client, Failure> {
        let dir = match &self.docker_config {
            // Named on purpose: a directory that is not there is a mistake, not "no credentials".
            Some(d) if !d.is_dir() => {
                return Err(Failure::operational(format!(
                    "--docker-config {}: no such directory (name the directory that holds config.json)",
                    d.display()
                )));
            }
            Some(d) => Some(d.clone()),
            None => std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))),
        };
        let mut config = ClientConfig::default();
        if let Some(dir) = dir {
            let ttl = self
                .credential_ttl
                .unwrap_or(ferry_registry::DEFAULT_CREDENTIAL_TTL);
            config.credentials = Arc::new(DockerConfigFile::new(&dir, ttl)?);
        }
        // One reading of --ca-file for every HTTPS client: registry and cloud token services.
        let ca = ferry_registry::CaCertificates::from_option(self.ca_file.as_deref())?;
        config.cloud = self.cloud(&ca)?;
        config.plain_http = self.plain_http.clone();
        config.mirrors = self.parsed_mirrors()?;
        config.ca_file = self.ca_file.clone();
        if let Some(n) = self.max_concurrency {
            if n == 0 {
                return Err(Failure::usage("--max-concurrency must be at least 1"));
            }
            config.max_concurrency_per_host = n;
        }
        if let Some(t) = request_timeout.or(self.timeout) {
            config.timeout = t;
        }
        Ok(Client::new(config)?)
    }
}

impl RegistryArgs {
    /// The cloud logins `--cloud-auth` turns on (all by default). The AWS SDK's configuration
    /// is read from this process's environment, once, when an ECR registry is first asked.
    fn cloud(
        &self,
        ca: &ferry_registry::CaCertificates,
    ) -> Result<Option<Arc<dyn ferry_registry::CredentialStore>>, Failure> {
        use ferry_registry::CloudProvider;
        let on = match &self.cloud_auth {
            Some(spec) => {
                CloudProvider::parse_list(spec).map_err(|e| Failure::usage(e.to_string()))?
            }
            None => CloudProvider::ALL.to_vec(),
        };
        let mut providers: Vec<Arc<dyn ferry_registry::TokenProvider>> = Vec::new();
        for p in on {
            match p {
                CloudProvider::Aws => {
                    let http = ferry_registry::ecr::sdk_http_client(ca)?;
                    let loader: ferry_registry::ecr::SdkConfigLoader = Arc::new(move || {
                        let mut sdk = aws_config::defaults(aws_config::BehaviorVersion::latest());
                        if let Some(http) = &http {
                            sdk = sdk.http_client(http.clone());
                        }
                        Box::pin(async move { sdk.load().await })
                    });
                    providers.push(Arc::new(ferry_registry::ecr::Ecr::new(loader)));
                }
                CloudProvider::Gcp => {
                    let gcp = ferry_registry::gcp::Gcp::with_identity(gcp_identity(), ca)?;
                    providers.push(Arc::new(gcp));
                }
                CloudProvider::Azure => {
                    if let Some(id) = azure_workload_identity() {
                        let mirrors = self.parsed_mirrors()?;
                        let azure = ferry_registry::azure::Azure::new(id, mirrors, ca)?;
                        providers.push(Arc::new(azure));
                    }
                }
            }
        }
        if providers.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(ferry_registry::CloudCredentials::new(
            providers,
        ))))
    }
}

impl RegistryArgs {
    fn parsed_mirrors(&self) -> Result<Vec<(String, String)>, Failure> {
        self.mirror
            .iter()
            .map(|m| ClientConfig::parse_mirror(m).map_err(|e| Failure::usage(e.to_string())))
            .collect()
    }
}

/// Google's Application Default Credentials order: `GOOGLE_APPLICATION_CREDENTIALS` (a
/// file that is not there is then an error naming it, as in Google's libraries), else gcloud's
/// well-known file (`$CLOUDSDK_CONFIG` or `~/.config/gcloud`,
/// `application_default_credentials.json`) when it exists, else the metadata server
/// (`GCE_METADATA_HOST`, default `metadata.google.internal`).
fn gcp_identity() -> ferry_registry::gcp::GcpIdentity {
    use ferry_registry::gcp::GcpIdentity;
    let var = |n: &str| std::env::var_os(n).filter(|v| !v.is_empty());
    if let Some(file) = var("GOOGLE_APPLICATION_CREDENTIALS") {
        return GcpIdentity::KeyFile(PathBuf::from(file));
    }
    let gcloud = var("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config").join("gcloud")));
    if let Some(file) = gcloud
        .map(|dir| dir.join("application_default_credentials.json"))
        .filter(|f| f.is_file())
    {
        return GcpIdentity::KeyFile(file);
    }
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| ferry_registry::gcp::DEFAULT_METADATA_HOST.into());
    GcpIdentity::MetadataServer(host)
}

/// Azure Workload Identity as the AKS webhook sets it up: all of `AZURE_FEDERATED_TOKEN_FILE`,
/// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` (and `AZURE_AUTHORITY_HOST`), or none (no ACR login).
fn azure_workload_identity() -> Option<ferry_registry::azure::WorkloadIdentity> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    Some(ferry_registry::azure::WorkloadIdentity {
        token_file: PathBuf::from(var("AZURE_FEDERATED_TOKEN_FILE")?),
        client_id: var("AZURE_CLIENT_ID")?,
        tenant_id: var("AZURE_TENANT_ID")?,
        authority_host: var("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|| ferry_registry::azure::DEFAULT_AUTHORITY_HOST.into()),
    })
}

/// `2s`, `500ms`, `10m`…
pub fn parse_duration(s: &str) -> Result<Duration, BadDuration> {
    humantime::parse_duration(s).map_err(|problem| BadDuration {
        input: s.to_string(),
        problem,
    })
}

/// A duration flag that does not parse ([`parse_duration`]); clap prints its `Display`.
#[derive(Debug, Clone, PartialEq)]
pub struct BadDuration {
    /// The value given.
    pub input: String,
    /// What is wrong with it.
    pub problem: humantime::DurationError,
}

impl std::fmt::Display for BadDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let BadDuration { input, problem } = self;
        write!(f, "{input:?}: {problem} (examples: 500ms, 2s, 1m, 10m)")
    }
}

// No `source()`: the text names the problem already, and a chain printer would repeat it.
impl std::error::Error for BadDuration {}

/// Whether we run inside GitHub Actions (`GITHUB_ACTIONS=true`): the one place binaries ask.
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Append `v` as pretty JSON and a newline to `out` (what `--json` prints).
pub fn push_json<T: serde::Serialize + ?Sized>(out: &mut String, v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(text) => out.push_str(&text),
        // Only a map with non-string keys fails, which ferry never builds; say so if it does.
        Err(e) => out.push_str(
            &serde_json::json!({"error": format!("cannot render JSON: {e}")}).to_string(),
        ),
    }
    out.push('\n');
}

/// Print an error on stderr: `TOOL: message`, or under GitHub Actions an `::error` annotation
/// (with `file=`/`line=` when the message starts with `path:line:`).
pub fn report_error(tool: &str, message: &str) {
    let mut err = std::io::stderr().lock();
    if in_github_actions() {
        let text = message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        match split_location(message) {
            Some((file, line, rest)) => {
                let rest = rest.replace('%', "%25").replace('\n', "%0A");
                let _ = writeln!(err, "::error file={file},line={line},title={tool}::{rest}");
            }
            None => {
                let _ = writeln!(err, "::error title={tool}::{text}");
            }
        }
    } else {
        let _ = writeln!(err, "{tool}: {message}");
    }
}

/// `path:line: rest` → (path, line, rest).
pub fn split_location(m: &str) -> Option<(&str, usize, &str)> {
    let mut parts = m.splitn(3, ':');
    let (f, l, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if f.is_empty() || f.contains(' ') {
        return None;
    }
    let line = l.trim().parse().ok()?;
    Some((f, line, rest.trim()))
}

/// Write `text` to stdout; a closed pipe (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::operational(format!("writing to stdout: {e}"))),
    }
}

/// Append already formatted `key=value` text to `$GITHUB_OUTPUT`.
pub fn append_github_output(text: &str) -> Result<(), Failure> {
    let path = std::env::var_os("GITHUB_OUTPUT")
        .ok_or_else(|| Failure::usage("--github-output given but $GITHUB_OUTPUT is not set"))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| {
            Failure::operational(format!(
                "cannot write $GITHUB_OUTPUT ({}): {e}",
                PathBuf::from(&path).display()
            ))
        })
}

/// The `-v` count the binary was started with (errors are reported in full when above 0).
static VERBOSITY: AtomicU8 = AtomicU8::new(0);
/// Whether the binary runs with `-q` (warnings are not printed).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Remember `-v` and `-q` for [`describe`] and [`quiet`].
pub fn set_verbosity(verbose: u8, quiet: bool) {
    VERBOSITY.store(verbose, Ordering::Relaxed);
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` asked for errors only: a binary prints no warnings then.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Logs on stderr: warnings by default, `-v` debug, `-vv` trace; `FERRY_LOG` takes a filter.
/// With `-v`, errors also show every cause on its own line ([`error_chain_verbose`]).
pub fn init_tracing(verbose: u8) {
    VERBOSITY.store(verbose, Ordering::Relaxed);
    init_tracing_with(match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    });
}

/// Logs on stderr with `default` as the filter unless `FERRY_LOG` is set.
pub fn init_tracing_with(default: &str) {
    let filter = std::env::var("FERRY_LOG").unwrap_or_else(|_| default.to_string());
    // The AWS SDK logs whole responses (ECR tokens among them) at debug and trace: whatever
    // FERRY_LOG says, its crates log at info at most, so no secret reaches the log.
    let filter = format!("{filter},{SECRET_LOGGING_CRATES}");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_target(false)
        .try_init();
}

/// Logging directives capping the crates that log secrets at debug/trace (targets match by
/// prefix: `aws_smithy` covers `aws_smithy_runtime`, …).
pub const SECRET_LOGGING_CRATES: &str = "aws_smithy=info,aws_sdk=info,aws_sigv4=info,aws_config=info,aws_runtime=info,aws_credential_types=info";

/// Colour only for a person: stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>).
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    colour_allowed(
        std::env::var_os("NO_COLOR").as_deref(),
        std::io::stderr().is_terminal(),
    )
}

/// [`colour_on_stderr`]'s rule, without the environment.
pub fn colour_allowed(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The async runtime of a binary: current-thread for one-shot commands (cheaper to start),
/// multi-thread for the controller. On failure the error is reported and the exit code returned.
pub fn runtime(tool: &str, multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let built = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    built.map_err(|e| {
        report_error(tool, &format!("cannot start the async runtime: {e}"));
        ExitCode::from(exit::OPERATIONAL)
    })
}

/// Write `out` to stdout and turn `result` into the exit code, reporting a failure on stderr.
pub fn finish(tool: &str, result: Result<u8, Failure>, out: &str) -> ExitCode {
    match result.and_then(|code| write_stdout(out).map(|()| code)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            report_error(tool, &f.message);
            ExitCode::from(f.code)
        }
    }
}

/// A progress bar on stderr for long operations (`total` steps) — only on an interactive
/// terminal, never in CI (`CI` set) or when stderr is redirected, and never for small jobs.
/// Otherwise a hidden bar that costs nothing.
pub fn progress(total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let interactive =
        std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() && !in_github_actions();
    if !interactive || total < 50 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} ({{elapsed}})"
    )) {
        bar.set_style(style);
    }
    bar
}

/// Parse the command line (options grouped as [`help::command`] orders them); on
/// `--help`/`--version` print and exit 0, on errors exit 2.
pub fn parse_args<P: clap::Parser>() -> Result<P, ExitCode> {
    help::try_parse_from::<P, _, _>(std::env::args_os()).map_err(|e| {
        let code = match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                exit::SUCCESS
            }
            _ => exit::USAGE,
        };
        let _ = e.print();
        ExitCode::from(code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_duration_is_typed_and_reads_as_before() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        let e = parse_duration("2 parsecs").unwrap_err();
        assert_eq!(e.input, "2 parsecs");
        assert!(matches!(
            e.problem,
            humantime::DurationError::UnknownUnit { .. }
        ));
        // The text the `String` error had: the input, humantime's words, the examples.
        let words = humantime::parse_duration("2 parsecs").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("\"2 parsecs\": {words} (examples: 500ms, 2s, 1m, 10m)")
        );
    }

    #[test]
    fn github_annotations_never_break_on_odd_messages() {
        for m in ["", ":", "a:b:c", "file:12:", "x\ny:3: z", "100%:1: done"] {
            let _ = split_location(m);
        }
        assert_eq!(
            split_location("Dockerfile:3: bad"),
            Some(("Dockerfile", 3, "bad"))
        );
    }

    /// A test error: its text, and optionally its cause.
    #[derive(Debug)]
    struct Link(String, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    fn chain(texts: &[&str]) -> Link {
        texts
            .iter()
            .rev()
            .fold(None, |below, t| {
                Some(Link(t.to_string(), below.map(Box::new)))
            })
            .expect("at least one link")
    }

    #[test]
    fn a_chain_is_said_once_without_the_http_stack_wrappers() {
        let url = "https://x.invalid/v2/a/manifests/1";
        let e = chain(&[
            &format!("request to {url} failed: error sending request for url ({url})"),
            &format!("error sending request for url ({url})"),
            "client error (Connect)",
            "dns error",
            "error resolving DNS",
            "failed to lookup address information: Name or service not known",
        ]);
        assert_eq!(
            error_chain(&e),
            format!(
                "request to {url} failed: dns error: failed to lookup address information: Name or service not known"
            )
        );
        let verbose = error_chain_verbose(&e);
        assert_eq!(verbose.matches("\n  caused by: ").count(), 5, "{verbose}");
        assert!(
            verbose.contains("innermost cause (debug): Link("),
            "{verbose}"
        );
    }

    #[test]
    fn a_cause_the_message_already_carries_is_not_repeated() {
        let e = chain(&["git (/r): object not found", "object not found"]);
        assert_eq!(error_chain(&e), "git (/r): object not found");
        let e = chain(&["cannot read x", "permission denied", ""]);
        assert_eq!(error_chain(&e), "cannot read x: permission denied");
        // A wrapper without a cause below it is all there is to say: kept.
        let e = chain(&["push failed", "client error (Connect)"]);
        assert_eq!(error_chain(&e), "push failed: client error (Connect)");
        assert_eq!(error_chain_verbose(&chain(&["alone"])), "alone");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour_allowed(None, true));
        assert!(colour_allowed(Some(OsStr::new("")), true));
        assert!(!colour_allowed(Some(OsStr::new("1")), true));
        assert!(!colour_allowed(None, false));
    }

    #[test]
    fn push_json_is_pretty_with_a_newline() {
        let mut out = String::new();
        push_json(&mut out, &serde_json::json!({"a": 1}));
        assert_eq!(out, "{\n  \"a\": 1\n}\n");
    }

    #[test]
    fn locations_are_split_only_when_they_look_like_file_line() {
        assert_eq!(
            split_location("a/Dockerfile:3: bad"),
            Some(("a/Dockerfile", 3, "bad"))
        );
        assert_eq!(split_location("ferry.toml: bad"), None);
        assert_eq!(split_location("request to http://x:80/y failed: z"), None);
        assert_eq!(split_location("no colon"), None);
    }
}
