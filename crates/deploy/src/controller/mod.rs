//! One pass of the redeploy controller, by concern:
//!
//! * [`plan`](fn@plan) — read the cluster (workloads, pods, nodes, pull secrets, Argo CD
//!   Applications), ask the registry ([`gather`]), decide ([`crate::policy`]) and route updates
//!   through git where they must go ([`writeback`]). Writes nothing.
//! * [`apply`](fn@apply) — patch each workload (fenced by the Lease), publish Events, watch the
//!   rollout and roll a failed one back; git updates are committed, pushed and health-gated.
//!   A failure stays with its workload: the pass goes on with the others.
//! * [`run`](fn@run) — the loop: leader election with background renewal, a pass every
//!   interval or soon after a watched workload changed, graceful stop.
//! * [`RateGate`] — stop polling a registry whose rate limit is nearly spent.

mod apply;
mod events;
mod gather;
mod plan;
mod rate_gate;
mod rollout;
mod run;
mod tag_times;
mod writeback;

use kube::Client;

use crate::cluster::Namespaces;
use crate::gitops;

pub use apply::{Applied, ApplyOptions, Failure, Stage, apply};
pub use events::EventLog;
pub use plan::{Plan, plan};
pub use rate_gate::RateGate;
pub use run::{RunOptions, run, spawn_watchers};
pub use tag_times::TagTimes;

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
}

/// Git write-back settings.
#[derive(Debug, Clone)]
pub struct GitOps {
    /// How to clone, commit and push.
    pub config: gitops::WriteBackConfig,
    /// Push commits to this branch instead of the Application's (`--git-write-branch`; the
    /// workload annotation `ferry.dev/git-write-branch` wins).
    pub write_branch: Option<String>,
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
