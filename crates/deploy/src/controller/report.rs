//! What a pass tells people: one [`Notification`] per update, rollback, quarantine and failure
//! (never for repeated skips), and the [`Status`] behind the status page.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use super::{Applied, Plan};
use crate::notify::{Event, Notification};
use crate::policy::{Action, Decision, Reason};
use crate::status::{ContainerStatus, LastDecision, OpenRequest, Status, WorkloadStatus};

fn note(
    d: &Decision,
    event: Event,
    from: String,
    to: String,
    reason: String,
    time: SystemTime,
) -> Notification {
    Notification {
        event,
        namespace: d.namespace.clone(),
        kind: d.kind.to_string(),
        name: d.name.clone(),
        container: d.container.clone(),
        from,
        to,
        reason,
        time,
    }
}

/// The notifications of one applied pass.
pub fn notifications(plan: &Plan, applied: &Applied, time: SystemTime) -> Vec<Notification> {
    let updated: BTreeSet<&str> = applied.updated.iter().map(String::as_str).collect();
    let committed: BTreeSet<&str> = applied
        .committed
        .iter()
        .filter_map(|c| c.split_whitespace().next())
        .collect();
    let rolled: BTreeMap<&str, &str> = applied
        .rolled_back
        .iter()
        .map(|(w, why)| (w.as_str(), why.as_str()))
        .collect();
    let mut out = Vec::new();
    for d in plan.decisions.iter().filter(|d| d.action == Action::Update) {
        let id = d.workload_id();
        let to = d.target_image().unwrap_or_default();
        let moved = if d.git().is_some() {
            committed.contains(id.as_str())
        } else {
            updated.contains(id.as_str())
        };
        if moved {
            let reason = with_request(d.reason.to_string(), applied, &id);
            out.push(note(
                d,
                Event::Update,
                d.image.to_string(),
                to.clone(),
                reason,
                time,
            ));
        }
        if let Some(why) = rolled.get(id.as_str()) {
            let why = why.to_string();
            out.push(note(
                d,
                Event::Rollback,
                to.clone(),
                d.image.to_string(),
                why.clone(),
                time,
            ));
            let digest = d
                .target_digest()
                .map(ToString::to_string)
                .unwrap_or_default();
            let q = format!("{digest} quarantined: {why}");
            out.push(note(d, Event::Quarantine, d.image.to_string(), to, q, time));
        }
    }
    for f in &applied.failures {
        let Some(d) = plan
            .decisions
            .iter()
            .find(|d| d.workload_id() == f.workload)
        else {
            continue;
        };
        let to = d.target_image().unwrap_or_default();
        let reason = format!("{}: {}", f.stage.as_str(), f.message);
        let mut n = note(d, Event::Failure, d.image.to_string(), to, reason, time);
        n.container = String::new();
        out.push(n);
    }
    out
}

/// `reason`, plus the link to the request that carries the update, when there is one.
fn with_request(reason: String, applied: &Applied, id: &str) -> String {
    match applied
        .pull_requests
        .iter()
        .find(|n| n.workload == id && n.action != "closed")
    {
        Some(n) => format!("{reason}; pull request {}: {}", n.action, n.url),
        None => reason,
    }
}

/// The requests that carry updates waiting for a person after a pass: opened or updated now,
/// or holding the update already (`AlreadyInGit` on a request's branch; the link then comes from
/// an earlier pass, see [`crate::status::Board::publish`]).
pub fn open_requests(plan: &Plan, applied: &Applied) -> Vec<OpenRequest> {
    let mut out: Vec<OpenRequest> = Vec::new();
    for d in &plan.decisions {
        let Some((route, forge)) = d.git().and_then(|g| Some((g, g.review?))) else {
            continue;
        };
        let id = d.workload_id();
        let note = applied
            .pull_requests
            .iter()
            .find(|n| n.workload == id && n.action != "closed");
        let waiting = match (&d.action, &d.reason) {
            (Action::Update, _) => note.is_some(),
            (_, Reason::AlreadyInGit) => true,
            _ => false,
        };
        if waiting
            && !out
                .iter()
                .any(|r| r.workload == id && r.branch == route.branch)
        {
            out.push(OpenRequest {
                workload: id,
                forge: forge.to_string(),
                branch: route.branch.clone(),
                url: note.map(|n| n.url.clone()),
            });
        }
    }
    out
}

/// The status of every opted-in workload after a pass.
pub fn status(plan: &Plan, last_pass: SystemTime) -> Status {
    let mut status = Status::new(last_pass);
    status.last_pass = Some(last_pass);
    for w in &plan.workloads {
        let Some(policy_value) = w.view.opted_in() else {
            continue;
        };
        let quarantined = w.view.quarantined();
        let containers = plan
            .decisions
            .iter()
            .filter(|d| d.workload_id() == w.view.id() && !d.container.is_empty())
            .filter(|d| d.reason != Reason::NotNamed)
            .map(|d| ContainerStatus {
                name: d.container.clone(),
                policy: policy_value.to_string(),
                image: d.image.to_string(),
                last_decision: Some(LastDecision {
                    action: format!("{:?}", d.action).to_lowercase(),
                    reason: d.reason.to_string(),
                    target: d.target_image(),
                }),
                soak_remaining_seconds: d.soak_remaining_seconds,
                awaiting_approval: match &d.reason {
                    Reason::AwaitingApproval { digest, .. } => Some(digest.to_string()),
                    _ => None,
                },
                quarantined: quarantined.get(&d.container).cloned().unwrap_or_default(),
            })
            .collect();
        status.workloads.push(WorkloadStatus {
            namespace: w.view.namespace.clone(),
            kind: w.view.kind.to_string(),
            name: w.view.name.clone(),
            containers,
            credentials: plan
                .credentials
                .get(&w.view.id())
                .cloned()
                .unwrap_or_default(),
        });
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::RequestNote;
    use crate::policy::review::Forge;
    use crate::policy::{GitRoute, Kind, Route, WorkloadView};

    fn decision(name: &str, action: Action, reason: Reason) -> Decision {
        let view = WorkloadView {
            kind: Kind::Deployment,
            namespace: "shop".into(),
            name: name.into(),
            annotations: Default::default(),
            labels: Default::default(),
            containers: vec![],
            running: Default::default(),
            healthy: None,
        };
        Decision {
            route: Route::Git(GitRoute {
                repo: "https://github.example/o/r.git".into(),
                branch: format!("ferry/shop-{name}"),
                path: String::new(),
                file: None,
                edit: Default::default(),
                base: Some("main".into()),
                review: Some(Forge::GitHub),
            }),
            ..Decision::row(&view, "app", &"acme/web:1".into(), action, reason)
        }
    }

    #[test]
    fn open_requests_are_the_ones_pushed_now_or_waiting_in_git() {
        let plan = Plan {
            workloads: vec![],
            decisions: vec![
                decision("web", Action::Update, Reason::NewerTag("2".into())),
                decision("api", Action::None, Reason::AlreadyInGit),
                decision(
                    "db",
                    Action::Skip,
                    Reason::GitWriteBack(crate::policy::NotWritten::Placement(
                        crate::policy::Refusal::Git(crate::policy::Failure::from(
                            crate::Error::LeadershipLost,
                        )),
                    )),
                ),
            ],
            registry_requests: 0,
            credentials: Default::default(),
        };
        let applied = Applied {
            pull_requests: vec![RequestNote {
                workload: "shop/Deployment/web".into(),
                forge: Forge::GitHub,
                url: "https://github.example/o/r/pull/3".into(),
                action: "opened",
            }],
            ..Default::default()
        };
        let open = open_requests(&plan, &applied);
        let got: Vec<(&str, Option<&str>)> = open
            .iter()
            .map(|r| (r.workload.as_str(), r.url.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "shop/Deployment/web",
                    Some("https://github.example/o/r/pull/3")
                ),
                ("shop/Deployment/api", None),
            ]
        );
        assert_eq!(open[1].branch, "ferry/shop-api");
    }
}
