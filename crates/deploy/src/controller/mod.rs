//! One pass of the redeploy controller, by concern:
//!
//! * [`plan`](fn@plan) — read the cluster (workloads, pods, nodes, pull secrets, Argo CD
//!   Applications), ask the registry (`gather`), decide ([`crate::policy`]) and route updates
//!   through git where they must go (`writeback`). Writes nothing.
//! * [`apply`](fn@apply) — patch each workload (fenced by the Lease), publish Events, watch the
//!   rollout and roll a failed one back; git updates are committed, pushed and health-gated.
//!   A failure stays with its workload: the pass goes on with the others.
//! * [`run`](fn@run) — the loop: leader election with background renewal, a pass every
//!   interval or soon after a watched workload changed, graceful stop.
//! * [`RateGate`] — stop polling a registry whose rate limit is nearly spent.

mod apply;
mod events;
mod failure;
mod gather;
mod place;
mod plan;
mod provenance;
mod rate_gate;
pub mod report;
mod review;
mod rollout;
mod run;
mod tag_times;
mod writeback;

use std::path::PathBuf;
use std::sync::Arc;

use ferry_core::Identity;
use kube::Client;

use crate::cluster::Namespaces;
use crate::gitops;
use crate::policy::review::{BranchTemplate, PullRequests};

pub use apply::{Applied, ApplyOptions, Failure, Stage, apply};
pub use events::EventLog;
pub use plan::{Plan, Scope, plan, plan_scoped};
pub use provenance::ProvenanceCache;
pub use rate_gate::RateGate;
pub use review::RequestNote;
pub use run::{RunIo, RunOptions, run, spawn_watchers};
pub use tag_times::TagTimes;

/// Concurrent registry queries of a pass unless configured otherwise.
pub const DEFAULT_REGISTRY_CONCURRENCY: usize = 16;

/// What a pass works with (the kube-rs controller `Context` shape).
#[derive(Clone)]
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// The registry client, one per controller and reused by every pass; workloads' pull
    /// secrets apply per request.
    pub registry: ferry_registry::Client,
    /// Where to look.
    pub namespaces: Namespaces,
    /// Concurrent registry queries.
    pub registry_concurrency: usize,
    /// Stop asking a registry whose `ratelimit-remaining` fell below this, until its window ends.
    pub rate_gate: RateGate,
    /// Git write-back (Argo CD Applications, `ferry.dev/git-*` annotations); `None`: off, and
    /// Argo CD-managed workloads and those asking for git are skipped.
    pub gitops: Option<GitOps>,
    /// Namespace of Argo CD's Applications (to tell Argo CD's tracking label from Helm's).
    pub argocd_namespace: String,
    /// Events already published (de-duplicated across passes).
    pub events: EventLog,
    /// `newest-build` created times, cached by digest across passes, and the per-repository
    /// budget of reads per pass (`--max-inspect`).
    pub tag_times: TagTimes,
    /// Signature policies (`--signature-policy`) and `--require-signed-by`.
    pub signatures: Signatures,
    /// Provenance answers (is a revision on a branch), kept across passes.
    pub provenance: ProvenanceCache,
}

/// The controller's signature policies: name → what an update's digest must be signed with
/// (public keys, keyless identities under a trusted root), and the policy every workload is held to. Valid verdicts are kept across
/// passes (a digest signed stays signed: a soaking update is not verified again every pass);
/// negative ones are asked again, since a signature may be pushed later.
#[derive(Clone, Debug, Default)]
pub struct Signatures {
    policies: std::collections::BTreeMap<String, Arc<ferry_registry::signature::Trust>>,
    names: Vec<String>,
    required: Option<String>,
    valid: Arc<std::sync::Mutex<std::collections::HashSet<(ferry_core::Reference, String)>>>,
}

impl Signatures {
    /// Policies by name, and `--require-signed-by` (which must name one of them).
    pub fn new(
        policies: impl IntoIterator<Item = (String, ferry_registry::signature::Trust)>,
        required: Option<String>,
    ) -> Self {
        let policies: std::collections::BTreeMap<_, _> = policies
            .into_iter()
            .map(|(n, t)| (n, Arc::new(t)))
            .collect();
        Signatures {
            names: policies.keys().cloned().collect(),
            policies,
            required,
            valid: Arc::default(),
        }
    }

    /// Whether `image` (`name@digest`) was found validly signed under `policy` before.
    pub fn known_valid(&self, image: &ferry_core::Reference, policy: &str) -> bool {
        let key = (image.clone(), policy.to_string());
        self.valid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key)
    }

    /// Remember that `image` is validly signed under `policy`.
    pub fn remember_valid(&self, image: &ferry_core::Reference, policy: &str) {
        let key = (image.clone(), policy.to_string());
        self.valid
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
    }

    /// What policy `name` trusts.
    pub fn trust(&self, name: &str) -> Option<&ferry_registry::signature::Trust> {
        self.policies.get(name).map(|t| &**t)
    }

    /// The gate the policy core applies.
    pub fn gate(&self) -> crate::policy::SignedGate<'_> {
        crate::policy::SignedGate {
            policies: &self.names,
            required: self.required.as_deref(),
        }
    }
}

/// Git write-back settings.
#[derive(Debug, Clone)]
pub struct GitOps {
    /// How to clone, commit and push.
    pub config: gitops::WriteBackConfig,
    /// Push commits to this branch instead of the Application's (`--git-write-branch`; the
    /// workload annotation `ferry.dev/git-write-branch` wins).
    pub write_branch: Option<String>,
    /// `--git-pull-request` and `--git-pull-request-branch` (the workload annotation
    /// `ferry.dev/git-pull-request` wins).
    pub pull_requests: Option<crate::policy::review::PullRequests>,
    /// The forges' APIs, for updates routed through a pull/merge request.
    pub forges: crate::forge::Forges,
}

/// Write-back settings as a user gives them (flags, environment), before they are checked.
#[derive(Debug, Clone, Default)]
pub struct GitOpsSettings {
    /// Local clone cache; `None`: `<user_cache>/ferry/git`, else the temp dir's.
    pub cache_dir: Option<PathBuf>,
    /// The user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), if known.
    pub user_cache: Option<PathBuf>,
    /// Token for http(s) remotes (surrounding whitespace ignored; empty means none).
    pub token: Option<String>,
    /// User name sent with the token.
    pub user: String,
    /// Private key file for ssh remotes.
    pub ssh_key: Option<PathBuf>,
    /// Commit author as `Name <email>`.
    pub author: String,
    /// Commit subject (`{count}` = number of changes).
    pub subject: String,
    /// Push commits to this branch instead of the Application's (`--git-write-branch`).
    pub write_branch: Option<String>,
    /// `--git-pull-request github|gitlab` (`None`: only workloads that ask).
    pub pull_request: Option<crate::policy::review::Forge>,
    /// `--git-pull-request-branch` (default `ferry/{namespace}-{name}`).
    pub pull_request_branch: Option<String>,
    /// `--git-api-url` (default: the public GitHub / GitLab API).
    pub api_url: Option<url::Url>,
    /// A GitHub App (`--github-app-id`, `--github-app-key-file`): its installation tokens serve
    /// GitHub's API and every git push and fetch over https instead of `token`.
    pub github_app: Option<crate::forge::GitHubAppSettings>,
}

/// Push attempts of a write-back before giving up (each after a fetch and re-apply).
pub const WRITE_BACK_ATTEMPTS: u32 = 5;

impl GitOps {
    /// Check `settings` and make the write-back configuration.
    pub fn new(settings: GitOpsSettings) -> crate::Result<GitOps> {
        let author: Identity = settings
            .author
            .parse()
            .map_err(|e| crate::Error::Config(crate::ConfigProblem::Author(e)))?;
        let cache_dir = settings.cache_dir.unwrap_or_else(|| {
            settings
                .user_cache
                .unwrap_or_else(std::env::temp_dir)
                .join("ferry")
                .join("git")
        });
        let token = settings
            .token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let branch = match &settings.pull_request_branch {
            None => BranchTemplate::default(),
            Some(t) => BranchTemplate::parse(t)
                .map_err(|e| crate::Error::Config(crate::ConfigProblem::BranchTemplate(e)))?,
        };
        let app: Option<std::sync::Arc<dyn crate::forge::TokenSource>> = match settings.github_app {
            Some(a) => Some(std::sync::Arc::new(crate::forge::GitHubApp::new(a)?)),
            None => None,
        };
        let forges = crate::forge::Forges::new(&crate::forge::ForgeSettings {
            api_url: settings.api_url.clone(),
            token: token.clone(),
            github_tokens: app.clone(),
            ..Default::default()
        })?;
        Ok(GitOps {
            pull_requests: Some(PullRequests {
                forge: settings.pull_request,
                branch,
            }),
            forges,
            config: gitops::WriteBackConfig {
                cache_dir,
                auth: gitops::GitAuth {
                    user: Some(settings.user),
                    token,
                    tokens: app,
                    ssh_key: settings.ssh_key,
                },
                author_name: author.name,
                author_email: author.email,
                subject: settings.subject,
                max_attempts: WRITE_BACK_ATTEMPTS,
            },
            write_branch: settings.write_branch,
        })
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("namespaces", &self.namespaces)
            .field("argocd_namespace", &self.argocd_namespace)
            .field("gitops", &self.gitops.is_some())
            .finish()
    }
}

#[cfg(test)]
mod signature_tests {
    use super::Signatures;

    #[test]
    fn valid_verdicts_are_remembered_per_image_and_policy_and_shared_by_clones() {
        let s = Signatures::new([("release".to_string(), Default::default())], None);
        assert_eq!(s.gate().policies, ["release".to_string()]);
        let a: ferry_core::Reference = "r.example/acme/app@sha256:1111111111111111111111111111111111111111111111111111111111111111".parse().unwrap();
        let b: ferry_core::Reference = "r.example/acme/other@sha256:1111111111111111111111111111111111111111111111111111111111111111".parse().unwrap();
        assert!(!s.known_valid(&a, "release"));
        let pass = s.clone();
        pass.remember_valid(&a, "release");
        assert!(s.known_valid(&a, "release"));
        assert!(!s.known_valid(&a, "nightly"), "per policy");
        assert!(
            !s.known_valid(&b, "release"),
            "per repository: a signature lives in one"
        );
    }
}
