//! The annotations a pass writes on a workload, computed here from what the workload holds (its
//! [`WorkloadView`], read once) and the pass's decisions: the shell patches them without reading
//! an annotation itself.
//!
//! ```
//! use ferry_policy::annotate;
//! # fn show(view: &ferry_policy::WorkloadView, mine: &[&ferry_policy::Decision]) {
//! let annotations = annotate::after_pass(view, mine, 1_700_000_000);
//! # let _ = annotations;
//! # }
//! ```

use std::collections::BTreeMap;

use crate::retag::{format_running_tags, parse_running_tags};
use crate::{
    BASELINE, Decision, FIRST_SEEN, PREVIOUS_IMAGE, QUARANTINED, ROLLED_AT, RUNNING_TAG,
    WorkloadView, format_pairs, parse_pairs,
};

/// The annotations to write on `view` after a pass that decided `mine` (its containers' decisions)
/// at Unix time `now`: for each live update, the previous image (`ferry.dev/previous-image`) and
/// when it rolled (`ferry.dev/rolled-at`); baselines; first-seen times of soak candidates; the
/// running tags after re-tags. Each value keeps the other containers' entries; a key that does
/// not change is left out (empty: nothing to write).
pub fn after_pass(view: &WorkloadView, mine: &[&Decision], now: u64) -> BTreeMap<String, String> {
    let updates: Vec<&Decision> = mine
        .iter()
        .copied()
        .filter(|d| d.is_live_update())
        .collect();
    let previous = updates
        .iter()
        .map(|d| (d.container.clone(), d.image.to_string()));
    let rolled = updates.iter().filter_map(|d| {
        let digest = d.target_digest()?;
        Some((d.container.clone(), format!("{digest}@{now}")))
    });
    let baselines = mine.iter().filter_map(|d| {
        let b = d.records.baseline.as_ref()?;
        Some((d.container.clone(), b.to_string()))
    });
    let first_seen = mine
        .iter()
        .filter_map(|d| Some((d.container.clone(), d.records.first_seen_stamp()?)));
    [
        (PREVIOUS_IMAGE, merged(view, PREVIOUS_IMAGE, previous)),
        (ROLLED_AT, merged(view, ROLLED_AT, rolled)),
        (BASELINE, merged(view, BASELINE, baselines)),
        (FIRST_SEEN, merged(view, FIRST_SEEN, first_seen)),
        (RUNNING_TAG, running_tags(view, mine, &updates)),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect()
}

/// Undoing `updates` whose rollout failed: the images to put back (container → image as it
/// was) and the annotations to write with them (each failed digest added to
/// `ferry.dev/quarantined`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// Container → the image it ran before.
    pub images: BTreeMap<String, String>,
    /// The annotations to write in the same patch.
    pub annotations: BTreeMap<String, String>,
}

/// The rollback of `updates` (live updates of `view`) after a failed rollout.
pub fn after_failed_rollout(view: &WorkloadView, updates: &[&Decision]) -> Rollback {
    let mut images = BTreeMap::new();
    let mut quarantine = parse_pairs(view.annotation(QUARANTINED));
    for d in updates {
        images.insert(d.container.clone(), d.image.to_string());
        if let Some(digest) = d.target_digest() {
            quarantine
                .entry(d.container.clone())
                .or_default()
                .push(digest.to_string());
        }
    }
    let annotations = BTreeMap::from([(QUARANTINED.to_string(), format_pairs(&quarantine))]);
    Rollback {
        images,
        annotations,
    }
}

/// `key`'s `container=value` pairs with `entries` replacing each container's value; `None`
/// when there is nothing to write.
fn merged(
    view: &WorkloadView,
    key: &str,
    entries: impl IntoIterator<Item = (String, String)>,
) -> Option<String> {
    let mut pairs = parse_pairs(view.annotation(key));
    let mut any = false;
    for (container, value) in entries {
        pairs.insert(container, vec![value]);
        any = true;
    }
    any.then(|| format_pairs(&pairs))
}

/// `ferry.dev/running-tag` after this pass: re-tags recorded, and the entries of containers
/// whose template ferry changes dropped (the template's tag is current again); `None` when
/// unchanged. A malformed value never reaches here (the policy refuses the workload).
fn running_tags(view: &WorkloadView, mine: &[&Decision], updates: &[&Decision]) -> Option<String> {
    let before = parse_running_tags(view.annotation(RUNNING_TAG)).ok()?;
    let mut after = before.clone();
    for d in updates {
        after.remove(&d.container);
    }
    for d in mine {
        if let Some(tag) = &d.records.running_tag {
            after.insert(d.container.clone(), tag.clone());
        }
    }
    (after != before).then(|| format_running_tags(&after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{answers, digest, plats, workload};
    use crate::{Action, POLICY, decide};

    #[test]
    fn a_pass_keeps_the_other_containers_entries_and_a_rollback_adds_the_quarantine() {
        let (old, new) = (digest("old"), digest("new"));
        let w = workload(
            &[
                (POLICY, "digest"),
                (PREVIOUS_IMAGE, "sidecar=acme/side:1"),
                (QUARANTINED, "sidecar=sha256:0"),
            ],
            &[("app", &format!("acme/sensor:latest@{old}"), false)],
        );
        let a = answers(
            "docker.io/acme/sensor:latest",
            &new,
            Some("linux/amd64,linux/arm64"),
        );
        let d = decide(&w, &a, &plats());
        assert_eq!(d[0].action, Action::Update, "{}", d[0].reason);
        let mine: Vec<&Decision> = d.iter().collect();
        let written = after_pass(&w, &mine, 1_700_000_000);
        assert_eq!(
            written[PREVIOUS_IMAGE],
            format!("app=acme/sensor:latest@{old},sidecar=acme/side:1")
        );
        assert_eq!(written[ROLLED_AT], format!("app={new}@1700000000"));
        assert!(!written.contains_key(RUNNING_TAG), "unchanged: not written");
        let undo = after_failed_rollout(&w, &mine);
        assert_eq!(
            undo.images,
            BTreeMap::from([("app".to_string(), format!("acme/sensor:latest@{old}"))])
        );
        assert_eq!(
            undo.annotations[QUARANTINED],
            format!("app={new},sidecar=sha256:0")
        );
    }

    #[test]
    fn a_pass_with_nothing_to_record_writes_nothing() {
        let d = digest("same");
        let w = workload(
            &[(POLICY, "digest")],
            &[("app", &format!("acme/sensor:latest@{d}"), false)],
        );
        let a = answers(
            "docker.io/acme/sensor:latest",
            &d,
            Some("linux/amd64,linux/arm64"),
        );
        let decided = decide(&w, &a, &plats());
        let mine: Vec<&Decision> = decided.iter().collect();
        assert_eq!(after_pass(&w, &mine, 1), BTreeMap::new());
    }
}
