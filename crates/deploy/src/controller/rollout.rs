//! Watching a workload after a change: is its rollout complete and available, and — after a git
//! write-back — has Argo CD synced the new image into the pod template yet?

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PodSpec;
use kube::Client;
use kube::api::Api;

use ferry_core::Reference;

use crate::cluster::Workload;
use crate::lease::Fence;
use crate::policy::Kind;

/// How a watch ended.
#[derive(Debug)]
pub enum Watched {
    /// The condition holds.
    Done,
    /// It failed or timed out, and why.
    Failed(WatchFailure),
    /// This replica lost the Lease while watching: it must not act on the outcome.
    LeadershipLost,
}

/// What a watch waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// The rollout to complete and be available.
    Rollout,
    /// Argo CD to sync the new image into the pod template.
    Sync,
}

/// Why a watch failed.
#[derive(Debug)]
pub enum WatchFailure {
    /// The workload could not be read.
    Read {
        /// The workload (`namespace/Kind/name`).
        workload: String,
        /// The API error.
        source: kube::Error,
    },
    /// The Deployment reported `ProgressDeadlineExceeded`.
    ProgressDeadline,
    /// What was awaited did not happen within `after`.
    Timeout {
        /// What was awaited.
        awaited: Awaited,
        /// The timeout.
        after: Duration,
    },
}

impl std::fmt::Display for WatchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchFailure::Read { workload, source } => {
                write!(f, "cannot read {workload}: {source}")
            }
            WatchFailure::ProgressDeadline => {
                f.write_str("rollout failed: ProgressDeadlineExceeded")
            }
            WatchFailure::Timeout { awaited, after } => {
                let what = match awaited {
                    Awaited::Rollout => "rollout did not complete",
                    Awaited::Sync => "Argo CD did not sync the new image",
                };
                write!(f, "{what} within {}", humanize(*after))
            }
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// Complete and available.
    Done,
    /// Not yet.
    Pending,
    /// The Deployment's progress deadline passed: failed for good.
    DeadlineExceeded,
}

impl From<bool> for Progress {
    fn from(done: bool) -> Self {
        if done {
            Progress::Done
        } else {
            Progress::Pending
        }
    }
}

/// What one read of a workload showed.
struct Observed {
    /// Container → image in the pod template.
    images: BTreeMap<String, String>,
    /// Where the rollout stands.
    rollout: Progress,
}

/// Poll `w` every `poll` until `done` says so, the rollout fails, `timeout` passes or the
/// fence reports a lost Lease.
async fn watch(
    client: &Client,
    w: &Workload,
    timeout: Duration,
    poll: Duration,
    fence: &Fence,
    awaited: Awaited,
    done: impl Fn(&Observed) -> Result<bool, WatchFailure>,
) -> Watched {
    let start = tokio::time::Instant::now();
    loop {
        if fence.is_lost() {
            return Watched::LeadershipLost;
        }
        match observe(client, w).await.and_then(|o| done(&o)) {
            Ok(true) => return Watched::Done,
            Ok(false) => {}
            Err(why) => return Watched::Failed(why),
        }
        if start.elapsed() >= timeout {
            return Watched::Failed(WatchFailure::Timeout {
                awaited,
                after: timeout,
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = fence.lost() => return Watched::LeadershipLost,
        }
    }
}

fn humanize(d: Duration) -> String {
    ferry_core::duration::human(d.as_secs())
}

/// Wait until the rollout of `w` is complete and available.
pub async fn rollout(
    client: &Client,
    w: &Workload,
    timeout: Duration,
    poll: Duration,
    fence: &Fence,
) -> Watched {
    watch(
        client,
        w,
        timeout,
        poll,
        fence,
        Awaited::Rollout,
        |o| match o.rollout {
            Progress::Done => Ok(true),
            Progress::Pending => Ok(false),
            Progress::DeadlineExceeded => Err(WatchFailure::ProgressDeadline),
        },
    )
    .await
}

/// Wait until the pod template of `w` carries `images` (container → image; with `by_digest`
/// only the image's digest must match, as a Helm chart spells images its own way): Argo CD
/// synced the commit. A failed rollout on the way is not this wait's business.
pub async fn synced(
    client: &Client,
    w: &Workload,
    images: &BTreeMap<String, Reference>,
    by_digest: bool,
    timeout: Duration,
    poll: Duration,
    fence: &Fence,
) -> Watched {
    watch(client, w, timeout, poll, fence, Awaited::Sync, |o| {
        Ok(images.iter().all(|(c, target)| {
            let now = o.images.get(c);
            match (by_digest, target.digest()) {
                // A Helm chart renders the image its own way: the digest must be in it.
                (true, Some(digest)) => now.is_some_and(|n| n.ends_with(&digest.to_string())),
                _ => now.is_some_and(|n| *n == target.familiar()),
            }
        }))
    })
    .await
}

fn images_of(spec: Option<&PodSpec>) -> BTreeMap<String, String> {
    spec.map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(&s.containers)
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect()
    })
    .unwrap_or_default()
}

/// Where a Deployment's rollout stands.
fn deployment_progress(d: &Deployment) -> Progress {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let none = Default::default();
    let st: &k8s_openapi::api::apps::v1::DeploymentStatus = d.status.as_ref().unwrap_or(&none);
    let deadline = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline {
        return Progress::DeadlineExceeded;
    }
    Progress::from(
        st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && st.updated_replicas.unwrap_or(0) >= want
            && st.available_replicas.unwrap_or(0) >= want
            && st.replicas.unwrap_or(0) <= want,
    )
}

async fn observe(client: &Client, w: &Workload) -> Result<Observed, WatchFailure> {
    let (ns, name) = (&w.view.namespace, &w.view.name);
    let err = |source: kube::Error| WatchFailure::Read {
        workload: w.view.id(),
        source,
    };
    match w.view.kind {
        Kind::Deployment => {
            let d = Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(err)?;
            let rollout = deployment_progress(&d);
            let spec = d.spec.unwrap_or_default();
            Ok(Observed {
                images: images_of(spec.template.spec.as_ref()),
                rollout,
            })
        }
        Kind::StatefulSet => {
            let s = Api::<StatefulSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(err)?;
            let spec = s.spec.unwrap_or_default();
            let st = s.status.unwrap_or_default();
            let want = spec.replicas.unwrap_or(1);
            Ok(Observed {
                images: images_of(spec.template.spec.as_ref()),
                rollout: Progress::from(
                    st.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0)
                        && st.updated_replicas.unwrap_or(0) >= want
                        && st.available_replicas.unwrap_or(0) >= want,
                ),
            })
        }
        Kind::DaemonSet => {
            let d = Api::<DaemonSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(err)?;
            let spec = d.spec.unwrap_or_default();
            let st = d.status.unwrap_or_default();
            Ok(Observed {
                images: images_of(spec.template.spec.as_ref()),
                rollout: Progress::from(
                    st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
                        && st.updated_number_scheduled.unwrap_or(0) >= st.desired_number_scheduled
                        && st.number_available.unwrap_or(0) >= st.desired_number_scheduled,
                ),
            })
        }
        // A CronJob's next Job uses the new template; there is no rollout to watch.
        Kind::CronJob => {
            let c = Api::<CronJob>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map_err(err)?;
            let spec = c
                .spec
                .and_then(|s| s.job_template.spec)
                .and_then(|j| j.template.spec);
            Ok(Observed {
                images: images_of(spec.as_ref()),
                rollout: Progress::Done,
            })
        }
    }
}
