//! Choosing the base and head revisions: explicit, from a GitHub Actions event payload, or from
//! a Jenkins build's git variables (which the caller reads from the environment).

use git2::Oid;

use crate::error::{Error, EventProblem, Result};
use crate::git::{Lookup, Repo};

/// Which commits to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The base commit; `None` when everything must be rebuilt.
    pub base: Option<Oid>,
    /// The head commit.
    pub head: Oid,
    /// Why everything is rebuilt, when it is.
    pub rebuild_all: Option<RebuildAll>,
    /// How the base was chosen (for the human summary).
    pub how: Basis,
}

impl Selection {
    fn all(head: Oid, why: RebuildAll) -> Self {
        Selection {
            base: None,
            head,
            rebuild_all: Some(why.clone()),
            how: Basis::RebuildAll(why),
        }
    }
}

/// Why everything is rebuilt: no usable base commit. Revisions are kept as given; the text
/// shortens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebuildAll {
    /// `--base` names a commit whose objects are not in this clone.
    BaseNotInClone {
        /// The `--base` value, as given.
        base: String,
    },
    /// The head's parent is not in this shallow clone.
    ParentNotInShallowClone,
    /// The head commit has no parent.
    FirstCommit,
    /// A Jenkins job's first build: no previous commit known.
    JenkinsFirstBuild,
    /// The Jenkins variable's commit is not in this clone.
    JenkinsBaseNotInClone {
        /// The variable read.
        var: JenkinsVar,
        /// Its value.
        rev: String,
    },
    /// A GitHub event without `after`.
    EventWithoutBase {
        /// The event's name (`$GITHUB_EVENT_NAME`), when known.
        event: Option<String>,
    },
    /// A force-push.
    ForcePush {
        /// The push's `before`.
        before: String,
        /// The push's `after`.
        after: String,
    },
    /// A push whose `before` is not in this clone.
    PushBaseNotInClone {
        /// The push's `before`.
        before: String,
    },
    /// A new branch whose default branch is not in this clone.
    DefaultBranchNotInClone {
        /// The default branch named by the event.
        branch: String,
    },
    /// A new branch and the event names no default branch.
    NoDefaultBranch,
    /// A pull request whose base is not in this clone.
    PullRequestBaseNotInClone {
        /// The pull request's `base.sha`.
        base: String,
    },
    /// No merge-base of the pull request's base and head in this clone.
    NoPullRequestMergeBase,
    /// A merge group whose base is not in this clone.
    MergeGroupBaseNotInClone {
        /// The merge group's `base_sha`.
        base: String,
    },
    /// No base revision at all (a [`Selection`] without a base and without a reason).
    NoBase,
}

impl std::fmt::Display for RebuildAll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALL: &str = "rebuilding everything";
        match self {
            RebuildAll::BaseNotInClone { base } => write!(
                f,
                "base revision {base} is not in this clone (shallow clone or pruned history?): {ALL}"
            ),
            RebuildAll::ParentNotInShallowClone => {
                write!(f, "the head's parent is not in this shallow clone: {ALL}")
            }
            RebuildAll::FirstCommit => {
                write!(f, "the head commit has no parent (first commit): {ALL}")
            }
            RebuildAll::JenkinsFirstBuild => {
                f.write_str("first build: no previous successful commit")
            }
            RebuildAll::JenkinsBaseNotInClone { var, rev } => write!(
                f,
                "{var} {} is not in this clone (shallow clone or rewritten history?): {ALL}",
                short(rev)
            ),
            RebuildAll::EventWithoutBase { event } => write!(
                f,
                "event {} names no base revision: {ALL}",
                event.as_deref().unwrap_or("(unknown)")
            ),
            RebuildAll::ForcePush { before, after } => write!(
                f,
                "force-push: history was rewritten ({}..{}): {ALL}",
                short(before),
                short(after)
            ),
            RebuildAll::PushBaseNotInClone { before } => write!(
                f,
                "push base {} is not in this clone (shallow clone or rewritten history?): {ALL}",
                short(before)
            ),
            RebuildAll::DefaultBranchNotInClone { branch } => write!(
                f,
                "new branch and the default branch {branch} is not in this clone: {ALL}"
            ),
            RebuildAll::NoDefaultBranch => {
                write!(f, "new branch and no default branch in the event: {ALL}")
            }
            RebuildAll::PullRequestBaseNotInClone { base } => write!(
                f,
                "pull request base {} is not in this clone (fetch-depth too small?): {ALL}",
                short(base)
            ),
            RebuildAll::NoPullRequestMergeBase => write!(
                f,
                "no merge-base between the pull request's base and head in this clone: {ALL}"
            ),
            RebuildAll::MergeGroupBaseNotInClone { base } => write!(
                f,
                "merge group base {} is not in this clone (fetch-depth too small?): {ALL}",
                short(base)
            ),
            RebuildAll::NoBase => write!(f, "no base revision: {ALL}"),
        }
    }
}

/// How the base commit was chosen. Revisions are kept as given; the text shortens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    /// `--base`.
    Explicit {
        /// The `--base` value, as given.
        base: String,
    },
    /// The head's first parent.
    FirstParent {
        /// The head commit.
        head: Oid,
    },
    /// A Jenkins variable.
    Jenkins {
        /// The variable read.
        var: JenkinsVar,
        /// Its value.
        rev: String,
    },
    /// A push event's `before..after`.
    Push {
        /// The push's `before`.
        before: String,
        /// The push's `after`.
        after: String,
    },
    /// A new branch: the merge-base with the default branch.
    NewBranch {
        /// The default branch.
        branch: String,
    },
    /// A pull request: the merge-base of its base and head.
    PullRequest {
        /// The pull request's `base.sha`.
        base: String,
    },
    /// A merge group's `base_sha..head_sha`.
    MergeGroup {
        /// `base_sha`.
        base: String,
        /// `head_sha`.
        head: String,
    },
    /// No base: everything is rebuilt, for this reason.
    RebuildAll(RebuildAll),
}

impl std::fmt::Display for Basis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Basis::Explicit { base } => write!(f, "--base {base}"),
            Basis::FirstParent { head } => {
                write!(f, "first parent of {}", short(&head.to_string()))
            }
            Basis::Jenkins { var, rev } => write!(f, "{var} {}", short(rev)),
            Basis::Push { before, after } => {
                write!(f, "push {}..{}", short(before), short(after))
            }
            Basis::NewBranch { branch } => write!(f, "new branch: merge-base with {branch}"),
            Basis::PullRequest { base } => write!(
                f,
                "merge-base of pull request base {} and head",
                short(base)
            ),
            Basis::MergeGroup { base, head } => {
                write!(f, "merge group {}..{}", short(base), short(head))
            }
            Basis::RebuildAll(why) => why.fmt(f),
        }
    }
}

/// The Jenkins git plugin variable a base was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JenkinsVar {
    /// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`.
    PreviousSuccessfulCommit,
    /// `GIT_PREVIOUS_COMMIT`.
    PreviousCommit,
}

impl std::fmt::Display for JenkinsVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JenkinsVar::PreviousSuccessfulCommit => "GIT_PREVIOUS_SUCCESSFUL_COMMIT",
            JenkinsVar::PreviousCommit => "GIT_PREVIOUS_COMMIT",
        })
    }
}

const ZEROS: &str = "0000000000000000000000000000000000000000";

/// The first 12 characters of a revision, for messages (never cuts a character in two).
pub use ferry_core::short_hash as short;

/// A head revision: it must name a commit that is here (a typo is
/// [`Error::UnknownRevision`], a commit whose objects are missing [`Error::MissingRevision`]).
pub fn resolve_head(repo: &Repo, rev: &str) -> Result<Oid> {
    match repo.lookup(rev)? {
        Lookup::Present(id) => Ok(id),
        Lookup::Missing => Err(Error::MissingRevision {
            rev: rev.to_string(),
        }),
        Lookup::Unknown => Err(Error::UnknownRevision {
            rev: rev.to_string(),
        }),
    }
}

/// Explicit revisions: `head` defaults to `HEAD`, `base` to the head's first parent.
///
/// A revision that names nothing (a typo) is an error naming it; a base that names a commit
/// whose objects are not here (shallow clone, pruned history) rebuilds everything and says so.
pub fn explicit(repo: &Repo, base: Option<&str>, head: Option<&str>) -> Result<Selection> {
    let head = resolve_head(repo, head.unwrap_or("HEAD"))?;
    match base {
        Some(b) => match repo.lookup(b)? {
            Lookup::Present(id) => Ok(Selection {
                base: Some(id),
                head,
                rebuild_all: None,
                how: Basis::Explicit {
                    base: b.to_string(),
                },
            }),
            Lookup::Missing => Ok(Selection::all(
                head,
                RebuildAll::BaseNotInClone {
                    base: b.to_string(),
                },
            )),
            Lookup::Unknown => Err(Error::UnknownRevision { rev: b.to_string() }),
        },
        None => Ok(first_parent(repo, head)),
    }
}

fn first_parent(repo: &Repo, head: Oid) -> Selection {
    match repo.parent(head) {
        Some(p) => Selection {
            base: Some(p),
            head,
            rebuild_all: None,
            how: Basis::FirstParent { head },
        },
        None => Selection::all(
            head,
            if repo.is_shallow() {
                RebuildAll::ParentNotInShallowClone
            } else {
                RebuildAll::FirstCommit
            },
        ),
    }
}

/// The Jenkins git plugin's variables, as the caller read them from the environment
/// (`GIT_COMMIT`, `GIT_PREVIOUS_SUCCESSFUL_COMMIT`, `GIT_PREVIOUS_COMMIT`; empty counts as unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jenkins {
    /// `GIT_COMMIT`: the commit being built.
    pub git_commit: Option<String>,
    /// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`: the commit of the last successful build of the job.
    pub previous_successful_commit: Option<String>,
    /// `GIT_PREVIOUS_COMMIT`: the commit of the previous build, successful or not.
    pub previous_commit: Option<String>,
}

/// A variable's value, `None` when unset or blank.
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Choose revisions in a Jenkins build: head = `GIT_COMMIT` (else `HEAD`), base =
/// `GIT_PREVIOUS_SUCCESSFUL_COMMIT`, else `GIT_PREVIOUS_COMMIT` (so a failed build is retried by
/// the next one); neither is a first build and everything rebuilds. The reason names the
/// variable used.
pub fn from_jenkins(repo: &Repo, env: &Jenkins) -> Result<Selection> {
    let head = resolve_head(repo, set(&env.git_commit).unwrap_or("HEAD"))?;
    let chosen = match (
        set(&env.previous_successful_commit),
        set(&env.previous_commit),
    ) {
        (Some(v), _) => (JenkinsVar::PreviousSuccessfulCommit, v),
        (None, Some(v)) => (JenkinsVar::PreviousCommit, v),
        (None, None) => return Ok(Selection::all(head, RebuildAll::JenkinsFirstBuild)),
    };
    let (var, value) = chosen;
    Ok(match repo.lookup(value)? {
        Lookup::Present(id) => Selection {
            base: Some(id),
            head,
            rebuild_all: None,
            how: Basis::Jenkins {
                var,
                rev: value.to_string(),
            },
        },
        Lookup::Missing | Lookup::Unknown => Selection::all(
            head,
            RebuildAll::JenkinsBaseNotInClone {
                var,
                rev: value.to_string(),
            },
        ),
    })
}

/// Choose revisions from a GitHub Actions event payload (`$GITHUB_EVENT_PATH`).
///
/// * push: `before..after`; a new branch (`before` all zeros, or `created`) compares with the
///   merge-base of the default branch when that branch is in the clone, else rebuilds
///   everything; a force-push (`forced`) or a `before` missing locally rebuilds everything.
/// * pull_request / pull_request_target: the merge-base of `base.sha` and `head.sha`.
/// * anything else: everything, with the event named.
pub fn from_github_event(
    repo: &Repo,
    event_name: Option<&str>,
    payload: &[u8],
    file: &str,
) -> Result<Selection> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| Error::Event {
        file: file.to_string(),
        problem: EventProblem::NotJson(e),
    })?;
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    if v.get("merge_group").is_some() {
        return merge_group(
            repo,
            &s("/merge_group/base_sha"),
            &s("/merge_group/head_sha"),
            file,
        );
    }
    if v.get("pull_request").is_some() {
        return pull_request(
            repo,
            &s("/pull_request/base/sha"),
            &s("/pull_request/head/sha"),
            file,
        );
    }
    push(repo, &v, event_name)
}

/// A `push` event (or any other event with `after`).
fn push(repo: &Repo, v: &serde_json::Value, event_name: Option<&str>) -> Result<Selection> {
    let s = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_string);
    let Some(after) = s("/after") else {
        let head = repo
            .commit_id("HEAD")?
            .ok_or_else(|| Error::UnknownRevision { rev: "HEAD".into() })?;
        return Ok(Selection::all(
            head,
            RebuildAll::EventWithoutBase {
                event: event_name.map(str::to_string),
            },
        ));
    };
    let head = match repo.commit_id(&after)? {
        Some(h) => h,
        None => repo
            .commit_id("HEAD")?
            .ok_or_else(|| Error::UnknownRevision { rev: after.clone() })?,
    };
    let before = s("/before").unwrap_or_else(|| ZEROS.into());
    let forced = v.get("forced").and_then(|x| x.as_bool()).unwrap_or(false);
    let created = v.get("created").and_then(|x| x.as_bool()).unwrap_or(false) || before == ZEROS;
    if created {
        return new_branch(repo, head, s("/repository/default_branch"));
    }
    if forced {
        return Ok(Selection::all(
            head,
            RebuildAll::ForcePush { before, after },
        ));
    }
    match repo.commit_id(&before)?.filter(|b| repo.has_commit(*b)) {
        Some(b) => Ok(Selection {
            base: Some(b),
            head,
            rebuild_all: None,
            how: Basis::Push { before, after },
        }),
        None => Ok(Selection::all(
            head,
            RebuildAll::PushBaseNotInClone { before },
        )),
    }
}

/// A push that created a branch: the merge-base with the default branch when that branch is in
/// the clone (remote-tracking first), else everything.
fn new_branch(repo: &Repo, head: Oid, default: Option<String>) -> Result<Selection> {
    if let Some(branch) = &default {
        for rev in [
            format!("refs/remotes/origin/{branch}"),
            format!("refs/heads/{branch}"),
        ] {
            if let Some(d) = repo.commit_id(&rev)?
                && d != head
                && let Some(mb) = repo.merge_base(d, head)
            {
                return Ok(Selection {
                    base: Some(mb),
                    head,
                    rebuild_all: None,
                    how: Basis::NewBranch {
                        branch: branch.clone(),
                    },
                });
            }
        }
    }
    Ok(Selection::all(
        head,
        match default {
            Some(branch) => RebuildAll::DefaultBranchNotInClone { branch },
            None => RebuildAll::NoDefaultBranch,
        },
    ))
}

/// A `pull_request` / `pull_request_target` event: the merge-base of `base.sha` and `head.sha`.
fn pull_request(
    repo: &Repo,
    base_sha: &Option<String>,
    head_sha: &Option<String>,
    file: &str,
) -> Result<Selection> {
    let base_sha = base_sha.clone().ok_or_else(|| Error::Event {
        file: file.into(),
        problem: EventProblem::PullRequestWithoutBase,
    })?;
    let head_sha = head_sha.clone().unwrap_or_else(|| "HEAD".into());
    let head = match repo.commit_id(&head_sha)? {
        Some(h) => h,
        None => repo
            .commit_id("HEAD")?
            .ok_or_else(|| Error::UnknownRevision {
                rev: head_sha.clone(),
            })?,
    };
    let Some(base) = repo.commit_id(&base_sha)?.filter(|b| repo.has_commit(*b)) else {
        return Ok(Selection::all(
            head,
            RebuildAll::PullRequestBaseNotInClone { base: base_sha },
        ));
    };
    Ok(match repo.merge_base(base, head) {
        Some(mb) => Selection {
            base: Some(mb),
            head,
            rebuild_all: None,
            how: Basis::PullRequest { base: base_sha },
        },
        None => Selection::all(head, RebuildAll::NoPullRequestMergeBase),
    })
}

/// A merge queue's `merge_group` event: `base_sha..head_sha`.
fn merge_group(
    repo: &Repo,
    base_sha: &Option<String>,
    head_sha: &Option<String>,
    file: &str,
) -> Result<Selection> {
    let (Some(base_sha), Some(head_sha)) = (base_sha, head_sha) else {
        return Err(Error::Event {
            file: file.into(),
            problem: EventProblem::MergeGroupWithoutShas,
        });
    };
    let head = match repo.lookup(head_sha)? {
        Lookup::Present(h) => h,
        _ => resolve_head(repo, "HEAD")?,
    };
    Ok(match repo.lookup(base_sha)? {
        Lookup::Present(b) => Selection {
            base: Some(b),
            head,
            rebuild_all: None,
            how: Basis::MergeGroup {
                base: base_sha.clone(),
                head: head_sha.clone(),
            },
        },
        _ => Selection::all(
            head,
            RebuildAll::MergeGroupBaseNotInClone {
                base: base_sha.clone(),
            },
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let r = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@t").unwrap();
        let tree = r
            .find_tree(r.index().unwrap().write_tree().unwrap())
            .unwrap();
        r.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let repo = Repo::open(dir.path()).unwrap();
        (dir, repo)
    }

    proptest! {
        #[test]
        fn short_is_a_char_prefix_of_at_most_12_chars_for_any_text(s in "\\PC{0,40}") {
            let p = short(&s);
            prop_assert!(s.starts_with(p));
            prop_assert_eq!(p.chars().count(), s.chars().count().min(12));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_revision_text_is_a_lookup_or_an_error_never_a_panic(
            rev in "(HEAD|main|[0-9a-f]{4,40})?([~^][0-9]{0,3}){0,4}|\\PC{0,20}",
        ) {
            let (_d, r) = repo();
            let _ = r.lookup(&rev);
        }

        #[test]
        fn any_jenkins_variables_give_a_base_or_a_reason(
            commit in proptest::option::of("HEAD|[0-9a-f]{0,40}|\\PC{0,10}"),
            ok in proptest::option::of("HEAD|[0-9a-f]{0,40}|\\PC{0,10}"),
            prev in proptest::option::of("HEAD|[0-9a-f]{0,40}|\\PC{0,10}"),
        ) {
            let (_d, r) = repo();
            let env = Jenkins { git_commit: commit, previous_successful_commit: ok, previous_commit: prev };
            match from_jenkins(&r, &env) {
                Ok(sel) => prop_assert!(sel.base.is_some() || sel.rebuild_all.is_some(), "never a silent nothing"),
                Err(e) => prop_assert!(matches!(e, Error::UnknownRevision { .. } | Error::MissingRevision { .. }), "{e}"),
            }
        }
    }

    #[test]
    fn jenkins_first_build_and_variable_order() {
        let (_d, r) = repo();
        let head = r.commit_id("HEAD").unwrap().unwrap().to_string();
        let sel = from_jenkins(&r, &Jenkins::default()).unwrap();
        assert_eq!(sel.rebuild_all, Some(RebuildAll::JenkinsFirstBuild));
        let sel = from_jenkins(
            &r,
            &Jenkins {
                git_commit: Some(head.clone()),
                previous_successful_commit: Some(" ".into()),
                previous_commit: Some(head.clone()),
            },
        )
        .unwrap();
        assert_eq!(sel.base.map(|b| b.to_string()), Some(head.clone()));
        assert_eq!(
            sel.how,
            Basis::Jenkins {
                var: JenkinsVar::PreviousCommit,
                rev: head.clone()
            }
        );
        assert!(
            sel.how.to_string().starts_with("GIT_PREVIOUS_COMMIT "),
            "{}",
            sel.how
        );
    }

    #[test]
    fn rebuild_all_texts() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let (a12, b12) = ("a".repeat(12), "b".repeat(12));
        let cases = [
            (
                RebuildAll::BaseNotInClone { base: a.clone() },
                format!("base revision {a} is not in this clone (shallow clone or pruned history?): rebuilding everything"),
            ),
            (
                RebuildAll::ParentNotInShallowClone,
                "the head's parent is not in this shallow clone: rebuilding everything".into(),
            ),
            (
                RebuildAll::FirstCommit,
                "the head commit has no parent (first commit): rebuilding everything".into(),
            ),
            (
                RebuildAll::JenkinsFirstBuild,
                "first build: no previous successful commit".into(),
            ),
            (
                RebuildAll::JenkinsBaseNotInClone { var: JenkinsVar::PreviousSuccessfulCommit, rev: a.clone() },
                format!("GIT_PREVIOUS_SUCCESSFUL_COMMIT {a12} is not in this clone (shallow clone or rewritten history?): rebuilding everything"),
            ),
            (
                RebuildAll::EventWithoutBase { event: Some("release".into()) },
                "event release names no base revision: rebuilding everything".into(),
            ),
            (
                RebuildAll::EventWithoutBase { event: None },
                "event (unknown) names no base revision: rebuilding everything".into(),
            ),
            (
                RebuildAll::ForcePush { before: a.clone(), after: b.clone() },
                format!("force-push: history was rewritten ({a12}..{b12}): rebuilding everything"),
            ),
            (
                RebuildAll::PushBaseNotInClone { before: a.clone() },
                format!("push base {a12} is not in this clone (shallow clone or rewritten history?): rebuilding everything"),
            ),
            (
                RebuildAll::DefaultBranchNotInClone { branch: "main".into() },
                "new branch and the default branch main is not in this clone: rebuilding everything".into(),
            ),
            (
                RebuildAll::NoDefaultBranch,
                "new branch and no default branch in the event: rebuilding everything".into(),
            ),
            (
                RebuildAll::PullRequestBaseNotInClone { base: a.clone() },
                format!("pull request base {a12} is not in this clone (fetch-depth too small?): rebuilding everything"),
            ),
            (
                RebuildAll::NoPullRequestMergeBase,
                "no merge-base between the pull request's base and head in this clone: rebuilding everything".into(),
            ),
            (
                RebuildAll::MergeGroupBaseNotInClone { base: a.clone() },
                format!("merge group base {a12} is not in this clone (fetch-depth too small?): rebuilding everything"),
            ),
            (RebuildAll::NoBase, "no base revision: rebuilding everything".into()),
        ];
        for (why, text) in cases {
            assert_eq!(why.to_string(), text);
            assert_eq!(Basis::RebuildAll(why).to_string(), text);
        }
    }

    #[test]
    fn basis_texts() {
        let (a, b) = ("a".repeat(40), "b".repeat(40));
        let (a12, b12) = ("a".repeat(12), "b".repeat(12));
        let oid = Oid::from_str(&a).unwrap();
        let cases = [
            (
                Basis::Explicit {
                    base: "HEAD~3".into(),
                },
                "--base HEAD~3".to_string(),
            ),
            (
                Basis::FirstParent { head: oid },
                format!("first parent of {a12}"),
            ),
            (
                Basis::Jenkins {
                    var: JenkinsVar::PreviousCommit,
                    rev: a.clone(),
                },
                format!("GIT_PREVIOUS_COMMIT {a12}"),
            ),
            (
                Basis::Jenkins {
                    var: JenkinsVar::PreviousSuccessfulCommit,
                    rev: a.clone(),
                },
                format!("GIT_PREVIOUS_SUCCESSFUL_COMMIT {a12}"),
            ),
            (
                Basis::Push {
                    before: a.clone(),
                    after: b.clone(),
                },
                format!("push {a12}..{b12}"),
            ),
            (
                Basis::NewBranch {
                    branch: "main".into(),
                },
                "new branch: merge-base with main".into(),
            ),
            (
                Basis::PullRequest { base: a.clone() },
                format!("merge-base of pull request base {a12} and head"),
            ),
            (
                Basis::MergeGroup {
                    base: a.clone(),
                    head: b.clone(),
                },
                format!("merge group {a12}..{b12}"),
            ),
        ];
        for (how, text) in cases {
            assert_eq!(how.to_string(), text);
        }
    }

    #[test]
    fn short_keeps_multibyte_characters_whole() {
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_event_payload_is_a_selection_or_an_error(
            payload in "\\{(\"(before|after|forced|created|pull_request|merge_group|base_sha|head_sha|base|head|sha|repository|default_branch)\": ?(\"[0-9a-f]{0,40}\"|true|false|null|\\{\\}|[0-9]{1,3}),? ?){0,6}\\}|\\PC{0,40}",
        ) {
            let (_d, r) = repo();
            match from_github_event(&r, Some("push"), payload.as_bytes(), "event.json") {
                Ok(sel) => prop_assert!(sel.base.is_some() || sel.rebuild_all.is_some(), "never a silent nothing"),
                Err(e) => prop_assert!(e.to_string().contains("event.json") || e.to_string().contains("revision")),
            }
        }
    }
}
