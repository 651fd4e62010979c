//! `ferry-bump`: update a base image in every Dockerfile of a repository at once.
//!
//! A thin shell: parse flags, find the Dockerfiles (as ferry-detect does), ask the registry
//! for digests when pinning or checking, let `ferry_detect::bump` plan the byte-exact edits,
//! then print a diff, write atomically, or commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ferry_cli::{Failure, RegistryArgs};
use ferry_core::{Digest, Reference, exit};
use ferry_detect::bump::{self, Plan, RefUse};
use ferry_detect::git::Repo;
use ferry_detect::images;
use ferry_detect::project::Project;
use ferry_detect::worktree::WorkTree;
use ferry_registry::Client;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "ferry-bump",
    version,
    about = "Update a base image in every Dockerfile at once: byte-exact edits, optional digest pins, one commit.",
    after_help = "Exit codes: 0 success; 1 something was skipped (an unparseable Dockerfile), stale pins (check), a refused commit, an invalid or unknown reference; 2 usage error; 3 registry or git error."
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
    #[arg(long, value_name = "DIR", default_value = ".", global = true)]
    repo: PathBuf,
    /// Print a unified diff and change nothing.
    #[arg(long = "dry-run", global = true)]
    dry_run: bool,
    /// Commit the change (refused when a file it touches has uncommitted changes).
    #[arg(long, global = true, conflicts_with = "dry_run")]
    commit: bool,
    /// Commit message subject (the list of edits is always in the body).
    #[arg(long, value_name = "TEXT", global = true)]
    message: Option<String>,
    /// Commit author as "Name <email>" (default: git config).
    #[arg(long, value_name = "NAME <EMAIL>", global = true)]
    author: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Give every reference to REF's repository REF's tag (and digest).
    Set {
        /// Repository and new tag, optionally with a digest: python:3.12-slim
        reference: String,
        /// Append the digest the registry serves for REF (the index digest).
        #[arg(long)]
        pin: bool,
    },
    /// Every image reference in every Dockerfile.
    List,
    /// Compare every pinned reference with the digest its tag has now; exit 1 when any is stale.
    Check,
    /// Re-pin every stale pinned reference to its tag's current digest.
    Refresh,
}

fn main() -> ExitCode {
    let cli: Cli = match ferry_cli::parse_args() {
        Ok(c) => c,
        Err(code) => return code,
    };
    ferry_cli::init_tracing(0);
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
        Cmd::List => {
            let (uses, skipped) = bump::list(&tree, &images)?;
            for s in &skipped {
                ferry_cli::report_error(
                    "ferry-bump",
                    &format!("{}:{}: {} (file skipped)", s.file, s.line, s.message),
                );
            }
            if g.json {
                push_json(out, &json!(uses));
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
            finish(
                g,
                &tree,
                plan,
                &subject,
                json!({"target": target.to_string(), "digest": digest.map(|d| d.to_string())}),
                out,
            )
        }
        Cmd::Check | Cmd::Refresh => {
            let (uses, skipped) = bump::list(&tree, &images)?;
            let client = g.registry.client(None)?;
            let (current, errors) = current_digests(&client, &uses).await;
            let stale: Vec<(&RefUse, &Digest)> = uses
                .iter()
                .filter_map(|u| {
                    let r = Reference::parse(u.canonical.as_deref()?).ok()?;
                    let fresh = current.get(&bump::tag_key(&r)?)?;
                    (r.digest() != Some(fresh)).then_some((u, fresh))
                })
                .collect();
            for (key, e) in &errors {
                ferry_cli::report_error("ferry-bump", &format!("{key}: {e}"));
            }
            for s in &skipped {
                ferry_cli::report_error(
                    "ferry-bump",
                    &format!("{}:{}: {} (file skipped)", s.file, s.line, s.message),
                );
            }
            if matches!(cli.cmd, Cmd::Check) {
                let rows: Vec<Value> = stale
                    .iter()
                    .map(|(u, fresh)| json!({"file": u.file, "line": u.line, "spelling": u.spelling, "pinned": u.digest, "current": fresh.to_string()}))
                    .collect();
                if g.json {
                    push_json(
                        out,
                        &json!({"stale": rows, "checked": current.len(), "errors": errors.iter().map(|(k, e)| json!({"reference": k, "error": e})).collect::<Vec<_>>()}),
                    );
                } else if stale.is_empty() {
                    out.push_str(&format!("all {} pinned tag(s) are fresh\n", current.len()));
                } else {
                    for (u, fresh) in &stale {
                        out.push_str(&format!(
                            "{}:{}: {} is stale: the tag now points to {fresh}\n",
                            u.file, u.line, u.spelling
                        ));
                    }
                }
                return Ok(if !errors.is_empty() {
                    exit::OPERATIONAL
                } else if !stale.is_empty() || !skipped.is_empty() {
                    exit::NEGATIVE
                } else {
                    exit::SUCCESS
                });
            }
            if !errors.is_empty() {
                return Err(Failure::operational(format!(
                    "{} tag(s) could not be resolved; nothing was changed",
                    errors.len()
                )));
            }
            let plan = bump::plan_refresh(&tree, &images, &current)?;
            finish(
                g,
                &tree,
                plan,
                "ferry-bump: refresh pinned digests",
                json!({}),
                out,
            )
        }
    }
}

/// Resolve every pinned `name:tag` once, concurrently.
async fn current_digests(
    client: &Client,
    uses: &[RefUse],
) -> (BTreeMap<String, Digest>, Vec<(String, String)>) {
    let keys: BTreeSet<String> = uses
        .iter()
        .filter_map(|u| Reference::parse(u.canonical.as_deref()?).ok())
        .filter_map(|r| bump::tag_key(&r))
        .collect();
    let answers: Vec<(String, Result<Digest, String>)> =
        futures::stream::iter(keys.into_iter().map(|k| {
            let client = client.clone();
            async move {
                let r = match Reference::parse(&k) {
                    Ok(r) => r,
                    Err(e) => return (k, Err(e.to_string())),
                };
                let res = client
                    .resolve(&r)
                    .await
                    .map(|x| x.digest)
                    .map_err(|e| e.to_string());
                (k, res)
            }
        }))
        .buffer_unordered(32)
        .collect()
        .await;
    let mut current = BTreeMap::new();
    let mut errors = Vec::new();
    for (k, r) in answers {
        match r {
            Ok(d) => {
                current.insert(k, d);
            }
            Err(e) => errors.push((k, e)),
        }
    }
    errors.sort();
    (current, errors)
}

fn push_json(out: &mut String, v: &Value) {
    out.push_str(&serde_json::to_string_pretty(v).unwrap_or_default());
    out.push('\n');
}

/// In-repo images whose Dockerfile changes, and everything built on them (HEAD's graph).
fn rebuilds(repo: Option<&Repo>, plan: &Plan) -> Vec<String> {
    let Some(repo) = repo else { return Vec::new() };
    let Ok(Some(head)) = repo.commit_id("HEAD") else {
        return Vec::new();
    };
    let Ok(project) = Project::load(repo, head) else {
        return Vec::new();
    };
    let files: BTreeSet<&str> = plan.changes.iter().map(|c| c.file.as_str()).collect();
    project.rebuilt_with(&files)
}

fn parse_author(a: &str) -> Result<(String, String), Failure> {
    let (name, rest) = a
        .split_once('<')
        .ok_or_else(|| Failure::usage(format!("--author {a:?}: expected \"Name <email>\"")))?;
    let email = rest
        .strip_suffix('>')
        .ok_or_else(|| Failure::usage(format!("--author {a:?}: expected \"Name <email>\"")))?;
    Ok((name.trim().to_string(), email.trim().to_string()))
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
    let rebuilds = rebuilds(repo.as_ref(), &plan);
    let mut commit = None;
    if g.commit && !plan.is_empty() {
        let repo = repo.as_ref().ok_or_else(|| {
            Failure::usage(format!(
                "--commit: {} is not a git repository",
                tree.root().display()
            ))
        })?;
        let dirty = repo.dirty_paths()?;
        let conflicts: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| c.file.as_str())
            .filter(|f| dirty.contains(*f))
            .collect();
        if !conflicts.is_empty() {
            return Err(Failure::negative(format!(
                "refusing to commit: {} ha{} uncommitted changes (commit or stash them first); nothing was changed",
                conflicts.join(", "),
                if conflicts.len() == 1 { "s" } else { "ve" }
            )));
        }
    }
    let author = g.author.as_deref().map(parse_author).transpose()?;
    if !g.dry_run {
        plan.apply(tree)?;
        if g.commit && !plan.is_empty() {
            let repo = repo.as_ref().expect("checked above");
            let mut message = g.message.clone().unwrap_or_else(|| subject.to_string());
            message.push_str("\n\n");
            for c in &plan.changes {
                for e in &c.edits {
                    message.push_str(&format!("- {}:{}: {} → {}\n", c.file, e.line, e.old, e.new));
                }
            }
            let files: Vec<(String, Vec<u8>)> = plan
                .changes
                .iter()
                .map(|c| (c.file.clone(), c.after.clone()))
                .collect();
            let id = repo.commit_files(
                &files,
                &message,
                author.as_ref().map(|(n, e)| (n.as_str(), e.as_str())),
            )?;
            commit = Some(id.to_string());
        }
    }
    for s in &plan.skipped {
        ferry_cli::report_error(
            "ferry-bump",
            &format!("{}:{}: {} (file left untouched)", s.file, s.line, s.message),
        );
    }
    if g.json {
        let obj = doc.as_object_mut().expect("object");
        obj.insert("changes".into(), json!(plan.changes));
        obj.insert("skipped".into(), json!(plan.skipped));
        obj.insert("notes".into(), json!(plan.notes));
        obj.insert("rebuilds".into(), json!(rebuilds));
        obj.insert("dry_run".into(), json!(g.dry_run));
        obj.insert("commit".into(), json!(commit));
        if g.dry_run {
            obj.insert("diff".into(), json!(plan.unified_diff()));
        }
        push_json(out, &doc);
    } else if g.dry_run {
        out.push_str(&plan.unified_diff());
    } else {
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
        if let Some(c) = &commit {
            out.push_str(&format!("committed {c}\n"));
        }
    }
    Ok(if plan.skipped.is_empty() {
        exit::SUCCESS
    } else {
        exit::NEGATIVE
    })
}
