//! Plumbing shared by ferry's binaries (not a library for other tools): the registry flags
//! every binary accepts, the failure type and exit codes, error reporting (GitHub annotations),
//! stdout writing that treats a broken pipe as success, `$GITHUB_OUTPUT`, logging setup.
#![allow(clippy::print_stderr)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use ferry_core::exit;
use ferry_registry::{Client, ClientConfig, DockerConfig};

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

impl From<ferry_registry::Error> for Failure {
    fn from(e: ferry_registry::Error) -> Self {
        Failure {
            code: registry_code(&e),
            message: e.to_string(),
        }
    }
}

impl From<ferry_detect::Error> for Failure {
    /// Exit 1 for bad input (unparseable files, unknown names, cycles), 3 for git and IO trouble.
    fn from(e: ferry_detect::Error) -> Self {
        let code = if e.is_bad_input() {
            exit::NEGATIVE
        } else {
            exit::OPERATIONAL
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Exit code of a registry error: 1 for negative answers, 3 otherwise.
pub fn registry_code(e: &ferry_registry::Error) -> u8 {
    if e.is_negative() {
        exit::NEGATIVE
    } else {
        exit::OPERATIONAL
    }
}

/// Registry options shared by every binary (accepted anywhere on the command line).
#[derive(Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// Registry reached over plain HTTP (HOST or HOST:PORT); repeatable.
    #[arg(long = "plain-http", value_name = "HOST[:PORT]", global = true)]
    pub plain_http: Vec<String>,
    /// Send requests for REGISTRY to URL instead (e.g. docker.io=http://127.0.0.1:5000); repeatable.
    #[arg(long, value_name = "REGISTRY=URL", global = true)]
    pub mirror: Vec<String>,
    /// Directory holding Docker's config.json (default: $DOCKER_CONFIG, else ~/.docker).
    #[arg(long = "docker-config", value_name = "DIR", global = true)]
    pub docker_config: Option<PathBuf>,
    /// Extra PEM CA certificate(s) to trust.
    #[arg(long = "ca-file", value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Per-request timeout (e.g. 2s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
    pub timeout: Option<Duration>,
    /// Requests in flight per registry host (default 32).
    #[arg(long = "max-concurrency", value_name = "N", global = true)]
    pub max_concurrency: Option<usize>,
}

impl RegistryArgs {
    /// Build a client: credentials from `--docker-config`, `$DOCKER_CONFIG` or `~/.docker`.
    pub fn client(&self, request_timeout: Option<Duration>) -> Result<Client, Failure> {
        let dir = match &self.docker_config {
            Some(d) => Some(d.clone()),
            None => std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker"))),
        };
        let mut config = ClientConfig::default();
        if let Some(dir) = dir {
            config.credentials = Arc::new(DockerConfig::load_dir(&dir)?);
        }
        config.plain_http = self.plain_http.clone();
        for m in &self.mirror {
            config
                .mirrors
                .push(ClientConfig::parse_mirror(m).map_err(|e| Failure::usage(e.to_string()))?);
        }
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

/// `2s`, `500ms`, `10m`…
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (examples: 500ms, 2s, 1m, 10m)"))
}

/// Whether we run inside GitHub Actions.
pub fn in_github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
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

/// Logs on stderr: warnings by default, `-v` debug, `-vv` trace; `FERRY_LOG` takes a filter.
pub fn init_tracing(verbose: u8) {
    init_tracing_with(match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    });
}

/// Logs on stderr with `default` as the filter unless `FERRY_LOG` is set.
pub fn init_tracing_with(default: &str) {
    let filter = std::env::var("FERRY_LOG").unwrap_or_else(|_| default.to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
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

/// Parse the command line; on `--help`/`--version` print and exit 0, on errors exit 2.
pub fn parse_args<P: clap::Parser>() -> Result<P, ExitCode> {
    P::try_parse().map_err(|e| {
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
    fn github_annotations_never_break_on_odd_messages() {
        for m in ["", ":", "a:b:c", "file:12:", "x\ny:3: z", "100%:1: done"] {
            let _ = split_location(m);
        }
        assert_eq!(
            split_location("Dockerfile:3: bad"),
            Some(("Dockerfile", 3, "bad"))
        );
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
