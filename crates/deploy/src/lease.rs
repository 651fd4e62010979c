//! Leader election on a `coordination.k8s.io/v1` Lease, so that several replicas of the
//! controller never act at the same time.
//!
//! [`Leadership::acquire`] takes the Lease and renews it in a background task every third of
//! its duration; every write first asks the [`Fence`], which refuses once the Lease was taken
//! by another replica or could not be renewed within the renew deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::error::{Error, Result};

/// A lease this process tries to hold.
#[derive(Debug, Clone)]
pub struct LeaseLock {
    /// Lease namespace.
    pub namespace: String,
    /// Lease name.
    pub name: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// How long a holder keeps the lease without renewing it.
    pub duration: Duration,
}

impl LeaseLock {
    /// Try to acquire or renew the lease; `Ok(true)` when this replica holds it afterwards.
    /// Conflicts (another replica wrote first) are `Ok(false)`, never an error.
    pub async fn try_acquire(&self, client: &Client) -> Result<bool> {
        let api: Api<Lease> = Api::namespaced(client.clone(), &self.namespace);
        let now = Timestamp::now();
        let secs = i32::try_from(self.duration.as_secs())
            .unwrap_or(i32::MAX)
            .max(1);
        let mine = |transitions: Option<i32>, acquire: Option<MicroTime>| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(secs),
            acquire_time: acquire.or(Some(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: transitions,
            ..Default::default()
        };
        match api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(mine(Some(0), None)),
                };
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.clone().unwrap_or_default();
                let held_by_me = holder == self.identity;
                let expired = match (spec.renew_time.as_ref(), spec.lease_duration_seconds) {
                    (Some(t), Some(d)) => {
                        // A hostile or absurd duration never panics: past the end of time
                        // means "not expired".
                        t.0.checked_add(Duration::from_secs(u64::try_from(d).unwrap_or(0)))
                            .is_ok_and(|end| end < now)
                    }
                    _ => true,
                };
                if !held_by_me && !expired && !holder.is_empty() {
                    return Ok(false);
                }
                let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
                let acquire = if held_by_me {
                    spec.acquire_time.clone()
                } else {
                    None
                };
                lease.spec = Some(mine(Some(transitions), acquire));
                match api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

impl LeaseLock {
    /// Give the Lease up on a graceful shutdown, as client-go's `ReleaseOnCancel` does: no
    /// holder and a one-second duration, so a standby takes over at its next try instead of
    /// waiting for the whole duration. `Ok(false)` when this replica did not hold it (or another
    /// replica wrote first).
    pub async fn release(&self, client: &Client) -> Result<bool> {
        let api: Api<Lease> = Api::namespaced(client.clone(), &self.namespace);
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            return Ok(false);
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        match api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Proof of leadership, checked immediately before every write (patch, rollback, git push).
///
/// A fence is valid while this replica holds the Lease and its last successful renewal is more
/// recent than the renew deadline (two thirds of the lease duration, as client-go does), so a
/// standby — which waits for the full duration after the last renewal — never writes while
/// this replica still may. Cheap to clone; [`Fence::unfenced`] is for a single replica without
/// leader election.
#[derive(Clone, Default)]
pub struct Fence {
    state: Option<Arc<FenceState>>,
}

struct FenceState {
    valid_until: Mutex<Instant>,
    lost: AtomicBool,
    on_lost: Box<dyn Fn() + Send + Sync>,
    lost_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fence")
            .field("elected", &self.state.is_some())
            .field("valid", &self.check().is_ok())
            .finish()
    }
}

impl Fence {
    /// No leader election: every write is allowed.
    pub fn unfenced() -> Self {
        Fence { state: None }
    }

    /// A fence valid until `valid_until`; `on_lost` runs once when leadership is lost.
    fn new(valid_until: Instant, on_lost: Box<dyn Fn() + Send + Sync>) -> Self {
        Fence {
            state: Some(Arc::new(FenceState {
                valid_until: Mutex::new(valid_until),
                lost: AtomicBool::new(false),
                on_lost,
                lost_tx: watch::channel(false).0,
            })),
        }
    }

    /// `Ok` when a write may happen now. Finding the renewal deadline passed counts as a loss.
    pub fn check(&self) -> Result<()> {
        let Some(s) = &self.state else {
            return Ok(());
        };
        if s.lost.load(Ordering::SeqCst) {
            return Err(Error::LeadershipLost);
        }
        let until = *s.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        if Instant::now() >= until {
            self.lose();
            return Err(Error::LeadershipLost);
        }
        Ok(())
    }

    /// Whether leadership was lost (a pass should stop).
    pub fn is_lost(&self) -> bool {
        self.check().is_err()
    }

    /// Resolves when leadership is lost (never for an unfenced replica).
    pub async fn lost(&self) {
        let Some(s) = &self.state else {
            return std::future::pending().await;
        };
        let mut rx = s.lost_tx.subscribe();
        if s.lost.load(Ordering::SeqCst) {
            return;
        }
        let _ = rx.wait_for(|lost| *lost).await;
    }

    fn extend(&self, until: Instant) {
        if let Some(s) = &self.state {
            let mut v = s.valid_until.lock().unwrap_or_else(|p| p.into_inner());
            *v = until.max(*v);
        }
    }

    fn lose(&self) {
        if let Some(s) = &self.state
            && !s.lost.swap(true, Ordering::SeqCst)
        {
            s.lost_tx.send_replace(true);
            (s.on_lost)();
        }
    }
}

/// How long after a successful renewal (measured from when the request was sent) this replica
/// may still write: two thirds of the lease duration, client-go's 10 s of 15 s.
pub fn renew_deadline(duration: Duration) -> Duration {
    duration.mul_f64(2.0 / 3.0)
}

/// A held Lease, renewed in the background every third of its duration for as long as it is
/// held — independent of the work it protects (rollout waits, git retries, rollbacks).
#[derive(Debug)]
pub struct Leadership {
    fence: Fence,
    renewer: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Try to become the leader once. `Ok(None)`: another replica holds a fresh Lease.
    /// `on_lost` runs once, when the Lease is lost (taken by another replica, or not renewed
    /// before the renew deadline).
    pub async fn acquire(
        lock: &LeaseLock,
        client: &Client,
        on_lost: Box<dyn Fn() + Send + Sync>,
    ) -> Result<Option<Leadership>> {
        let sent = Instant::now();
        if !lock.try_acquire(client).await? {
            return Ok(None);
        }
        let deadline = renew_deadline(lock.duration);
        let fence = Fence::new(sent + deadline, on_lost);
        let renewer = tokio::spawn(renew(lock.clone(), client.clone(), fence.clone()));
        Ok(Some(Leadership { fence, renewer }))
    }

    /// The fence every write checks.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether the Lease is still held.
    pub fn held(&self) -> bool {
        self.fence.check().is_ok()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Renew every `duration / 3`; on an error retry every `duration / 10` until the renew
/// deadline has passed; a Lease taken by someone else is lost at once.
async fn renew(lock: LeaseLock, client: Client, fence: Fence) {
    let every = lock.duration / 3;
    let retry = (lock.duration / 10).max(Duration::from_millis(50));
    let deadline = renew_deadline(lock.duration);
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        if fence.is_lost() {
            return;
        }
        let sent = Instant::now();
        match lock.try_acquire(&client).await {
            Ok(true) => {
                fence.extend(sent + deadline);
                wait = every;
            }
            Ok(false) => {
                tracing::warn!(lease = %lock.name, "the Lease was taken by another replica");
                fence.lose();
                return;
            }
            Err(e) => {
                tracing::warn!(lease = %lock.name, error = %e, "cannot renew the Lease; retrying");
                if fence.is_lost() {
                    return;
                }
                wait = retry;
            }
        }
    }
}
