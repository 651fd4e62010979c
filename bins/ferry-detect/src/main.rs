//! `ferry-detect`: which images a git push must rebuild.
//!
//! A thin shell over the `ferry-detect` crate: parse flags, open the repository, make one call,
//! render text / JSON / CI outputs, choose the exit code (`ferry_core::exit`).
// Binary plumbing: printing, exiting and reading the environment are its job.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

mod examples;
mod published;
mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ferry_cli::{Failure, help};
use ferry_core::Reference;
use ferry_core::exit;
use ferry_detect::changed::{
    ChangedOptions, ChangedReport, ContextMode, PUBLISHED, Published, changed, changed_published,
};
use ferry_detect::git::Repo;
use ferry_detect::project::{Graph, Project, Warning};
use ferry_detect::revision::{self, Selection};

#[derive(Parser)]
#[command(
    name = "ferry-detect",
    version,
    about = "Which images must be rebuilt: derived from each image's Dockerfile, .dockerignore and in-repo base images.",
    after_help = examples::ROOT
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    registry: ferry_cli::RegistryArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args)]
struct Global {
    /// The repository (a checkout or a bare repository; default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".", hide_default_value = true, global = true, help_heading = help::WATCH)]
    repo: PathBuf,
    /// Print JSON.
    #[arg(long, global = true, help_heading = help::OUTPUT)]
    json: bool,
    /// Largest wave: bigger waves are split (GitHub's matrix limit is 256).
    #[arg(
        long = "max-parallel",
        value_name = "N",
        default_value_t = 256,
        global = true,
        help_heading = help::OUTPUT
    )]
    max_parallel: usize,
    #[command(flatten)]
    log: help::LogArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Mode {
    Precise,
    Full,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ChangedFormat {
    Text,
    Json,
    Gitlab,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    Json,
    Dot,
    Mermaid,
}

/// The arguments of `changed`.
#[derive(Args)]
struct ChangedArgs {
    /// Base revision (default: the head's first parent, what --github-event says, or under
    /// Jenkins GIT_PREVIOUS_SUCCESSFUL_COMMIT / GIT_PREVIOUS_COMMIT). `published`: compare
    /// each image with the revision its --published-tag was built from (asks the registry).
    #[arg(long, value_name = "REV", help_heading = help::WATCH)]
    base: Option<String>,
    /// With --base published: the tag whose revision counts as published.
    #[arg(long = "published-tag", value_name = "TAG", default_value = "latest", help_heading = help::WATCH)]
    published_tag: String,
    /// Head revision (default: HEAD).
    #[arg(long, value_name = "REV", help_heading = help::WATCH)]
    head: Option<String>,
    /// GitHub event payload (default: $GITHUB_EVENT_PATH when GITHUB_ACTIONS=true).
    #[arg(long = "github-event", value_name = "FILE", help_heading = help::WATCH)]
    github_event: Option<PathBuf>,
    /// precise: only files a reachable COPY/ADD/bind mount reads; full: any context file.
    #[arg(long = "context-mode", value_enum, default_value = "precise", help_heading = help::WATCH)]
    context_mode: Mode,
    /// Append any, matrix, waves, rebuild_all, reason to $GITHUB_OUTPUT.
    #[arg(long = "github-output", help_heading = help::OUTPUT)]
    github_output: bool,
    /// Output format.
    #[arg(long, value_enum, help_heading = help::OUTPUT)]
    format: Option<ChangedFormat>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The images to rebuild between two revisions, each with its reasons.
    #[command(after_help = examples::CHANGED)]
    Changed(ChangedArgs),
    /// Every image with its bases, in-repo dependencies and build waves.
    #[command(after_help = examples::GRAPH)]
    Graph {
        /// Output format.
        #[arg(long, value_enum, default_value = "json", help_heading = help::OUTPUT)]
        format: GraphFormat,
        /// Revision to read (default: HEAD).
        #[arg(long, value_name = "REV", help_heading = help::WATCH)]
        rev: Option<String>,
    },
    /// The files an image's build context holds after the ignore rules.
    #[command(after_help = examples::CONTEXT)]
    Context {
        /// Image name.
        image: String,
        /// Revision (default: HEAD).
        #[arg(long, value_name = "REV", help_heading = help::WATCH)]
        rev: Option<String>,
    },
    /// The files precise mode treats as an image's inputs.
    #[command(after_help = examples::INPUTS)]
    Inputs {
        /// Image name.
        image: String,
        /// Revision (default: HEAD).
        #[arg(long, value_name = "REV", help_heading = help::WATCH)]
        rev: Option<String>,
    },
    /// Whether a file is an input of an image, and the one line that decides it.
    #[command(after_help = examples::WHY)]
    Why {
        /// Image name.
        image: String,
        /// The file, relative to the repository root (as `changed` prints paths).
        path: String,
        /// Revision (default: HEAD).
        #[arg(long, value_name = "REV", help_heading = help::WATCH)]
        rev: Option<String>,
        /// precise: only files a reachable COPY/ADD/bind mount reads; full: any context file.
        #[arg(long = "context-mode", value_enum, default_value = "precise", help_heading = help::WATCH)]
        context_mode: Mode,
    },
}

impl From<Mode> for ContextMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Precise => ContextMode::Precise,
            Mode::Full => ContextMode::Full,
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = match ferry_cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    cli.global.log.init("warn");
    let mut out = String::new();
    let result = run(&cli, &mut out);
    ferry_cli::finish("ferry-detect", result, &out)
}

fn run(cli: &Cli, out: &mut String) -> Result<u8, Failure> {
    let g = &cli.global;
    if g.max_parallel == 0 {
        return Err(Failure {
            code: exit::USAGE,
            message: "--max-parallel must be at least 1".into(),
        });
    }
    let repo = Repo::open(&g.repo).map_err(|e| match e {
        ferry_detect::Error::NotARepository { .. } => Failure {
            code: exit::OPERATIONAL,
            message: format!("{e}: use --repo DIR"),
        },
        e => Failure::from(e),
    })?;
    match &cli.cmd {
        Cmd::Changed(args) => cmd_changed(cli, &repo, args, out),
        Cmd::Graph { format, rev } => {
            let project = load(&repo, rev.as_deref())?;
            let graph = project.graph(g.max_parallel)?;
            match (format, g.json) {
                (GraphFormat::Dot, false) => render_dot(out, &graph),
                (GraphFormat::Mermaid, false) => render_mermaid(out, &graph),
                _ => push_json(out, &graph),
            }
            Ok(exit::SUCCESS)
        }
        Cmd::Context { image, rev } => {
            let project = load(&repo, rev.as_deref())?;
            list(out, g.json, &project.context_files(image)?);
            Ok(exit::SUCCESS)
        }
        Cmd::Inputs { image, rev } => {
            let project = load(&repo, rev.as_deref())?;
            list(out, g.json, &project.input_files(image)?);
            Ok(exit::SUCCESS)
        }
        Cmd::Why {
            image,
            path,
            rev,
            context_mode,
        } => {
            let path = why::repo_relative(&repo, path)?;
            let project = load(&repo, rev.as_deref())?;
            let mode = ContextMode::from(*context_mode);
            let answer = ferry_detect::why::why(&project, image, &path, mode)?;
            if g.json {
                push_json(out, &answer);
            } else {
                why::render(out, &project, &answer, mode);
            }
            Ok(exit::SUCCESS)
        }
    }
}

/// `changed`: choose the revisions (or ask the registry), compare, render.
fn cmd_changed(
    cli: &Cli,
    repo: &Repo,
    args: &ChangedArgs,
    out: &mut String,
) -> Result<u8, Failure> {
    let ChangedArgs {
        base,
        head,
        github_event,
        context_mode,
        github_output,
        format,
        published_tag,
    } = args;
    let g = &cli.global;
    let format = format.unwrap_or(if g.json {
        ChangedFormat::Json
    } else {
        ChangedFormat::Text
    });
    let options = ChangedOptions {
        mode: ContextMode::from(*context_mode),
        max_parallel: g.max_parallel,
        ..Default::default()
    };
    let report = if base.as_deref() == Some(PUBLISHED) {
        published(cli, repo, head.as_deref(), published_tag, &options)?
    } else {
        let selection = select(repo, base.as_deref(), head.as_deref(), github_event)?;
        changed(repo, &selection, &options)?
    };
    report_warnings(&report.warnings);
    if *github_output {
        write_github_output(&report)?;
    }
    match format {
        ChangedFormat::Json => push_json(out, &report),
        ChangedFormat::Text => render_changed(out, &report),
        ChangedFormat::Gitlab => push_json(out, &ferry_detect::ci::gitlab_pipeline(&report)),
    }
    Ok(exit::SUCCESS)
}

/// Which commits to compare: `--base`, else a GitHub event (`--github-event`, or
/// `$GITHUB_EVENT_PATH` under GitHub Actions), else Jenkins' git variables (when `JENKINS_URL` is
/// set), else the head's first parent.
fn select(
    repo: &Repo,
    base: Option<&str>,
    head: Option<&str>,
    github_event: &Option<PathBuf>,
) -> Result<Selection, Failure> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if base.is_some() {
        return Ok(revision::explicit(repo, base, head)?);
    }
    let event = github_event.clone().or_else(|| {
        ferry_cli::in_github_actions()
            .then(|| env("GITHUB_EVENT_PATH").map(PathBuf::from))
            .flatten()
    });
    if let Some(file) = event {
        let payload = std::fs::read(&file).map_err(|e| {
            Failure::usage(format!("cannot read event file {}: {e}", file.display()))
        })?;
        let name = env("GITHUB_EVENT_NAME");
        return Ok(revision::from_github_event(
            repo,
            name.as_deref(),
            &payload,
            &file.display().to_string(),
        )?);
    }
    if env("JENKINS_URL").is_some() {
        let jenkins = revision::Jenkins {
            git_commit: head.map(str::to_string).or_else(|| env("GIT_COMMIT")),
            previous_successful_commit: env("GIT_PREVIOUS_SUCCESSFUL_COMMIT"),
            previous_commit: env("GIT_PREVIOUS_COMMIT"),
        };
        return Ok(revision::from_jenkins(repo, &jenkins)?);
    }
    Ok(revision::explicit(repo, None, head)?)
}

/// `--base published`: ask the registry for each image's published revision, then compare.
fn published(
    cli: &Cli,
    repo: &Repo,
    head: Option<&str>,
    tag: &str,
    options: &ChangedOptions,
) -> Result<ChangedReport, Failure> {
    // Under Jenkins the commit being built is GIT_COMMIT, as in the other modes.
    let jenkins_commit = std::env::var_os("JENKINS_URL")
        .filter(|v| !v.is_empty())
        .and_then(|_| std::env::var("GIT_COMMIT").ok())
        .filter(|v| !v.is_empty());
    let head = head.or(jenkins_commit.as_deref()).unwrap_or("HEAD");
    let head = revision::resolve_head(repo, head)?;
    let project = Project::load(repo, head)?;
    let mut queries = Vec::new();
    for img in &project.images {
        let Some(r) = &img.repository else { continue };
        let reference = Reference::parse(r)
            .and_then(|r| r.with_tag(tag))
            .map_err(|e| Failure::usage(format!("--published-tag {tag:?} for {r}: {e}")))?;
        queries.push((img.name.clone(), reference));
    }
    let answers = if queries.is_empty() {
        Default::default()
    } else {
        let client = cli.registry.client(None)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::operational(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(published::query(&client, queries))
    };
    for (name, a) in &answers {
        if let Published::Failed(e) = a {
            warn(
                None,
                &format!("{name}: registry query failed, rebuilding it: {e}"),
            );
        }
    }
    Ok(changed_published(repo, &project, &answers, options)?)
}

fn load<'r>(repo: &'r Repo, rev: Option<&str>) -> Result<Project<'r>, Failure> {
    let rev = rev.unwrap_or("HEAD");
    let id = repo.commit_id(rev)?.ok_or_else(|| {
        Failure::from(ferry_detect::Error::UnknownRevision {
            rev: rev.to_string(),
        })
    })?;
    let project = Project::load(repo, id)?;
    report_warnings(&project.warnings);
    Ok(project)
}

/// Files left out of discovery, on stderr (a `::warning` annotation under GitHub Actions).
fn report_warnings(warnings: &[Warning]) {
    for w in warnings {
        warn(Some((&w.file, w.line)), &w.problem.to_string());
    }
}

/// A warning on stderr: `ferry-detect: warning: [file:line: ]message`, or under GitHub Actions
/// a `::warning` annotation (on the file and line when there is one).
fn warn(location: Option<(&str, usize)>, message: &str) {
    if ferry_cli::quiet() {
        return;
    }
    if ferry_cli::in_github_actions() {
        let msg = message
            .replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A");
        match location {
            Some((file, line)) => {
                eprintln!("::warning file={file},line={line},title=ferry-detect::{msg}")
            }
            None => eprintln!("::warning title=ferry-detect::{msg}"),
        }
    } else {
        match location {
            Some((file, line)) => eprintln!("ferry-detect: warning: {file}:{line}: {message}"),
            None => eprintln!("ferry-detect: warning: {message}"),
        }
    }
}

use ferry_cli::push_json;

fn list(out: &mut String, as_json: bool, files: &[String]) {
    if as_json {
        push_json(out, &files);
    } else {
        for f in files {
            out.push_str(f);
            out.push('\n');
        }
    }
}

fn write_github_output(report: &ChangedReport) -> Result<(), Failure> {
    let mut text = String::new();
    for (k, v) in ferry_detect::ci::github_outputs(report) {
        text.push_str(&ferry_core::ci::github_output(k, &v));
    }
    ferry_cli::append_github_output(&text)
}

fn render_changed(out: &mut String, r: &ChangedReport) {
    let short = |s: &str| revision::short(s).to_string();
    out.push_str(&format!(
        "base {}  head {}\n",
        r.base.as_deref().map_or("(none)".to_string(), short),
        short(&r.head)
    ));
    if r.images.is_empty() {
        out.push_str(&format!("nothing to rebuild: {}\n", r.reason));
        return;
    }
    out.push_str(&format!("{}\n", r.reason));
    for (i, wave) in r.waves.iter().enumerate() {
        out.push_str(&format!("wave {}:\n", i + 1));
        for n in wave {
            if let Some(img) = r.images.iter().find(|x| &x.name == n) {
                if r.base.as_deref() == Some(PUBLISHED) {
                    let from = img.base.as_deref().map_or("(none)".to_string(), short);
                    out.push_str(&format!("  {n}  (published revision {from})\n"));
                } else {
                    out.push_str(&format!("  {n}\n"));
                }
                for reason in &img.reasons {
                    out.push_str(&format!("      {reason}\n"));
                }
            }
        }
    }
}

fn render_dot(out: &mut String, g: &Graph) {
    out.push_str("digraph ferry {\n  rankdir=LR;\n");
    for n in &g.images {
        out.push_str(&format!("  {:?};\n", n.name));
        for d in &n.depends_on {
            out.push_str(&format!("  {:?} -> {:?};\n", d, n.name));
        }
    }
    out.push_str("}\n");
}

fn render_mermaid(out: &mut String, g: &Graph) {
    out.push_str("graph LR\n");
    let id = |name: &str| {
        g.images
            .iter()
            .position(|n| n.name == name)
            .map_or("x".to_string(), |i| format!("n{i}"))
    };
    for n in &g.images {
        out.push_str(&format!(
            "  {}[\"{}\"]\n",
            id(&n.name),
            n.name.replace('"', "#quot;")
        ));
    }
    for n in &g.images {
        for d in &n.depends_on {
            out.push_str(&format!("  {} --> {}\n", id(d), id(&n.name)));
        }
    }
}
