//! `ferry-registry`: query container registries from CI, scripts and Airflow tasks.
//!
//! A thin shell over `ferry-registry` (the crate): parse flags, build a client, make one call,
//! print the answer, choose the exit code (`ferry_core::exit`).
// Binary plumbing: printing, exiting and reading the environment are its job.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

mod auth_cmd;
mod examples;
mod output;
mod signature;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_cli::{Failure, RegistryArgs, help};
use ferry_core::{Platform, Reference, exit};
use ferry_registry::{Client, WaitOutcome};
use futures::StreamExt;
use serde_json::{Value, json};

use output::Output;

#[derive(Parser)]
#[command(
    name = "ferry-registry",
    version,
    about = "Query container registries: digests, platforms, tags, waiting for images.",
    after_help = examples::ROOT
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct GlobalOpts {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print JSON.
    #[arg(long, global = true, help_heading = help::OUTPUT)]
    json: bool,
    /// Also write the JSON result to the Airflow XCom file.
    #[arg(long, global = true, help_heading = help::OUTPUT)]
    xcom: bool,
    /// Where --xcom writes.
    #[arg(
        long = "xcom-path",
        value_name = "FILE",
        global = true,
        default_value = "/airflow/xcom/return.json",
        help_heading = help::OUTPUT
    )]
    xcom_path: PathBuf,
    /// Append results as key=value lines to $GITHUB_OUTPUT.
    #[arg(long = "github-output", global = true, help_heading = help::OUTPUT)]
    github_output: bool,
    #[command(flatten)]
    log: help::LogArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the canonical form of image references.
    #[command(after_help = examples::PARSE)]
    Parse {
        /// References.
        refs: Vec<String>,
        /// Read references one per line from FILE (- for stdin).
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Print the digest the registry serves for references.
    #[command(after_help = examples::DIGEST)]
    Digest {
        /// References.
        refs: Vec<String>,
        /// Read references one per line from FILE (- for stdin).
        #[arg(short = 'f', value_name = "FILE")]
        file: Option<PathBuf>,
        /// The digest of this platform's manifest instead of the index digest.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Show platforms, child digests and attestations of a reference.
    #[command(after_help = examples::INSPECT)]
    Inspect {
        /// Reference.
        reference: String,
    },
    /// Exit 0 when the image provides every listed platform, 1 listing the missing ones.
    #[command(after_help = examples::VERIFY)]
    Verify {
        /// Reference.
        reference: String,
        /// Required platforms, comma-separated.
        #[arg(long, value_name = "LIST", required = true)]
        platforms: String,
    },
    /// List every tag of a repository (following pagination).
    #[command(after_help = examples::TAGS)]
    Tags {
        /// Repository (a tag or digest, if given, is ignored).
        repository: String,
        /// Page size to ask the registry for.
        #[arg(long = "page-size", value_name = "N")]
        page_size: Option<usize>,
    },
    /// Copy a manifest (or an index with its children) to another tag or repository of the same
    /// registry, mounting blobs instead of pulling them.
    #[command(after_help = examples::TAG)]
    Tag {
        /// Source reference.
        source: String,
        /// Destination reference (tag or repository:tag).
        destination: String,
    },
    /// Like `tag`, only when the source has soaked long enough and loses no platform the
    /// destination has; exit 1 when refused, 0 when promoted or already there.
    #[command(after_help = examples::PROMOTE)]
    Promote {
        /// Source reference.
        source: String,
        /// Destination reference.
        destination: String,
        /// How old the source must be (e.g. 72h).
        #[arg(long = "min-age", value_name = "DURATION", value_parser = ferry_cli::parse_duration)]
        min_age: Option<Duration>,
        /// When the source was first seen (RFC 3339), instead of its images' created times.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        #[command(flatten)]
        signed: signature::RequireSignature,
    },
    /// Exit 0 when the image has a valid cosign signature, 1 listing each candidate and why it
    /// failed, 3 on errors.
    #[command(name = "verify-signature", after_help = examples::VERIFY_SIGNATURE)]
    VerifySignature(signature::VerifySignatureArgs),
    /// Wait until a tag exists (with the listed platforms); exit 1 on timeout.
    #[command(after_help = examples::WAIT)]
    Wait {
        /// Reference.
        reference: String,
        /// Platforms that must be present, comma-separated.
        #[arg(long, value_name = "LIST")]
        platforms: Option<String>,
        /// Time between checks.
        #[arg(long, value_name = "DURATION", value_parser = ferry_cli::parse_duration, default_value = "5s")]
        interval: Duration,
    },
    /// Which credential the registry of REF gets and from where (config file and key, helper,
    /// or anonymous), whether it accepts it and when it expires; never prints a secret. Exit 0
    /// accepted (or anonymous allowed), 1 refused.
    #[command(after_help = examples::AUTH)]
    Auth {
        /// Reference whose repository's pull access is checked.
        reference: String,
    },
}

fn main() -> ExitCode {
    let cli: Cli = match ferry_cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    cli.global.log.init("warn");
    let runtime = match ferry_cli::runtime("ferry-registry", false) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut out = Output::new(&cli.global);
    let code = match runtime.block_on(run(&cli, &mut out)) {
        Ok(code) => code,
        Err(f) => {
            output::error(&f.message);
            f.code
        }
    };
    match out.finish() {
        Ok(()) => ExitCode::from(code),
        Err(f) => {
            output::error(&f.message);
            ExitCode::from(if code == exit::SUCCESS { f.code } else { code })
        }
    }
}

fn read_refs(args: &[String], file: Option<&PathBuf>) -> Result<Vec<String>, Failure> {
    let mut refs = args.to_vec();
    if let Some(f) = file {
        let text = if f.as_os_str() == "-" {
            let mut lines = Vec::new();
            for l in std::io::stdin().lock().lines() {
                lines.push(l.map_err(|e| Failure::operational(format!("reading stdin: {e}")))?);
            }
            lines.join("\n")
        } else {
            std::fs::read_to_string(f)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", f.display())))?
        };
        refs.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    if refs.is_empty() {
        return Err(Failure::usage("no references given (arguments or -f FILE)"));
    }
    Ok(refs)
}

pub(crate) fn parse_ref(s: &str) -> Result<Reference, Failure> {
    Reference::parse(s).map_err(|e| Failure {
        code: exit::NEGATIVE,
        message: e.to_string(),
    })
}

fn parse_platforms(s: &str) -> Result<Vec<Platform>, Failure> {
    let list = Platform::parse_list(s).map_err(|e| Failure::usage(e.to_string()))?;
    if list.is_empty() {
        return Err(Failure::usage("--platforms needs at least one os/arch"));
    }
    Ok(list)
}

/// Run the subcommand: parse its flags, make one library call, print, choose the exit code.
async fn run(cli: &Cli, out: &mut Output) -> Result<u8, Failure> {
    let reg = &cli.global.registry;
    match &cli.cmd {
        Cmd::Parse { refs, file } => cmd_parse(&read_refs(refs, file.as_ref())?, out),
        Cmd::Digest {
            refs,
            file,
            platform,
        } => {
            let platform = platform
                .as_deref()
                .map(Platform::parse)
                .transpose()
                .map_err(|e| Failure::usage(e.to_string()))?;
            let refs = read_refs(refs, file.as_ref())?;
            cmd_digest(&reg.client(None)?, &refs, platform.as_ref(), out).await
        }
        Cmd::Inspect { reference } => cmd_inspect(reg, reference, out).await,
        Cmd::Verify {
            reference,
            platforms,
        } => cmd_verify(reg, reference, platforms, out).await,
        Cmd::Tags {
            repository,
            page_size,
        } => cmd_tags(reg, repository, *page_size, out).await,
        Cmd::Tag {
            source,
            destination,
        } => cmd_tag(reg, source, destination, out).await,
        Cmd::Promote {
            source,
            destination,
            min_age,
            since,
            signed,
        } => {
            let opts = ferry_registry::promote::PromoteOptions {
                min_age: min_age.unwrap_or_default(),
                since: since.as_deref().map(parse_since).transpose()?,
                require_signature: signed.trust()?,
            };
            cmd_promote(reg, source, destination, &opts, out).await
        }
        Cmd::Auth { reference } => auth_cmd::cmd_auth(reg, reference, out).await,
        Cmd::Wait {
            reference,
            platforms,
            interval,
        } => cmd_wait(reg, reference, platforms.as_deref(), *interval, out).await,
        Cmd::VerifySignature(args) => signature::cmd_verify_signature(reg, args, out).await,
    }
}

/// `--since`: an RFC 3339 time as Unix seconds.
fn parse_since(s: &str) -> Result<u64, Failure> {
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| Failure::usage(format!("--since {s:?}: {e}")))
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        })
}

async fn cmd_inspect(reg: &RegistryArgs, reference: &str, out: &mut Output) -> Result<u8, Failure> {
    let r = parse_ref(reference)?;
    let i = reg.client(None)?.inspect(&r).await?;
    out.inspect(&i);
    Ok(exit::SUCCESS)
}

async fn cmd_verify(
    reg: &RegistryArgs,
    reference: &str,
    platforms: &str,
    out: &mut Output,
) -> Result<u8, Failure> {
    let wanted = parse_platforms(platforms)?;
    let r = parse_ref(reference)?;
    let check = reg.client(None)?.verify(&r, &wanted).await?;
    out.verify(&r, &check);
    Ok(if check.complete() {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}

async fn cmd_tags(
    reg: &RegistryArgs,
    repository: &str,
    page_size: Option<usize>,
    out: &mut Output,
) -> Result<u8, Failure> {
    let r = parse_ref(repository)?;
    let opts = ferry_registry::TagsOptions { page_size };
    let tags = reg.client(None)?.tags(&r, &opts).await?;
    out.tags(&r, &tags);
    Ok(exit::SUCCESS)
}

async fn cmd_tag(
    reg: &RegistryArgs,
    source: &str,
    destination: &str,
    out: &mut Output,
) -> Result<u8, Failure> {
    let (src, dst) = (parse_ref(source)?, parse_ref(destination)?);
    let client = reg.client(None)?;
    let c = client.copy(&src, &dst).await?;
    let sigs = client.copy_signatures(&src, &dst, &c.digest).await?;
    out.text_line(&format!(
        "{} → {}: {} ({} blob(s) mounted, {} copied, {} manifest(s); {} signature referrer(s), {} cosign tag(s) carried)",
        src, dst, c.digest, c.mounted_blobs, c.copied_blobs, c.manifests, sigs.referrers, sigs.tags.len()
    ));
    out.github("digest", &c.digest.to_string());
    out.set_json(json!({"source": src.to_string(), "destination": dst.to_string(), "digest": c.digest.to_string(),
        "media_type": c.media_type, "mounted_blobs": c.mounted_blobs, "copied_blobs": c.copied_blobs, "manifests": c.manifests,
        "signatures": sigs}));
    Ok(exit::SUCCESS)
}

async fn cmd_promote(
    reg: &RegistryArgs,
    source: &str,
    destination: &str,
    opts: &ferry_registry::promote::PromoteOptions,
    out: &mut Output,
) -> Result<u8, Failure> {
    use ferry_registry::promote::PromotionAction as A;
    let (src, dst) = (parse_ref(source)?, parse_ref(destination)?);
    let now = ferry_core::duration::unix_now();
    let client = reg.client(None)?;
    let p = ferry_registry::promote::promote_with(&client, &src, &dst, opts, now).await?;
    let action = match p.action {
        A::Promoted => "promoted",
        A::Unchanged => "unchanged",
        A::Refused => "refused",
    };
    out.text_line(&format!(
        "{action}: {src} → {dst} ({}): {}",
        p.digest, p.reason
    ));
    out.github("action", action);
    out.github("digest", &p.digest.to_string());
    out.set_json(
        json!({"source": src.to_string(), "destination": dst.to_string(), "action": action,
        "digest": p.digest.to_string(), "previous": p.previous.as_ref().map(ToString::to_string),
        "reason": p.reason, "age_seconds": p.age_seconds, "signatures": p.signatures}),
    );
    Ok(if p.action == A::Refused {
        exit::NEGATIVE
    } else {
        exit::SUCCESS
    })
}

async fn cmd_wait(
    reg: &RegistryArgs,
    reference: &str,
    platforms: Option<&str>,
    interval: Duration,
    out: &mut Output,
) -> Result<u8, Failure> {
    let wanted = match platforms {
        Some(p) => parse_platforms(p)?,
        None => Vec::new(),
    };
    let r = parse_ref(reference)?;
    let total = reg.timeout.unwrap_or(Duration::from_secs(600));
    let per_request = Duration::from_secs(30).min(total.max(Duration::from_secs(1)));
    let outcome = reg
        .client(Some(per_request))?
        .wait(&r, &wanted, total, interval)
        .await?;
    out.wait(&r, &wanted, &outcome);
    Ok(match outcome {
        WaitOutcome::Ready { .. } => exit::SUCCESS,
        WaitOutcome::TimedOut { .. } => exit::NEGATIVE,
    })
}

fn cmd_parse(refs: &[String], out: &mut Output) -> Result<u8, Failure> {
    let mut code = exit::SUCCESS;
    let mut rows = Vec::new();
    for input in refs {
        match Reference::parse(input) {
            Ok(r) => {
                out.text_line(&r.to_string());
                rows.push(json!({
                    "input": input,
                    "canonical": r.to_string(),
                    "registry": r.registry(),
                    "repository": r.repository(),
                    "tag": r.tag(),
                    "digest": r.digest().map(ToString::to_string),
                    "error": Value::Null,
                }));
            }
            Err(e) => {
                code = exit::NEGATIVE;
                out.text_error(&ferry_cli::describe(&e));
                rows.push(json!({
                    "input": input, "canonical": Value::Null, "registry": Value::Null,
                    "repository": Value::Null, "tag": Value::Null, "digest": Value::Null,
                    "error": ferry_cli::error_chain(&e),
                }));
            }
        }
    }
    let canon: Vec<Value> = rows.iter().map(|r| r["canonical"].clone()).collect();
    if canon.len() == 1 {
        out.github("canonical", canon[0].as_str().unwrap_or_default());
    }
    out.github("json", &Value::Array(rows.clone()).to_string());
    out.set_json(Value::Array(rows));
    Ok(code)
}

async fn cmd_digest(
    client: &Client,
    refs: &[String],
    platform: Option<&Platform>,
    out: &mut Output,
) -> Result<u8, Failure> {
    let progress = ferry_cli::progress(refs.len() as u64, "digests");
    let results: Vec<_> = futures::stream::iter(refs.iter().map(|input| {
        let client = client.clone();
        let progress = progress.clone();
        async move {
            let r = Reference::parse(input).map_err(ferry_registry::Error::from)?;
            let res = client.digest(&r, platform).await;
            progress.inc(1);
            res
        }
    }))
    .buffered(256)
    .collect()
    .await;
    progress.finish_and_clear();
    let mut code = exit::SUCCESS;
    let mut rows = Vec::new();
    let single = refs.len() == 1;
    for (input, res) in refs.iter().zip(results) {
        let canonical = Reference::parse(input).ok().map(|r| r.to_string());
        match res {
            Ok(d) => {
                if single {
                    out.text_line(&d.digest.to_string());
                } else {
                    out.text_line(&format!("{} {input}", d.digest));
                }
                rows.push(json!({
                    "reference": input,
                    "canonical": canonical,
                    "digest": d.digest.to_string(),
                    "media_type": d.media_type,
                    "platform": d.platform.as_ref().map(ToString::to_string),
                    "rate_limit": d.rate_limit,
                    "error": Value::Null,
                }));
            }
            Err(e) => {
                code = code.max(ferry_cli::registry_code(&e));
                out.text_error(&digest_error(input, &e));
                rows.push(json!({
                    "reference": input,
                    "canonical": canonical,
                    "digest": Value::Null,
                    "media_type": Value::Null,
                    "platform": platform.map(ToString::to_string),
                    "rate_limit": rate_limit_of(&e),
                    "error": ferry_cli::error_chain(&e),
                }));
            }
        }
    }
    if single && let Some(d) = rows[0]["digest"].as_str() {
        out.github("digest", d);
    }
    out.github("json", &Value::Array(rows.clone()).to_string());
    out.set_json(Value::Array(rows));
    Ok(code)
}

/// `INPUT: why`, but an invalid reference names itself in its message: said once.
fn digest_error(input: &str, e: &ferry_registry::Error) -> String {
    let message = ferry_cli::describe(e);
    match e {
        ferry_registry::Error::Core(ferry_core::Error::InvalidReference { .. }) => message,
        _ => format!("{input}: {message}"),
    }
}

fn rate_limit_of(e: &ferry_registry::Error) -> Value {
    match e {
        ferry_registry::Error::RateLimited {
            rate_limit: Some(r),
            ..
        } => json!(r),
        _ => Value::Null,
    }
}
