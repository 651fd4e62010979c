//! The controller loop: leader election (the Lease renewed in the background while leading), a
//! pass every interval — or two seconds after a watched workload changed — and a graceful stop.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::Client;
use kube::api::Api;
use tokio::sync::Notify;

use super::{Applied, ApplyOptions, Context, Plan, Scope, apply, plan_scoped, report};
use crate::cluster::Namespaces;
use crate::lease::{Fence, Leadership, LeaseLock};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::policy::Action;
use crate::status::Board;
use crate::webhook::{Debouncer, Receiver};

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

/// What the loop talks to besides the cluster: webhook hints, the notifier, the status board.
#[derive(Debug, Default)]
pub struct RunIo<'a> {
    /// Debounced webhook hints: each batch starts a pass limited to those repositories.
    pub hints: Option<Debouncer>,
    /// The webhook receiver, told whether this replica leads (a standby answers 503).
    pub receiver: Option<Receiver>,
    /// Where updates, rollbacks, quarantines and failures are sent.
    pub notifier: Option<&'a Notifier>,
    /// What the status page shows.
    pub board: Board,
}

/// The controller loop. While this replica holds the Lease (renewed in the background for the
/// whole pass), a pass — plan, then apply with the health gate, every write fenced — runs every
/// `interval`, two seconds after a watched workload changed, or as soon as a debounced webhook
/// batch arrives (then only for the workloads using those repositories). A standby only tries
/// to take the Lease. Returns when `stop` becomes true; a running pass always finishes first (or
/// stops writing at once when the Lease is lost).
pub async fn run(
    ctx: &Context,
    options: &RunOptions,
    metrics: &Metrics,
    stop: tokio::sync::watch::Receiver<bool>,
    io: &mut RunIo<'_>,
) {
    let stopping = || *stop.borrow();
    // Workload changes (a new opt-in, an edited image) wake the loop before the interval ends.
    let changed = Arc::new(Notify::new());
    let watchers = spawn_watchers(&ctx.client, &ctx.namespaces, changed.clone());
    let mut leadership: Option<Leadership> = None;
    let mut scope = Scope::All;
    while !stopping() {
        let fence = match &options.lease {
            None => Some(Fence::unfenced()),
            Some(lock) => lead(ctx, lock, metrics, &mut leadership).await,
        };
        metrics.set_leader(fence.is_some());
        if let Some(r) = &io.receiver {
            r.set_active(fence.is_some());
        }
        let wait = match &fence {
            Some(f) => {
                pass(ctx, options, metrics, f.clone(), &scope, io).await;
                jittered(options.interval)
            }
            None => standby_retry(options),
        };
        scope = next_wake(wait, &stop, fence.as_ref(), &changed, io).await;
    }
    for w in watchers {
        w.abort();
    }
    // The last pass has finished: hand the Lease over at once instead of letting it expire.
    if let (Some(lock), Some(held)) = (&options.lease, leadership.take()) {
        drop(held);
        match lock.release(&ctx.client).await {
            Ok(true) => tracing::info!(lease = %lock.name, "released the Lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(lease = %lock.name, error = %e, "cannot release the Lease"),
        }
    }
}

/// Sleep until the next pass is due, and say which workloads it covers: the interval, a
/// watched change or a shutdown → all; a webhook batch → those repositories.
async fn next_wake(
    wait: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
    fence: Option<&Fence>,
    changed: &Notify,
    io: &mut RunIo<'_>,
) -> Scope {
    let mut rx = stop.clone();
    let leading = fence.cloned().unwrap_or_default();
    let is_leader = fence.is_some();
    let hints = async {
        match io.hints.as_mut() {
            Some(h) => h.next_batch().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(wait) => Scope::All,
        _ = rx.changed() => Scope::All,
        _ = leading.lost(), if is_leader => Scope::All,
        _ = changed.notified(), if is_leader => {
            // A short pause gathers a burst of events into one pass.
            tokio::time::sleep(Duration::from_secs(2)).await;
            Scope::All
        }
        Some(batch) = hints, if is_leader => {
            tracing::info!(hints = batch.len(), "webhook: pass for the pushed repositories");
            Scope::Images(batch)
        }
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

/// One pass under `fence` over `scope`: counted in the metrics, told to the notifier and the
/// status board.
async fn pass(
    ctx: &Context,
    options: &RunOptions,
    metrics: &Metrics,
    fence: Fence,
    scope: &Scope,
    io: &RunIo<'_>,
) {
    let apply_options = ApplyOptions {
        wait: true,
        rollout_timeout: Some(options.rollout_timeout),
        poll: None,
        fence,
    };
    let p = match plan_scoped(ctx, scope).await {
        Ok(p) => p,
        Err(e) => {
            metrics.pass_error();
            tracing::warn!(error = %e, "pass failed while planning");
            return;
        }
    };
    match apply(ctx, &p, &apply_options).await {
        Ok(applied) => {
            record(metrics, &p, &applied);
            tell(&p, &applied, scope, io);
        }
        Err(e) => {
            metrics.pass_error();
            tracing::warn!(error = %e, "pass failed while applying");
        }
    }
}

/// Notifications for what happened, and the new status for the page.
fn tell(p: &Plan, applied: &Applied, scope: &Scope, io: &RunIo<'_>) {
    let now = SystemTime::now();
    for n in report::notifications(p, applied, now) {
        if let Some(notifier) = &io.notifier {
            notifier.send(n.clone());
        }
        io.board.record(n);
    }
    let ids: BTreeSet<String> = p.workloads.iter().map(|w| w.view.id()).collect();
    let limited = (*scope != Scope::All).then_some(&ids);
    let mut status = report::status(p, now);
    status.pull_requests = report::open_requests(p, applied);
    io.board.publish(status, limited);
}

fn record(metrics: &Metrics, p: &Plan, applied: &Applied) {
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
