//! Leader election on a `coordination.k8s.io/v1` Lease, so that several replicas of the
//! controller never act at the same time.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::error::Result;

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
                        t.0 + std::time::Duration::from_secs(u64::try_from(d).unwrap_or(0)) < now
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
