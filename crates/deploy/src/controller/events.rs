//! Kubernetes Events on workloads, de-duplicated: a refusal that repeats every pass (a soak, a
//! missing platform, a registry error) is published once per workload, reason and target per
//! hour, not once per pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::time::Instant;

use crate::cluster::Workload;
use crate::policy::Kind;

/// How long a repeated Event stays quiet.
pub const REPEAT_AFTER: Duration = Duration::from_secs(3600);

/// What ferry published recently (shared by the passes of one controller; cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
}

impl EventLog {
    /// Whether an Event with this key should be published now (and remember that it was).
    pub fn first_in_window(&self, key: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        seen.retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
        if seen.contains_key(key) {
            return false;
        }
        seen.insert(key.to_string(), now);
        true
    }
}

/// The key of a refusal: workload, container, Event reason, target and the reason text with its
/// numbers blanked (a soak's "3h to go" and "2h to go" are the same refusal).
pub fn refusal_key(
    workload: &str,
    container: &str,
    reason: &str,
    target: &str,
    text: &str,
) -> String {
    let mut shape = String::with_capacity(text.len());
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                shape.push('#');
            }
            in_digits = true;
        } else {
            shape.push(c);
            in_digits = false;
        }
    }
    format!("{workload}\u{1f}{container}\u{1f}{reason}\u{1f}{target}\u{1f}{shape}")
}

/// Publishes Events on workloads as the `ferry` controller.
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// A publisher on `client`.
    pub fn new(client: &Client) -> Self {
        Events {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: "ferry".into(),
                    instance: None,
                },
            ),
        }
    }

    /// Publish one Event (a failure to publish is logged, never fatal).
    pub async fn publish(&self, w: &Workload, warning: bool, reason: &str, note: &str) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: "Redeploy".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &object_ref(w)).await {
            tracing::warn!(workload = %w.view.id(), error = %e, "cannot record Event");
        }
    }
}

fn object_ref(w: &Workload) -> ObjectReference {
    let (api_version, kind) = match w.view.kind {
        Kind::CronJob => ("batch/v1", "CronJob"),
        k => ("apps/v1", k.as_str()),
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(w.view.name.clone()),
        namespace: Some(w.view.namespace.clone()),
        uid: w.uid.clone(),
        resource_version: w.resource_version.clone(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_differ_only_in_numbers_are_one_event_per_window() {
        let log = EventLog::default();
        let a = refusal_key(
            "iot/Deployment/s",
            "app",
            "RedeploySkipped",
            "t",
            "soaking: 3h to go",
        );
        let b = refusal_key(
            "iot/Deployment/s",
            "app",
            "RedeploySkipped",
            "t",
            "soaking: 2h to go",
        );
        let c = refusal_key(
            "iot/Deployment/s",
            "app",
            "RedeploySkipped",
            "u",
            "soaking: 2h to go",
        );
        assert_eq!(a, b);
        assert!(log.first_in_window(&a));
        assert!(!log.first_in_window(&b), "same refusal, same hour");
        assert!(log.first_in_window(&c), "another target is news");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_repeated_after_an_hour() {
        let log = EventLog::default();
        assert!(log.first_in_window("k"));
        tokio::time::advance(REPEAT_AFTER - Duration::from_secs(1)).await;
        assert!(!log.first_in_window("k"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(log.first_in_window("k"));
    }
}
