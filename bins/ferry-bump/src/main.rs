//! `ferry-bump`: update a base image in every Dockerfile of a repository at once.
//!
//! A thin shell: parse flags, find the Dockerfiles (as ferry-detect does), build a registry
//! client, and let `ferry_detect::bump` do the rest (resolve pins concurrently, find stale
//! ones, plan the byte-exact edits, refuse or make the commit); then print and exit.
// Binary plumbing: printing, exiting and reading the environment are its job.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    clippy::disallowed_methods
)]

mod examples;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferry_cli::{Failure, RegistryArgs, help};
use ferry_core::{Identity, Reference, exit};
use ferry_detect::bump::{self, Current, Plan, RefUse, Refusal, WriteOptions, Written};
use ferry_detect::git::Repo;
use ferry_detect::images::{self, Image};
use ferry_detect::worktree::WorkTree;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "ferry-bump",
    version,
    about = "Update a base image in every Dockerfile at once: byte-exact edits, optional digest pins, one commit.",
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
    /// The repository work tree (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".", hide_default_value = true, global = true, help_heading = help::WATCH)]
    repo: PathBuf,
    /// Print a unified diff and change nothing.
    #[arg(long = "dry-run", global = true, help_heading = help::GIT)]
    dry_run: bool,
    /// Commit the change (refused when a file it touches has uncommitted changes).
    #[arg(long, global = true, conflicts_with = "dry_run", help_heading = help::GIT)]
    commit: bool,
    /// Commit message subject (the list of edits is always in the body).
    #[arg(long, value_name = "TEXT", global = true, help_heading = help::GIT)]
    message: Option<String>,
    /// Commit author as "Name <email>" (default: git config).
    #[arg(long, value_name = "NAME <EMAIL>", global = true, help_heading = help::GIT)]
    author: Option<String>,
    /// Print JSON.
    #[arg(long, global = true, help_heading = help::OUTPUT)]
    json: bool,
    #[command(flatten)]
    log: help::LogArgs,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Give every reference to REF's repository REF's tag (and digest).
    #[command(after_help = examples::SET)]
    Set {
        /// Repository and new tag, optionally with a digest: python:3.12-slim
        reference: String,
        /// Append the digest the registry serves for REF (the index digest).
        #[arg(long)]
        pin: bool,
    },
    /// Every image reference in every Dockerfile.
    #[command(after_help = examples::LIST)]
    List,
    /// Compare every pinned reference with the digest its tag has now; exit 1 when any is stale.
    #[command(after_help = examples::CHECK)]
    Check,
    /// Re-pin every stale pinned reference to its tag's current digest.
    #[command(after_help = examples::REFRESH)]
    Refresh,
}

fn main() -> ExitCode {
    let cli: Cli = match ferry_cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    cli.global.log.init("warn");
    let runtime = match ferry_cli::runtime("ferry-bump", false) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut out = String::new();
    let result = runtime.block_on(run(&cli, &mut out));
    ferry_cli::finish("ferry-bump", result, &out)
}

async fn run(cli: &Cli, out: &mut String) -> Result<u8, Failure> {
    let g = &cli.global;
    let tree = WorkTree::scan(&g.repo)?;
    let images = images::discover(&tree)?;
    match &cli.cmd {
        Cmd::List => list(g, &tree, &images, out),
        Cmd::Set { reference, pin } => {
            let target =
                Reference::parse(reference).map_err(|e| Failure::negative(e.to_string()))?;
            if target.tag().is_none() && target.digest().is_none() {
                return Err(Failure::usage(format!(
                    "{reference}: name the new tag (for example python:3.12-slim)"
                )));
            }
            let digest = match (target.digest(), pin) {
                (Some(d), _) => Some(d.clone()),
                (None, true) => {
                    // Resolve before anything is written: a registry that cannot answer changes nothing.
                    let client = g.registry.client(None)?;
                    Some(client.resolve(&target).await?.digest)
                }
                (None, false) => None,
            };
            let plan = bump::plan_set(&tree, &images, &target, digest.as_ref())?;
            let subject = format!("ferry-bump: {}", target.familiar());
            let doc =
                json!({"target": target.to_string(), "digest": digest.map(|d| d.to_string())});
            finish(g, &tree, plan, &subject, doc, out)
        }
        Cmd::Check | Cmd::Refresh => {
            let (uses, skipped) = bump::list(&tree, &images)?;
            let client = g.registry.client(None)?;
            let current = bump::resolve_pins(&uses, 32, |r| {
                let client = client.clone();
                async move { client.resolve(&r).await.map(|x| x.digest) }
            })
            .await;
            for (key, e) in &current.errors {
                let why = ferry_cli::describe(e);
                ferry_cli::report_error("ferry-bump", &format!("{key}: {why}"));
            }
            report_skipped(&skipped, "file skipped");
            if matches!(cli.cmd, Cmd::Check) {
                return Ok(check(g, &uses, &current, skipped.is_empty(), out));
            }
            if !current.errors.is_empty() {
                return Err(Failure::operational(format!(
                    "{} tag(s) could not be resolved; nothing was changed",
                    current.errors.len()
                )));
            }
            let plan = bump::plan_refresh(&tree, &images, &current.digests)?;
            let subject = "ferry-bump: refresh pinned digests";
            finish(g, &tree, plan, subject, json!({}), out)
        }
    }
}

fn report_skipped(skipped: &[bump::Skipped], what: &str) {
    for s in skipped {
        ferry_cli::report_error(
            "ferry-bump",
            &format!("{}:{}: {} ({what})", s.file, s.line, s.problem),
        );
    }
}

fn list(g: &Global, tree: &WorkTree, images: &[Image], out: &mut String) -> Result<u8, Failure> {
    let (uses, skipped) = bump::list(tree, images)?;
    report_skipped(&skipped, "file skipped");
    if g.json {
        ferry_cli::push_json(out, &uses);
    } else {
        for u in &uses {
            let stage = match (&u.stage_name, u.stage) {
                (Some(n), _) => n.clone(),
                (None, Some(i)) => format!("stage {i}"),
                (None, None) => "global".into(),
            };
            out.push_str(&format!(
                "{}:{}\t{}\t{}\t{}\t{}\n",
                u.file,
                u.line,
                stage,
                u.kind.as_str(),
                u.spelling,
                u.canonical.as_deref().unwrap_or("-")
            ));
        }
    }
    Ok(if skipped.is_empty() {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}

/// `check`: print the stale pins; exit 3 when a tag could not be resolved, 1 when anything is
/// stale or a file was skipped.
fn check(
    g: &Global,
    uses: &[RefUse],
    current: &Current<ferry_registry::Error>,
    clean: bool,
    out: &mut String,
) -> u8 {
    let stale = bump::stale_pins(uses, &current.digests);
    if g.json {
        let errors: Vec<Value> = current
            .errors
            .iter()
            .map(|(k, e)| json!({"reference": k, "error": ferry_cli::describe(e)}))
            .collect();
        ferry_cli::push_json(
            out,
            &json!({"stale": stale, "checked": current.digests.len(), "errors": errors}),
        );
    } else if stale.is_empty() {
        out.push_str(&format!(
            "all {} pinned tag(s) are fresh\n",
            current.digests.len()
        ));
    } else {
        for s in &stale {
            out.push_str(&format!(
                "{}:{}: {} is stale: the tag now points to {}\n",
                s.file, s.line, s.spelling, s.current
            ));
        }
    }
    if !current.errors.is_empty() {
        exit::OPERATIONAL
    } else if !stale.is_empty() || !clean {
        exit::NEGATIVE
    } else {
        exit::SUCCESS
    }
}

fn finish(
    g: &Global,
    tree: &WorkTree,
    plan: Plan,
    subject: &str,
    mut doc: Value,
    out: &mut String,
) -> Result<u8, Failure> {
    let repo = Repo::open(tree.root()).ok();
    let rebuilds = bump::rebuilds(repo.as_ref(), &plan);
    let author = g
        .author
        .as_deref()
        .map(|a| {
            a.parse::<Identity>()
                .map_err(|e| Failure::usage(format!("--author {e}")))
        })
        .transpose()?;
    let how = WriteOptions {
        dry_run: g.dry_run,
        commit: g.commit,
        subject: g.message.clone().unwrap_or_else(|| subject.to_string()),
        author,
    };
    let commit = match bump::write(tree, repo.as_ref(), &plan, &how)? {
        Written::Refused(r @ Refusal::NotARepository(_)) => {
            return Err(Failure::usage(r.to_string()));
        }
        Written::Refused(r @ Refusal::Dirty(_)) => return Err(Failure::negative(r.to_string())),
        Written::Committed(id) => Some(id.to_string()),
        Written::Nothing | Written::Files => None,
    };
    report_skipped(&plan.skipped, "file left untouched");
    if g.json {
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("changes".into(), json!(plan.changes));
            obj.insert("skipped".into(), json!(plan.skipped));
            obj.insert("notes".into(), json!(plan.notes));
            obj.insert("rebuilds".into(), json!(rebuilds));
            obj.insert("dry_run".into(), json!(g.dry_run));
            obj.insert("commit".into(), json!(commit));
            if g.dry_run {
                obj.insert("diff".into(), json!(plan.unified_diff()));
            }
        }
        ferry_cli::push_json(out, &doc);
    } else if g.dry_run {
        out.push_str(&plan.unified_diff());
    } else {
        print_plan(&plan, &rebuilds, commit.as_deref(), out);
    }
    Ok(if plan.skipped.is_empty() {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}

fn print_plan(plan: &Plan, rebuilds: &[String], commit: Option<&str>, out: &mut String) {
    if plan.is_empty() {
        out.push_str("nothing to change\n");
    }
    for c in &plan.changes {
        for e in &c.edits {
            out.push_str(&format!("{}:{}: {} → {}\n", c.file, e.line, e.old, e.new));
        }
    }
    for n in &plan.notes {
        out.push_str(&format!(
            "{}:{}: {} left alone: {}\n",
            n.file, n.line, n.spelling, n.reason
        ));
    }
    if !rebuilds.is_empty() {
        out.push_str(&format!(
            "images that will rebuild: {}\n",
            rebuilds.join(", ")
        ));
    }
    if let Some(c) = commit {
        out.push_str(&format!("committed {c}\n"));
    }
}
