//! Where an update lands, decided once with the rest of the decision: a live patch, or a commit
//! to git — the workload's `ferry.dev/git-*` annotations, else its Argo CD Application (given
//! as data: its `spec`), which names a Helm values file ([`crate::helm::values_file`]) or
//! manifests under `spec.source`. The write branch (`ferry.dev/git-write-branch`, else the
//! flag) is part of the route. The shell places the change in a file ([`Placement`]) and
//! commits it; it never reads annotations or fetches the Application again.

use serde_json::Value;

use crate::helm::{self, SetsImage};
use crate::review::{BadBranch, BranchTemplate, PullRequests};
use crate::{Action, Decision, GitEdit, GitRoute, GitTarget, Reason, Route, WorkloadPolicy};

/// What the shell learned of an Argo CD Application ([`crate::Query::Application`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Application {
    /// Its `spec`, as the API server returned it.
    Spec(Value),
    /// It could not be read (not found, forbidden…).
    Unavailable(Unavailable),
}

/// An Argo CD Application that could not be read ([`Application::Unavailable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The Argo CD namespace.
    pub namespace: String,
    /// The Application's name.
    pub name: String,
    /// The API's error; `None`: there is no such Application.
    pub error: Option<crate::Failure>,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ns, name) = (&self.namespace, &self.name);
        match &self.error {
            None => write!(f, "Argo CD Application {ns}/{name} not found"),
            Some(e) => write!(f, "cannot read Argo CD Application {ns}/{name}: {e}"),
        }
    }
}

/// Why an update cannot go to git (the text of [`crate::Reason::GitWriteBack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// The Application could not be read.
    Unavailable(Unavailable),
    /// The Application's Helm values file cannot be edited.
    Helm {
        /// Application name.
        app: String,
        /// Why.
        refusal: helm::Refusal,
    },
    /// The Application has no `spec.source` (or `sources[0]`).
    NoSource(String),
    /// The Application's source has no `repoURL`.
    NoRepo(String),
    /// The Application deploys a chart from a chart repository, nothing in git.
    ChartRepository(String),
    /// The pull-request branch cannot be named.
    Branch(BadBranch),
}

impl std::fmt::Display for NoRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoRoute::Unavailable(why) => write!(f, "{why}"),
            NoRoute::Helm { app, refusal } => write!(f, "Application {app}: {refusal}"),
            NoRoute::NoSource(app) => write!(f, "Application {app} has no spec.source"),
            NoRoute::NoRepo(app) => write!(f, "Application {app} has no spec.source.repoURL"),
            NoRoute::Branch(e) => write!(f, "{e}"),
            NoRoute::ChartRepository(app) => write!(
                f,
                "Application {app} deploys a Helm chart from a chart repository; write-back needs a git source"
            ),
        }
    }
}

/// What the route needs from the rest of the pass.
#[derive(Debug, Clone, Copy)]
pub struct GitSettings<'a> {
    /// `--git-write-branch` (the workload annotation wins).
    pub write_branch: Option<&'a str>,
    /// Reads inline `helm.values` text of an Application.
    pub sets_image: SetsImage,
    /// `--git-pull-request` and its branch template.
    pub pull_requests: Option<&'a PullRequests>,
    /// The workload's namespace and name (for the request's branch).
    pub workload: (&'a str, &'a str),
}

/// The route to the repository the workload's `ferry.dev/git-*` annotations name.
pub fn annotated(
    p: &WorkloadPolicy,
    target: &GitTarget,
    s: &GitSettings<'_>,
) -> Result<GitRoute, NoRoute> {
    route(p, target.clone(), GitEdit::Manifests, s, None)
}

/// The route through the Argo CD Application `app`: its Helm values file, else its git source.
pub fn through_application(
    p: &WorkloadPolicy,
    app: &str,
    answer: &Application,
    s: &GitSettings<'_>,
) -> Result<GitRoute, NoRoute> {
    let spec = match answer {
        Application::Spec(spec) => spec,
        Application::Unavailable(why) => return Err(NoRoute::Unavailable(why.clone())),
    };
    let values = helm::values_file(spec, p.helm_image.as_deref(), s.sets_image);
    match values {
        Ok(Some(f)) => {
            let overrides = f
                .later_targets
                .iter()
                .filter(|t| t.repo == f.target.repo && t.branch == f.target.branch)
                .map(|t| t.path.clone())
                .collect();
            let edit = GitEdit::HelmValues {
                key: f.key,
                overrides,
            };
            route(p, f.target, edit, s, Some(app))
        }
        Err(refusal) => Err(NoRoute::Helm {
            app: app.to_string(),
            refusal,
        }),
        Ok(None) => route(
            p,
            source_target(app, spec)?,
            GitEdit::Manifests,
            s,
            Some(app),
        ),
    }
}

/// The write branch: a pull request's branch (named by its template), else the annotation,
/// else the flag; the target's own branch means none.
fn route(
    p: &WorkloadPolicy,
    target: GitTarget,
    edit: GitEdit,
    s: &GitSettings<'_>,
    app: Option<&str>,
) -> Result<GitRoute, NoRoute> {
    let review = PullRequests::forge_for(s.pull_requests, p.pull_request);
    let request_branch = match review {
        None => None,
        Some(_) => {
            let default = BranchTemplate::default();
            let t = s.pull_requests.map_or(&default, |pr| &pr.branch);
            let (ns, name) = s.workload;
            Some(t.render(ns, name, app).map_err(NoRoute::Branch)?)
        }
    };
    let write_branch = request_branch
        .or_else(|| p.write_branch.clone())
        .or_else(|| s.write_branch.map(str::to_string))
        .filter(|b| *b != target.branch);
    Ok(GitRoute {
        base: write_branch.as_ref().map(|_| target.branch.clone()),
        review: review.filter(|_| write_branch.is_some()),
        branch: write_branch.unwrap_or(target.branch),
        repo: target.repo,
        path: target.path,
        file: None,
        edit,
    })
}

/// The git source of an Application's spec.
fn source_target(app: &str, spec: &Value) -> Result<GitTarget, NoRoute> {
    let source = spec
        .get("source")
        .or_else(|| spec.get("sources").and_then(|s| s.get(0)))
        .ok_or_else(|| NoRoute::NoSource(app.to_string()))?;
    let field = |k: &str| {
        source
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let repo = field("repoURL");
    if repo.is_empty() {
        return Err(NoRoute::NoRepo(app.to_string()));
    }
    if source.get("chart").is_some() {
        return Err(NoRoute::ChartRepository(app.to_string()));
    }
    Ok(GitTarget {
        repo,
        branch: field("targetRevision"),
        path: field("path"),
    })
}

/// Where the shell found that a git update lands, once it looked at the branch tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// This file gets the edit.
    File(String),
    /// The repository already holds the target (Argo CD has not synced yet).
    AlreadyWritten,
    /// It cannot be written, and why.
    Refused(Refusal),
}

/// Why the shell, looking at the branch tip, will not place a git update ([`Placement::Refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// ferry's commit of this digest was reverted in git: quarantined until the tag moves.
    Reverted {
        /// The digest.
        digest: ferry_core::Digest,
        /// The commit that took it out.
        commit: String,
        /// Its author.
        author: String,
    },
    /// A pull/merge request for this digest was closed without merging: quarantined.
    RequestClosed {
        /// The digest.
        digest: ferry_core::Digest,
        /// The request's web address.
        url: String,
    },
    /// A values file Helm applies after the edited one sets the same key.
    Overridden {
        /// The later values file.
        later: String,
        /// The file ferry would edit.
        file: String,
        /// The dotted key.
        key: String,
    },
    /// ferry cannot tell whether a request for this update was closed unmerged.
    ReviewUnknown(crate::Failure),
    /// The files cannot be edited for this change (no manifest names the workload, a YAML
    /// layout ferry does not edit…).
    Edit(crate::Failure),
    /// The branch could not be read.
    Git(crate::Failure),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Reverted {
                digest,
                commit,
                author,
            } => write!(
                f,
                "{digest} was reverted in git by {author} ({}); quarantined until the tag moves",
                ferry_core::short_hash(commit)
            ),
            Refusal::RequestClosed { digest, url } => write!(
                f,
                "{digest} is quarantined: its request {url} was closed without merging"
            ),
            Refusal::Overridden { later, file, key } => write!(
                f,
                "{later}, applied after {file} in helm.valueFiles, sets {key} and would override the edit (ferry edits only the first values file)"
            ),
            Refusal::ReviewUnknown(e) | Refusal::Edit(e) | Refusal::Git(e) => write!(f, "{e}"),
        }
    }
}

impl Decision {
    /// Record where the shell placed this git update on the branch tip: the file; nothing to do
    /// (git holds the target already); or a skip with the reason.
    pub fn place(&mut self, placement: Placement) {
        match placement {
            Placement::File(file) => {
                if let Route::Git(g) = &mut self.route {
                    g.file = Some(file);
                }
            }
            Placement::AlreadyWritten => {
                self.action = Action::None;
                self.reason = Reason::AlreadyInGit;
            }
            Placement::Refused(why) => {
                self.action = Action::Skip;
                self.reason = Reason::GitWriteBack(crate::NotWritten::Placement(why));
            }
        }
    }
}

/// A decision as a row of the `plan` JSON (the edge: the target rendered, the route flattened).
impl serde::Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("namespace", &self.namespace)?;
        m.serialize_entry("kind", self.kind.as_str())?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("container", &self.container)?;
        m.serialize_entry("image", &self.image)?;
        m.serialize_entry("current_digest", &self.current_digest)?;
        m.serialize_entry("target", &self.target_image())?;
        m.serialize_entry("action", &self.action)?;
        m.serialize_entry("reason", &self.reason)?;
        if let Some(left) = self.soak_remaining_seconds {
            m.serialize_entry("soak_remaining_seconds", &left)?;
        }
        if let Route::Git(g) = &self.route {
            m.serialize_entry("via", "git")?;
            m.serialize_entry("repo", &g.repo)?;
            m.serialize_entry("branch", &g.branch)?;
            if let Some(f) = &g.file {
                m.serialize_entry("file", f)?;
            }
            if let Some(b) = &g.base {
                m.serialize_entry("base_branch", b)?;
            }
            if let Some(f) = &g.review {
                m.serialize_entry("pull_request", f)?;
            }
        }
        m.end()
    }
}
