//! The controller loop: leader election (the Lease renewed in the background while leading), a
//! pass every interval — or two seconds after a watched workload changed — and a graceful stop.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Client;
use kube::api::Api;
use tokio::sync::Notify;

use super::{Applied, ApplyOptions, Context, apply, plan};
use crate::cluster::Namespaces;
use crate::lease::{Fence, Leadership, LeaseLock};
use crate::metrics::Metrics;
use crate::policy::Action;

/// Options of [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time between passes (jittered by ±10 %).
    pub interval: Duration,
    /// Give up on a rollout after this long (then roll back).
    pub rollout_timeout: Duration,
    /// Leader election; `None` acts without a Lease (one replica only).
    pub lease: Option<LeaseLock>,
}

/// `interval` ± 10 %, from the clock's nanoseconds (no random generator needed).
fn jittered(interval: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    interval.mul_f64(0.9 + f64::from(nanos % 1000) / 1000.0 * 0.2)
}

/// The controller loop. While this replica holds the Lease (renewed in the background for the
/// whole pass), a pass — plan, then apply with the health gate, every write fenced — runs every
/// `interval`, or two seconds after a watched workload changed. A standby only tries to take
/// the Lease. Returns when `stop` becomes true; a running pass always finishes first (or stops
/// writing at once when the Lease is lost).
pub async fn run(
    ctx: &Context,
    options: &RunOptions,
    metrics: &Metrics,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopping = || *stop.borrow();
    // Workload changes (a new opt-in, an edited image) wake the loop before the interval ends.
    let changed = Arc::new(Notify::new());
    let watchers = spawn_watchers(&ctx.client, &ctx.namespaces, changed.clone());
    let mut leadership: Option<Leadership> = None;
    while !stopping() {
        let fence = match &options.lease {
            None => Some(Fence::unfenced()),
            Some(lock) => lead(ctx, lock, metrics, &mut leadership).await,
        };
        metrics.set_leader(fence.is_some());
        let wait = match &fence {
            Some(f) => {
                pass(ctx, options, metrics, f.clone()).await;
                jittered(options.interval)
            }
            None => standby_retry(options),
        };
        let mut rx = stop.clone();
        let leading = fence.clone().unwrap_or_default();
        let is_leader = fence.is_some();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = rx.changed() => {}
            _ = leading.lost(), if is_leader => {}
            _ = changed.notified(), if is_leader => {
                // A short pause gathers a burst of events into one pass.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
    for w in watchers {
        w.abort();
    }
}

/// How often a standby tries to take the Lease.
fn standby_retry(options: &RunOptions) -> Duration {
    options.lease.as_ref().map_or(Duration::from_secs(5), |l| {
        (l.duration / 5).clamp(Duration::from_millis(200), Duration::from_secs(5))
    })
}

/// Keep or take the Lease; the fence of this pass, or `None` while another replica leads.
async fn lead(
    ctx: &Context,
    lock: &LeaseLock,
    metrics: &Metrics,
    leadership: &mut Option<Leadership>,
) -> Option<Fence> {
    if leadership.as_ref().is_some_and(|l| !l.held()) {
        *leadership = None;
    }
    if leadership.is_none() {
        let m = metrics.clone();
        let on_lost = Box::new(move || {
            tracing::warn!("leadership lost: stopping all writes until the Lease is held again");
            m.leadership_lost();
            m.set_leader(false);
        });
        match Leadership::acquire(lock, &ctx.client, on_lost).await {
            Ok(Some(l)) => {
                tracing::info!(lease = %lock.name, identity = %lock.identity, "leading");
                *leadership = Some(l);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "leader election failed"),
        }
    }
    leadership.as_ref().map(|l| l.fence().clone())
}

/// One pass under `fence`, counted in the metrics.
async fn pass(ctx: &Context, options: &RunOptions, metrics: &Metrics, fence: Fence) {
    let apply_options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(options.rollout_timeout),
        poll: None,
        fence,
    };
    let p = match plan(ctx).await {
        Ok(p) => p,
        Err(e) => {
            metrics.pass_error();
            tracing::warn!(error = %e, "pass failed while planning");
            return;
        }
    };
    match apply(ctx, &p, &apply_options).await {
        Ok(applied) => record(metrics, &p, &applied),
        Err(e) => {
            metrics.pass_error();
            tracing::warn!(error = %e, "pass failed while applying");
        }
    }
}

fn record(metrics: &Metrics, p: &super::Plan, applied: &Applied) {
    let count = |a: Action| p.decisions.iter().filter(|d| d.action == a).count() as u64;
    metrics.pass(
        count(Action::Update),
        count(Action::Skip),
        applied.rolled_back.len() as u64,
        p.registry_requests as u64,
    );
    for f in &applied.failures {
        metrics.failure(f.stage.as_str());
    }
    for _ in &applied.unsynced {
        metrics.unsynced();
    }
}

/// Watch the four workload kinds and wake `notify` whenever one of them is added, changed or
/// deleted (after the initial listing), so the controller reacts to a new opt-in or a changed
/// image without waiting for the next interval. Errors are retried with kube-runtime's backoff.
pub fn spawn_watchers(
    client: &Client,
    namespaces: &Namespaces,
    notify: std::sync::Arc<tokio::sync::Notify>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use kube::runtime::{WatchStreamExt, watcher};
    fn watch<K>(
        api: Api<K>,
        notify: std::sync::Arc<tokio::sync::Notify>,
    ) -> tokio::task::JoinHandle<()>
    where
        K: kube::Resource
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        tokio::spawn(async move {
            let mut stream =
                std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => notify.notify_one(),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "watch interrupted; retrying"),
                }
            }
        })
    }
    let mut handles = Vec::new();
    let scopes: Vec<Option<String>> = match namespaces {
        Namespaces::All => vec![None],
        Namespaces::Only(list) => list.iter().cloned().map(Some).collect(),
    };
    for ns in scopes {
        macro_rules! api {
            ($k:ty) => {
                match &ns {
                    None => Api::<$k>::all(client.clone()),
                    Some(n) => Api::<$k>::namespaced(client.clone(), n),
                }
            };
        }
        handles.push(watch(api!(Deployment), notify.clone()));
        handles.push(watch(api!(StatefulSet), notify.clone()));
        handles.push(watch(api!(DaemonSet), notify.clone()));
        handles.push(watch(
            api!(k8s_openapi::api::batch::v1::CronJob),
            notify.clone(),
        ));
    }
    handles
}
